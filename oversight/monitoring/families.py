"""Resource families: what "the same kind of thing" means for first-access alerts.

A resource's family is the resource without its last path segment: everything before
the last "/" (``stripe:charge/ch_1`` -> ``stripe:charge``; ``s3://bucket/reports/q1.csv``
-> ``s3://bucket/reports``). Without a "/", everything before the last ":"
(``db:users:42`` -> ``db:users``). Without either, the resource itself. A query string or
fragment is ignored, and so is a trailing "/".
"""

from __future__ import annotations

import re

_QUERY = re.compile(r"[?#].*$", re.DOTALL)


def resource_family(resource: str) -> str:
    path = _QUERY.sub("", resource.strip()).rstrip("/")
    for separator in ("/", ":"):
        head, found, _tail = path.rpartition(separator)
        if found and head and not head.endswith(("/", ":")):
            return head
    return path
