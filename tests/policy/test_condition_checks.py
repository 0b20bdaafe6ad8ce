"""Saving a rule whose condition cannot work with the agent's parameters is refused, in
the browser and by policy_apply, with a message saying where, what and why the type is
known; the add-rule form shows the variables and the agent's parameters."""

from __future__ import annotations

import html
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, ManagementUtility, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.gateway.pipeline import ActionInput, policy_request
from oversight.policy.engine.conditions import ENV
from oversight.policy.engine.param_types import AGENT_FIELDS
from oversight.policy.engine.variables import VARIABLE_NAMES
from oversight.policy.models import Limit, Rule
from oversight.policy.param_evidence import param_evidence, params_by_action
from oversight.policy.services import policy_object_create, policy_object_update
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, grant_refunds, limit_create, refund

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "manifest.yaml"


@pytest.fixture
def token(agent: Agent) -> AgentToken:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


@pytest.fixture
def traffic(agent: Agent, token: AgentToken) -> Agent:
    """Three refunds (numbers, a list of charges) and a ticket update (a string id)."""
    grant_refunds(agent)
    for amount in (120, 900, 45.5):
        decide(token, refund(amount, charges=("ch_1", "ch_2")))
    decide(
        token,
        {"action": "crm.ticket.update", "resource": "crm:ticket/1", "params": {"amount": "n/a"}},
    )
    return agent


def _rule(
    agent: Agent, condition: str, action: str = "payments.refund", name: str = "check"
) -> Rule:
    return Rule(agent=agent, name=name, effect="hold", action=action, condition=condition)


def _refusal(agent: Agent, condition: str, **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        policy_object_create(actor=SYSTEM, obj=_rule(agent, condition, **fields))
    return " ".join(caught.value.message_dict["condition"])


def test_parameter_types_come_from_the_matching_requests(traffic: Agent) -> None:
    evidence = param_evidence(agent=traffic, action="payments.refund", resource="stripe:*")
    assert evidence.types == {"amount": "number", "charges": "list of strings"}
    assert evidence.requests == 3
    assert param_evidence(agent=traffic, action="crm.*").types == {"amount": "string"}
    assert param_evidence(agent=traffic, action="*").types == {"charges": "list of strings"}
    assert param_evidence(agent=traffic, action="billing.*") == param_evidence(
        agent=traffic, action="billing.x"
    )
    assert params_by_action(agent=traffic) == {
        "crm.ticket.update": {"amount": "string"},
        "payments.refund": {"amount": "number", "charges": "list of strings"},
    }


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "params.amount > 'abc'",
            "line 1, column 15: `>` cannot compare a number with a string; params.amount is "
            "a number. Parameter types come from this agent's last 3 matching requests.",
        ),
        (
            "size(params.amount) > 1",
            "line 1, column 5: size() does not apply to a number; params.amount is a number. "
            "Parameter types come from this agent's last 3 matching requests.",
        ),
    ],
)
def test_a_condition_that_cannot_work_with_the_agent_s_parameters_is_refused(
    traffic: Agent, condition: str, message: str
) -> None:
    version = Agent.objects.get(pk=traffic.pk).policy_version
    events = AuditEvent.objects.count()
    assert _refusal(traffic, condition) == message
    assert not Rule.objects.exists()
    assert AuditEvent.objects.count() == events
    assert Agent.objects.get(pk=traffic.pk).policy_version == version


def test_the_same_condition_on_actions_with_other_parameters_is_accepted(traffic: Agent) -> None:
    policy_object_create(actor=SYSTEM, obj=_rule(traffic, "params.amount > 'abc'", action="crm.*"))
    policy_object_create(actor=SYSTEM, obj=_rule(traffic, "params.amount > 500", name="ok"))


def test_an_edit_to_such_a_condition_is_refused(traffic: Agent) -> None:
    rule = policy_object_create(actor=SYSTEM, obj=_rule(traffic, "params.amount > 500"))
    with pytest.raises(ValidationError, match="cannot compare a number with a string"):
        policy_object_update(actor=SYSTEM, obj=rule, condition="params.amount > '500'")
    assert Rule.objects.get(pk=rule.pk).condition == "params.amount > 500"


def test_a_limit_summing_a_parameter_makes_it_a_number_before_any_request(agent: Agent) -> None:
    limit_create(agent=agent, name="refund total", sum_param="amount", max_sum=1000)
    limit_create(team=agent.team, name="other action", action="crm.*", sum_param="seats", max_sum=9)
    message = _refusal(agent, "params.amount > 'abc' && params.seats > 'x'")
    assert message.endswith("Parameter types come from the limit “refund total”.")
    policy_object_create(actor=SYSTEM, obj=_rule(agent, "params.seats > 'x'"))


def test_requests_that_disagree_with_a_limit_leave_the_type_to_run_time(
    agent: Agent, token: AgentToken
) -> None:
    grant_refunds(agent)
    decide(token, refund("12"))
    limit_create(agent=agent, name="refund total", sum_param="amount", max_sum=1000)
    assert param_evidence(agent=agent, action="payments.refund").types == {
        "charges": "list of strings"
    }
    policy_object_create(actor=SYSTEM, obj=_rule(agent, "params.amount > 'abc'"))


def test_without_requests_or_limits_nothing_is_known(agent: Agent) -> None:
    policy_object_create(actor=SYSTEM, obj=_rule(agent, "size(params.amount) > 1"))


# --- the policy page -------------------------------------------------------------------


def _add_rule(client: Client, user: Any, agent: Agent, condition: str) -> Any:
    client.force_login(user)
    data = {
        "rule-name": "big",
        "rule-effect": "hold",
        "rule-action": "payments.refund",
        "rule-resource": "*",
        "rule-condition": condition,
        "rule-approvals": 1,
        "rule-expires_in_seconds": 600,
    }
    return client.post(reverse("policy:add", args=[agent.slug, "rule"]), data)


def test_the_page_refuses_the_condition_on_its_field(
    client: Client, owner: Any, traffic: Agent
) -> None:
    response = _add_rule(client, owner, traffic, "params.amount > 'abc'")
    assert response.status_code == 422
    page = html.unescape(response.content.decode())
    assert (
        '<p class="error">line 1, column 15: `>` cannot compare a number with a string; '
        "params.amount is a number. Parameter types come from this agent's last 3 matching "
        "requests.</p>"
    ) in page
    assert '<details class="add-form" open>' in page  # the form stays open, as typed
    assert not Rule.objects.exists()


def test_the_page_refuses_a_syntax_error_in_words(client: Client, owner: Any, agent: Agent) -> None:
    response = _add_rule(client, owner, agent, "params.amount > 500 and env == 'production'")
    assert response.status_code == 422
    page = html.unescape(response.content.decode())
    assert "line 1, column 21: `and` is not an operator: write &&" in page
    assert "mismatched input" not in page


def test_the_add_rule_form_shows_the_variables_and_the_agent_s_parameters(
    client: Client, owner: Any, traffic: Agent
) -> None:
    client.force_login(owner)
    page = html.unescape(client.get(reverse("policy:page", args=[traffic.slug])).content.decode())
    for name, kind in [
        ("action", "string"),
        ("resource", "string"),
        ("params", "map"),
        ("agent", "map of strings"),
        ("env", "string"),
        ("time", "timestamp"),
    ]:
        assert (
            f'<tr><td class="mono" data-label="Name">{name}</td><td data-label="Type">{kind}</td>'
        ) in page
    assert (
        '<tr><td class="mono" data-label="Action">payments.refund</td>'
        '<td data-label="Parameters"><code>params.amount</code> number, '
        "<code>params.charges</code> list of strings</td></tr>"
    ) in page
    assert 'aria-describedby="condition-help"' in page


def test_without_requests_the_form_says_types_are_not_known(
    client: Client, owner: Any, agent: Agent
) -> None:
    client.force_login(owner)
    page = html.unescape(client.get(reverse("policy:page", args=[agent.slug])).content.decode())
    assert "has sent no requests yet" in page


def test_the_edit_page_shows_the_same_help(client: Client, owner: Any, traffic: Agent) -> None:
    rule = policy_object_create(actor=SYSTEM, obj=_rule(traffic, "params.amount > 500"))
    client.force_login(owner)
    url = reverse("policy:edit", args=[traffic.slug, "rule", rule.pk])
    page = html.unescape(client.get(url).content.decode())
    assert "<code>params.amount</code> number" in page


# --- policy_apply ------------------------------------------------------------------------


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """The example's owner, and rita, its team's reviewer (its hold rule needs one)."""
    make_user(django_user_model, "rita")
    return make_user(django_user_model, "alice")


BAD = EXAMPLE.read_text().replace('when: "params.amount > 500"', "when: \"params.amount > 'abc'\"")


def test_policy_apply_refuses_it_naming_the_rule_and_changes_nothing(alice: Any) -> None:
    assert EXAMPLE.read_text() != BAD
    with pytest.raises(CommandError) as caught:
        call_command("policy_apply", "-", stdin=StringIO(BAD), stdout=StringIO())
    assert str(caught.value) == (
        "standard input: agents[0].rules[0].when: line 1, column 15: `>` cannot compare a "
        "number with a string; params.amount is a number. Parameter types come from the "
        "limits “refund volume” and “team refunds”. Nothing was changed."
    )
    assert not Agent.objects.exists() and not Limit.objects.exists()
    assert not AuditEvent.objects.exists()


def test_policy_apply_exits_non_zero_and_leaves_an_applied_policy_as_it_was(
    alice: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    # Run as from the shell, which closes the database connections when it ends: not the
    # test's, which is inside its transaction.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    call_command("policy_apply", str(EXAMPLE), stdout=StringIO())
    rules = list(Rule.objects.values_list("name", "condition").order_by("name"))
    events = AuditEvent.objects.count()
    bad = tmp_path / "policy.yaml"
    bad.write_text(BAD.replace('name: "no bulk refunds"', 'name: "renamed"'))
    with pytest.raises(SystemExit) as exit_:
        ManagementUtility(["manage.py", "policy_apply", str(bad)]).execute()
    assert exit_.value.code == 1
    assert "agents[0].rules[0].when: line 1, column 15" in capsys.readouterr().err
    assert list(Rule.objects.values_list("name", "condition").order_by("name")) == rules
    assert AuditEvent.objects.count() == events


def test_the_checked_variables_are_those_the_decision_path_fills(agent: Agent) -> None:
    """The check declares agent's fields as strings and lists the variables people see:
    both must stay what the pipeline builds."""
    credentials = SimpleNamespace(agent=agent, environment="production")
    data = ActionInput(action="payments.refund", resource="stripe:charge/ch_1", params={})
    request = policy_request(credentials, data, timezone.now())  # type: ignore[arg-type]
    assert tuple(request.agent) == AGENT_FIELDS
    assert all(isinstance(value, str) for value in request.agent.values())
    assert "variables" in ENV.config().to_yaml()
    declared = [
        line.split('"')[1] for line in ENV.config().to_yaml().splitlines() if "name:" in line
    ]
    assert sorted(declared) == sorted(VARIABLE_NAMES)
