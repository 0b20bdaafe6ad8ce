"""The rewind page and command: plan, start, watch; who may."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from oversight.agents.models import Agent
from oversight.rewind.models import Rewind
from oversight.rewind.plan import Scope
from oversight.rewind.runner import rewind_step
from tests.forms import form_data
from tests.gateway.helpers import refund
from tests.rewind.test_bulk import _held, _ran, _world, production  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_the_owner_plans_and_starts_a_rewind_and_watches_it(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    _world(production)
    page = reverse("rewind:plan", args=[agent.slug])
    client.force_login(owner)
    planned = client.get(page, {"since": "1h", "resource": "*"}).content.decode()
    assert "<strong>5</strong> actions in the window: <strong>3</strong> to undo" in planned
    assert "left: irreversible" in planned
    assert "left: never succeeded (denied)" in planned  # words, not the code not_run:denied
    assert "not_run" not in planned
    assert not Rewind.objects.exists()
    response = client.post(page, {"since": "1h", "resource": "*"})
    rewind = Rewind.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "rewind:detail", args=[rewind.pk]
    )
    detail = client.get(response["Location"]).content.decode()
    assert "Running" in detail and "payments.refund" in detail
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section class="card" id="rewind-progress"')


def test_a_teammate_may_look_but_not_rewind_and_an_outsider_sees_nothing(
    client: Client,
    agent: Agent,
    teammate: Any,
    outsider: Any,
    production: Any,  # noqa: F811
) -> None:
    _world(production)
    page = reverse("rewind:plan", args=[agent.slug])
    client.force_login(teammate)
    assert "Start the rewind" not in client.get(page, {"since": "1h"}).content.decode()
    assert client.post(page, {"since": "1h", "resource": "*"}).status_code == 403
    client.force_login(outsider)
    assert client.get(page).status_code == 404
    assert not Rewind.objects.exists()


def test_a_window_without_a_resource_pattern_plans_every_resource(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """A link with only a window (the kill-switch banner's was one) showed "This field
    is required" and no plan."""
    _world(production)
    client.force_login(owner)
    response = client.get(reverse("rewind:plan", args=[agent.slug]), {"since": "1h"})
    assert response.context["plan"]["to_undo"] == 3
    assert "This field is required" not in response.content.decode()


def test_a_bad_window_is_said_and_nothing_is_planned(
    client: Client, agent: Agent, owner: Any
) -> None:
    client.force_login(owner)
    page = client.get(reverse("rewind:plan", args=[agent.slug]), {"since": "yesterday"})
    assert "neither a duration" in page.content.decode()


@pytest.mark.parametrize("since", ["10000000000d", "800000d", "99999d", "1969-12-31"])
def test_a_window_too_far_back_is_said_not_an_error(
    client: Client, agent: Agent, owner: Any, since: str
) -> None:
    """A duration of more days than a date can hold raised OverflowError (a 500); one
    merely huge planned a rewind from 1753."""
    client.force_login(owner)
    page = client.get(reverse("rewind:plan", args=[agent.slug]), {"since": since})
    assert page.status_code == 200
    assert "is too far back: a moment from 1970 on" in page.content.decode()
    assert page.context["plan"] is None


def test_the_plan_says_what_will_be_cancelled(
    client: Client,
    agent: Agent,
    owner: Any,
    reviewer: Any,
    production: Any,  # noqa: F811
) -> None:
    _world(production)
    _held(agent, production, reviewer)
    out = StringIO()
    call_command("rewind", "--agent", agent.slug, "--since", "1h", "--dry-run", stdout=out)
    assert "7 actions: 3 to undo, 2 to cancel (not run yet), 2 left" in out.getvalue()
    assert "-> not run yet (waiting for approval): cancelled as the rewind starts" in out.getvalue()
    client.force_login(owner)
    page = client.get(reverse("rewind:plan", args=[agent.slug]), {"since": "1h", "resource": "*"})
    text = page.content.decode()
    assert "<strong>2</strong> to cancel (they have not run)" in text
    assert "not run yet (approved): cancelled as the rewind starts" in text
    assert not Rewind.objects.exists()
    # Held ones alone are reason enough to start one.
    held_only = {"since": "1h", "resource": "stripe:charge/ch_held"}
    text = client.get(reverse("rewind:plan", args=[agent.slug]), held_only).content.decode()
    assert "<strong>0</strong> to undo, <strong>1</strong> to cancel" in text
    assert "Start the rewind" in text


def test_an_action_cancelled_by_a_rewind_says_so_on_its_page(
    client: Client,
    agent: Agent,
    owner: Any,
    reviewer: Any,
    production: Any,  # noqa: F811
) -> None:
    held = _held(agent, production, reviewer)["waiting"]
    client.force_login(owner)
    client.post(reverse("rewind:plan", args=[agent.slug]), {"since": "1h", "resource": "*"})
    rewind = Rewind.objects.get()
    text = client.get(reverse("approvals:action", args=[held.pk])).content.decode()
    assert "<h3>Why it was cancelled</h3>" in text
    assert f"a rewind of its window started (rewind {rewind.pk})" in text
    assert "<h3>Error</h3>" not in text


def test_the_command_plans_runs_and_reports(agent: Agent, production: Any) -> None:  # noqa: F811
    _world(production)
    out = StringIO()
    call_command("rewind", "--agent", agent.slug, "--since", "1h", "--dry-run", stdout=out)
    assert "5 actions: 3 to undo, 2 left" in out.getvalue()
    assert "left, never succeeded (denied): 1" in out.getvalue()
    assert not Rewind.objects.exists()
    out = StringIO()
    call_command("rewind", "--agent", agent.slug, "--since", "1h", "--execute", stdout=out)
    rewind = Rewind.objects.get()
    assert f"rewind {rewind.pk} of {agent.slug}: running" in out.getvalue()
    out = StringIO()
    call_command("rewind", "--status", str(rewind.pk), stdout=out)
    assert "requested" in out.getvalue() and "irreversible" in out.getvalue()
    with pytest.raises(CommandError, match="neither a duration"):
        call_command("rewind", "--agent", agent.slug, "--since", "soon", "--dry-run")
    with pytest.raises(CommandError, match="No agent"):
        call_command("rewind", "--agent", "nobody", "--since", "1h", "--dry-run")


def test_a_window_with_nothing_to_undo_offers_no_start(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    from tests.gateway.helpers import decide, refund

    decide(production, refund(10))  # allowed, never reported as run: nothing to undo
    client.force_login(owner)
    page = reverse("rewind:plan", args=[agent.slug])
    planned = client.get(page, {"since": "1h", "resource": "*"}).content.decode()
    assert "Nothing in this window can be undone" in planned
    assert "Start the rewind" not in planned
    response = client.post(page, {"since": "1h", "resource": "*"})
    assert "None of the window" in response.content.decode()
    assert not Rewind.objects.exists()


def test_an_undo_reported_shows_as_ended_before_the_runner_records_it(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    from oversight.rewind.models import RewindItem
    from oversight.rewind.services import Report, compensation_report

    rewind = _rewind_of_the_hour(production, agent, owner)
    rewind_step(rewind_id=rewind.pk)  # its first pass asks
    asked = RewindItem.objects.filter(rewind=rewind, state="requested").select_related(
        "compensation__compensates"
    )
    first = asked.order_by("position").first()
    assert first is not None and asked.count() == 2  # ch_1's older refund waits its turn
    report = Report("undone", found=first.compensation.compensates.after, left={"refunded": 10})
    compensation_report(token=production, action_id=first.compensation_id, report=report)

    client.force_login(owner)
    page = client.get(reverse("rewind:detail", args=[rewind.pk]), HTTP_HX_REQUEST="true")
    counts = page.context["counts"]
    assert (counts["requested"], counts["done"]) == (1, 1)  # not yet recorded by the runner
    assert '<td data-label="Outcome">undone' in page.content.decode()
    assert RewindItem.objects.get(pk=first.pk).state == "requested"


def _start_fields(page: str) -> dict[str, str]:
    """The fields of the plan's start form, as the browser posts them."""
    fields = form_data(page, "rewind-start")
    fields.pop("csrfmiddlewaretoken", None)
    return fields


def test_the_started_rewind_covers_exactly_the_window_the_plan_showed(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """A window of "1h" is read once, when planning: the start posts the plan's absolute
    bounds, so an action made after the plan is not in it, and the plan's oldest one is
    not dropped however long the owner took to start it."""
    from django.utils.dateparse import parse_datetime

    from oversight.gateway.models import Action

    actions = _world(production)
    page = reverse("rewind:plan", args=[agent.slug])
    client.force_login(owner)
    planned = client.get(page, {"since": "1h", "until": "", "resource": "*"}).content.decode()
    start = _start_fields(planned)
    since, until = parse_datetime(start["since"]), parse_datetime(start["until"])
    assert since is not None and until is not None
    assert until - since == dt.timedelta(hours=1)
    assert f'from <time datetime="{start["since"]}">{since:%-d %b %Y %H:%M:%S}</time>' in planned
    assert (start["planned_to_undo"], start["planned_to_cancel"]) == ("3", "0")
    # The oldest action sits at the very start of the window; "an hour before now" read
    # again at the start would leave it out.
    Action.objects.filter(pk=actions["email"].pk).update(
        created_at=since + dt.timedelta(microseconds=1)
    )
    later = _ran(production, refund(3, charges=("ch_later",)), {"refunded": 0}, {"refunded": 3})

    response = client.post(page, start)
    rewind = Rewind.objects.get()
    assert response.status_code == 302
    assert (rewind.since, rewind.until) == (since, until)
    items = set(rewind.items.values_list("action_id", flat=True))
    assert actions["email"].pk in items and later.pk not in items
    assert len(items) == 5


def test_a_window_that_would_now_undo_more_than_the_plan_said_is_shown_again(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """A refund of the window reported as run after the plan was shown: the start is
    refused, nothing is started, and the plan as it is now is shown to start again."""
    from oversight.gateway.lifecycle import ResultInput, action_report_result
    from tests.gateway.helpers import decide

    _world(production)
    late = decide(production, refund(4, charges=("ch_late",), before={"refunded": 0}))
    page = reverse("rewind:plan", args=[agent.slug])
    client.force_login(owner)
    start = _start_fields(client.get(page, {"since": "1h", "resource": "*"}).content.decode())
    assert start["planned_to_undo"] == "3"
    data = ResultInput(outcome="succeeded", after={"refunded": 4})
    action_report_result(token=production, action_id=late.pk, data=data)

    response = client.post(page, start)
    text = response.content.decode()
    assert response.status_code == 200 and not Rewind.objects.exists()
    assert "it would now undo 4 actions (the plan said 3)" in text
    assert "<strong>4</strong> to undo" in text
    again = _start_fields(text)
    assert (again["since"], again["until"]) == (start["since"], start["until"])
    assert again["planned_to_undo"] == "4"
    assert client.post(page, again).status_code == 302
    assert Rewind.objects.get().summary["to_undo"] == 4


def test_a_second_start_of_the_same_plan_leads_to_the_rewind_under_way(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """A double click, or the form sent again: one rewind, and the second start shows it
    and says that nothing new was started."""
    _world(production)
    page = reverse("rewind:plan", args=[agent.slug])
    client.force_login(owner)
    start = _start_fields(client.get(page, {"since": "1h", "resource": "*"}).content.decode())
    first = client.post(page, start)
    second = client.post(page, start, follow=True)
    rewind = Rewind.objects.get()
    assert first["Location"] == reverse("rewind:detail", args=[rewind.pk])
    assert second.redirect_chain == [(first["Location"], 302)]
    text = second.content.decode()
    assert f"over an overlapping window is running (rewind {rewind.pk}" in text
    assert "nothing new was started" in text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_posts_at_once_make_one_rewind(
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """Two browsers' starts of one plan, sent together: both end on the same rewind."""
    import threading

    from django.db import connection

    _world(production)
    page = reverse("rewind:plan", args=[agent.slug])
    looker = Client()
    looker.force_login(owner)
    start = _start_fields(looker.get(page, {"since": "1h", "resource": "*"}).content.decode())
    together = threading.Barrier(2)
    answers: list[str] = []

    def post() -> None:
        try:
            client = Client()
            client.force_login(owner)
            together.wait(10)
            answers.append(client.post(page, start)["Location"])
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    rewind = Rewind.objects.get()
    assert answers == [reverse("rewind:detail", args=[rewind.pk])] * 2


def _forbid_undos(agent: Agent, resource: str = "*") -> None:
    from oversight.policy.models import Rule
    from oversight.policy.services import policy_object_create
    from tests.conftest import SYSTEM

    rule = Rule(agent=agent, name="no charge-backs", effect="forbid", action="payments.charge")
    rule.resource, rule.condition = resource, "undo"
    policy_object_create(actor=SYSTEM, obj=rule)


def _progress(client: Client, rewind: Rewind) -> Any:
    return client.get(reverse("rewind:detail", args=[rewind.pk]), HTTP_HX_REQUEST="true")


def test_a_rewind_whose_every_undo_was_denied_says_nothing_was_undone(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """Not "Done": nothing was undone, each undo was denied, and the page says so."""
    from oversight.audit.actors import Actor
    from oversight.rewind import bulk

    _world(production)
    _forbid_undos(agent)
    scope = Scope(agent=agent, since=_an_hour_ago(), until=_now())
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
    for _ in range(3):
        rewind_step(rewind_id=rewind.pk)
    rewind.refresh_from_db()
    assert rewind.state == "done"

    client.force_login(owner)
    page = _progress(client, rewind)
    text = page.content.decode()
    assert "<h2>Done: nothing undone</h2>" in text
    assert "Of 3 actions to undo, none was undone: 3 undos denied." in text
    assert "<dt>Undone</dt><dd>0</dd>" in text and "<dt>Undo denied</dt><dd>3</dd>" in text
    out = StringIO()
    call_command("rewind", "--status", str(rewind.pk), stdout=out)
    assert "  0 undone, 3 undo denied, 0 conflicts, 0 failed" in out.getvalue()
    assert "Of 3 actions to undo, none was undone: 3 undos denied." in out.getvalue()
    counts = page.context["counts"]
    assert (counts["undone"], counts["denied"], counts["conflict"], counts["failed"]) == (
        0,
        3,
        0,
        0,
    )


def test_a_rewind_that_undid_some_counts_each_outcome_apart_live_and_at_the_end(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """ch_9's undo denied, ch_1's newer refund undone and its older one a conflict (the
    ledger changed by hand in between): counted apart as they end, and the end says
    1 of 3 undone and what became of the other two."""
    from oversight.audit.actors import Actor
    from oversight.rewind import bulk
    from tests.rewind.test_bulk import _work

    _world(production)
    _forbid_undos(agent, "stripe:charge/ch_9")
    ledger = {"stripe:charge/ch_1": 15}
    scope = Scope(agent=agent, since=_an_hour_ago(), until=_now())
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
    client.force_login(owner)
    rewind_step(rewind_id=rewind.pk)
    _work(production, ledger)  # the newer refund of ch_1 undone, not yet recorded
    live = _progress(client, rewind)
    assert "<h2>Running</h2>" in live.content.decode()
    assert "rewind-shortfall" not in live.content.decode()
    counts = live.context["counts"]
    assert (counts["undone"], counts["denied"], counts["pending"]) == (1, 1, 1)

    ledger["stripe:charge/ch_1"] = 12  # changed by hand: the older refund's undo conflicts
    for _ in range(2):
        rewind_step(rewind_id=rewind.pk)
        _work(production, ledger)
    rewind_step(rewind_id=rewind.pk)
    rewind.refresh_from_db()
    assert rewind.state == "done"
    text = _progress(client, rewind).content.decode()
    assert "<h2>Done: 1 of 3 undone</h2>" in text
    assert (
        "Of 3 actions to undo, 1 was undone: 1 undo denied, "
        "1 conflict (changed since, left alone)." in text
    )
    for label, count in (("Undone", 1), ("Undo denied", 1), ("Conflicts: changed since", 1)):
        assert f"<dt>{label}</dt><dd>{count}</dd>" in text
    assert "<dt>Failed</dt><dd>0</dd>" in text
    # Each row's Undo column says what the counts count it as (a conflict read "Failed",
    # with Failed 0 above it).
    undo_column = re.findall(r'data-label="Undo">(?:<a [^>]*>)?([^<]+)<', text)
    ended = [words for words in undo_column if words != "Left as it is"]  # not to undo
    assert sorted(ended) == ["Conflict: changed since", "Undo denied", "Undone"]


def test_a_rewind_that_undid_everything_reads_done(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    from oversight.audit.actors import Actor
    from oversight.rewind import bulk
    from tests.rewind.test_bulk import _work

    _world(production)
    ledger = {"stripe:charge/ch_1": 15, "stripe:charge/ch_9": 7}
    scope = Scope(agent=agent, since=_an_hour_ago(), until=_now())
    rewind = bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
    for _ in range(3):
        rewind_step(rewind_id=rewind.pk)
        _work(production, ledger)
    rewind_step(rewind_id=rewind.pk)
    client.force_login(owner)
    text = _progress(client, rewind).content.decode()
    assert "<h2>Done</h2>" in text and "rewind-shortfall" not in text
    assert "<dt>Undone</dt><dd>3</dd>" in text


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _an_hour_ago() -> Any:
    import datetime as dt

    return _now() - dt.timedelta(hours=1)


def test_a_cancelled_rewind_says_what_it_did_not_ask_for(
    client: Client,
    agent: Agent,
    owner: Any,
    production: Any,  # noqa: F811
) -> None:
    """It went on saying "Waiting 3" and "To undo" on each row after it was cancelled."""
    from oversight.audit.actors import Actor
    from oversight.rewind import bulk

    rewind = _rewind_of_the_hour(production, agent, owner)
    bulk.rewind_cancel(actor=Actor.for_user(owner), rewind=rewind)
    client.force_login(owner)
    page = client.get(reverse("rewind:detail", args=[rewind.pk])).content.decode()
    assert "<dt>Not asked for: cancelled</dt><dd>3</dd>" in page
    assert "<dt>Waiting</dt>" not in page
    assert page.count('data-label="Undo">Not asked for: cancelled<') == 3  # as counted
    assert 'data-label="Undo">To undo<' not in page


def _rewind_of_the_hour(token: Any, agent: Agent, owner: Any) -> Rewind:
    """The owner's rewind of the last hour of ``_world``."""
    from oversight.audit.actors import Actor
    from oversight.rewind import bulk

    _world(token)
    scope = Scope(agent=agent, since=_an_hour_ago(), until=_now())
    return bulk.rewind_create(actor=Actor.for_user(owner), scope=scope)
