"""PostgreSQL: an action's page reads its story (its events) through the index of events
by target, not by a scan of the whole log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection

from oversight.agents.services import token_create
from oversight.approvals.selectors import action_story
from oversight.audit.db_roles import owner_cursor
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, refund

# Committed, so that the owner (who alone may ANALYZE the table) sees the rows.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _plan(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_an_actions_story_is_read_through_the_target_index(agent: Any) -> None:
    grant_refunds(agent)
    production = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    for _ in range(3):
        decide(production, refund())
    action = Action.objects.order_by("created_at").first()
    story = action_story(action=action)
    assert [event.verb for event in story][:1] == ["action.decided"]
    assert all(event.target_id == str(action.pk) for event in story)
    queryset = AuditEvent.objects.filter(
        target_type="gateway.action", target_id=str(action.pk)
    ).order_by("seq")
    with connection.cursor() as cursor:
        # A log of other actions' events (through the append function, as the runtime
        # role appends), so that the planner's choice is the one a real log gets.
        cursor.execute(
            "SELECT count(*) FROM generate_series(1, 5000) AS n, LATERAL audit_append("
            " now(), 'agent', NULL, 1, 'bot', 'action.decided', 'gateway.action',"
            " md5(n::text), 'x', 1, '', NULL, '{}'::json)"  # n: one append per row
        )
        assert cursor.fetchone() == (5000,)
    with owner_cursor(fallback=connection) as cursor:
        cursor.execute("ANALYZE audit_auditevent")  # as autovacuum would, on a real log
    assert "audit_target" in _plan(queryset)
    other = AuditEvent.objects.filter(target_type="gateway.action", target_id=str(uuid.uuid4()))
    assert "audit_target" in _plan(other)
