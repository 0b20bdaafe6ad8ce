"""The decision endpoint's fast lane: ``POST /api/v1/actions`` without Django's middleware.

Every agent action comes through this one endpoint, so its cost per request is what
limits an Oversight server. Through Django's ASGI handler a request pays for the whole
middleware stack (sessions, CSRF, auth, messages: each hook a hop to a thread), URL
resolution, two signals and django-ninja's parsing, about 1.5 ms of CPU before the
decision starts. The fast lane takes the request straight from the ASGI server and
spends one hop to a worker thread, where the decision runs: one of a few threads of its
own (``DECISION_THREADS``), since decisions mostly wait on PostgreSQL, which takes them
one at a time on the agent's limit counters and the audit chain; with more threads than
that, switching between them and contention in the database cost more than they gave.
Each of these threads keeps its database connection from one decision to the next
(``_connection_kept``): a checkout from the pool and Django's connect cost about a tenth
of a decision's CPU in the server.
Each decision has a deadline (``DECISION_TIMEOUT``): one that waited for a thread past it
is answered 503 without touching the database, and a running one's statement is
cancelled, so a locked table or a database that is down gives an error in time, never a
hang and never an allow (``_decide_in_time``, docs/decisions/0010-bounded-waits.md).

It is only a transport. The decision is the same pipeline (``pipeline.decide``),
the input is validated by the same schema, the answer is rendered by the same API
object, errors have the same shape, and Django's own ``SecurityMiddleware`` and host
validation are applied. Anything unusual is handed to the ordinary Django handler,
unchanged: an HTTPS redirect, a bad Host, a body over the limit, a missing or unknown
token, a paused agent, invalid JSON or a body the schema refuses. So every error answer
is made in one place, and the fast lane only ever answers a valid request from an
active agent. See docs/decisions/0006-decision-fast-lane.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.db import connection
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from pydantic import ValidationError

from oversight.gateway import pipeline
from oversight.gateway.api import api, decision_body
from oversight.gateway.auth import AgentUnavailableError, token_authenticate, token_recall
from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.errors import exception_response, unavailable_response
from oversight.gateway.schemas import ActionIn, DecisionOut
from oversight.lib.deadline import Deadline
from oversight.lib.request_id import HEADER as REQUEST_ID_HEADER
from oversight.lib.request_id import incoming_request_id, request_id_scope
from oversight.live import publish

logger = logging.getLogger(__name__)

PATH = "/api/v1/actions"
_MAX_KEY = 200  # as the Idempotency-Key header's schema says

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _HandOver(Exception):
    """Not for the fast lane: the ordinary handler answers (an error, or a redirect)."""


def _bearer(request: ASGIRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _HandOver
    return token.strip()


def _decide_by(deadline: Deadline, *args: Any) -> Any:
    """In a worker thread: the decision, each of its statements kept to ``deadline``.
    What the recorded decision sets off (its live rows; for a held one, escalating and
    telling its reviewers) runs after, outside the deadline: it is not the decision, and
    a statement of it refused past the deadline would leave the reviewers untold."""
    if deadline.passed():  # waited for a thread past its time: the database is not touched
        return unavailable_response()
    with publish.deferred_effects() as effects, deadline.statements():
        answer = _decide(*args)
    publish.run_effects(effects)
    return answer


def _connection_kept() -> None:
    """Before a decision: the thread's connection from its last one is used again, unless
    that one left it unfit (a database error, such as a broken connection or a cancelled
    statement, or a transaction left open): then it goes back to the pool, which drops or
    resets it, and the decision takes another."""
    if connection.connection is None:
        return
    if connection.errors_occurred or not connection.get_autocommit():
        connection.close()


def _decide(raw_token: str, data: pipeline.ActionInput, key: str, request_id: str) -> Any:
    """In a worker thread: recall the token (or authenticate it) and decide. A recalled
    token that changed since is read again by the pipeline."""
    _connection_kept()
    try:
        with request_id_scope(request_id):
            token = token_recall(raw_token)
            if token is None:
                try:
                    token = token_authenticate(raw_token, keep=True)
                except AgentUnavailableError:
                    raise _HandOver from None
                if token is None:
                    raise _HandOver
            credentials = pipeline.Credentials.of(token)
            return _answer(
                *pipeline.decide(credentials=credentials, data=data, idempotency_key=key)
            )
    except _HandOver:
        raise
    except Exception as exc:  # mapped exactly as the API's own handlers map it (500: never allow)
        return exception_response(exc)


def _answer(action: Any, created: bool) -> tuple[int, dict[str, Any]]:
    body = decision_body(action, first_answer=not created)
    return (201 if created else 200), DecisionOut.model_validate(body).model_dump()


class DecisionFastLane:
    """ASGI middleware in front of Django's handler; only the one endpoint is touched."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app
        self.security = SecurityMiddleware(lambda request: HttpResponse())
        self.threads = ThreadPoolExecutor(settings.DECISION_THREADS, thread_name_prefix="decide")
        # Cancelling a statement at its deadline waits for the server; not on the loop.
        self.cancels = ThreadPoolExecutor(2, thread_name_prefix="decide-cancel")
        self.loop_bound = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.loop_bound:
            publish.bind_event_loop()
            self.loop_bound = True
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.django_app(scope, receive, send)
            return
        body, finished = await _read_body(receive)
        response = None
        if finished and len(body) <= MAX_BODY_BYTES:
            try:
                response = await self._respond(scope, body)
            except _HandOver:
                response = None
        if response is None:
            await self.django_app(scope, _replay(body, finished, receive), send)
            return
        await self.django_app.send_response(response, send)

    async def _respond(self, scope: Scope, body: bytes) -> HttpResponse:
        request = ASGIRequest(scope, io.BytesIO(body))
        try:
            request.get_host()
        except DisallowedHost:
            raise _HandOver from None
        if self.security.process_request(request) is not None:  # an HTTPS redirect
            raise _HandOver
        raw_token = _bearer(request)
        key = request.headers.get("Idempotency-Key", "")
        if len(key) > _MAX_KEY:
            raise _HandOver
        try:
            payload = ActionIn.model_validate_json(body)
        except ValidationError:
            raise _HandOver from None
        request_id = incoming_request_id(request)
        outcome = await self._decide_in_time(
            raw_token, pipeline.ActionInput(**payload.model_dump()), key, request_id
        )
        if isinstance(outcome, HttpResponse):
            response = outcome
        else:
            status, data = outcome
            response = api.create_response(request, data, status=status)
        response[REQUEST_ID_HEADER] = request_id
        response["Content-Length"] = str(len(response.content))  # as Django's CommonMiddleware
        return self.security.process_response(request, response)

    async def _decide_in_time(self, *args: Any) -> Any:
        """``_decide``'s outcome, within DECISION_TIMEOUT of now when the database allows.

        Past the deadline a decision still waiting for a thread never starts (503). One
        that is running has its statement cancelled and no other started; if it had not
        yet touched the database it never will (503 at once), otherwise its own outcome
        is the answer (an error, or the decision if it was written just in time): an
        answer never contradicts what was recorded. See oversight/lib/deadline.py.
        """
        deadline = Deadline(settings.DECISION_TIMEOUT)
        queued = self.threads.submit(contextvars.copy_context().run, _decide_by, deadline, *args)
        outcome = asyncio.wrap_future(queued)
        done, _ = await asyncio.wait({outcome}, timeout=deadline.remaining())
        if done:
            return outcome.result()
        if queued.cancel():  # still waiting for a thread
            return unavailable_response()
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(self.cancels, deadline.expire):
            return await outcome
        outcome.add_done_callback(_ignore)  # it can write nothing now
        return unavailable_response()


def _ignore(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not report it as lost


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """(what was read, whether that is the whole body). Reading stops once the body is
    over the limit, or when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY_BYTES:
            return b"".join(chunks), False


def _replay(body: bytes, finished: bool, receive: Receive) -> Receive:
    """A receive callable that first hands over what was read, then the rest."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not finished}
        return await receive()

    return replay
