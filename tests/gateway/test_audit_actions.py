"""Every action has its decision event, and every decision event its action: verification
names the one without the other (a tail deletion leaves action rows behind)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from oversight.audit import verifier
from oversight.gateway.models import Action
from tests.audit.helpers import tamper
from tests.gateway.helpers import AgentApi, RefundPolicy, refund

pytestmark = pytest.mark.django_db


def test_decisions_verify(api: AgentApi, policy: RefundPolicy) -> None:
    for amount in (10, 20, 30):
        api.decide(refund(amount))
    call_command("audit_verify")


@pytest.mark.django_db(transaction=True)  # tamper() acts as the owner: committed rows
def test_an_action_whose_event_was_cut_from_the_tail_is_named(
    api: AgentApi, policy: RefundPolicy
) -> None:
    api.decide(refund(10))
    newest = api.decide(refund(20))
    tamper("DELETE FROM audit_auditevent WHERE seq = (SELECT max(seq) FROM audit_auditevent)")
    with pytest.raises(CommandError, match=rf"action {newest['id']} .* has no decision event") as e:
        call_command("audit_verify")
    assert e.value.returncode == verifier.EXIT_ACTIONS


def test_an_event_whose_action_was_deleted_is_named(api: AgentApi, policy: RefundPolicy) -> None:
    first = api.decide(refund(10))
    api.decide(refund(20))
    Action.objects.filter(pk=first["id"]).delete()
    with pytest.raises(CommandError, match=rf"records the decision on action {first['id']}") as e:
        call_command("audit_verify")
    assert e.value.returncode == verifier.EXIT_ACTIONS
