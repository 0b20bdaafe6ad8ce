"""An agent's History (audit.selectors.agent_history): changes by default, not buried
under the agent's traffic; a filter by family of verbs; keyset pages to older events; only
for people who may view the agent."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, agent_update
from oversight.audit import verb_families, verbs
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.selectors import agent_history
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from tests.audit.history_helpers import traffic
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "oversight/audit/migrations/0009_agent_change_index_started.py"
)


@pytest.fixture
def story(agent: Agent, admin_user: Any, reviewer: Any) -> dict[str, Any]:
    """The agent's life: created, a grant among its decisions, an access grant, an edit,
    a kill switch, more decisions."""
    traffic(agent, 30)
    grant = policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="payments.refund", resource="stripe:*")
    )
    traffic(agent, 30)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    agent_update(actor=Actor.for_user(admin_user), agent=agent, risk_tier="low")
    killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="odd")
    traffic(agent, 30)
    return {"grant": grant}


# A change cut a release and promoted it (newest first).
RELEASED = (verbs.RELEASE_PROMOTED, verbs.RELEASE_CREATED)


def _verbs(page: Any) -> list[str]:
    return [entry.event.verb for entry in page.entries]


def test_it_shows_changes_by_default_not_decisions(
    admin_user: Any, agent: Agent, story: Any
) -> None:
    page = agent_history(user=admin_user, agent=agent)
    assert _verbs(page) == [
        verbs.INCIDENT_OPENED,  # the switch opened an incident for the agent
        verbs.KILLSWITCH_ENGAGED,
        verbs.AGENT_UPDATED,
        verbs.AGENT_ACCESS_GRANTED,
        *RELEASED,
        verbs.GRANT_CREATED,
        *RELEASED,
        verbs.AGENT_CREATED,
    ]
    assert page.next_before is None
    grant = page.entries[6]
    assert grant.event.target_id == str(story["grant"].pk)
    assert {change.field for change in grant.changes} >= {"Action", "Resource"}


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("agent", [verbs.AGENT_UPDATED, verbs.AGENT_ACCESS_GRANTED, verbs.AGENT_CREATED]),
        ("policy", [*RELEASED, verbs.GRANT_CREATED, *RELEASED]),
        ("killswitch", [verbs.KILLSWITCH_ENGAGED]),
        ("tokens", []),
        ("alerts", []),
        ("incidents", [verbs.INCIDENT_OPENED]),
    ],
)
def test_it_filters_by_family(
    admin_user: Any, agent: Agent, story: Any, show: str, expected: list[str]
) -> None:
    assert _verbs(agent_history(user=admin_user, agent=agent, show=show)) == expected


def test_actions_shows_only_the_traffic(admin_user: Any, agent: Agent, story: Any) -> None:
    page = agent_history(user=admin_user, agent=agent, show="actions", size=100)
    assert _verbs(page) == [verbs.ACTION_DECIDED] * 90


def test_everything_is_everything(admin_user: Any, agent: Agent, story: Any) -> None:
    page = agent_history(user=admin_user, agent=agent, show="all", size=1000)
    expected = AuditEvent.objects.filter(agent_id=agent.pk).order_by("-seq")
    assert [entry.event.seq for entry in page.entries] == [e.seq for e in expected]
    assert len(page.entries) == 100  # with the incident the kill switch opened


@pytest.mark.parametrize("show", ["changes", "actions", "all"])
def test_older_pages_walk_every_event_once_newest_first(
    admin_user: Any, agent: Agent, story: Any, show: str
) -> None:
    everything = agent_history(user=admin_user, agent=agent, show=show, size=1000)
    seen: list[int] = []
    before = None
    for _ in range(100):
        page = agent_history(user=admin_user, agent=agent, show=show, before=before, size=7)
        assert len(page.entries) <= 7
        seen += [entry.event.seq for entry in page.entries]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [entry.event.seq for entry in everything.entries]
    assert seen == sorted(seen, reverse=True)


def test_the_last_full_page_has_no_older_link(admin_user: Any, agent: Agent) -> None:
    traffic(agent, 3)
    page = agent_history(user=admin_user, agent=agent, show="all", size=6)
    assert len(page.entries) == 6  # three decisions, the creation and its release 1
    assert page.next_before is None


def test_people_who_may_view_the_agent_read_its_history(
    owner: Any, teammate: Any, agent: Agent, story: Any
) -> None:
    for person in (owner, teammate):
        assert verbs.GRANT_CREATED in _verbs(agent_history(user=person, agent=agent))


def test_people_who_may_not_view_the_agent_read_nothing(
    outsider: Any, auditor: Any, agent: Agent, story: Any
) -> None:
    for person in (outsider, auditor):
        for show in ("changes", "actions", "all"):
            page = agent_history(user=person, agent=agent, show=show)
            assert page.entries == [] and page.next_before is None


def test_another_agent_s_events_never_show(
    admin_user: Any, agent: Agent, other_agent: Agent, story: Any
) -> None:
    traffic(other_agent, 5)
    page = agent_history(user=admin_user, agent=other_agent, show="all")
    assert {entry.event.agent_id for entry in page.entries} == {other_agent.pk}
    assert len(page.entries) == 8  # created, its release 1 (created, promoted), 5 decisions


# --- the families and the index --------------------------------------------------------


def _verb_constants() -> set[str]:
    return {
        value for name, value in vars(verbs).items() if name.isupper() and isinstance(value, str)
    }


def test_every_verb_has_one_family_or_is_never_about_an_agent() -> None:
    placed = [v for family in verb_families.FAMILIES.values() for v in family.verbs]
    placed += verb_families.NOT_ABOUT_AN_AGENT
    assert len(placed) == len(set(placed)), "a verb is in two families"
    assert set(placed) == _verb_constants()
    assert set(verbs.KNOWN_VERBS) == _verb_constants()


def test_actions_are_the_action_verbs() -> None:
    assert set(verbs.ACTION_VERBS) == {v for v in _verb_constants() if v.startswith("action.")}
    assert list(verbs.ACTION_VERBS) == sorted(verbs.ACTION_VERBS)


def test_the_index_and_its_frozen_migration_exclude_exactly_the_action_verbs() -> None:
    (index,) = [i for i in AuditEvent._meta.indexes if i.name == "audit_agent_change_seq"]
    assert index.condition.negated
    assert index.condition.children == [("verb__in", verbs.ACTION_VERBS)]
    # The migration's own copy (a new action verb needs a new migration).
    tree = ast.parse(MIGRATION.read_text())
    frozen = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and str(node.value).startswith("action.")
    }
    assert frozen == set(verbs.ACTION_VERBS)


@pytest.mark.postgres
@pytest.mark.parametrize("show", ["changes", "policy"])
def test_postgresql_finds_the_changes_with_the_partial_index(
    admin_user: Any, agent: Agent, other_agent: Agent, show: str
) -> None:
    """The default History's query is spelled as the index's condition, so the planner
    uses it for an agent whose few changes sit among many decisions. The table is given
    that shape here: on a near-empty table a backward scan of the whole `seq` index costs
    the planner about the same, and which one it picked depended on the statistics that
    earlier tests left behind. (Sequential and bitmap scans stay off: a thousand rows do
    not need an index at all.)"""
    traffic(agent, 600)
    traffic(other_agent, 600)
    queries: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        agent_history(user=admin_user, agent=agent, show=show, before=10**9)
    ((sql, params),) = [q for q in queries if 'FROM "audit_auditevent"' in q[0]]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert re.search(r"Index Scan using audit_agent_change_seq", plan), plan
