"""policy_apply and policy_export: atomic, idempotent, audited, round-tripping."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from oversight.agents.models import Agent
from oversight.audit.models import AuditEvent
from oversight.policy.models import Grant, Limit, Rule
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "manifest.yaml"


def _apply(text: str, *args: str) -> str:
    out = StringIO()
    call_command("policy_apply", "-", *args, stdin=StringIO(text), stdout=out)
    return out.getvalue()


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """The example's owner, and rita, its team's reviewer (its hold rule needs one)."""
    make_user(django_user_model, "rita")
    return make_user(django_user_model, "alice")


def test_the_documented_example_applies(alice: Any) -> None:
    out = StringIO()
    call_command("policy_apply", str(EXAMPLE), stdout=out)
    agent = Agent.objects.get(slug="refund-bot")
    assert agent.owner == alice and agent.team.name == "payments"
    assert Grant.objects.filter(agent=agent).count() == 2
    hold = Rule.objects.get(agent=agent, name="big refunds need a human")
    assert (hold.effect, hold.condition, hold.expires_in_seconds) == (
        "hold",
        "params.amount > 500",
        900,
    )
    volume = Limit.objects.get(agent=agent)
    assert (volume.max_count, volume.sum_param, int(volume.max_sum), volume.on_exceed) == (
        100,
        "amount",
        10000,
        "hold",
    )
    assert Limit.objects.get(team__name="payments").scope == "team"
    assert hold.approvers == "team_reviewers"
    assert [u.username for u in agent.team.reviewers] == ["rita"]
    assert "9 changes" in out.getvalue()


def test_applying_twice_changes_nothing_the_second_time(alice: Any) -> None:
    text = EXAMPLE.read_text()
    _apply(text)
    events = AuditEvent.objects.count()
    assert "no changes" in _apply(text)
    assert AuditEvent.objects.count() == events


def test_a_teams_description_left_out_is_left_as_it_is(alice: Any) -> None:
    from oversight.accounts.models import Team

    _apply("teams:\n  - {name: payments, description: Refunds and disputes.}\n")
    assert "no changes" in _apply("teams:\n  - {name: payments}\n")
    assert Team.objects.get(name="payments").description == "Refunds and disputes."
    assert "~ team payments: description" in _apply(
        "teams:\n  - {name: payments, description: ''}\n"
    )
    assert Team.objects.get(name="payments").description == ""


def test_every_change_is_audited_and_bumps_the_policy_version(alice: Any) -> None:
    _apply(EXAMPLE.read_text())
    agent = Agent.objects.get(slug="refund-bot")
    version = agent.policy_version
    out = _apply(EXAMPLE.read_text().replace("max_count: 100", "max_count: 40"))
    assert "~ refund-bot: limit refund volume: max_count" in out
    agent.refresh_from_db()
    assert agent.policy_version == version + 1
    event = AuditEvent.objects.get(verb="limit.updated")
    assert (event.before["max_count"], event.after["max_count"]) == (100, 40)
    assert event.actor_label == "system:policy_apply"


def test_a_dry_run_shows_the_changes_and_makes_none(alice: Any) -> None:
    out = _apply(EXAMPLE.read_text(), "--dry-run")
    assert "+ agent refund-bot" in out and "would change" in out
    assert not Agent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_entries_missing_from_the_file_are_removed(alice: Any) -> None:
    _apply(EXAMPLE.read_text())
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    shorter = "".join(line for line in lines if "name: no bulk refunds" not in line)
    out = _apply(shorter)
    assert "- refund-bot: rule no bulk refunds" in out
    assert not Rule.objects.filter(name="no bulk refunds").exists()
    assert AuditEvent.objects.filter(verb="rule.deleted").count() == 1


def test_an_unknown_owner_fails_clearly_and_changes_nothing(alice: Any) -> None:
    text = EXAMPLE.read_text() + (
        "  - {slug: other-bot, name: Other, owner: nobody, team: payments, purpose: x}\n"
    )
    with pytest.raises(CommandError, match=r"agents\[1\]\.owner: no active user 'nobody'.*Nothing"):
        _apply(text)
    # the first agent in the same file was not created either: one transaction
    assert not Agent.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("params.amount > 500", "params.amount >"),
            r"agents\[0\]\.rules\[0\]\.when: line 1, column 16",
        ),
        (
            ("params.amount > 500", "action + 1"),
            r"rules\[0\]\.when: line 1, column 8: `\+` does not apply to a string and a number",
        ),
        (("review_every_days", "review_days"), r"agents\[0\]: unknown key 'review_days'"),
        (
            ("expires_in: 15m", "expires_in: 10s"),
            r"rules\[0\]\.expires_in: Ensure this is at least 30 seconds",
        ),
        (
            ("expires_in: 15m", "expires_in: 30d"),
            r"rules\[0\]\.expires_in: Ensure this is at most 604,800 seconds",
        ),
        (
            ("effect: forbid", "effect: maybe"),
            r"rules\[1\]\.effect: must be permit, forbid or hold",
        ),
        (
            ("window: 1h, max_count", "window: soon, max_count"),
            r"limits\[0\]\.window: 'soon' is not a duration",
        ),
        (('resource: "stripe:charge/*"', 'resource: "stripe: charge"'), r"grants\[0\]\.resource"),
        (
            (
                '- {action: "crm.ticket.*"',
                '- {action: "payments.refund", resource: "stripe:charge/*"} #',
            ),
            r"appears twice",
        ),
    ],
)
def test_bad_input_is_refused_with_its_place_named(
    alice: Any, edit: tuple[str, str], message: str
) -> None:
    text = EXAMPLE.read_text().replace(*edit)
    assert text != EXAMPLE.read_text()
    with pytest.raises(CommandError, match=message):
        _apply(text)
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("agents: {}\n", r"^standard input: agents: expected a list")],
)
def test_an_empty_file_or_a_mapping_for_a_list_is_refused(text: str, message: str) -> None:
    """Both reported "no changes"."""
    with pytest.raises(CommandError, match=message):
        _apply(text)


def test_not_yaml_at_all_is_refused() -> None:
    with pytest.raises(CommandError, match="not valid YAML"):
        _apply("agents: [unclosed")


def test_a_missing_file_is_reported() -> None:
    with pytest.raises(CommandError, match=r"Cannot read /no/such/file\.yaml"):
        call_command("policy_apply", "/no/such/file.yaml")


def test_an_export_applies_back_without_changes(alice: Any) -> None:
    _apply(EXAMPLE.read_text() + "limits:\n  - {name: everyone, window: 1d, max_count: 100000}\n")
    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "no changes" in _apply(exported.getvalue())
    assert "refund-bot" in exported.getvalue() and "team refunds" in exported.getvalue()
    assert Limit.objects.get(name="everyone").scope == "everyone"


def test_an_export_applies_back_unchanged_after_its_people_left(
    alice: Any, django_user_model: Any
) -> None:
    """The owner, a team reviewer and a rule's approver deactivated since: an export still
    applies back with no change, and a new agent still needs an active owner."""
    make_user(django_user_model, "ada", "admin")
    _apply(APPROVERS)
    django_user_model.objects.filter(username__in=["alice", "rita"]).update(is_active=False)
    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "owner: alice" in exported.getvalue() and "people:\n" in exported.getvalue()
    assert "no changes" in _apply(exported.getvalue())
    added = exported.getvalue().replace("slug: refund-bot", "slug: refund-bot-2", 1)
    with pytest.raises(CommandError, match=r"agents\[0\]\.owner: no active user 'alice'"):
        _apply(added)


def test_a_limit_of_zero_made_on_the_page_exports_and_applies_back(alice: Any) -> None:
    """The page takes "at most 0 actions" (every matching action is over); the manifest
    refused it ("expected a whole number of at least 1"), so its export did not apply."""
    _apply(EXAMPLE.read_text() + "limits:\n  - {name: frozen, window: 1m, max_count: 0}\n")
    assert Limit.objects.get(name="frozen").max_count == 0
    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "no changes" in _apply(exported.getvalue())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                'resource: "stripe:charge/*"',
                'resource: "stripe:charge/*", expires_at: "2020-01-01"',
            ),
            r"grants\[0\]\.expires_at: This moment has passed: a grant expires in the future",
        ),
        (
            ("effect: forbid,", "effect: forbid, approvals: 3,"),
            r"rules\[1\]\.approvals: only a hold rule has it, not a forbid",
        ),
    ],
)
def test_what_the_page_refuses_the_manifest_refuses(
    alice: Any, edit: tuple[str, str], message: str
) -> None:
    """A grant expired when made, and a forbid rule's approvals (kept nowhere, left out of
    the export, so the export applied back read "~ rule: approvals"), were accepted."""
    text = EXAMPLE.read_text().replace(*edit, 1)
    assert text != EXAMPLE.read_text()
    with pytest.raises(CommandError, match=message):
        _apply(text)
    assert not Agent.objects.exists()


def test_a_retired_agent_in_a_manifest_is_refused_and_nothing_changes(alice: Any) -> None:
    """Its policy would have been changed behind a retirement ("kept read-only")."""
    from oversight.reviews.services import agent_retire
    from tests.conftest import SYSTEM

    _apply(EXAMPLE.read_text())
    agent_retire(actor=SYSTEM, agent=Agent.objects.get(slug="refund-bot"), reason="replaced")
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=r"agents\[0\]: refund-bot is retired: it is kept"):
        _apply(EXAMPLE.read_text())
    assert AuditEvent.objects.count() == events


def test_a_blank_field_is_named(alice: Any) -> None:
    blank = r"agents\[0\]\.purpose: This field cannot be blank\. Nothing was changed\.$"
    with pytest.raises(CommandError, match=blank):
        _apply(EXAMPLE.read_text().replace("purpose: ", "purpose: '' #", 1))


def test_a_hold_rule_may_forbid_edits_and_the_export_keeps_it(alice: Any) -> None:
    text = EXAMPLE.read_text().replace("approvals: 1,", "approvals: 1, edits_allowed: false,")
    assert text != EXAMPLE.read_text()
    _apply(text)
    assert Rule.objects.get(name="big refunds need a human").edits_allowed is False
    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "edits_allowed: false" in exported.getvalue()
    assert "no changes" in _apply(exported.getvalue())


def test_edits_allowed_must_be_true_or_false(alice: Any) -> None:
    text = EXAMPLE.read_text().replace("approvals: 1,", "approvals: 1, edits_allowed: sometimes,")
    with pytest.raises(CommandError, match=r"rules\[0\]\.edits_allowed: expected true or false"):
        _apply(text)
    assert not Agent.objects.exists()


APPROVERS = """
teams:
  - name: payments
    reviewers: [rita]
agents:
  - slug: refund-bot
    name: Refund bot
    owner: alice
    team: payments
    purpose: Refunds
    grants: [{action: "payments.refund"}]
    rules:
      - {name: by rita, effect: hold, action: "payments.refund", approvers: {people: [rita]}}
      - {name: by admins, effect: hold, action: "payments.*", approvers: {role: admin}}
"""


def test_approvers_are_applied_exported_and_applied_back_unchanged(
    alice: Any, django_user_model: Any
) -> None:
    make_user(django_user_model, "ada", "admin")
    _apply(APPROVERS)
    by_rita = Rule.objects.get(name="by rita")
    assert by_rita.approvers == "people"
    assert [u.username for u in by_rita.approver_people.all()] == ["rita"]
    assert Rule.objects.get(name="by admins").approver_role == "admin"
    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "people:\n" in exported.getvalue() and "role: admin" in exported.getvalue()
    assert "no changes" in _apply(exported.getvalue())
    # the people change: one update, audited
    assert "~ refund-bot: rule by rita: approver_people" in _apply(
        APPROVERS.replace("people: [rita]", "people: [ada]")
    )
    assert [u.username for u in Rule.objects.get(name="by rita").approver_people.all()] == ["ada"]


def test_an_unknown_approver_is_refused_and_nothing_changes(alice: Any) -> None:
    with pytest.raises(CommandError, match=r"rules\[0\]: no active user 'nobody'"):
        _apply(APPROVERS.replace("people: [rita]", "people: [nobody]"))
    assert not Agent.objects.exists()


def test_a_bad_approvers_value_names_what_is_allowed(alice: Any) -> None:
    with pytest.raises(CommandError, match=r"rules\[0\]\.approvers: expected access"):
        _apply(APPROVERS.replace("approvers: {people: [rita]}", "approvers: everyone"))


CONFIG = """
    instructions: Refund what the ticket asks for, never more.
    model: gpt-x
    model_settings: {temperature: 0}
    tools:
      - {name: refund, description: Refund a charge., input_schema: {type: object}}
"""


def test_the_agent_config_is_applied_released_and_exported_back_unchanged(alice: Any) -> None:
    text = EXAMPLE.read_text()
    _apply(text)
    before = Agent.objects.get(slug="refund-bot")
    with_config = text.replace("    purpose:", CONFIG.strip("\n") + "\n    purpose:", 1)
    assert with_config != text
    _apply(with_config)
    agent = Agent.objects.get(slug="refund-bot")
    assert agent.instructions.startswith("Refund what the ticket asks for")
    assert (agent.model_name, agent.model_settings) == ("gpt-x", {"temperature": 0})
    assert [tool["name"] for tool in agent.tools] == ["refund"]
    assert agent.stable_version == before.stable_version + 1  # one release for the change
    assert agent.stable_release.content["config"]["model_name"] == "gpt-x"

    exported = StringIO()
    call_command("policy_export", stdout=exported)
    assert "model: gpt-x" in exported.getvalue()
    assert "no changes" in _apply(exported.getvalue())
    assert "no changes" in _apply(text)  # a manifest without config leaves it as it is


def test_bad_tools_in_the_config_are_refused_and_nothing_changes(alice: Any) -> None:
    bad = EXAMPLE.read_text().replace("    purpose:", "    tools: [{name: 3}]\n    purpose:", 1)
    with pytest.raises(CommandError, match=r"agents\[0\]"):
        _apply(bad)
    assert not Agent.objects.exists()
