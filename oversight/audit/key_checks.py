"""Deploy checks of the audit checkpoints: a signing key that exists and was not made up
on the spot, and somewhere to send checkpoints other than this machine's disk
(docs/audit-trust.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from oversight.audit import signing, sinks

_KEY_HINT = (
    "Create one with `manage.py audit_key` and give it as AUDIT_SIGNING_KEY or "
    "AUDIT_SIGNING_KEY_FILE, kept where the database's administrators cannot read it."
)


@register(Tags.security, deploy=True)
def check_checkpoints(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if settings.AUDIT_SIGNING_KEY_CREATE:
        found.append(
            Warning(
                "AUDIT_SIGNING_KEY_CREATE is on: a missing key file is created, so each "
                "machine could sign checkpoints with a key of its own.",
                hint="Turn it off in production. " + _KEY_HINT,
                id="audit.W010",
            )
        )
    try:
        signing.signing_key()
    except ImproperlyConfigured as exc:
        found.append(
            Warning(f"Checkpoints cannot be signed: {exc}", hint=_KEY_HINT, id="audit.W011")
        )
    for sink in settings.AUDIT_CHECKPOINT_SINKS:
        try:
            sinks.sink_parse(sink)
        except sinks.SinkError as exc:
            found.append(
                Warning(
                    f"Checkpoints cannot be delivered: {exc}.",
                    hint="Fix AUDIT_CHECKPOINT_SINKS (docs/audit-trust.md).",
                    id="audit.W013",
                )
            )
    local = Path(settings.BASE_DIR).resolve()
    outside = [
        sink
        for sink in settings.AUDIT_CHECKPOINT_SINKS
        if not (sink.startswith("dir:") and Path(sink[4:]).resolve().is_relative_to(local))
    ]
    if not outside:
        found.append(
            Warning(
                "Every checkpoint sink is a directory inside the application's own tree.",
                hint="Add a sink the database's administrators cannot rewrite: a directory "
                "on other storage, a webhook or email (AUDIT_CHECKPOINT_SINKS).",
                id="audit.W012",
            )
        )
    return found
