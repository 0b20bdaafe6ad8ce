"""One JSON error shape for the whole agent API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as ServiceValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from oversight.gateway.auth import AgentUnavailableError
from oversight.gateway.exceptions import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)

logger = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return JsonResponse(body, status=status)


def _field_name(location: Any) -> str:
    """("body", "payload", "params", "x") -> "params.x"; ("query", "wait") -> "wait"."""
    parts = [str(part) for part in location]
    if parts[:1] == ["body"]:
        parts = parts[2:]  # the container and the handler's argument name
    elif parts[:1] in (["query"], ["header"], ["path"]):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        fields.setdefault(_field_name(error.get("loc", ())), []).append(
            str(error.get("msg", "invalid"))
        )
    names = ", ".join(sorted(fields))
    return error_response(422, "validation_error", f"Invalid input: {names}.", fields)


# What django-ninja raises here: a body that is not JSON, a missing or unknown token. (This
# API has no throttling and no ninja permissions: nothing else raises HttpError.)
_HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized"}


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = _HTTP_ERROR_CODES.get(exc.status_code)
    if code is None:  # a status docs/api.md does not promise: treat it as the bug it is
        return _unexpected(request, exc)
    message = "Missing or unknown API token." if isinstance(exc, AuthenticationError) else str(exc)
    return error_response(exc.status_code, code, message)


def unavailable_response() -> JsonResponse:
    """503: no answer now (the database is down, busy or locked, or a decision's time ran
    out). The agent must not act. It may retry: with the same Idempotency-Key a retry
    returns the decision if one was written after all (a connection lost in its commit)."""
    response = error_response(
        503, "unavailable", "Oversight cannot answer right now; do not act. Try again shortly."
    )
    response["Retry-After"] = "1"
    return response


def _unexpected(request: HttpRequest | None, exc: Exception) -> HttpResponse:
    logger.exception("agent API error", exc_info=exc)
    # Never an allow: the agent gets an error and must not act.
    return error_response(500, "internal_error", "Oversight could not decide; do not act.")


def _service_error(exc: Exception) -> HttpResponse:
    if isinstance(exc, AgentUnavailableError):
        return error_response(403, "agent_unavailable", str(exc))
    if isinstance(exc, UnauthenticatedError):
        return error_response(401, "unauthorized", str(exc))
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, Http404):
        return error_response(404, "not_found", "Not found.")
    if isinstance(exc, PermissionDenied):  # the approvals API: a person may not do this
        return error_response(403, "forbidden", str(exc) or "You may not do this.")
    if isinstance(exc, ServiceValidationError):  # a service refused the input; nothing changed
        fields = _service_fields(exc)
        return error_response(422, "validation_error", " ".join(exc.messages), fields)
    if isinstance(exc, InvalidInputError):
        return error_response(
            422, "validation_error", f"Invalid input: {exc.field}.", {exc.field: [exc.message]}
        )
    if isinstance(exc, ConflictError):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, OperationalError | InterfaceError):
        # Unreachable, no pool connection in time, a lock or statement timeout, a cancel
        # at the deadline (lib/deadline.py): a passing condition, not a bug to trace.
        first_line = str(exc).partition("\n")[0]  # not the SQL of every function it was in
        logger.warning("agent API: database unavailable: %s: %s", type(exc).__name__, first_line)
        return unavailable_response()
    return _unexpected(None, exc)


def _service_fields(exc: ServiceValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: list(messages) for field, messages in exc.message_dict.items()}
    return {"body": list(exc.messages)}


def exception_response(exc: Exception) -> HttpResponse:
    """The API's answer to an exception raised by a service (the decision fast lane
    uses it too, so both answer alike)."""
    return _service_error(exc)


def install_error_handlers(api: NinjaAPI) -> None:
    api.add_exception_handler(ValidationError, _validation)
    api.add_exception_handler(HttpError, _http_error)
    for exc_class in (
        AgentUnavailableError,
        UnauthenticatedError,
        NotFoundError,
        Http404,
        InvalidInputError,
        ConflictError,
        PermissionDenied,
        ServiceValidationError,
        Exception,
    ):
        api.add_exception_handler(exc_class, lambda request, exc: _service_error(exc))
