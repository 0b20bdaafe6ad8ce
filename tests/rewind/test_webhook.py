"""Compensations run by a team's signed webhook: a real HTTP receiver that checks the
signature, reads its state, and answers; failures are tried again after the lease."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.gateway.models import Action
from oversight.notifications.services import team_channels_update
from oversight.notifications.signing import signature_valid
from oversight.rewind.services import action_undo
from oversight.rewind.webhook import compensations_by_webhook
from tests.conftest import SYSTEM
from tests.rewind.test_undo import _refunded, production  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


class Receiver(BaseHTTPRequestHandler):
    """The team's compensator: a toy ledger behind a signed webhook."""

    secret = ""
    ledger: dict[str, Any] = {}
    status = 200
    seen: list[dict[str, Any]] = []
    port = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not signature_valid(body, self.secret, self.headers["X-Oversight-Signature"]):
            self.send_response(401)
            self.end_headers()
            return
        task = json.loads(body)
        type(self).seen.append(task)
        original = task["original"]
        found = self.ledger.get(original["resource"])
        if found != original["after"]:
            answer = {"outcome": "conflict", "found": found}
        else:
            self.ledger[original["resource"]] = original["before"]
            answer = {"outcome": "undone", "found": found, "left": original["before"]}
        data = json.dumps(answer).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(agent: Agent) -> Iterator[type[Receiver]]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    channels = team_channels_update(
        actor=SYSTEM,
        team=agent.team,
        email_enabled=False,
        webhook_url="",
        compensation_webhook_url=f"http://127.0.0.1:{server.server_port}/undo",
    )
    Receiver.secret, Receiver.ledger, Receiver.status, Receiver.seen = (
        channels.webhook_secret,
        {},
        200,
        [],
    )
    Receiver.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver
    server.shutdown()


def test_the_teams_webhook_undoes_a_refund(
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
    receiver: type[Receiver],
) -> None:
    original = _refunded(production)
    receiver.ledger[original.resource] = {"refunded": 40}
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensations_by_webhook() == {"done": 1, "failed": 0}
    (task,) = receiver.seen
    assert (task["id"], task["action"], task["params"]) == (
        str(compensation.pk),
        "payments.charge",
        {"charge": "ch_1", "amount": 40},
    )
    original.refresh_from_db()
    compensation.refresh_from_db()
    assert original.status == "rolled_back"
    assert compensation.compensation_outcome == "undone"
    assert receiver.ledger[original.resource] == {"refunded": 0}
    assert compensations_by_webhook() == {"done": 0, "failed": 0}  # once only


def test_a_failing_webhook_is_tried_again_after_its_lease(
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
    receiver: type[Receiver],
) -> None:
    original = _refunded(production)
    receiver.ledger[original.resource] = {"refunded": 40}
    receiver.status = 500
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensations_by_webhook() == {"done": 0, "failed": 1}
    assert compensations_by_webhook() == {"done": 0, "failed": 0}  # leased meanwhile
    Action.objects.filter(pk=compensation.pk).update(claimed_until=timezone.now())
    receiver.status = 200
    receiver.ledger[original.resource] = {"refunded": 40}  # the failed call changed it
    assert compensations_by_webhook() == {"done": 1, "failed": 0}
    original.refresh_from_db()
    assert original.status == "rolled_back"


def test_a_webhook_at_an_internal_address_is_not_called(
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
    receiver: type[Receiver],
    settings: Any,
) -> None:
    # Saved while the receiver's network was allowed; no longer.
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    original = _refunded(production)
    receiver.ledger[original.resource] = {"refunded": 40}
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensations_by_webhook() == {"done": 0, "failed": 1}
    assert receiver.seen == []
    compensation.refresh_from_db()
    assert compensation.compensation_outcome == ""  # not run: tried again after its lease


def test_an_agents_own_webhook_runs_its_undos(
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
    receiver: type[Receiver],
) -> None:
    from oversight.agents.services import agent_update
    from oversight.notifications.services import team_channels_update

    url = team_channels_update(
        actor=SYSTEM,
        team=agent.team,
        email_enabled=False,
        webhook_url="",
        compensation_webhook_url="",
    )
    assert url.compensation_webhook_url == ""
    original = _refunded(production)
    receiver.ledger[original.resource] = {"refunded": 40}
    action_undo(actor=Actor.for_user(owner), action=original)
    assert compensations_by_webhook() == {"done": 0, "failed": 0}  # nobody's webhook
    port = receiver.port
    agent_update(actor=SYSTEM, agent=agent, compensation_webhook_url=f"http://127.0.0.1:{port}/x")
    assert compensations_by_webhook() == {"done": 1, "failed": 0}
    original.refresh_from_db()
    assert original.status == "rolled_back"


def test_an_agents_webhook_must_be_https_away_from_this_machine(agent: Agent) -> None:
    from django.core.exceptions import ValidationError

    from oversight.agents.services import agent_update

    with pytest.raises(ValidationError, match="https"):
        agent_update(
            actor=SYSTEM, agent=agent, compensation_webhook_url="http://undo.example.com/x"
        )
