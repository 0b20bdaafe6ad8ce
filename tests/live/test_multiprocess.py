"""Live fragments across processes: two uvicorn servers and a Celery worker, each with its
own connection to the Redis channel layer, on the test database.

A browser's socket is held by one server; the event it must show may happen in another
server (an agent's request) or in a worker (a beat job). Redis pub/sub carries it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.test import Client
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway.models import Action
from oversight.gateway.tasks import expire_due_actions
from oversight.live import groups
from tests.conftest import SYSTEM
from tests.gateway.helpers import expire, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import NEW_ITEM, NEW_ROW
from tests.servers import asgi_server, celery_worker, manage, wait_until_the_server_listens

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 15  # seconds, at most, for anything that must arrive
QUIET = 0.5  # seconds to listen for what must not arrive


@contextmanager
def live_socket(server: str, user: Any) -> Iterator[ClientConnection]:
    """/ws/live/ on ``server``, as a browser of ``user`` opens it: session cookie and
    the page's own origin."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    url = urlsplit(server)
    with connect(
        f"ws://{url.netloc}/ws/live/",
        origin=Origin(f"http://{url.netloc}"),
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
        open_timeout=WAIT,
    ) as socket:
        yield socket


def receive_until(socket: ClientConnection, *needles: str, timeout: float = WAIT) -> list[str]:
    """Messages until each needle has been in one of them; fails after ``timeout``."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout

    def missing() -> list[str]:
        return [n for n in needles if not any(n in message for message in messages)]

    while missing():
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            messages.append(str(socket.recv(timeout=remaining)))
        except TimeoutError:
            raise AssertionError(f"never received {missing()}; got {messages}") from None
    return messages


def received_within(socket: ClientConnection, seconds: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            messages.append(str(socket.recv(timeout=remaining)))
        except TimeoutError:
            break
    return messages


def the_one(messages: list[str], needle: str) -> str:
    found = [message for message in messages if needle in message]
    assert len(found) == 1, f"{needle!r} in {len(found)} messages: {messages}"
    return found[0]


def test_a_socket_on_one_server_hears_the_other_server_and_the_worker(
    agent: Agent, reviewer: Any, outsider: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    hold_large_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    server_env = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}  # the servers check async safety

    with (
        celery_worker(),
        asgi_server(extra_env=server_env) as server_a,
        asgi_server(extra_env=server_env) as server_b,
        live_socket(server_b, reviewer) as socket,
        live_socket(server_a, outsider) as stranger,
    ):
        for group in (groups.agent_feed(agent.pk), groups.agent_queue(agent.pk)):
            wait_until_the_server_listens(group)

        # The agent asks through server A; the reviewer's socket is on server B.
        response = httpx.post(
            f"{server_a}/api/v1/actions",
            json=refund(900),
            headers={"Authorization": f"Bearer {raw}"},
            timeout=WAIT,
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"
        action_id = response.json()["id"]

        held = receive_until(socket, f'id="action-{action_id}"', f'id="queue-{action_id}"')
        row = the_one(held, f'id="action-{action_id}"')
        assert 'hx-swap-oob="afterbegin:#action-feed,' in row
        assert "Waiting for approval" in row
        item = the_one(held, f'id="queue-{action_id}"')
        assert 'hx-swap-oob="beforeend:#approval-queue"' in item
        assert "stripe:charge/ch_1" in item
        assert 'name="vote" value="approve"' in item

        # Nobody decides in time. The beat job runs in the worker, not in a server (and
        # nobody reads the action, which would expire it in a server).
        expire(Action.objects.get(pk=action_id))
        assert expire_due_actions.delay().get(timeout=WAIT) == 1

        expired = receive_until(socket, "Expired", f'id="queue-{action_id}"')
        rows = [message for message in expired if f'<tr id="action-{action_id}"' in message]
        row = rows[-1]
        assert 'hx-swap-oob="true"' in row  # replaces the row in place
        assert "Expired" in row
        # Under load the held row may come again first: the server's escalation check,
        # run after the decision's commit, can see the deadline this test moved into the
        # past and escalate it (still held) before the worker expires it.
        assert all("Waiting for approval" in earlier for earlier in rows[:-1])
        gone = the_one(expired, f'id="queue-{action_id}"')
        gone_html = f'<article id="queue-{action_id}" hx-swap-oob="delete" data-oob-if-present>'
        # … and the note that stands in for the card of someone who voted on it
        voted_html = f'<article id="voted-{action_id}" hx-swap-oob="delete" data-oob-if-present>'
        assert gone.strip() == gone_html + "</article>" + voted_html + "</article>"

        # Someone who may not see the refund bot, on server A, heard nothing of it.
        heard = received_within(stranger, QUIET)
        assert not [message for message in heard if action_id in message]

    assert Action.objects.get(pk=action_id).status == "expired"


def _other_redis_database(url: str) -> str:
    """The same Redis server, another database number (as a second deployment sharing
    one Redis server would be configured, e.g. staging on /1 and production on /0)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(number + 1) % 16}").geturl()


def test_a_server_on_another_redis_database_hears_nothing_of_this_one(
    agent: Agent, reviewer: Any
) -> None:
    """Separate Redis databases must separate the live channel layer too. Redis pub/sub
    ignores the database number, so only a per-deployment channel prefix does."""
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    elsewhere = {
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
        "REDIS_URL": _other_redis_database(settings.REDIS_URL),
    }

    with (
        asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as here,
        asgi_server(extra_env=elsewhere) as other_deployment,
        live_socket(other_deployment, reviewer) as socket,
    ):
        other_db = urlsplit(elsewhere["REDIS_URL"]).path.strip("/")
        wait_until_the_server_listens(groups.agent_feed(agent.pk), prefix=f"oversight-db{other_db}")
        response = httpx.post(
            f"{here}/api/v1/actions",
            json=refund(20),
            headers={"Authorization": f"Bearer {raw}"},
            timeout=WAIT,
        )
        assert response.status_code == 201, response.text
        action_id = response.json()["id"]
        heard = received_within(socket, QUIET)

    assert not [message for message in heard if action_id in message]


def test_a_servers_burst_reaches_a_socket_on_another_server_in_order_in_few_messages(
    agent: Agent, reviewer: Any
) -> None:
    """Server A coalesces over 2 s: ten decisions in a row reach the socket on server B
    in their order, in one message per group per window, none lost."""
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    hold_large_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    window = 2.0
    env = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}

    with (
        asgi_server(extra_env={**env, "LIVE_BATCH_WINDOW_MS": str(int(window * 1000))}) as a,
        asgi_server(extra_env=env) as b,
        live_socket(b, reviewer) as socket,
        httpx.Client(base_url=a, headers={"Authorization": f"Bearer {raw}"}) as api,
    ):
        for group in (groups.agent_feed(agent.pk), groups.agent_queue(agent.pk)):
            wait_until_the_server_listens(group)
        started = time.monotonic()
        ids = []
        for i in range(10):  # every third one held
            response = api.post(
                "/api/v1/actions", json=refund(900 if i % 3 == 0 else 100, charges=(f"ch_{i}",))
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        elapsed = time.monotonic() - started
        messages = receive_until(socket, *(f'id="action-{i}"' for i in ids))
        messages += received_within(socket, window + QUIET)  # the queue's, if still on its way

    feed = [m for m in messages if NEW_ROW.search(m)]
    queue = [m for m in messages if NEW_ITEM.search(m)]
    assert [row for m in feed for row in NEW_ROW.findall(m)] == ids
    assert [item for m in queue for item in NEW_ITEM.findall(m)] == ids[::3]
    windows = 1 + int(elapsed / window)  # the requests took `elapsed` s
    assert len(feed) <= windows and len(queue) <= windows, (len(feed), len(queue), elapsed)
    assert len(messages) == len(feed) + len(queue)


def test_a_command_that_exits_at_once_still_reaches_the_socket(agent: Agent, reviewer: Any) -> None:
    """A management command has no server loop to coalesce on: it sends before it exits."""
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")

    with (
        asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as server,
        live_socket(server, reviewer) as socket,
    ):
        wait_until_the_server_listens(groups.EVERYONE)
        manage("killswitch", "engage", "--scope", f"agent:{agent.slug}", "--reason", "runaway")
        banner = the_one(receive_until(socket, "Kill switch engaged"), "Kill switch engaged")

    assert re.search(r"for agent Refund bot: runaway", banner)


def test_a_server_that_stops_sends_what_its_window_still_held(agent: Agent, reviewer: Any) -> None:
    """Server A coalesces over 30 s and is stopped (SIGTERM) right after a decision: the
    fragment reaches the socket on server B as A shuts down, not lost with its loop."""
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    env = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}

    with asgi_server(extra_env=env) as b, live_socket(b, reviewer) as socket:
        wait_until_the_server_listens(groups.agent_feed(agent.pk))
        with asgi_server(extra_env={**env, "LIVE_BATCH_WINDOW_MS": "30000"}) as a:
            response = httpx.post(
                f"{a}/api/v1/actions",
                json=refund(20),
                headers={"Authorization": f"Bearer {raw}"},
                timeout=WAIT,
            )
            assert response.status_code == 201, response.text
            decided = time.monotonic()
        row = the_one(receive_until(socket, response.json()["id"]), response.json()["id"])
        took = time.monotonic() - decided

    assert 'hx-swap-oob="afterbegin:#action-feed,' in row
    assert took < WAIT < 30, took  # well before the window would have ended
