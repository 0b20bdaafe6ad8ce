"""The reversibility contract of a grant: validated when saved, in the release, in the
manifest, and recorded on every decision it allows."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.policy.engine.compensation import UndoError, undo_params
from oversight.policy.manifest.apply import manifest_apply
from oversight.policy.manifest.export import manifest_export
from oversight.policy.manifest.spec import parse_manifest
from oversight.policy.models import Grant, Rule
from oversight.policy.services import policy_object_create, policy_object_update
from oversight.releases.models import Release
from oversight.releases.services import release_rollback
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, refund

pytestmark = pytest.mark.django_db

UNDO = {"charge": "params.charges[0]", "amount": "after.refunded - before.refunded"}


def _reversible(agent: Agent, **fields: Any) -> Grant:
    values = {
        "action": REFUND,
        "resource": "stripe:charge/*",
        "reversibility": "reversible",
        "undo_action": "payments.charge",
        "undo_params": UNDO,
        "undo_window_seconds": 3600,
        **fields,
    }
    return policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, **values))


@pytest.fixture
def production(agent: Agent) -> Any:
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def test_an_action_under_a_reversible_grant_records_its_compensation(
    agent: Agent, production: Any
) -> None:
    _reversible(agent)
    action = decide(production, refund(40, before={"refunded": 0}))
    assert (action.status, action.reversibility) == ("allowed", "reversible")
    assert action.undo_contract == {
        "action": "payments.charge",
        "params": UNDO,
        "window_seconds": 3600,
    }
    after = {"refunded": 40}
    assert undo_params(
        action.undo_contract["params"], original=action.params, before=action.before, after=after
    ) == {"charge": "ch_1", "amount": 40}


def test_a_grant_that_says_nothing_makes_its_actions_unknown(agent: Agent, production: Any) -> None:
    policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action=REFUND))
    action = decide(production, refund(10))
    assert (action.reversibility, action.undo_contract) == ("unknown", None)


def test_with_several_grants_the_most_cautious_class_wins(agent: Agent, production: Any) -> None:
    _reversible(agent)
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(agent=agent, action="payments.*", reversibility="irreversible"),
    )
    action = decide(production, refund(10))
    assert (action.reversibility, action.undo_contract) == ("irreversible", None)


def test_an_action_allowed_by_a_permit_rule_alone_is_unknown_and_a_denial_is_nothing(
    agent: Agent, production: Any
) -> None:
    policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name="ok", effect="permit", action="crm.note")
    )
    assert decide(production, {"action": "crm.note", "resource": "x"}).reversibility == "unknown"
    assert decide(production, refund(10)).reversibility == ""  # denied: no grant


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"undo_action": ""}, "undo_action", "names the action that undoes it"),
        ({"undo_action": "payments.*"}, "undo_action", "is not an action name"),
        ({"undo_params": {"amount": "params.amount +"}}, "undo_params", "undo param 'amount'"),
        ({"undo_params": {"bad name": "1"}}, "undo_params", "letters, digits and _ only"),
        ({"undo_params": ["params.amount"]}, "undo_params", "a map of name to CEL"),
        ({"undo_window_seconds": 10}, "undo_window_seconds", "Ensure this is at least 60 seconds"),
        ({"reversibility": "read"}, "reversibility", "Only a reversible grant"),
        ({"reversibility": "sometimes"}, "reversibility", "not a valid choice"),
    ],
)
def test_a_bad_contract_is_refused_and_changes_nothing(
    agent: Agent, fields: dict[str, Any], field: str, message: str
) -> None:
    releases = Release.objects.filter(agent=agent).count()
    with pytest.raises(ValidationError) as refused:
        _reversible(agent, **fields)
    assert message in " ".join(refused.value.message_dict[field])
    assert not Grant.objects.exists()
    assert Release.objects.filter(agent=agent).count() == releases


def test_a_team_can_require_every_grant_to_say_what_it_is(agent: Agent) -> None:
    Team.objects.filter(pk=agent.team_id).update(require_reversibility=True)
    agent.team.refresh_from_db()
    with pytest.raises(ValidationError, match="requires every grant to say"):
        policy_object_create(actor=SYSTEM, obj=Grant(agent=agent, action=REFUND))
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="crm.read", reversibility="read")
    )


def test_the_contract_is_in_the_release_and_a_rollback_restores_it(
    agent: Agent, production: Any
) -> None:
    grant = _reversible(agent)
    with_contract = Release.objects.filter(agent=agent).order_by("-version").first()
    assert with_contract.content["grants"][0]["undo"]["action"] == "payments.charge"
    policy_object_update(
        actor=SYSTEM,
        obj=grant,
        reversibility="irreversible",
        undo_action="",
        undo_params={},
        undo_window_seconds=None,
    )
    assert decide(production, refund(10)).reversibility == "irreversible"
    release_rollback(actor=SYSTEM, release=with_contract)
    grant.refresh_from_db()
    assert (grant.reversibility, grant.undo_action) == ("reversible", "payments.charge")
    assert decide(production, refund(10)).reversibility == "reversible"


def test_the_manifest_carries_the_contract_both_ways(agent: Agent) -> None:
    _reversible(agent)
    exported = yaml.safe_load(manifest_export())
    grant = exported["agents"][0]["grants"][0]
    assert grant["reversibility"] == "reversible"
    assert grant["undo"] == {"action": "payments.charge", "params": UNDO, "window": "1h"}
    grant["undo"]["window"] = "2h"
    manifest_apply(manifest=parse_manifest(yaml.safe_dump(exported)), actor=SYSTEM)
    assert Grant.objects.get(agent=agent).undo_window_seconds == 7200


def test_an_undo_param_may_be_a_whole_map_or_list_and_is_plain_json() -> None:
    """The demo's contact edits are undone by writing back ``before``, a map: its values
    came back as CEL's own objects, and the undo's decision failed on them (a 500 on the
    action's page, a rewind stuck for ever)."""
    before = {"email": "a@example.com", "tags": ["vip", {"since": 2024}], "score": 2.5}
    found = undo_params(
        {"fields": "before", "tags": "before.tags", "keys": "{1: params.n}"},
        original={"n": None},
        before=before,
        after={"email": "b@example.com"},
    )
    assert found == {"fields": before, "tags": before["tags"], "keys": {"1": None}}
    assert json.loads(json.dumps(found)) == found


def test_an_undo_param_with_no_json_value_makes_the_undo_impossible() -> None:
    with pytest.raises(UndoError, match=r"undo param 'at'.*has no JSON value"):
        undo_params(
            {"at": 'timestamp("2026-01-01T00:00:00Z")'}, original={}, before=None, after=None
        )


def test_evaluating_undo_params_fails_closed() -> None:
    with pytest.raises(UndoError, match="undo param 'charge'"):
        undo_params({"charge": "after.refund_id"}, original={}, before=None, after={})


def test_a_held_action_records_what_its_grant_says_too(agent: Agent, production: Any) -> None:
    from tests.gateway.helpers import hold_large_refunds

    _reversible(agent)
    hold_large_refunds(agent)
    held = decide(production, refund(900))
    assert (held.status, held.reversibility) == ("pending", "reversible")
    assert held.undo_contract["action"] == "payments.charge"
