"""Every wait on the decision path is bounded and fails closed, on the real server.

With the audit table locked by another session, a burst of decisions larger than the
fast lane's threads each gets an error within 2 s, none is allowed, and nothing is
written; a result report (Django's handler) gets an error in time too. A PostgreSQL that
is down: test_database_down.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from django.conf import settings

from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.gateway.models import Action
from tests.gateway_live.conftest import LiveAgent
from tests.gateway_live.helpers import (
    BURST,
    WITHIN,
    no_collection,
    refund,
    report,
    timed_burst,
)
from tests.servers import owner_database_url

pytestmark = [pytest.mark.postgres]


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Another session holds ACCESS EXCLUSIVE on ``table`` while the block runs (60 s at
    most): however slow the machine, every request the block makes meets the lock."""
    locked, release, failed = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            # The owner: the runtime role the tests use may not lock the audit table so.
            with psycopg.connect(owner_database_url()) as conn:  # one transaction
                conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(60)
        except Exception as exc:  # reported by the test, not lost in the thread
            failed.append(exc)
            locked.set()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    assert not failed, failed
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_with_the_audit_table_locked_every_decision_fails_in_time_and_writes_nothing(
    live_agent: LiveAgent,
) -> None:
    assert settings.DECISION_THREADS < BURST
    first = httpx.post(
        f"{live_agent.url}/api/v1/actions", json=refund(0), headers=live_agent.headers
    )
    assert first.status_code == 201 and first.json()["status"] == "allowed"

    with table_locked(AuditEvent._meta.db_table):
        answers = asyncio.run(
            timed_burst(
                live_agent.url, live_agent.headers, [refund(n) for n in range(1, BURST + 1)]
            )
        )
        # Django's handler (a result report) waits for the lock no longer either.
        with no_collection():
            started = time.monotonic()
            result = httpx.post(
                f"{live_agent.url}/api/v1/actions/{first.json()['id']}/result",
                json={"outcome": "succeeded"},
                headers=live_agent.headers,
            )
            result_seconds = time.monotonic() - started
    time.sleep(0.5)  # anything still running in the server has had its chance to write

    report("decisions with the audit table locked", [seconds for _, seconds in answers])
    for response, seconds in answers:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert response.headers["Retry-After"] == "1"
        assert seconds < WITHIN
    assert result.status_code == 503, result.text
    assert result.json()["error"]["code"] == "unavailable"
    assert result_seconds < WITHIN
    assert Action.objects.get().status == "allowed"  # the report was not recorded
    assert Action.objects.count() == 1  # the decision before the lock, nothing since
    assert AuditEvent.objects.filter(verb="action.decided").count() == 1
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()

    after = httpx.post(
        f"{live_agent.url}/api/v1/actions", json=refund(99), headers=live_agent.headers
    )
    assert after.status_code == 201 and after.json()["status"] == "allowed"


@pytest.mark.parametrize("server_env", [{"DB_LOCK_TIMEOUT": "0"}])  # waits for locks forever
def test_without_a_lock_timeout_the_deadline_alone_cancels_the_waiting_decisions(
    live_agent: LiveAgent,
) -> None:
    with table_locked(AuditEvent._meta.db_table):
        answers = asyncio.run(
            timed_burst(live_agent.url, live_agent.headers, [refund(n) for n in range(BURST)])
        )
    time.sleep(0.5)

    report("decisions cancelled at their deadline", [seconds for _, seconds in answers])
    for response, seconds in answers:
        assert response.status_code == 503, response.text
        assert seconds < WITHIN
    assert not Action.objects.exists()
    assert not AuditEvent.objects.filter(verb="action.decided").exists()
