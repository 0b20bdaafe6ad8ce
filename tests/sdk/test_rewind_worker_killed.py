"""A worker killed mid-rewind: resumed by another, nothing lost, nothing undone twice.

A real server; 60 refunds on a toy payments store in SQLite (it outlives the worker); a
bulk rewind of them, stepped by the runner; a compensator worker in its own process
killed with SIGKILL at the worst moment (a charge back made, not yet reported); its
leases run out; a second worker finishes. Counted in the store and in Oversight."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.services import token_create
from oversight.audit.actors import Actor
from oversight.gateway.constants import RUNNABLE
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from oversight.rewind import bulk
from oversight.rewind.models import Rewind
from oversight.rewind.plan import Scope
from oversight.rewind.runner import rewind_step
from oversight_sdk import Oversight
from tests.conftest import SYSTEM
from tests.sdk import rewind_worker as store
from tests.servers import asgi_server

pytestmark = pytest.mark.postgres

WORKER = Path(store.__file__)
REFUNDS = 60
HANG_AFTER = 25  # the first worker's 25th charge back is made, never reported


@pytest.fixture
def live_url(transactional_db: None) -> Iterator[str]:
    with asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as url:
        yield url


@pytest.fixture
def raw_token(agent: Any) -> str:
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=agent,
            action=store.REFUND,
            resource="stripe:charge/*",
            reversibility="reversible",
            undo_action="payments.charge",
            undo_params={"charge": "params.charge", "amount": "params.amount"},
            undo_window_seconds=3600,
        ),
    )
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="payments.charge"))
    return token_create(actor=SYSTEM, agent=agent, environment="production")[1]


def _refunds(url: str, token: str, db: sqlite3.Connection) -> list[Action]:
    ids = []
    with Oversight(url, token, timeout=10, retries=1, backoff=0.05) as client:
        for n in range(REFUNDS):
            charge, amount = f"ch_{n}", 10 + n
            with client.guard(
                store.REFUND,
                f"stripe:charge/{charge}",
                params={"charge": charge, "amount": amount},
                before=store.state(db, charge),
            ) as guard:
                guard.after = store.move(db, charge, amount)
            assert guard.decision is not None
            ids.append(guard.decision.id)
    return list(Action.objects.filter(pk__in=ids))


def _worker(url: str, token: str, path: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(WORKER), url, token, str(path), *extra]
    return subprocess.Popen(command)


def _step_until(rewind: Rewind, done: Callable[[], bool], timeout: float = 60) -> None:
    """The runner, stepped as the beat job would (faster), until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the rewind did not get there in time"
        rewind_step(rewind_id=rewind.pk)
        time.sleep(0.1)


def _charge_backs(db: sqlite3.Connection) -> list[tuple[str, str, int]]:
    return db.execute("SELECT charge, task, pid FROM charge_backs ORDER BY rowid").fetchall()


def test_a_worker_killed_mid_rewind_is_resumed_with_nothing_lost_or_undone_twice(
    live_url: str, raw_token: str, agent: Any, owner: Any, settings: Any, tmp_path: Path
) -> None:
    settings.REWIND_APPROVAL_THRESHOLD = REFUNDS + 1  # no second person in this story
    path = tmp_path / "payments.sqlite3"
    db = store.connect(path)
    since = timezone.now()
    originals = {a.pk: a for a in _refunds(live_url, raw_token, db)}
    assert {(a.status, a.reversibility) for a in originals.values()} == {
        ("succeeded", "reversible")
    }
    scope = Scope(agent=agent, since=since, until=timezone.now())
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)

    first = _worker(live_url, raw_token, path, "--hang-after", str(HANG_AFTER))
    try:
        _step_until(rewind, lambda: len(_charge_backs(db)) >= HANG_AFTER)
        time.sleep(0.5)  # it hangs after its 25th: no more charge backs come from it
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    by_first = _charge_backs(db)
    assert len(by_first) == HANG_AFTER and {pid for *_, pid in by_first} == {first.pid}
    reported = Action.objects.filter(compensates__in=originals, compensation_outcome="undone")
    assert reported.count() == HANG_AFTER - 1  # the last one made, never reported

    # Its leases run out (five minutes; moved into the past here): what it held is free.
    now = timezone.now()
    held = Action.objects.filter(
        compensates__in=originals, status__in=RUNNABLE, claimed_until__gt=now
    )
    assert held.count() >= 1
    held.update(claimed_until=now - dt.timedelta(seconds=1))

    second = _worker(live_url, raw_token, path)
    try:
        _step_until(rewind, lambda: Rewind.objects.get(pk=rewind.pk).state == "done")
    finally:
        second.terminate()
        second.wait(timeout=10)

    # The store: every refund charged back exactly once, by one worker or the other.
    backs = _charge_backs(db)
    assert Counter(charge for charge, *_ in backs) == {f"ch_{n}": 1 for n in range(REFUNDS)}
    assert len({task for _, task, _ in backs}) == REFUNDS
    assert all(store.state(db, f"ch_{n}") == {"refunded": 0} for n in range(REFUNDS))

    # Oversight: one compensation per action, and an honest outcome for each.
    for pk in originals:
        assert Action.objects.filter(compensates=pk).count() == 1
    rewind.refresh_from_db()
    assert rewind.state == "done"
    outcomes = Counter(rewind.items.values_list("outcome", flat=True))
    assert outcomes == {"undone": REFUNDS - 1, "conflict": 1}
    # The one the killed worker undid but never reported: the second read the state, found
    # it already the before-state (not what the refund left), changed nothing: conflict.
    conflict = Action.objects.get(pk=by_first[-1][1])
    assert conflict.compensation_outcome == "conflict"
    assert conflict.compensation_found == originals[conflict.compensates_id].before
    assert originals[conflict.compensates_id].before == {"refunded": 0}
    statuses = Counter(Action.objects.filter(pk__in=originals).values_list("status", flat=True))
    assert statuses == {"rolled_back": REFUNDS - 1, "succeeded": 1}
    assert Action.objects.get(pk=conflict.compensates_id).status == "succeeded"
