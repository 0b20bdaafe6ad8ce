"""Reports of several compensations at once: each taken once, in one transaction, those
that cannot be taken answered with their error beside the others and writing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from oversight.agents.models import Agent
from oversight.agents.services import agent_create, token_create
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.rewind.services import (
    MAX_REPORTS,
    Report,
    action_undo,
    compensations_report,
)
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, decide, grant_reversible_refunds, refund

pytestmark = pytest.mark.django_db

UNDO = {"charge": "params.charges[0]", "amount": "params.amount"}


@pytest.fixture
def production(agent: Agent) -> Any:
    grant_reversible_refunds(agent, UNDO)
    return token_create(actor=SYSTEM, agent=agent, environment="production")


def _undo_asked(token: Any, owner: Any, charge: str, amount: int = 40) -> Action:
    """A refund the agent ran (nothing refunded to ``amount``), and its undo asked for."""
    action = decide(token, refund(amount, charges=(charge,), before={"refunded": 0}))
    done = action_report_result(
        token=token,
        action_id=action.pk,
        data=ResultInput(outcome="succeeded", after={"refunded": amount}),
    )
    return action_undo(actor=Actor.for_user(owner), action=done)


def _verbs() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("verb", flat=True))


def test_a_batch_takes_each_report_once_and_answers_the_others_with_their_error(
    agent: Agent, owner: Any, production: Any
) -> None:
    token = production[0]
    restored, elsewhere, changed = (_undo_asked(token, owner, f"ch_{n}") for n in (1, 2, 3))
    sibling = agent_create(
        actor=SYSTEM,
        name="Refund bot two",
        purpose="Refunds too.",
        owner=owner,
        team=agent.team,
        environments=["production"],
    )
    grant_reversible_refunds(sibling, UNDO)
    theirs = _undo_asked(
        token_create(actor=SYSTEM, agent=sibling, environment="production")[0], owner, "ch_9"
    )
    unknown = uuid.uuid4()
    events = len(_verbs())

    done = compensations_report(
        token=token,
        reports=[
            (restored.pk, Report("undone", found={"refunded": 40}, left={"refunded": 0})),
            (elsewhere.pk, Report("undone", found={"refunded": 40}, left={"refunded": 5})),
            (changed.pk, Report("conflict", found={"refunded": 55}, detail="by hand")),
            (restored.pk, Report("failed", detail="a second report of the same one")),
            (unknown, Report("undone")),
            (theirs.pk, Report("undone", left={"refunded": 0})),
        ],
    )

    assert [d.id for d in done] == [
        restored.pk,
        elsewhere.pk,
        changed.pk,
        restored.pk,
        unknown,
        theirs.pk,
    ]
    taken = {d.compensation.pk: d.compensation for d in done if d.compensation is not None}
    assert set(taken) == {restored.pk, elsewhere.pk, changed.pk}
    errors = [(type(d.error).__name__, getattr(d.error, "code", "")) for d in done[3:]]
    assert errors == [
        ("ConflictError", "already_reported"),
        ("NotFoundError", ""),
        ("NotFoundError", ""),
    ]

    rows = {a.pk: a for a in Action.objects.filter(pk__in=[restored.pk, elsewhere.pk, changed.pk])}
    assert (rows[restored.pk].status, rows[restored.pk].compensation_outcome) == (
        "succeeded",
        "undone",
    )
    assert rows[elsewhere.pk].compensation_left == {"refunded": 5}
    assert (rows[changed.pk].status, rows[changed.pk].error) == ("failed", "by hand")
    assert rows[changed.pk].compensation_found == {"refunded": 55}
    assert rows[changed.pk].compensation_left is None and rows[changed.pk].after is None
    assert all(r.finished_at is not None and r.claimed_until is None for r in rows.values())
    originals = dict(
        Action.objects.filter(pk__in=[c.compensates_id for c in rows.values()]).values_list(
            "pk", "status"
        )
    )
    assert originals == {
        restored.compensates_id: "rolled_back",
        elsewhere.compensates_id: "succeeded",  # undone, but not to the state it had before
        changed.compensates_id: "succeeded",
    }
    assert taken[restored.pk].compensates.status == "rolled_back"  # the answer says so
    # Three reports taken, one original rolled back; the refused ones wrote nothing.
    assert _verbs()[events:] == ["undo.reported"] * 3 + ["undo.rolled_back"]
    theirs.refresh_from_db()
    assert (theirs.status, theirs.compensation_outcome) == ("allowed", "")


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        (lambda pk: [], "No report"),
        (lambda pk: [(pk, Report("done"))], "outcome must be one of"),
        (lambda pk: [(pk, Report("undone"))] * (MAX_REPORTS + 1), "At most 100"),
    ],
)
def test_a_batch_that_cannot_be_taken_changes_nothing(
    agent: Agent, owner: Any, production: Any, reports: Any, message: str
) -> None:
    compensation = _undo_asked(production[0], owner, "ch_1")
    events = len(_verbs())
    with pytest.raises(ValidationError, match=message):
        compensations_report(token=production[0], reports=reports(compensation.pk))
    compensation.refresh_from_db()
    assert (compensation.status, compensation.compensation_outcome) == ("allowed", "")
    assert len(_verbs()) == events


def test_the_api_answers_each_report_in_order(
    client: Client, agent: Agent, owner: Any, production: Any
) -> None:
    token, raw = production
    first, second = (_undo_asked(token, owner, f"ch_{n}") for n in (1, 2))
    api = AgentApi(client, raw)
    undone = {"outcome": "undone", "found": {"refunded": 40}, "left": {"refunded": 0}}
    body = {
        "results": [
            {"id": str(first.pk), **undone},
            {"id": str(second.pk), "outcome": "conflict", "found": {"refunded": 55}},
            {"id": str(first.pk), **undone},
        ]
    }
    answer = api.post("/compensations/results", body)
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["id"] for r in results] == [str(first.pk), str(second.pk), str(first.pk)]
    assert {k: results[0][k] for k in ("status", "outcome", "original_status", "error")} == {
        "status": "succeeded",
        "outcome": "undone",
        "original_status": "rolled_back",
        "error": None,
    }
    assert (results[1]["status"], results[1]["original_status"]) == ("failed", "succeeded")
    assert results[2]["error"]["code"] == "already_reported"
    assert results[2]["status"] == ""

    again = api.post("/compensations/results", {"results": [{"id": str(second.pk), **undone}]})
    assert again.json()["results"][0]["error"]["code"] == "already_reported"


@pytest.mark.parametrize(
    "body",
    [
        {"results": []},
        {"results": [{"id": "not-a-uuid", "outcome": "undone"}]},
        {"results": [{"id": str(uuid.uuid4()), "outcome": "gone"}]},
        {"results": [{"id": str(uuid.uuid4()), "outcome": "undone"}] * (MAX_REPORTS + 1)},
    ],
)
def test_the_api_refuses_a_batch_it_cannot_read_whole(
    client: Client, agent: Agent, production: Any, body: dict[str, Any]
) -> None:
    answer = AgentApi(client, production[1]).post("/compensations/results", body)
    assert answer.status_code == 422, answer.content
    assert answer.json()["error"]["code"] == "validation_error"


def test_the_api_takes_no_report_without_the_agents_token(client: Client, agent: Agent) -> None:
    body = {"results": [{"id": str(uuid.uuid4()), "outcome": "undone"}]}
    assert AgentApi(client, None).post("/compensations/results", body).status_code == 401


@pytest.mark.postgres
def test_a_batch_reads_and_writes_its_compensations_in_statements_that_do_not_grow_with_it(
    agent: Agent, owner: Any, production: Any
) -> None:
    """One locking read, one update of the compensations and one of the originals rolled
    back, however many it carries; each report's audit event is its own append."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = production[0]
    undone = Report("undone", found={"refunded": 40}, left={"refunded": 0})
    for size in (1, 5):
        asked = [_undo_asked(token, owner, f"ch_{size}_{n}") for n in range(size)]
        with CaptureQueriesContext(connection) as done:
            compensations_report(token=token, reports=[(c.pk, undone) for c in asked])
        statements = [q["sql"] for q in done.captured_queries]
        appends = [sql for sql in statements if "audit_append" in sql]
        assert len(appends) == 2 * size  # reported, and rolled back
        others = [sql.split()[0] for sql in statements if sql not in appends]
        assert [s for s in others if s not in ("SAVEPOINT", "RELEASE")] == [
            "SELECT",
            "UPDATE",
            "UPDATE",
        ], statements
