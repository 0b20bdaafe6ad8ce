"""Bulk rewind: a plan first, newest first, one resource at a time, nothing undone twice,
paused and resumed, approval of a large one, and an honest report per action."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.lifecycle import ResultInput, action_report_result, action_start
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from oversight.rewind import bulk
from oversight.rewind.models import Rewind, RewindItem
from oversight.rewind.plan import Scope, rewind_plan
from oversight.rewind.runner import _ask, _ask_all, _pending_items, rewind_step
from oversight.rewind.selectors import rewind_progress
from oversight.rewind.services import Report, compensation_report, compensations_claim
from oversight.rewind.words import undo_words
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_reversible_refunds, hold_large_refunds, refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(agent: Agent) -> Any:
    grant_reversible_refunds(agent, {"amount": "params.amount"})
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="email.send", reversibility="irreversible")
    )
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def _ran(token: Any, body: dict[str, Any], before: Any, after: Any) -> Action:
    action = decide(token, {**body, "before": before})
    data = ResultInput(outcome="succeeded", after=after)
    return action_report_result(token=token, action_id=action.pk, data=data)


def _scope(agent: Agent, **fields: Any) -> Scope:
    now = timezone.now()
    return Scope(agent=agent, since=now - dt.timedelta(hours=1), until=now, **fields)


def _world(token: Any) -> dict[str, Action]:
    """Two refunds on one charge (one after the other), one on another, an email."""
    return {
        "first": _ran(token, refund(10), {"refunded": 0}, {"refunded": 10}),
        "second": _ran(token, refund(5), {"refunded": 10}, {"refunded": 15}),
        "other": _ran(token, refund(7, charges=("ch_9",)), {"refunded": 0}, {"refunded": 7}),
        "email": _ran(token, {"action": "email.send", "resource": "segment:all"}, None, None),
        "denied": decide(token, {"action": "crm.delete", "resource": "crm:x"}),
    }


def _work(token: Any, ledger: dict[str, int]) -> list[str]:
    """The agent's compensator over a toy ledger: reads, compares, undoes."""
    done = []
    for task in compensations_claim(token=token):
        original = task.compensates
        charge = original.resource
        found = {"refunded": ledger.get(charge, 0)}
        if found != original.after:
            report = Report("conflict", found=found)
        else:
            ledger[charge] = found["refunded"] - task.params["amount"]
            report = Report("undone", found=found, left={"refunded": ledger[charge]})
        compensation_report(token=token, action_id=task.pk, report=report)
        done.append(original.pk)
    return done


def test_the_plan_says_what_would_be_undone_and_what_cannot_be(
    agent: Agent, production: Any
) -> None:
    _world(production)
    plan = rewind_plan(scope=_scope(agent))
    assert (plan["actions"], plan["to_undo"], plan["left"]) == (5, 3, 2)
    assert plan["undo_by"] == {"payments.refund -> payments.charge": 3}
    assert plan["left_because"] == {"irreversible": 1, "not_run:denied": 1}
    assert not Rewind.objects.exists()  # a plan writes nothing


def test_a_rewind_undoes_newest_first_one_resource_at_a_time(
    agent: Agent, owner: Any, production: Any
) -> None:
    actions = _world(production)
    ledger = {"stripe:charge/ch_1": 15, "stripe:charge/ch_9": 7}
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert rewind.state == "running"
    rewind_step(rewind_id=rewind.pk)
    # The newer refund of ch_1 and the one of ch_9 are asked for; the older of ch_1 waits.
    asked = set(
        RewindItem.objects.filter(rewind=rewind, state="requested").values_list(
            "action_id", flat=True
        )
    )
    assert asked == {actions["second"].pk, actions["other"].pk}
    assert set(_work(production, ledger)) == asked
    rewind_step(rewind_id=rewind.pk)  # records them, asks for the older one
    assert _work(production, ledger) == [actions["first"].pk]
    rewind_step(rewind_id=rewind.pk)
    rewind.refresh_from_db()
    assert rewind.state == "done"
    assert ledger == {"stripe:charge/ch_1": 0, "stripe:charge/ch_9": 0}
    for name in ("first", "second", "other"):
        actions[name].refresh_from_db()
        assert actions[name].status == "rolled_back"
    assert rewind.summary["outcomes"] == {"undone": 3, "irreversible": 1, "not_run:denied": 1}


def test_a_record_changed_in_between_is_a_conflict_and_left(
    agent: Agent, owner: Any, production: Any
) -> None:
    actions = _world(production)
    ledger = {"stripe:charge/ch_1": 15, "stripe:charge/ch_9": 99}  # ch_9 changed by hand
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    for _ in range(3):
        rewind_step(rewind_id=rewind.pk)
        _work(production, ledger)
    rewind_step(rewind_id=rewind.pk)
    item = RewindItem.objects.get(rewind=rewind, action=actions["other"])
    assert (item.state, item.outcome) == ("done", "conflict")
    assert ledger["stripe:charge/ch_9"] == 99
    actions["other"].refresh_from_db()
    assert actions["other"].status == "succeeded"


def test_steps_repeated_or_after_a_restart_never_ask_twice(
    agent: Agent, owner: Any, production: Any
) -> None:
    _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    for _ in range(5):  # a runner restarted over and over, nothing reported meanwhile
        rewind_step(rewind_id=rewind.pk)
    assert Action.objects.filter(compensates__isnull=False).count() == 2


def test_a_paused_rewind_asks_for_nothing_until_resumed(
    agent: Agent, owner: Any, production: Any
) -> None:
    _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    bulk.rewind_pause(actor=Actor.for_user(owner), rewind=rewind)
    rewind_step(rewind_id=rewind.pk)
    assert not Action.objects.filter(compensates__isnull=False).exists()
    bulk.rewind_resume(actor=Actor.for_user(owner), rewind=rewind)
    rewind_step(rewind_id=rewind.pk)
    assert Action.objects.filter(compensates__isnull=False).count() == 2


def test_a_large_rewind_waits_for_a_second_person(
    agent: Agent,
    owner: Any,
    admin_user: Any,
    production: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    client: Any,
) -> None:
    """It waits, and those who may approve it are told (not who started it); once
    approved, what they were told says so."""
    from oversight.notifications.models import InboxItem

    settings.REWIND_APPROVAL_THRESHOLD = 3
    _world(production)
    with django_capture_on_commit_callbacks(execute=True):
        rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert rewind.state == "awaiting_approval"
    told = InboxItem.objects.filter(kind="rewind.awaiting_approval")
    assert set(told.values_list("user__username", flat=True)) == {admin_user.username}
    assert told.get().title == "Refund bot: a rewind of 3 actions awaits your approval"
    assert told.get().link == f"/rewinds/{rewind.pk}/"
    rewind_step(rewind_id=rewind.pk)
    assert not Action.objects.filter(compensates__isnull=False).exists()
    with pytest.raises(ValidationError, match="second person"):
        bulk.rewind_approve(actor=Actor.for_user(owner), rewind=rewind)
    bulk.rewind_approve(actor=Actor.for_user(admin_user), rewind=rewind)
    rewind_step(rewind_id=rewind.pk)
    assert Action.objects.filter(compensates__isnull=False).count() == 2
    client.force_login(admin_user)
    inbox = client.get("/inbox/").content.decode()
    assert 'data-now="approved">Since then: approved by you' in inbox


def _held(agent: Agent, token: Any, reviewer: Any) -> dict[str, Action]:
    """Refunds over 500 held: one still waiting, one approved and not yet run."""
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    waiting = decide(token, refund(900, charges=("ch_held",)))
    approved = decide(token, refund(800, charges=("ch_approved",)))
    approved = approval_vote(user=reviewer, action_id=approved.pk, vote="approve")
    assert (waiting.status, approved.status) == ("pending", "approved")
    return {"waiting": waiting, "approved": approved}


def test_what_has_not_run_in_the_window_is_cancelled_as_the_rewind_starts(
    agent: Agent, owner: Any, reviewer: Any, production: Any
) -> None:
    _world(production)
    held = _held(agent, production, reviewer)
    plan = rewind_plan(scope=_scope(agent))
    assert (plan["actions"], plan["to_undo"], plan["to_cancel"], plan["left"]) == (7, 3, 2, 2)
    assert plan["left_because"] == {"irreversible": 1, "not_run:denied": 1}
    assert Action.objects.filter(status__in=("pending", "approved")).count() == 2  # a plan

    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert rewind.summary["to_cancel"] == 2
    for action in held.values():
        action.refresh_from_db()
        assert action.status == "cancelled"
        assert f"rewind {rewind.pk}" in action.error
        assert RewindItem.objects.get(rewind=rewind, action=action).outcome == "cancelled"
    progress = rewind_progress(rewind=rewind)
    assert (progress["cancelled"], progress["left"]) == (2, 2)  # apart from those left
    cancelled = AuditEvent.objects.filter(verb="action.cancelled", agent_id=agent.pk)
    assert {e.target_id for e in cancelled} == {str(a.pk) for a in held.values()}
    assert {e.actor_label for e in cancelled} == {owner.username}


def test_a_window_of_held_actions_only_is_rewound_by_cancelling_them(
    agent: Agent, owner: Any, reviewer: Any, production: Any
) -> None:
    held = _held(agent, production, reviewer)
    plan = rewind_plan(scope=_scope(agent))
    assert (plan["actions"], plan["to_undo"], plan["to_cancel"]) == (2, 0, 2)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    rewind_step(rewind_id=rewind.pk)
    rewind.refresh_from_db()
    assert rewind.state == "done"
    assert set(
        Action.objects.filter(pk__in=[a.pk for a in held.values()]).values_list("status", flat=True)
    ) == {"cancelled"}
    assert not Action.objects.filter(compensates__isnull=False).exists()


def test_a_large_rewind_cancels_what_has_not_run_only_once_approved(
    agent: Agent, owner: Any, reviewer: Any, admin_user: Any, production: Any, settings: Any
) -> None:
    settings.REWIND_APPROVAL_THRESHOLD = 3
    _world(production)
    held = _held(agent, production, reviewer)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert rewind.state == "awaiting_approval"
    assert Action.objects.get(pk=held["waiting"].pk).status == "pending"
    # Until it starts, its page counts them as to be cancelled, not as left as they are.
    progress = rewind_progress(rewind=rewind)
    assert (progress["to_cancel"], progress["cancelled"]) == (2, 0)
    assert progress["left"] == rewind.summary["left"]
    # Meanwhile the approved one is run by the agent: not in the rewind, and said so.
    action_report_result(
        token=production,
        action_id=held["approved"].pk,
        data=ResultInput(outcome="succeeded", after={"refunded": 800}),
    )
    bulk.rewind_approve(actor=Actor.for_user(admin_user), rewind=rewind)
    assert Action.objects.get(pk=held["waiting"].pk).status == "cancelled"
    assert Action.objects.get(pk=held["approved"].pk).status == "succeeded"
    outcomes = dict(
        RewindItem.objects.filter(rewind=rewind, action__in=held.values()).values_list(
            "action_id", "outcome"
        )
    )
    assert outcomes == {held["waiting"].pk: "cancelled", held["approved"].pk: "ran_after_plan"}


def test_halt_then_rewind_the_undos_pass_the_kill_switch(
    agent: Agent, owner: Any, production: Any
) -> None:
    actions = _world(production)
    killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="stop")
    assert decide(production, refund(3)).status == "halted"
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    rewind_step(rewind_id=rewind.pk)
    compensation = Action.objects.get(compensates=actions["second"])
    assert compensation.status == "allowed"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resource": "stripe:**"}, "resource"),
        ({"release_version": 999}, "nothing to rewind"),
    ],
)
def test_a_bad_or_empty_scope_is_refused(
    agent: Agent, owner: Any, production: Any, fields: dict[str, Any], message: str
) -> None:
    _world(production)
    with pytest.raises(ValidationError, match=message):
        bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent, **fields))
    assert not Rewind.objects.exists()


def test_one_step_at_a_time_and_a_step_that_died_gives_way(
    agent: Agent, owner: Any, production: Any
) -> None:
    _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    RewindItem.objects.filter(rewind=rewind, state="requested").update(state="pending")
    under_way = timezone.now() + dt.timedelta(seconds=20)
    Rewind.objects.filter(pk=rewind.pk).update(stepping_until=under_way)
    assert rewind_step(rewind_id=rewind.pk) == {"asked": 0, "finished": 0, "on_their_way": 0}
    assert not RewindItem.objects.filter(rewind=rewind, state="requested").exists()

    died = timezone.now() - dt.timedelta(seconds=1)  # its lease ran out
    Rewind.objects.filter(pk=rewind.pk).update(stepping_until=died)
    assert rewind_step(rewind_id=rewind.pk)["asked"] == 2
    assert Rewind.objects.get(pk=rewind.pk).stepping_until is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_follows_the_rewind_until_it_is_done(
    agent: Agent, owner: Any, production: Any
) -> None:
    """Nobody calls the runner here, and no beat runs: the rewind's creation asks a Celery
    worker for a step, which stays with the rewind while its undos are on their way,
    records each as it is reported and asks for the next one at once."""
    from tests.servers import celery_worker

    actions = _world(production)
    ledger = {"stripe:charge/ch_1": 15, "stripe:charge/ch_9": 7}
    with celery_worker():
        rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
        undone: list[Any] = []
        deadline = time.monotonic() + 30
        while Rewind.objects.get(pk=rewind.pk).state != "done":
            assert time.monotonic() < deadline, RewindItem.objects.filter(rewind=rewind)
            undone += _work(production, ledger)
            time.sleep(0.05)
    assert undone[-1] == actions["first"].pk  # the older refund of ch_1 last
    assert sorted(map(str, undone)) == sorted(
        str(actions[name].pk) for name in ("first", "second", "other")
    )
    assert ledger == {"stripe:charge/ch_1": 0, "stripe:charge/ch_9": 0}


def test_without_following_a_step_is_one_pass(agent: Agent, owner: Any, production: Any) -> None:
    """What the beat and jobs without a broker do: one pass, at most ``size`` asks."""
    _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    RewindItem.objects.filter(rewind=rewind, state="requested").update(state="pending")
    assert rewind_step(rewind_id=rewind.pk, size=1)["asked"] == 1
    assert rewind_step(rewind_id=rewind.pk, size=1)["asked"] == 1
    assert rewind_step(rewind_id=rewind.pk, size=1)["asked"] == 0  # ch_1's older one waits


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_asks_of_one_rewind_do_not_wait_for_each_other(
    agent: Agent, owner: Any, production: Any, settings: Any
) -> None:
    """The runner asks for several undos at a time, each in its own transaction: one on
    its way holds its item, not the rewind, so another ask (and a pause) goes on."""
    import threading

    from django.db import connection, transaction

    settings.REWIND_APPROVAL_THRESHOLD = 3  # nothing asked before the test asks
    actions = _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    item = {i.action_id: i.pk for i in RewindItem.objects.filter(rewind=rewind)}
    held, release = threading.Event(), threading.Event()

    def ask_in_progress() -> None:
        try:
            with transaction.atomic():
                assert _pending_items([item[actions["other"].pk]])
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=ask_in_progress)
    thread.start()
    try:
        assert held.wait(10)
        began = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        _ask([item[actions["second"].pk]], {})
        with transaction.atomic():
            bulk.locked(rewind)  # what a pause or a cancel takes first
        waited = time.monotonic() - began
    finally:
        release.set()
        thread.join()
    assert waited < 1.0
    asked = RewindItem.objects.get(pk=item[actions["second"].pk])
    assert asked.state == "requested" and asked.compensation is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_asks_side_by_side_decide_under_one_undo_token_made_once(
    agent: Agent, owner: Any, production: Any, settings: Any
) -> None:
    """The first rewind of an agent: its undo token does not exist yet when the runner's
    threads start asking. It is made once, committed before they share it."""
    from oversight.agents.models import AgentToken
    from oversight.rewind.services import UNDO_TOKEN_NAME

    settings.REWIND_APPROVAL_THRESHOLD = 3  # nothing asked before the test asks
    actions = _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert not AgentToken.objects.filter(name=UNDO_TOKEN_NAME).exists()
    _ask_all(list(RewindItem.objects.filter(rewind=rewind).values_list("pk", flat=True)))
    undone = Action.objects.filter(compensates__isnull=False, status="allowed")
    assert sorted(undone.values_list("compensates", flat=True)) == sorted(
        actions[name].pk for name in ("first", "second", "other")
    )
    assert AgentToken.objects.filter(agent=agent, name=UNDO_TOKEN_NAME).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_of_asks_reads_and_writes_its_items_in_three_statements(
    agent: Agent, owner: Any, production: Any, settings: Any
) -> None:
    """The runner's asks are its hot path: a batch locks its items and the actions they
    undo in one statement, reads which undos are already on their way in one, and moves
    its items in one, however many it carries; each undo is its decision (one statement)
    and its audited ask. All in one transaction."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oversight.rewind.services import undo_tokens

    settings.REWIND_APPROVAL_THRESHOLD = 3  # nothing asked before the test asks
    _world(production)
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    pending = RewindItem.objects.filter(rewind=rewind, state="pending")
    first, *others = pending.order_by("position").values_list("pk", flat=True)
    assert len(others) == 2
    tokens = undo_tokens(pending.values("action_id"))
    _ask([first], tokens)  # the first prepares the connection's statements
    with CaptureQueriesContext(connection) as done:
        _ask(others, tokens)
    statements = [q["sql"] for q in done.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 3 + 2 * len(others), statements
    assert '"gateway_action"' in statements[0] and "FOR NO KEY UPDATE OF" in statements[0]
    assert "compensates_id" in statements[1]
    assert ["decision_record" in sql for sql in statements[2:-1]] == [True, False] * len(others)
    assert statements[-1].startswith('UPDATE "rewind_rewinditem"')
    asked = RewindItem.objects.filter(pk__in=others)
    assert {(i.state, i.compensation is not None) for i in asked} == {("requested", True)}


def test_an_approved_action_the_agent_started_is_left_as_it_is(
    agent: Agent, owner: Any, reviewer: Any, admin_user: Any, production: Any, settings: Any
) -> None:
    """Started, it may have run: neither cancelled nor undone, and the plan says so."""
    settings.REWIND_APPROVAL_THRESHOLD = 3
    _world(production)
    held = _held(agent, production, reviewer)
    action_start(token=production, action_id=held["approved"].pk)
    plan = rewind_plan(scope=_scope(agent))
    assert plan["left_because"]["started"] == 1
    assert plan["to_cancel"] == 1  # the waiting one only

    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    bulk.rewind_approve(actor=Actor.for_user(admin_user), rewind=rewind)
    assert Action.objects.get(pk=held["approved"].pk).status == "approved"
    assert RewindItem.objects.get(rewind=rewind, action=held["approved"]).outcome == "started"
    assert undo_words("started").startswith("started by the agent")


def test_a_second_rewind_of_an_overlapping_window_is_refused_while_one_is_under_way(
    agent: Agent, owner: Any, admin_user: Any, production: Any, settings: Any
) -> None:
    """Awaiting approval, running or paused, a rewind holds its window: a second one over
    any part of it is refused, writing nothing; once it has ended, or elsewhere in time,
    another may start."""
    settings.REWIND_APPROVAL_THRESHOLD = 3
    _world(production)
    first = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert first.state == "awaiting_approval"
    half = dt.timedelta(minutes=30)
    overlapping = Scope(agent=agent, since=first.since + half, until=first.until + half)
    for state in ("awaiting_approval", "running", "paused"):
        Rewind.objects.filter(pk=first.pk).update(state=state)
        with pytest.raises(bulk.RewindUnderWay, match=f"is {state.replace('_', ' ')}") as refused:
            bulk.rewind_create(actor=Actor.for_user(admin_user), scope=overlapping)
        assert refused.value.rewind.pk == first.pk
        assert f"rewind {first.pk}" in refused.value.messages[0]
    assert Rewind.objects.count() == 1 and RewindItem.objects.exclude(rewind=first).count() == 0

    before = Scope(agent=agent, since=first.since - half, until=first.since)
    with pytest.raises(ValidationError, match="No action of the agent in that window"):
        bulk.rewind_create(actor=Actor.for_user(owner), scope=before)  # not under way: empty
    bulk.rewind_cancel(actor=Actor.for_user(owner), rewind=first)
    again = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    assert again.pk != first.pk and Rewind.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_starts_of_one_window_at_once_make_one_rewind(
    agent: Agent, owner: Any, production: Any
) -> None:
    """The race of a double click on PostgreSQL: a first start has made its rewind and
    not committed yet; a second start of the same window waits for it (the agent's row)
    and then sees its rewind, so it is refused instead of making its own."""
    import threading

    from django.db import connection, transaction

    _world(production)
    scope = _scope(agent)
    made, release = threading.Event(), threading.Event()
    second: dict[str, Any] = {}

    def first_start() -> None:
        try:
            with transaction.atomic():
                bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
                made.set()
                release.wait(10)
        finally:
            connection.close()

    def second_start() -> None:
        try:
            bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
            second["outcome"] = "created"
        except bulk.RewindUnderWay as exc:
            second["outcome"] = "refused"
            second["rewind"] = exc.rewind.pk
        finally:
            connection.close()

    first = threading.Thread(target=first_start)
    first.start()
    try:
        assert made.wait(10)
        other = threading.Thread(target=second_start)
        other.start()
        other.join(0.5)
        assert other.is_alive(), second  # it waits for the first start to end
    finally:
        release.set()
        first.join()
    other.join(10)
    assert second["outcome"] == "refused"
    rewind = Rewind.objects.get()
    assert second["rewind"] == rewind.pk
    assert RewindItem.objects.filter(rewind=rewind).count() == 5


def test_an_undo_that_raises_ends_its_item_and_the_rest_go_on(
    agent: Agent, owner: Any, production: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An undo that cannot even be asked for (here: its action's stored undo contract
    lost its undo action after the plan was made: a defect's stand-in) is not retried
    for ever, holding the whole rewind: its item ends as an error, said on the page,
    and the others are undone."""
    actions = _world(production)
    ledger = {"stripe:charge/ch_1": 15, "stripe:charge/ch_9": 7}
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=_scope(agent))
    Action.objects.filter(pk=actions["other"].pk).update(
        undo_contract={"params": {"amount": "params.amount"}}
    )
    rewind_step(rewind_id=rewind.pk)
    broken = RewindItem.objects.get(rewind=rewind, action=actions["other"])
    assert (broken.state, broken.outcome, broken.compensation) == ("done", "error", None)
    assert broken.detail == "KeyError (the server's log has the rest)"
    assert "asking for its undo raised" in caplog.text
    assert not Action.objects.filter(compensates=actions["other"]).exists()  # nothing half made
    assert set(_work(production, ledger)) == {actions["second"].pk}
    rewind_step(rewind_id=rewind.pk)
    assert _work(production, ledger) == [actions["first"].pk]
    rewind_step(rewind_id=rewind.pk)
    rewind.refresh_from_db()
    assert rewind.state == "done"
    assert rewind.summary["outcomes"]["error"] == 1
    assert ledger == {"stripe:charge/ch_1": 0, "stripe:charge/ch_9": 7}
    counts = rewind_progress(rewind=rewind)
    assert (counts["undone"], counts["failed"]) == (2, 1)
    assert undo_words("error").startswith("Oversight could not ask for its undo")
