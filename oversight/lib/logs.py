"""Logging filters the settings install (LOGGING)."""

from __future__ import annotations

import logging


class RefusalsInOneLine(logging.Filter):
    """A request refused on purpose (a 4xx: PermissionDenied, Http404, a bad request) is
    logged as one line, its status and path. Its traceback only says which view refused,
    and forty lines for every page someone may not see buried the errors (5xx keep theirs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
