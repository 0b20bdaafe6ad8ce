"""A request id for every request, carried to audit events through a context variable.

The id is taken from a well-formed ``X-Request-ID`` header (so a proxy's id
survives) or generated, and is echoed back on the response.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

_current: ContextVar[str] = ContextVar("oversight_request_id", default="")
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = "X-Request-ID"


def current_request_id() -> str:
    return _current.get()


def new_request_id() -> str:
    """32 hex digits. A correlation id, not a secret: from the process's pseudo-random
    generator, which costs a tenth of ``uuid.uuid4()`` (every decision makes one)."""
    return f"{random.getrandbits(128):032x}"


@contextmanager
def request_id_scope(value: str | None = None) -> Iterator[str]:
    """Bind a request id for work done outside a request (tasks, commands)."""
    token = _current.set(value or new_request_id())
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def incoming_request_id(request: HttpRequest) -> str:
    """A well-formed incoming id (a proxy's), else a new one."""
    candidate = request.headers.get(HEADER, "")
    return candidate if _VALID.match(candidate) else new_request_id()


class RequestIdMiddleware:
    """Sets ``request.id`` and the context variable for the request's duration."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable]) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self._is_async:
            return self.__acall__(request)
        request.id = incoming_request_id(request)  # type: ignore[attr-defined]
        token = _current.set(request.id)  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request.id  # type: ignore[attr-defined]
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request.id = incoming_request_id(request)  # type: ignore[attr-defined]
        token = _current.set(request.id)  # type: ignore[attr-defined]
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        finally:
            _current.reset(token)
        response[HEADER] = request.id  # type: ignore[attr-defined]
        return response
