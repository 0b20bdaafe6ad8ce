"""The suite's flush between transactional tests (AUDIT_FLUSH_ALLOWED): it empties the
append-only tables as their owner, and waits for work still finishing elsewhere."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from oversight.agents.models import Agent
from oversight.audit.models import AuditEvent
from tests.audit.helpers import record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_flush_waits_for_a_table_held_longer_than_the_runtimes_lock_timeout(
    agent: Agent,
) -> None:
    """Another session reads the agents for 2.5 s (as a decision's effects, run after its
    answer, may still be doing when a test ends); the runtime's lock timeout is 1 s, and
    the flush failed with it. It now waits, and empties everything, the audit log too."""
    record(3)
    other = psycopg.connect(**connection.get_connection_params())
    other.execute("SELECT count(*) FROM agents_agent").fetchone()  # a transaction, open
    threading.Timer(2.5, other.rollback).start()
    started = time.monotonic()
    call_command("flush", interactive=False, verbosity=0)
    assert time.monotonic() - started >= 2
    assert not Agent.objects.exists() and not AuditEvent.objects.exists()
    other.close()
