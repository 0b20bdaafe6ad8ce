"""The agent API's fast lane: ``POST /api/v1/actions`` and the two outcome reports
(``POST /api/v1/actions/<id>/result``, ``POST /api/v1/compensations/<id>/result``)
without Django's middleware.

Every agent action comes through the decision endpoint, and most are reported after, so
their cost per request is what limits an Oversight server. Through Django's ASGI handler
a request pays for the whole middleware stack (sessions, CSRF, auth, messages: each hook
a hop to a thread), URL resolution, two signals and django-ninja's parsing, about 1.5 ms
of CPU before the decision starts (a report through Django cost 9.5 ms of the server's
CPU, of which its own work was 2.5 ms: docs/performance.md, 2026-12-03). The fast lane
takes the request straight from the ASGI server and spends one hop to a worker thread,
where the decision runs: one of a few threads of its own (``DECISION_THREADS``), since
decisions mostly wait on PostgreSQL, which takes them one at a time on the agent's limit
counters and the audit chain; with more threads than that, switching between them and
contention in the database cost more than they gave. Each of these threads keeps its
database connection from one decision to the next (``_connection_kept``): a checkout
from the pool and Django's connect cost about a tenth of a decision's CPU in the server.
Each decision has a deadline (``DECISION_TIMEOUT``): one that waited for a thread past it
is answered 503 without touching the database, and a running one's statement is
cancelled, so a locked table or a database that is down gives an error in time, never a
hang and never an allow (``_in_time``, docs/decisions/0010-bounded-waits.md). What a
recorded change sets off (its live rows; for a held decision, telling its reviewers)
runs after the answer is sent, in order: one of those threads at a time takes them
oldest first (``_set_off``), so an agent's decisions reach the live feed in the order
they were answered, whichever thread decided them (``_effects_by``).

It is only a transport. The decision is the same pipeline (``pipeline.decide``), a
report the same function as its API view (``api.result_answer``,
``rewind.api.compensation_result_answer``; an action's result may use a kept token, as a
decision does, since its write checks the token's fingerprint; a compensation's reads the
token afresh, as the API's bearer auth does), the input is validated by the same schema,
the answer is rendered by the same API object, errors have the same shape, and Django's
own ``SecurityMiddleware`` and host validation are applied. Anything unusual is handed
to the ordinary Django handler, unchanged: an HTTPS redirect, a bad Host, a body over
the limit, a missing or unknown token, a paused agent, invalid JSON or a body the schema
refuses. So every error answer is made in one place, and the fast lane only ever answers
a valid request from an active agent. See docs/decisions/0006-decision-fast-lane.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from pydantic import BaseModel, ValidationError

from oversight.agents.models import AgentToken
from oversight.gateway import pipeline
from oversight.gateway.api import api, decision_body, result_answer
from oversight.gateway.auth import AgentUnavailableError, token_authenticate, token_recall
from oversight.gateway.constants import MAX_BODY_BYTES
from oversight.gateway.errors import exception_response, unavailable_response
from oversight.gateway.schemas import ActionIn, ActionOut, DecisionOut, ResultIn
from oversight.lib.deadline import Deadline
from oversight.lib.request_id import HEADER as REQUEST_ID_HEADER
from oversight.lib.request_id import incoming_request_id, request_id_scope
from oversight.live import publish
from oversight.rewind.api import (
    CompensationDoneOut,
    CompensationResultIn,
    compensation_result_answer,
)

logger = logging.getLogger(__name__)

PATH = "/api/v1/actions"
_MAX_KEY = 200  # as the Idempotency-Key header's schema says
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

Scope = dict[str, Any]
Effects = list[Callable[[], None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _HandOver(Exception):
    """Not for the fast lane: the ordinary handler answers (an error, or a redirect)."""


@dataclass(frozen=True)
class _Report:
    """An outcome report the lane carries: its path (the id in it), the body's schema,
    the API view's own work and answer, and the answer's schema. ``recall``: the work's
    write checks the token's fingerprint (as a decision's does), so a token the lane
    kept may be used; otherwise the token is read afresh, as the API's bearer auth does."""

    path: re.Pattern[str]
    body: type[BaseModel]
    answer: Callable[[AgentToken, uuid.UUID, Any], dict[str, Any]]
    out: type[BaseModel]
    recall: bool


_REPORTS = (
    _Report(
        re.compile(rf"/api/v1/actions/({_UUID})/result"),
        ResultIn,
        result_answer,
        ActionOut,
        recall=True,  # lifecycle.action_report_result
    ),
    _Report(
        re.compile(rf"/api/v1/compensations/({_UUID})/result"),
        CompensationResultIn,
        compensation_result_answer,
        CompensationDoneOut,
        recall=False,
    ),
)


def _report_route(path: str) -> tuple[_Report, uuid.UUID] | None:
    for report in _REPORTS:
        found = report.path.fullmatch(path)
        if found:
            return report, uuid.UUID(found[1])
    return None


def _bearer(request: ASGIRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _HandOver
    return token.strip()


def _work_by(
    deadline: Deadline, request_id: str, work: Callable[..., Any], *args: Any
) -> tuple[Any, Effects]:
    """In a worker thread: the decision or report (``work``), each of its statements kept
    to ``deadline``; a service's exception is answered as the API's own handlers answer it
    (500: never allow). Returns the answer and what the recorded change sets off (its live
    rows; for a held decision, escalating and telling its reviewers). Those are not the
    change, so they run outside the deadline (a statement of them refused past it would
    leave the reviewers untold), and once the answer is on its way (``_effects_by``): the
    agent does not wait for them."""
    if deadline.passed():  # waited for a thread past its time: the database is not touched
        return unavailable_response(), []
    _connection_kept()
    with publish.deferred_effects() as effects:
        try:
            with request_id_scope(request_id), deadline.statements():
                answer = work(*args)
        except _HandOver:
            raise
        except Exception as exc:
            answer = exception_response(exc)
    return answer, effects


def _effects_by(effects: Effects) -> None:
    """In a worker thread, after the answer: what ``_work_by``'s change set off."""
    _connection_kept()
    publish.run_effects(effects)


def _connection_kept() -> None:
    """Before a decision: the thread's connection from its last one is used again, unless
    that one left it unfit (a database error, such as a broken connection or a cancelled
    statement, or a transaction left open): then it goes back to the pool, which drops or
    resets it, and the decision takes another."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.connection is None:
        return
    if db.errors_occurred or not db.get_autocommit():
        db.close()


def _authenticated(raw_token: str, *, keep: bool) -> AgentToken:
    """The token read afresh; a missing, unknown or unusable one is handed over, for
    Django's handler to answer."""
    try:
        token = token_authenticate(raw_token, keep=keep)
    except AgentUnavailableError:
        raise _HandOver from None
    if token is None:
        raise _HandOver
    return token


def _decide(raw_token: str, data: pipeline.ActionInput, key: str) -> Any:
    """Recall the token (or authenticate it) and decide. A recalled token that changed
    since is read again by the pipeline."""
    token = token_recall(raw_token) or _authenticated(raw_token, keep=True)
    credentials = pipeline.Credentials.of(token)
    return _answer(*pipeline.decide(credentials=credentials, data=data, idempotency_key=key))


def _report(raw_token: str, report: _Report, target: uuid.UUID, payload: Any) -> Any:
    """The token (recalled if the report allows it, else read afresh) and the report's
    work, as its API view does."""
    token = (report.recall and token_recall(raw_token)) or _authenticated(raw_token, keep=True)
    body = report.answer(token, target, payload)
    return 200, report.out.model_validate(body).model_dump()


def _answer(action: Any, created: bool) -> tuple[int, dict[str, Any]]:
    body = decision_body(action, first_answer=not created)
    return (201 if created else 200), DecisionOut.model_validate(body).model_dump()


class DecisionFastLane:
    """ASGI middleware in front of Django's handler; only its three endpoints are touched."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app
        self.security = SecurityMiddleware(lambda request: HttpResponse())
        self.threads = ThreadPoolExecutor(settings.DECISION_THREADS, thread_name_prefix="decide")
        # Cancelling a statement at its deadline waits for the server; not on the loop.
        self.cancels = ThreadPoolExecutor(2, thread_name_prefix="decide-cancel")
        self.loop_bound = False
        # What answered changes set off, oldest first, and whether a thread is taking them.
        self.effects: deque[tuple[contextvars.Context, Effects]] = deque()
        self.effects_lock = threading.Lock()
        self.effects_taken = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.loop_bound:
            publish.bind_event_loop()
            self.loop_bound = True
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.django_app(scope, receive, send)
            return
        report = None if scope["path"] == PATH else _report_route(scope["path"])
        if scope["path"] != PATH and report is None:
            await self.django_app(scope, receive, send)
            return
        body, finished = await _read_body(receive)
        answered = None
        if finished and len(body) <= MAX_BODY_BYTES:
            try:
                answered = await self._respond(scope, body, report)
            except _HandOver:
                answered = None
        if answered is None:
            await self.django_app(scope, _replay(body, finished, receive), send)
            return
        response, effects = answered
        try:
            await self.django_app.send_response(response, send)
        finally:
            self._set_off(effects)

    async def _respond(
        self, scope: Scope, body: bytes, report: tuple[_Report, uuid.UUID] | None
    ) -> tuple[HttpResponse, Effects]:
        request = ASGIRequest(scope, io.BytesIO(body))
        try:
            request.get_host()
        except DisallowedHost:
            raise _HandOver from None
        if self.security.process_request(request) is not None:  # an HTTPS redirect
            raise _HandOver
        raw_token = _bearer(request)
        request_id = incoming_request_id(request)
        if report is not None:
            route, target = report
            payload = _parsed(route.body, body)
            outcome, effects = await self._in_time(
                request_id, _report, raw_token, route, target, payload
            )
        else:
            key = request.headers.get("Idempotency-Key", "")
            if len(key) > _MAX_KEY:
                raise _HandOver
            data = pipeline.ActionInput(**_parsed(ActionIn, body).model_dump())
            outcome, effects = await self._in_time(request_id, _decide, raw_token, data, key)
        if isinstance(outcome, HttpResponse):
            response = outcome
        else:
            status, data = outcome
            response = api.create_response(request, data, status=status)
        response[REQUEST_ID_HEADER] = request_id
        response["Content-Length"] = str(len(response.content))  # as Django's CommonMiddleware
        return self.security.process_response(request, response), effects

    def _set_off(self, effects: Effects) -> None:
        """What an answered change set off, queued behind what earlier answers set off;
        a decision thread takes the queue if none is taking it. One at a time, so a
        decision's live row is never published after the next decision's (a slow render
        in one thread would otherwise let another thread's overtake it)."""
        if not effects:
            return
        with self.effects_lock:
            self.effects.append((contextvars.copy_context(), effects))
            if self.effects_taken:
                return
            self.effects_taken = True
        try:
            self.threads.submit(self._take_effects)
        except RuntimeError:  # the server is shutting down: nothing takes them now
            with self.effects_lock:
                self.effects.clear()
                self.effects_taken = False
            logger.warning("the effects of an answered change were not run: shutting down")

    def _take_effects(self) -> None:
        """In a decision thread: the queued effects, oldest first, until none is left."""
        while True:
            with self.effects_lock:
                if not self.effects:
                    self.effects_taken = False
                    return
                context, effects = self.effects.popleft()
            try:
                context.run(_effects_by, effects)
            except Exception:  # each effect's failure is logged by run_effects already
                logger.exception("the effects of an answered change failed")

    async def _in_time(
        self, request_id: str, work: Callable[..., Any], *args: Any
    ) -> tuple[Any, Effects]:
        """``work``'s outcome (``_decide`` or ``_report``), within DECISION_TIMEOUT of now
        when the database allows.

        Past the deadline a decision still waiting for a thread never starts (503). One
        that is running has its statement cancelled and no other started; if it had not
        yet touched the database it never will (503 at once), otherwise its own outcome
        is the answer (an error, or the decision if it was written just in time): an
        answer never contradicts what was recorded. See oversight/lib/deadline.py.
        """
        deadline = Deadline(settings.DECISION_TIMEOUT)
        queued = self.threads.submit(
            contextvars.copy_context().run, _work_by, deadline, request_id, work, *args
        )
        outcome = asyncio.wrap_future(queued)
        done, _ = await asyncio.wait({outcome}, timeout=deadline.remaining())
        if done:
            return outcome.result()
        if queued.cancel():  # still waiting for a thread
            return unavailable_response(), []
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(self.cancels, deadline.expire):
            return await outcome
        outcome.add_done_callback(_ignore)  # it can write nothing now
        return unavailable_response(), []


def _parsed(schema: type[BaseModel], body: bytes) -> Any:
    try:
        return schema.model_validate_json(body)
    except ValidationError:
        raise _HandOver from None


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
