"""`manage.py simulate`: the demo agents, through the SDK, against the real server."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count

from oversight.agents.models import AgentToken
from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.gateway.models import Action
from tests.servers import asgi_server, free_port

pytestmark = pytest.mark.postgres

SERVER_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}


@pytest.fixture
def demo(transactional_db: None) -> None:
    call_command("seed_demo", "--force", stdout=io.StringIO())


def _simulate(url: str, *args: str, stdout: io.StringIO | None = None, **options: Any) -> str:
    out = stdout or io.StringIO()
    call_command(
        "simulate", "--url", url, "--seed", "7", "--hold-wait", "1", *args, stdout=out, **options
    )
    return out.getvalue()


class Watched(io.StringIO):
    """Output that tells another thread when a line containing `text` was written."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def write(self, s: str) -> int:
        if self.text in s:
            self.seen.set()
        return super().write(s)


def _decided_statuses() -> set[str]:
    decided = AuditEvent.objects.filter(verb="action.decided")
    return set(decided.values_list("after__status", flat=True))


def test_it_produces_allowed_denied_and_held_actions(demo: None) -> None:
    with asgi_server(extra_env=SERVER_ENV) as url:
        output = _simulate(url, "--duration", "5", "--rate", "5")

    assert {"allowed", "denied", "pending"} <= _decided_statuses()
    statuses = set(Action.objects.values_list("status", flat=True))
    # Held actions nobody approved within --hold-wait were cancelled by the SDK.
    assert "denied" in statuses and statuses & {"pending", "cancelled"}
    assert statuses & {"succeeded", "failed"}  # allowed ones were run and reported
    assert not Action.objects.filter(status="allowed").exists()  # none left unreported
    assert audit_chain_verify()[1] is None

    lines = output.splitlines()
    assert any(" denied " in line for line in lines)
    assert any("allowed -> succeeded" in line for line in lines)
    assert lines[-1].startswith("done: ")
    # A held action nobody decided is said to be withdrawn (it read "pending ... left for
    # a reviewer" though the guard had cancelled it).
    withdrawn = [line for line in lines if "withdrawn" in line]
    assert len(withdrawn) == Action.objects.filter(status="cancelled").count()
    assert all(" cancelled " in line for line in withdrawn)
    assert not any("left for a reviewer" in line for line in lines)
    # The run's tokens do not outlive it.
    assert not AgentToken.objects.filter(name="simulate", revoked_at__isnull=True).exists()


def test_it_waits_for_a_server_that_is_not_up_yet(demo: None) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = Watched("waiting for Oversight")

    def run() -> None:
        try:
            _simulate(url, "--duration", "1", "--rate", "4", stdout=out)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    assert out.seen.wait(timeout=15), "the simulation did not notice the server was down"
    # Now start the server, on the port the simulation keeps knocking on.
    with asgi_server(extra_env=SERVER_ENV, port=port):
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert "done: " in out.getvalue()
    assert Action.objects.exists()


def test_a_run_in_another_thread_stops_when_asked(demo: None) -> None:
    """No signal reaches a run outside the main thread: `stop` ends it as Ctrl-C does,
    open actions finished and reported."""
    stop, out = threading.Event(), Watched("-> succeeded")
    with asgi_server(extra_env=SERVER_ENV) as url:

        def run() -> None:
            try:
                _simulate(
                    url, "--duration", "0", "--rate", "5", "--agents", "refund-bot",
                    stdout=out, stop=stop.is_set,
                )  # fmt: skip
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        assert out.seen.wait(timeout=15), "no action ran"
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive()
    lines = out.getvalue().splitlines()
    assert "stopping: finishing open actions" in lines
    assert lines[-1].startswith("done: ")
    assert not Action.objects.filter(status="allowed").exists()  # none left unreported


def test_it_gives_up_on_a_server_that_never_comes(demo: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="did not answer"):
        _simulate(url, "--duration", "1", "--connect-timeout", "0.5")


def _bad_release_seen() -> bool:
    """Whether the traffic holds what the guard rolls the bad release back for: since the
    canary began, the candidate (v3) refunded whole orders NEW_AFTER times, and stable (v2)
    decided other sessions beside it."""
    from oversight.releases.guard import NEW_AFTER
    from oversight.releases.models import Rollout

    rollout = Rollout.objects.filter(agent__slug="refund-bot", release__version=3).first()
    if rollout is None or rollout.stage_started_at is None:
        return False
    since = Action.objects.filter(
        agent_id=rollout.agent_id, created_at__gte=rollout.stage_started_at
    )
    whole_orders = since.filter(release_version=3, action="payments.refund_order")
    return whole_orders.count() >= NEW_AFTER and since.filter(release_version=2).exists()


def test_the_bad_release_scenario_is_rolled_back_by_the_guard(demo: None) -> None:
    """A canary puts a session on the candidate by a hash of the session id and the agent's
    id, and the agent's id is wherever the database's sequence stands (1 when run alone,
    further on in a full run: a flush does not reset it). So how many sessions the
    candidate gets in a fixed time is chance, --seed or not (seen in 8 s: 1 session of 13;
    3 of 8 with 2 whole-order refunds, the guard needing NEW_AFTER). The simulation runs
    until the traffic holds the evidence, at most 20 s; then the guard must roll back."""
    from oversight.releases.guard import rollouts_guard
    from oversight.releases.models import Rollout

    seen, finished = threading.Event(), threading.Event()

    def watch() -> None:
        try:
            while not (finished.is_set() or seen.is_set()):
                if _bad_release_seen():
                    seen.set()
                finished.wait(0.2)
        finally:
            connection.close()  # this thread's own connection

    watcher = threading.Thread(target=watch)
    with asgi_server(extra_env=SERVER_ENV) as url:
        watcher.start()
        try:
            output = _simulate(
                url,
                "--duration",
                "20",
                "--rate",
                "8",
                "--agents",
                "refund-bot",
                "--scenario",
                "bad-release",
                stop=seen.is_set,
            )
        finally:
            finished.set()
            watcher.join(timeout=10)
    assert "scenario bad-release: refund-bot v3 (refunds whole orders)" in output
    rollout = Rollout.objects.get(agent__slug="refund-bot")
    refund_bot = Action.objects.filter(agent__slug="refund-bot")
    # Sessions on the candidate behave as its instructions say; the others do not.
    assert set(refund_bot.values_list("release_version", flat=True)) == {2, 3}
    whole_orders = refund_bot.filter(action="payments.refund_order")
    assert whole_orders.exists()
    assert set(whole_orders.values_list("release_version", flat=True)) == {3}
    guarded = rollouts_guard()
    rollout.refresh_from_db()
    # When it fails, say what the guard had to go on.
    evidence = {
        "stopped when seen": seen.is_set(),
        "whole orders under the candidate": whole_orders.count(),
        "under the candidate": refund_bot.filter(release_version=3).count(),
        "since the stage began": refund_bot.filter(
            created_at__gte=rollout.stage_started_at or rollout.created_at
        )
        .values("release_version", "action")
        .annotate(n=Count("pk"))
        .order_by(),
        "verdicts": rollout.verdicts,
    }
    assert guarded == {str(rollout.pk): "rolled_back"}, evidence
    assert rollout.state == "rolled_back"
    assert "new action 'payments.refund_order'" in rollout.ended_reason


@pytest.mark.slow
def test_the_demo_agents_undo_what_they_did_when_asked(demo: None) -> None:
    import time

    from oversight.audit.actors import Actor
    from oversight.rewind.services import action_undo

    out = Watched("undo payments.refund")
    with asgi_server(extra_env=SERVER_ENV) as url:

        def run() -> None:
            try:
                _simulate(
                    url, "--duration", "25", "--rate", "6", "--agents", "refund-bot", stdout=out
                )
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 15
        original = None
        while original is None and time.monotonic() < deadline:
            original = Action.objects.filter(
                agent__slug="refund-bot", status="succeeded", reversibility="reversible"
            ).first()
            time.sleep(0.2)
        assert original is not None, "no reversible refund succeeded"
        compensation = action_undo(actor=Actor.system("test"), action=original)
        assert compensation.status == "allowed"
        assert out.seen.wait(timeout=20), "the demo's compensator did not undo it"
        thread.join(timeout=40)
    original.refresh_from_db()
    assert original.status == "rolled_back"


def test_a_demo_agent_runs_the_params_a_reviewer_edited(demo: None) -> None:
    """Edit and approve in the demo: the agent runs the edited refund (and reports what
    it left behind), rather than withdrawing it."""
    import time

    from django.contrib.auth import get_user_model

    from oversight.approvals.services import approval_vote

    rita = get_user_model().objects.get(username="rita")
    with asgi_server(extra_env=SERVER_ENV) as url:

        def run() -> None:
            try:
                call_command(
                    "simulate", "--url", url, "--seed", "7", "--hold-wait", "10",
                    "--duration", "6", "--rate", "4", "--agents", "refund-bot",
                    stdout=io.StringIO(),
                )  # fmt: skip
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        deadline, held = time.monotonic() + 15, None
        while held is None and time.monotonic() < deadline:
            held = Action.objects.filter(
                agent__slug="refund-bot", action="payments.refund", status="pending"
            ).first()
            time.sleep(0.2)
        assert held is not None, "no refund was held"
        edited = {**held.params, "amount": held.params["amount"] // 2}
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=edited)
        thread.join(timeout=60)
    held.refresh_from_db()
    assert (held.status, held.params) == ("succeeded", edited), held.error
    assert held.after == {"refunded": edited["amount"]}
