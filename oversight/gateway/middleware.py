"""The agent API's edges: refuse oversized bodies (413) before anything reads them, and
give every error under /api/ the API's JSON shape, including Django's own 404 and
django-ninja's 405."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.errors import error_response

API_PREFIX = "/api/"


def _too_large(request: HttpRequest) -> bool:
    if not request.path.startswith(API_PREFIX):
        return False
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        return declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES
    except (ValueError, RequestDataTooBig):
        return True


def _json_shaped(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if not request.path.startswith(API_PREFIX) or response.status_code not in (404, 405):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code == 404:
        return error_response(404, "not_found", "No such API endpoint.")
    refusal = error_response(405, "method_not_allowed", f"{request.method} is not allowed here.")
    if response.has_header("Allow"):
        refusal["Allow"] = response["Allow"]
    return refusal


def _refusal() -> HttpResponse:
    return error_response(
        413, "payload_too_large", f"Request bodies are limited to {MAX_BODY_BYTES} bytes."
    )


class ApiBodyLimitMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self._is_async:
            return self.__acall__(request)
        if _too_large(request):
            return _refusal()
        return _json_shaped(request, self.get_response(request))  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if _too_large(request):
            return _refusal()
        return _json_shaped(request, await self.get_response(request))  # type: ignore[misc]
