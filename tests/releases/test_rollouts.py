"""Rollouts: staging, shadow and canary candidates deciding beside stable; change
approval; the guard rolling back a bad release and advancing a good one."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from oversight.accounts.services import team_change_control_update
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.notifications.models import InboxItem
from oversight.policy.models import Grant, Rule
from oversight.policy.services import policy_object_create
from oversight.releases import guard, rollouts
from oversight.releases.assignment import BUCKETS, assign, bucket
from oversight.releases.models import LIVE_STATES, Release, Rollout, RolloutState, Stage
from oversight.releases.selectors import release_for_session, shadow_differences
from oversight.releases.services import release_rollback, releases_batched
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, grant_refunds, refund
from tests.releases.helpers import sessions_in_buckets

pytestmark = pytest.mark.django_db


def _forbid_refunds(agent: Agent, actor: Actor = SYSTEM) -> Rule:
    rule = Rule(agent=agent, name="no refunds", effect="forbid", action=REFUND)
    return policy_object_create(actor=actor, obj=rule)


@pytest.fixture
def candidate(agent: Agent) -> Release:
    """Stable v2 allows refunds; v3 (forbidding them) is cut but not promoted: v2 is made
    stable again by a rollback, so v3 is a release that can be rolled out."""
    grant_refunds(agent)
    _forbid_refunds(agent)
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))
    agent.refresh_from_db()
    assert agent.stable_version == 4  # v4 has v2's content
    return Release.objects.get(agent=agent, version=3)


@pytest.fixture
def production(agent: Agent) -> Any:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


@pytest.fixture
def staging(agent: Agent) -> Any:
    return token_create(actor=SYSTEM, agent=agent, environment="staging")[0]


def _start(release: Release, stage: str, **options: Any) -> Rollout:
    return rollouts.rollout_start(actor=SYSTEM, release=release, stage=stage, **options)


# --- where the candidate decides ------------------------------------------------------


def test_staging_tokens_decide_under_the_candidate_and_production_under_stable(
    candidate: Release, production: Any, staging: Any
) -> None:
    _start(candidate, Stage.STAGING)
    prod, stage = decide(production, refund(10)), decide(staging, refund(10))
    assert (prod.status, prod.release_version) == ("allowed", 4)
    assert (stage.status, stage.release_version) == ("denied", 3)
    assert [r["name"] for r in stage.reasons if r["kind"] == "rule"] == ["no refunds"]


def test_in_shadow_stable_decides_and_the_candidates_verdict_is_recorded_beside_it(
    agent: Agent, candidate: Release, production: Any
) -> None:
    _start(candidate, Stage.SHADOW)
    action = decide(production, refund(10))
    assert (action.status, action.release_version) == ("allowed", 4)
    assert (action.shadow_version, action.shadow_status) == (3, "denied")
    assert action.shadow_reasons[0]["name"] == "no refunds"
    assert action.shadow_reasons[0]["id"] is None  # no row holds v3's rule now (v4 is)
    found = shadow_differences(agent=agent, version=3)
    assert found["evaluated"] == 1 and found["differing"] == 1
    assert found["transitions"] == [{"decision": "allowed", "shadow_status": "denied", "count": 1}]


def test_a_canary_gives_a_sticky_share_of_sessions_the_candidate(
    agent: Agent, candidate: Release, production: Any
) -> None:
    _start(candidate, Stage.CANARY, plan=[50, 100])
    agent.refresh_from_db()
    assert agent.canary_share == BUCKETS // 2
    sessions = [f"s{i}" for i in range(40)]
    first = {s: decide(production, refund(10, session_id=s)).release_version for s in sessions}
    again = {s: decide(production, refund(10, session_id=s)).release_version for s in sessions}
    assert first == again  # sticky
    assert set(first.values()) == {3, 4}  # both arms get sessions at 50%
    for session, version in first.items():
        expected = 3 if bucket(agent.pk, 3, session) < agent.canary_share else 4
        assert version == expected
        release = release_for_session(agent=agent, environment="production", session_id=session)
        assert release is not None and release.version == version


def _session_between(agent: Agent, version: int, low: int, high: int) -> str:
    """A session id whose bucket in this rollout is in [low, high)."""
    return next(s for i in range(10_000) if low <= bucket(agent.pk, version, s := f"s{i}") < high)


def test_a_session_keeps_the_release_it_loaded_while_the_canary_share_moves(
    agent: Agent, candidate: Release, production: Any
) -> None:
    rollout = _start(candidate, Stage.CANARY, plan=[1, 50, 100])
    moving = _session_between(agent, 3, BUCKETS // 100, BUCKETS // 2)  # stable at 1%, not 50%
    loaded = release_for_session(agent=agent, environment="production", session_id=moving)
    assert loaded is not None and loaded.version == 4
    rollouts.rollout_advance(actor=SYSTEM, rollout=rollout)  # 50%: its bucket is now in
    # Said: the release it runs decides (stable allows the refund the candidate forbids).
    kept = decide(production, refund(10, session_id=moving, release=4))
    assert (kept.status, kept.release_version) == ("allowed", 4)
    # Not said: assigned by its bucket, as before.
    assert decide(production, refund(10, session_id=moving)).release_version == 3
    # A session that loaded the candidate keeps it too, whatever its bucket.
    stable_side = _session_between(agent, 3, BUCKETS // 2, BUCKETS)
    on_candidate = decide(production, refund(10, session_id=stable_side, release=3))
    assert (on_candidate.status, on_candidate.release_version) == ("denied", 3)
    # A version the rollout does not have in force is not chosen: the bucket decides.
    assert decide(production, refund(10, session_id=stable_side, release=2)).release_version == 4
    assert decide(production, refund(10, session_id=moving, release=99)).release_version == 3


def test_only_a_canary_lets_a_session_keep_the_release_it_loaded(
    agent: Agent, candidate: Release, production: Any, staging: Any
) -> None:
    rollout = _start(candidate, Stage.SHADOW)
    assert decide(production, refund(10, session_id="s", release=3)).release_version == 4
    rollouts.rollout_advance(actor=SYSTEM, rollout=rollout)  # canary
    assert decide(staging, refund(10, session_id="s", release=4)).release_version == 3
    rollouts.rollout_pause(actor=SYSTEM, rollout=rollout, why="looking")
    assert decide(production, refund(10, session_id="s", release=3)).release_version == 4
    rollouts.rollout_roll_back(actor=SYSTEM, rollout=rollout, why="no")
    assert decide(production, refund(10, session_id="s", release=3)).release_version == 4


def test_the_buckets_are_spread_evenly() -> None:
    shares = [bucket(1, 7, f"session-{i}") for i in range(20_000)]
    below = sum(1 for b in shares if b < BUCKETS // 10)
    assert 1_800 < below < 2_200  # about 10%


def test_a_paused_rollout_decides_nothing_and_resumes(
    agent: Agent, candidate: Release, staging: Any
) -> None:
    rollout = _start(candidate, Stage.STAGING)
    rollouts.rollout_pause(actor=SYSTEM, rollout=rollout, why="looking")
    assert decide(staging, refund(10)).release_version == 4
    rollouts.rollout_resume(actor=SYSTEM, rollout=rollout)
    assert decide(staging, refund(10)).release_version == 3


def test_advancing_through_the_plan_ends_with_the_candidate_stable(
    agent: Agent, candidate: Release, production: Any
) -> None:
    rollout = _start(candidate, Stage.STAGING, plan=[10, 50, 100])
    seen = []
    for _ in range(4):
        rollout = rollouts.rollout_advance(actor=SYSTEM, rollout=rollout)
        seen.append((rollout.stage, rollout.share_percent))
    assert seen == [("shadow", 0.0), ("canary", 10.0), ("canary", 50.0), ("full", 100.0)]
    assert rollout.state == RolloutState.COMPLETED
    agent.refresh_from_db()
    assert (agent.stable_version, agent.candidate_release_id, agent.rollout_stage) == (3, None, "")
    assert decide(production, refund(10)).status == "denied"


# --- bad input, one at a time ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"plan": []}, "at least one share"),
        ({"plan": [10, 5]}, "must increase"),
        ({"plan": [0, 100]}, "from 1 to 100"),
        ({"plan": [10, 101]}, "from 1 to 100"),
        ({"stage": "canary", "plan": [100]}, "share below 100 before full"),
        ({"stage": "shadow", "plan": [100]}, "share below 100 before full"),
        ({"stage": "full"}, "starts at staging, shadow or canary"),
        ({"min_decisions": 0}, "minimum decisions"),
    ],
)
def test_a_bad_rollout_is_refused_and_changes_nothing(
    agent: Agent, candidate: Release, options: dict[str, Any], message: str
) -> None:
    arguments = {"stage": Stage.STAGING, **options}
    with pytest.raises(ValidationError, match=message):
        rollouts.rollout_start(actor=SYSTEM, release=candidate, **arguments)
    agent.refresh_from_db()
    assert not Rollout.objects.exists() and agent.candidate_release_id is None


def test_one_rollout_at_a_time_and_never_of_the_stable_release(
    agent: Agent, candidate: Release
) -> None:
    _start(candidate, Stage.SHADOW)
    with pytest.raises(ValidationError, match="A rollout of v3 is running"):
        _start(candidate, Stage.CANARY)
    with pytest.raises(ValidationError, match="already the stable release"):
        _start(Release.objects.get(agent=agent, version=4), Stage.SHADOW)


def test_a_one_click_rollback_ends_the_rollout(
    agent: Agent, candidate: Release, staging: Any
) -> None:
    rollout = _start(candidate, Stage.STAGING)
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=1))
    rollout.refresh_from_db()
    agent.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert "rolled back to v1" in rollout.ended_reason
    assert agent.candidate_release_id is None and agent.stable_version == 5
    assert decide(staging, refund(10)).status == "denied"  # v1: no grant


# --- change approval --------------------------------------------------------------------


def test_a_gated_team_holds_a_change_for_another_persons_approval(
    agent: Agent,
    owner: Any,
    admin_user: Any,
    production: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    alice = Actor.for_user(owner)
    with django_capture_on_commit_callbacks(execute=True):
        _forbid_refunds(agent, actor=alice)
    agent.refresh_from_db()
    assert agent.stable_version == 2  # the change is v3, not in force
    assert decide(production, refund(10)).status == "allowed"
    rollout = Rollout.objects.get(agent=agent)
    assert rollout.state == RolloutState.AWAITING_APPROVAL and rollout.needs_approval
    assert InboxItem.objects.filter(user=admin_user, kind="release.awaiting_approval").exists()
    assert not InboxItem.objects.filter(user=owner, kind="release.awaiting_approval").exists()
    with pytest.raises(ValidationError, match="author of a release cannot approve it"):
        rollouts.rollout_approve(actor=alice, rollout=rollout)
    with pytest.raises(ValidationError, match="team requires an approved, staged rollout"):
        release_rollback(actor=alice, release=rollout.release)
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=rollout)
    rollout.refresh_from_db()
    assert (rollout.state, rollout.approved_by_id) == (RolloutState.RUNNING, admin_user.pk)
    verbs = AuditEvent.objects.filter(target_type="releases.rollout").values_list("verb", flat=True)
    assert list(verbs.order_by("seq")) == ["rollout.started", "rollout.approved"]


def test_under_change_control_its_author_cannot_advance_a_stage_the_guard_has_not_judged(
    agent: Agent, owner: Any, admin_user: Any
) -> None:
    """Approved by a second person, the author then pressed "Advance now" through every
    stage to stable, none judged: the approval was of a staged rollout under guard."""
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    alice, ada = Actor.for_user(owner), Actor.for_user(admin_user)
    _forbid_refunds(agent, actor=alice)
    rollout = rollouts.rollout_approve(actor=ada, rollout=Rollout.objects.get(agent=agent))
    with pytest.raises(ValidationError, match="author of a release cannot advance it before"):
        rollouts.rollout_advance(actor=alice, rollout=rollout, why="looks fine to me")
    with pytest.raises(ValidationError, match="say why you advance it now"):
        rollouts.rollout_advance(actor=ada, rollout=rollout)
    rollout.refresh_from_db()
    assert rollout.stage == Stage.STAGING  # nothing changed
    rollouts.rollout_advance(actor=ada, rollout=rollout, why="staging has no traffic")
    rollout.refresh_from_db()
    assert rollout.stage == Stage.SHADOW
    event = AuditEvent.objects.get(verb="rollout.advanced")
    assert event.actor_label == admin_user.username
    assert event.after["why"] == (
        "staging has no traffic; advanced before the guard judged the stage: the guard has"
        " not looked at it yet"
    )


def test_a_low_risk_agent_of_a_gated_team_is_still_promoted_at_once(
    agent: Agent, production: Any
) -> None:
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="critical")
    grant_refunds(agent)  # the agent is high risk: below critical
    agent.refresh_from_db()
    assert agent.stable_version == 2 and not Rollout.objects.exists()


def test_a_new_change_replaces_a_rollout_still_awaiting_approval(agent: Agent, owner: Any) -> None:
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="low")
    alice = Actor.for_user(owner)
    grant_refunds(agent)
    _forbid_refunds(agent, actor=alice)
    states = dict(Rollout.objects.values_list("release__version", "state"))
    assert states == {2: RolloutState.CANCELLED, 3: RolloutState.AWAITING_APPROVAL}


# --- the guard ---------------------------------------------------------------------------


def test_the_guard_rolls_back_a_release_that_denies_what_stable_allows(
    agent: Agent, candidate: Release, production: Any, django_capture_on_commit_callbacks: Any
) -> None:
    rollout = _start(candidate, Stage.SHADOW)
    for number in range(120):
        decide(production, refund(10, session_id=f"s{number}"))
    with django_capture_on_commit_callbacks(execute=True):
        assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    agent.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK
    assert rollout.ended_reason.startswith("guard: deny rate")
    deny = next(v for v in rollout.verdicts if v.get("metric") == "deny rate")
    assert deny["regressed"] and deny["stable"] == [0, 120] and deny["candidate"] == [120, 120]
    assert agent.candidate_release_id is None and agent.rollout_stage == ""
    assert Action.objects.filter(shadow_version=3).count() == 120
    assert decide(production, refund(10)).shadow_version is None  # no longer evaluated
    told = InboxItem.objects.get(user=agent.owner, kind="rollout.rolled_back")
    assert "deny rate" in told.body
    event = AuditEvent.objects.get(verb="rollout.rolled_back")
    assert event.after["evidence"][0]["metric"] == "deny rate"


def test_the_guard_rolls_back_gross_breakage_long_before_fifty_decisions(
    agent: Agent, candidate: Release, production: Any
) -> None:
    """The candidate denies every refund stable allows: 14 are not yet beyond doubt, the
    15th is, where the mixture alone waited for 50."""
    rollout = _start(candidate, Stage.SHADOW)
    for number in range(14):
        decide(production, refund(10, session_id=f"s{number}"))
    assert guard.rollouts_guard() == {str(rollout.pk): "watching"}
    decide(production, refund(10, session_id="s14"))
    assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    deny = next(v for v in rollout.verdicts if v.get("metric") == "deny rate")
    assert deny["regressed"] and not deny["enough"]
    assert deny["stable"] == [0, 15] and deny["candidate"] == [15, 15]
    assert rollout.ended_reason.startswith("guard: deny rate 100.0% under the candidate")
    assert rollout.ended_reason.endswith(
        "on so few decisions, beyond doubt: stable's rate is at most 49.9% and the candidate's"
        " evidence of a higher one 2,097 (threshold 2,000): a regression"
    )


def test_the_guard_advances_a_clean_stage_once_it_has_enough_decisions(
    agent: Agent, production: Any
) -> None:
    grant_refunds(agent)
    policy_object_create(  # v3: a harmless change, the same decisions for refunds
        actor=SYSTEM, obj=Rule(agent=agent, name="no email", effect="forbid", action="email.send")
    )
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))
    rollout = _start(Release.objects.get(agent=agent, version=3), Stage.SHADOW, min_decisions=30)
    for number in range(20):
        decide(production, refund(10, session_id=f"s{number}"))
    assert guard.rollouts_guard() == {str(rollout.pk): "watching"}
    # 40 is past the rollout's 30, but fewer than a verdict is drawn from (50 under each):
    # the stage advanced here before the guard could have told a regression.
    for number in range(20):
        decide(production, refund(10, session_id=f"t{number}"))
    assert guard.rollouts_guard() == {str(rollout.pk): "watching"}
    for number in range(10):
        decide(production, refund(10, session_id=f"u{number}"))
    assert guard.rollouts_guard() == {str(rollout.pk): "advanced"}
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.share_percent) == (Stage.CANARY, 1.0)


def _harmless_candidate(agent: Agent) -> Release:
    """v3 forbids email, which the agent never sends: the same decisions for refunds."""
    grant_refunds(agent)
    policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name="no email", effect="forbid", action="email.send")
    )
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))
    return Release.objects.get(agent=agent, version=3)


def test_the_guard_waits_for_a_person_when_stable_had_too_few_to_compare_with(
    agent: Agent,
    staging: Any,
    production: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A staging stage of an agent with little staging traffic before it: the candidate
    has its decisions, but stable's 10 are too few for any verdict. The guard advanced
    such a stage unjudged; it now waits for a person, tells the owner once, and the
    page, the command and the inbox say why."""
    from io import StringIO

    from django.core.management import call_command
    from django.urls import reverse

    candidate = _harmless_candidate(agent)
    for _ in range(10):
        decide(staging, refund(10))  # stable's staging history: 10 decisions
        decide(production, refund(10))
    rollout = _start(candidate, Stage.STAGING, min_decisions=50)
    for _ in range(49):
        decide(staging, refund(10))
    assert guard.rollouts_guard() == {str(rollout.pk): "watching"}
    rollout.refresh_from_db()
    assert rollout.waits_for_a_person == ""  # not its decisions yet: nothing to say
    decide(staging, refund(10))
    for _ in range(2):  # looked at twice: told once
        with django_capture_on_commit_callbacks(execute=True):
            assert guard.rollouts_guard() == {str(rollout.pk): "waiting"}
    rollout.refresh_from_db()
    assert (rollout.state, rollout.stage) == (RolloutState.RUNNING, Stage.STAGING)
    why = (
        "The guard has not judged this stage: stable made 10 staging decisions in the week"
        " before the stage to compare with, and a verdict needs at least 50 under each."
    )
    assert rollout.waits_for_a_person.startswith(why)
    told = InboxItem.objects.get(user=agent.owner, kind="rollout.waiting")
    assert told.title == f"{agent.name}: rollout of v3 waits for you at staging"
    assert told.body == rollout.waits_for_a_person
    client.force_login(agent.owner)
    page = client.get(reverse("releases:detail", args=[agent.slug, 3])).content.decode()
    assert why in page
    out = StringIO()
    call_command("release", agent.slug, "status", stdout=out)
    assert why in out.getvalue()
    # A person advances it; the next stage is judged afresh (shadow: the same requests).
    inbox = client.get("/inbox/").content.decode()
    assert "rollout of v3 waits for you at staging" in inbox and "Since then" not in inbox
    rollouts.rollout_advance(actor=SYSTEM, rollout=rollout, why="looked at it")
    rollout.refresh_from_db()
    assert rollout.stage == Stage.SHADOW and rollout.waits_for_a_person == ""
    inbox = client.get("/inbox/").content.decode()
    assert "Since then: advanced to shadow; it no longer waits for you." in inbox
    for number in range(50):
        decide(production, refund(10, session_id=f"s{number}"))
    assert guard.rollouts_guard() == {str(rollout.pk): "advanced"}


def test_the_waiting_rollouts_item_says_what_became_of_it(
    agent: Agent, staging: Any, production: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from oversight.notifications.since import items_since

    candidate = _harmless_candidate(agent)
    for _ in range(3):
        decide(production, refund(10))  # refunds are not new to the agent
    rollout = _start(candidate, Stage.STAGING, min_decisions=50)
    for _ in range(50):
        decide(staging, refund(10))
    with django_capture_on_commit_callbacks(execute=True):
        assert guard.rollouts_guard() == {str(rollout.pk): "waiting"}
    item = InboxItem.objects.get(kind="rollout.waiting")

    def since() -> str:
        found = InboxItem.objects.get(pk=item.pk)
        items_since([found])
        now = getattr(found, "now", None)
        return "" if now is None else now.words

    assert since() == ""  # still waiting where it was
    rollouts.rollout_pause(actor=SYSTEM, rollout=rollout, why="a look")
    assert since() == "paused"
    rollouts.rollout_resume(actor=SYSTEM, rollout=Rollout.objects.get(pk=rollout.pk))
    assert since() == "resumed; the stage counts its decisions again"
    rollouts.rollout_roll_back(actor=SYSTEM, rollout=Rollout.objects.get(pk=rollout.pk), why="no")
    assert since() == "rolled back"


def test_in_staging_the_guard_advances_once_stable_had_enough_to_compare_with(
    agent: Agent, staging: Any
) -> None:
    candidate = _harmless_candidate(agent)
    for _ in range(50):
        decide(staging, refund(10))
    rollout = _start(candidate, Stage.STAGING, min_decisions=50)
    for _ in range(50):
        decide(staging, refund(10))
    assert guard.rollouts_guard() == {str(rollout.pk): "advanced"}
    rollout.refresh_from_db()
    assert rollout.stage == Stage.SHADOW


def test_the_guard_flags_an_action_stable_never_took(
    agent: Agent, staging: Any, production: Any
) -> None:
    grant_refunds(agent)
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="payments.payout"))
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))
    rollout = _start(Release.objects.get(agent=agent, version=3), Stage.STAGING)
    for _ in range(3):
        decide(production, refund(10))
    for number in range(3):
        decide(staging, {"action": "payments.payout", "resource": f"bank:acct/{number}"})
    assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    kinds = {row["kind"]: row for row in rollout.verdicts if row.get("regressed")}
    assert kinds["new action"]["name"] == "payments.payout"
    assert kinds["new resource kind"]["name"] == "bank:acct/"


def test_assignment_without_a_rollout_is_the_stable_release(agent: Agent) -> None:
    found = assign(agent, environment="staging", session_id="x")
    assert (found.release_id, found.version, found.shadow_id) == (
        agent.stable_release_id,
        agent.stable_version,
        None,
    )


def test_a_rolled_back_candidate_leaves_the_working_copy_as_stable_is(
    agent: Agent, owner: Any, admin_user: Any, production: Any
) -> None:
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    _forbid_refunds(agent, actor=Actor.for_user(owner))  # v3, awaiting approval
    rollout = Rollout.objects.get(agent=agent)
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=rollout)
    assert Rule.objects.filter(agent=agent, name="no refunds").exists()
    rollouts.rollout_roll_back(actor=Actor.for_user(admin_user), rollout=rollout, why="no")
    assert not Rule.objects.filter(agent=agent, name="no refunds").exists()
    agent.refresh_from_db()
    assert agent.stable_version == 2 and Release.objects.filter(agent=agent).count() == 3
    # The next change starts from stable: the rejected rule does not come back with it,
    # and the release says it was made from stable (it said "from v3", the candidate).
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="crm.note"))
    newest = Release.objects.filter(agent=agent).order_by("-version").first()
    assert [r["name"] for r in newest.content["rules"]] == []
    assert (newest.version, newest.parent.version) == (4, 2)
    # And the change after it is made from it.
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="crm.read"))
    after = Release.objects.filter(agent=agent).order_by("-version").first()
    assert (after.version, after.parent.version) == (5, 4)


def test_withdrawing_a_change_awaiting_approval_restores_the_working_copy(
    agent: Agent, owner: Any
) -> None:
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    _forbid_refunds(agent, actor=Actor.for_user(owner))
    rollout = Rollout.objects.get(agent=agent)
    rollouts.rollout_cancel(actor=Actor.for_user(owner), rollout=rollout, why="wrong rule")
    assert not Rule.objects.filter(agent=agent, name="no refunds").exists()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.CANCELLED


def test_under_change_control_one_click_goes_back_only_to_what_was_in_force(
    agent: Agent, owner: Any, client: Any
) -> None:
    """A change whose rollout was cancelled (never approved, never in force) cannot be
    made stable by "Roll back to vN", whatever its number: it would skip the second
    person. Content once in force can be gone back to; the release page offers the
    button only where the click would work."""
    from django.urls import reverse

    grant_refunds(agent)  # v2, in force
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    alice = Actor.for_user(owner)
    _forbid_refunds(agent, actor=alice)  # v3, awaiting approval
    waiting = Rollout.objects.get(agent=agent, state=RolloutState.AWAITING_APPROVAL)
    rollouts.rollout_cancel(actor=alice, rollout=waiting, why="not yet")
    # Back to v1 (in force once): stable is now newer than v3.
    assert release_rollback(actor=alice, release=Release.objects.get(agent=agent, version=1))
    agent.refresh_from_db()
    never = Release.objects.get(agent=agent, version=3)
    assert agent.stable_version > never.version
    with pytest.raises(ValidationError, match="v3 was never in force"):
        release_rollback(actor=alice, release=never)
    agent.refresh_from_db()
    stable = agent.stable_version
    client.force_login(owner)
    page = client.get(reverse("releases:detail", args=[agent.slug, 3])).content.decode()
    assert "Roll back to v3" not in page and "Make v3 stable now" not in page
    assert client.post(reverse("releases:rollback", args=[agent.slug, 3])).status_code in (
        302,
        400,
    )
    agent.refresh_from_db()
    assert agent.stable_version == stable  # nothing changed
    page = client.get(reverse("releases:detail", args=[agent.slug, 2])).content.decode()
    assert "Roll back to v2" in page  # in force once: one click


def test_in_staging_the_guard_compares_with_stables_staging_traffic_before_the_stage(
    agent: Agent, candidate: Release, staging: Any, production: Any
) -> None:
    for _ in range(60):
        assert decide(staging, refund(10)).status == "dry_run"  # under stable (v4)
        decide(production, refund(10))
    rollout = _start(candidate, Stage.STAGING)
    for _ in range(60):
        assert decide(staging, refund(10)).status == "denied"  # under the candidate (v3)
    assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    deny = next(v for v in rollout.verdicts if v.get("metric") == "deny rate")
    assert deny["stable"] == [0, 60] and deny["candidate"] == [60, 60]


def test_policy_export_exports_what_is_in_force_not_a_change_awaiting_its_rollout(
    agent: Agent, owner: Any
) -> None:
    from oversight.policy.manifest.export import manifest_export

    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    _forbid_refunds(agent, actor=Actor.for_user(owner))  # v3, awaiting approval
    exported = manifest_export()
    assert "payments.refund" in exported and "no refunds" not in exported


def test_the_owner_is_asked_to_approve_a_change_an_admin_made(
    agent: Agent, owner: Any, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    with django_capture_on_commit_callbacks(execute=True):
        _forbid_refunds(agent, actor=Actor.for_user(admin_user))
    asked = set(
        InboxItem.objects.filter(kind="release.awaiting_approval").values_list(
            "user__username", flat=True
        )
    )
    assert asked == {owner.username}  # who may change the agent, but not its author


def test_a_rollback_succeeds_even_when_the_working_copy_cannot_be_restored(
    agent: Agent, owner: Any, admin_user: Any, production: Any
) -> None:
    """Stable holds a rule nobody can approve any more: restoring it is refused, but the
    candidate still stops deciding at once."""
    from tests.gateway.helpers import hold_large_refunds

    grant_refunds(agent)
    hold_large_refunds(agent)  # v3, stable; its approvers are standby reviewers
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    rule = Rule.objects.get(agent=agent, name="large refunds")
    from oversight.policy.services import policy_object_delete

    policy_object_delete(actor=Actor.for_user(owner), obj=rule)  # v4: awaiting approval
    rollout = Rollout.objects.get(agent=agent)
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=rollout)
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username__startswith="standby").update(is_active=False)
    rollouts.rollout_roll_back(actor=SYSTEM, rollout=rollout, why="bad")
    rollout.refresh_from_db()
    agent.refresh_from_db()
    assert rollout.state == RolloutState.ROLLED_BACK and agent.candidate_release_id is None
    assert not Rule.objects.filter(agent=agent, name="large refunds").exists()  # not restored


def _comment(number: int, **fields: Any) -> dict[str, Any]:
    return {"action": "crm.ticket.comment", "resource": f"crm:ticket/{number}", **fields}


def _canary_after_a_rollback(agent: Agent, production: Any) -> tuple[Release, list[str]]:
    """The agent comments on tickets under a release and the next; a rollback to the first
    makes a new stable release (its content, no history of its own); a harmless change
    is in a canary of 50%. Returns the candidate and sessions its canary decides."""
    grant_refunds(agent)
    first = Release.objects.get(agent=agent, version=agent.releases.count())
    for number in range(5):
        decide(production, _comment(number))
    policy_object_create(  # promoted at once
        actor=SYSTEM, obj=Rule(agent=agent, name="no email", effect="forbid", action="email.send")
    )
    for number in range(5):
        decide(production, _comment(number))
    release_rollback(actor=SYSTEM, release=first)
    with releases_batched(notes="a harmless change", promote=False):
        policy_object_create(
            actor=SYSTEM, obj=Rule(agent=agent, name="no fax", effect="forbid", action="fax.send")
        )
    agent.refresh_from_db()
    stable = Release.objects.get(pk=agent.stable_release_id)
    assert stable.digest == first.digest and stable.version > first.version + 1
    assert not Action.objects.filter(agent=agent, release_version=stable.version).exists()
    candidate = agent.releases.order_by("-version").first()
    _start(candidate, Stage.CANARY, plan=[50, 100])
    return candidate, sessions_in_buckets(agent, candidate, start=0, end=BUCKETS // 2, count=6)


def test_the_guard_knows_what_the_agent_did_before_a_rollback_made_stable(
    agent: Agent, production: Any
) -> None:
    candidate, sessions = _canary_after_a_rollback(agent, production)
    for number, session in enumerate(sessions):
        action = decide(production, _comment(number, session_id=session))
        assert action.release_version == candidate.version
    rollout = Rollout.objects.get(release=candidate)
    assert guard.rollouts_guard() == {str(rollout.pk): "watching"}
    rollout.refresh_from_db()
    assert [row for row in rollout.verdicts if row["kind"] != "metric"] == []


def _payout(number: int, **fields: Any) -> dict[str, Any]:
    return {"action": "payments.payout", "resource": f"bank:acct/{number}", **fields}


def test_the_guard_still_flags_what_the_agent_never_did_under_a_stable_release(
    agent: Agent, production: Any, staging: Any
) -> None:
    """New to the agent: done neither under a stable release nor only under a candidate
    that was rolled back."""
    with releases_batched(notes="payouts", promote=False):
        policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action="payments.payout"))
    rejected = _start(agent.releases.order_by("-version").first(), Stage.STAGING)
    for number in range(3):
        decide(staging, _payout(number))
    rollouts.rollout_roll_back(actor=SYSTEM, rollout=rejected, why="no payouts")
    candidate, sessions = _canary_after_a_rollback(agent, production)
    for number, session in enumerate(sessions):
        decide(production, _comment(number, session_id=session))
        decide(production, _payout(number, session_id=session))
    rollout = Rollout.objects.get(release=candidate)
    assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    found = {(row["kind"], row["name"]) for row in rollout.verdicts if row.get("regressed")}
    assert found == {("new action", "payments.payout"), ("new resource kind", "bank:acct/")}
    assert "never under a stable release in the 7 days before" in rollout.ended_reason


def test_in_staging_stables_history_includes_its_content_under_an_earlier_version(
    agent: Agent, staging: Any
) -> None:
    """Stable (v4) was made by a rollback to v2: v2's staging traffic is stable's."""
    grant_refunds(agent)  # v2
    for _ in range(60):
        assert decide(staging, refund(10)).release_version == 2
    _forbid_refunds(agent)  # v3, promoted
    release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=2))  # v4
    rollout = _start(Release.objects.get(agent=agent, version=3), Stage.STAGING)
    for _ in range(60):
        assert decide(staging, refund(10)).status == "denied"
    assert guard.rollouts_guard() == {str(rollout.pk): "rolled_back"}
    rollout.refresh_from_db()
    deny = next(v for v in rollout.verdicts if v.get("metric") == "deny rate")
    assert deny["stable"] == [0, 60] and deny["candidate"] == [60, 60]


# --- a canary is a share below 100, and change control starts at staging -----------------


def test_a_plan_of_100_alone_is_refused_by_the_page_and_the_command(
    client: Any, owner: Any, agent: Agent, candidate: Release
) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command
    from django.urls import reverse

    client.force_login(owner)
    start = reverse("releases:rollout-start", args=[agent.slug, 3])
    answer = client.post(
        start, {"stage": "canary", "plan": "100", "min_decisions": 200}, follow=True
    )
    assert "The rollout was not started" in answer.content.decode()
    assert "share below 100 before full" in answer.content.decode()
    assert "Canary shares (%): " in answer.content.decode()  # the field's label, not "plan:"
    with pytest.raises(CommandError, match="share below 100 before full"):
        call_command(
            "release", agent.slug, "start", "3", stage="canary", plan="100", stdout=StringIO()
        )
    agent.refresh_from_db()
    assert not Rollout.objects.exists() and agent.candidate_release_id is None
    assert agent.canary_share == 0


def test_under_change_control_a_rollout_starts_at_staging_and_approval_keeps_it_there(
    agent: Agent, owner: Any, admin_user: Any, production: Any
) -> None:
    grant_refunds(agent)
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    alice = Actor.for_user(owner)
    _forbid_refunds(agent, actor=alice)  # v3, awaiting approval at staging
    waiting = Rollout.objects.get(agent=agent)
    rollouts.rollout_cancel(actor=alice, rollout=waiting, why="try a canary")
    release = Release.objects.get(agent=agent, version=3)
    for stage in (Stage.CANARY, Stage.SHADOW):
        with pytest.raises(ValidationError, match="requires an approved, staged rollout"):
            rollouts.rollout_start(actor=alice, release=release, stage=stage, plan=[50, 100])
    assert not Rollout.objects.filter(state__in=LIVE_STATES).exists()
    rollout = rollouts.rollout_start(actor=alice, release=release, stage=Stage.STAGING)
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=rollout)
    rollout.refresh_from_db()
    agent.refresh_from_db()
    assert (rollout.state, rollout.stage) == (RolloutState.RUNNING, Stage.STAGING)
    assert (agent.rollout_stage, agent.canary_share) == (Stage.STAGING, 0)
    assert decide(production, refund(10, session_id="s")).release_version == 2  # stable
