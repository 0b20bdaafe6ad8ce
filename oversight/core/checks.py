"""Deploy checks of the settings a production server needs beyond Django's own
(docs/deploy.md, "Required"): `manage.py check --deploy` names each one left out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

_LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}


@register(Tags.security, deploy=True)
def check_production_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found = []
    site = urlsplit(settings.SITE_URL)
    if site.hostname in _LOOPBACK or site.hostname is None or site.scheme != "https":
        found.append(
            Warning(
                f"SITE_URL is {settings.SITE_URL!r}: links in notifications and emails, and "
                "the log's name in every audit checkpoint, are made from it.",
                hint="Set SITE_URL to the https address people reach Oversight at.",
                id="core.W001",
            )
        )
    if not settings.REDIS_URL:
        found.append(
            Warning(
                "REDIS_URL is not set: live updates reach only the pages served by the same "
                "process, and Celery has no broker (no periodic jobs, no worker).",
                hint="Set REDIS_URL (docs/deploy.md).",
                id="core.W002",
            )
        )
    if settings.PERIODIC_IN_SERVER and settings.REDIS_URL:
        found.append(
            Warning(
                "PERIODIC_IN_SERVER is on with REDIS_URL set: every web process runs the "
                "periodic jobs, and Celery beat too where one runs, so each job runs more "
                "than once a period.",
                hint="Unset PERIODIC_IN_SERVER (off by default with REDIS_URL) and run one "
                "Celery beat (docs/deploy.md).",
                id="core.W004",
            )
        )
    if "owner" in settings.DATABASES:
        found.append(
            Warning(
                "DATABASE_OWNER_URL is set: the schema's owner may change audit history.",
                hint="Give it to the release step only, never to the web, worker or beat "
                "processes (docs/deploy.md).",
                id="core.W003",
            )
        )
    return found
