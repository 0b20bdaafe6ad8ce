"""The policy page: who may see and change it, validation, audit, and the try-it box."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import agent_access_grant, token_create
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.policy.models import Grant, Limit, LimitCounter, Rule
from oversight.policy.services import policy_object_create, policy_object_update
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant(agent: Any) -> Grant:
    return policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="payments.refund", resource="stripe:charge/*")
    )


def _page(agent: Any) -> str:
    return reverse("policy:page", args=[agent.slug])


def _add(client: Client, user: Any, agent: Any, kind: str, **fields: Any) -> Any:
    client.force_login(user)
    data = {f"{kind}-{key}": value for key, value in fields.items()}
    return client.post(reverse("policy:add", args=[agent.slug, kind]), data)


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 200), ("teammate", 200), ("admin_user", 200), ("outsider", 404)]
)
def test_who_may_see_the_policy(
    client: Client, request: pytest.FixtureRequest, agent: Any, who: str, status: int
) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(_page(agent)).status_code == status


def test_only_those_who_may_change_see_the_forms(
    client: Client, teammate: Any, owner: Any, agent: Any
) -> None:
    client.force_login(teammate)
    assert "Add rule" not in client.get(_page(agent)).content.decode()
    client.force_login(owner)
    assert "Add rule" in client.get(_page(agent)).content.decode()


def test_the_owner_adds_a_rule_and_it_is_audited(client: Client, owner: Any, agent: Any) -> None:
    version = agent.policy_version
    response = _add(
        client, owner, agent, "rule", name="big", effect="hold", action="payments.refund",
        resource="*", condition="params.amount > 500", approvals=1, expires_in_seconds=600,
    )  # fmt: skip
    assert response.status_code == 302
    rule = Rule.objects.get(agent=agent, name="big")
    assert rule.condition == "params.amount > 500"
    agent.refresh_from_db()
    assert agent.policy_version == version + 1
    event = AuditEvent.objects.get(verb="rule.created")
    assert event.actor_label == "alice" and event.after["condition"] == "params.amount > 500"


def test_a_forbid_rules_record_leaves_out_what_only_a_hold_uses(
    client: Client, owner: Any, agent: Any
) -> None:
    """Who approves, how many, by when and edits do nothing for a permit or forbid rule:
    its audit record (and so the agent's history) does not list them as if they did. A
    hold rule's does, and a forbid rule turned into a hold shows them appearing."""
    _add(
        client, owner, agent, "rule", name="no bulk", effect="forbid", action="payments.refund",
        resource="*", condition="size(params.charges) > 1", approvals=1, expires_in_seconds=600,
    )  # fmt: skip
    created = AuditEvent.objects.get(verb="rule.created")
    hold_only = {"approvals", "expires_in_seconds", "edits_allowed", "approvers"}
    assert created.after["effect"] == "forbid" and not hold_only & set(created.after)
    client.force_login(owner)
    page = client.get(f"/agents/{agent.slug}/").content.decode()
    assert "Edits allowed" not in page and "Expires in seconds" not in page

    rule = Rule.objects.get(name="no bulk")
    policy_object_update(actor=SYSTEM, obj=rule, effect="hold")
    updated = AuditEvent.objects.get(verb="rule.updated")
    assert not hold_only & set(updated.before) and hold_only <= set(updated.after)


def test_a_condition_that_does_not_compile_is_refused_with_its_position(
    client: Client, owner: Any, agent: Any
) -> None:
    response = _add(
        client, owner, agent, "rule", name="broken", effect="forbid", action="payments.refund",
        resource="*", condition="params.amount >", approvals=1, expires_in_seconds=600,
    )  # fmt: skip
    assert response.status_code == 422
    assert "line 1, column 16" in response.content.decode()
    assert not Rule.objects.filter(name="broken").exists()
    assert not AuditEvent.objects.filter(verb="rule.created").exists()


def test_a_bad_pattern_is_refused_on_its_field(client: Client, owner: Any, agent: Any) -> None:
    response = _add(client, owner, agent, "grant", action="Payments Refund", resource="*")
    assert response.status_code == 422
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    ("kind", "fields", "said"),
    [
        (
            "limit",
            {"name": "forever", "window_seconds": str(2**63 - 1), "max_count": "5"},
            "Ensure this is at most 31,622,400 seconds.",
        ),
        (
            "limit",
            {"name": "owed", "window_seconds": "60", "sum_param": "amount", "max_sum": "-5"},
            "Ensure this is not negative.",
        ),
        (
            "grant",
            {"action": "payments.refund", "resource": "*", "expires_at": "2020-01-01T00:00"},
            "This moment has passed: a grant expires in the future.",
        ),
    ],
)
def test_nonsense_is_refused_on_its_field_and_changes_nothing(
    client: Client, owner: Any, agent: Any, kind: str, fields: dict[str, str], said: str
) -> None:
    """A window of 292 billion years, a negative most, a grant expired when made: all
    were accepted ("per 106751991167300 days 15 hours")."""
    from oversight.policy.models import Limit

    everything = {"action": "*", "resource": "*", "on_exceed": "deny"} if kind == "limit" else {}
    response = _add(client, owner, agent, kind, **everything, **fields)
    assert response.status_code == 422
    assert said in response.content.decode()
    assert not Limit.objects.exists() and not Grant.objects.exists()


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"window_seconds": "60"}, "Give a maximum count, a maximum sum, or both."),
        (
            {"window_seconds": "60", "max_sum": "100"},
            "A maximum sum needs the param it sums, and a summed param its maximum.",
        ),
    ],
)
def test_a_limit_without_its_maximum_says_what_to_give(
    client: Client, owner: Any, agent: Any, fields: dict[str, str], said: str
) -> None:
    """These said "Constraint “limit_has_a_maximum” is violated."."""
    from oversight.policy.models import Limit

    everything = {"name": "cap", "action": "*", "resource": "*", "on_exceed": "deny"}
    response = _add(client, owner, agent, "limit", **everything, **fields)
    assert response.status_code == 422
    page = response.content.decode()
    assert said in page and "Constraint" not in page
    assert not Limit.objects.exists()


def test_a_limits_name_is_one_per_agent_as_in_a_manifest(
    client: Client, owner: Any, agent: Any
) -> None:
    """A second "refund volume" was added, and the agent's exported manifest then failed
    to apply ("'refund volume' appears twice")."""
    from oversight.policy.models import Limit

    limit = {"name": "refund volume", "action": "*", "resource": "*", "on_exceed": "deny"}
    assert _add(client, owner, agent, "limit", **limit, window_seconds="60", max_count="3")
    response = _add(client, owner, agent, "limit", **limit, window_seconds="60", max_count="9")
    assert response.status_code == 422
    assert "A limit of this name exists here already." in response.content.decode()
    assert list(Limit.objects.values_list("max_count", flat=True)) == [3]


def test_a_teammate_cannot_add_edit_or_remove(
    client: Client, teammate: Any, agent: Any, grant: Grant
) -> None:
    assert _add(client, teammate, agent, "grant", action="crm.*", resource="*").status_code == 403
    edit = reverse("policy:edit", args=[agent.slug, "grant", grant.pk])
    delete = reverse("policy:delete", args=[agent.slug, "grant", grant.pk])
    assert client.get(edit).status_code == 403
    assert client.post(delete).status_code == 403
    assert Grant.objects.count() == 1


def test_another_agents_object_is_not_found_through_this_agent(
    client: Client, owner: Any, agent: Any, other_agent: Any
) -> None:
    foreign = policy_object_create(actor=SYSTEM, obj=Grant(agent=other_agent, action="email.send"))
    client.force_login(owner)
    assert (
        client.post(reverse("policy:delete", args=[agent.slug, "grant", foreign.pk])).status_code
        == 404
    )
    assert Grant.objects.filter(pk=foreign.pk).exists()


def test_editing_and_removing_are_audited(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    client.force_login(owner)
    edit = reverse("policy:edit", args=[agent.slug, "grant", grant.pk])
    response = client.post(edit, {"action": "payments.refund", "resource": "stripe:charge/small-*"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(verb="grant.updated")
    assert (event.before["resource"], event.after["resource"]) == (
        "stripe:charge/*",
        "stripe:charge/small-*",
    )
    client.post(reverse("policy:delete", args=[agent.slug, "grant", grant.pk]))
    assert not Grant.objects.exists()
    assert AuditEvent.objects.filter(verb="grant.deleted").count() == 1


def test_csrf_is_enforced(owner: Any, agent: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    assert _add(client, owner, agent, "grant", action="crm.*", resource="*").status_code == 403


def _try(client: Client, user: Any, agent: Any, body: str, env: str = "production") -> Any:
    client.force_login(user)
    url = reverse("policy:try", args=[agent.slug])
    return client.post(url, {"request": body, "environment": env}, HTTP_HX_REQUEST="true")


def test_try_it_decides_without_recording_or_counting(
    client: Client, teammate: Any, agent: Any, grant: Grant
) -> None:
    events = AuditEvent.objects.count()
    body = '{"action": "payments.refund", "resource": "stripe:charge/1", "params": {"amount": 5}}'
    response = _try(client, teammate, agent, body)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Would be <strong>allowed</strong>" in page
    assert "payments.refund on stripe:charge/*" in page
    assert not Action.objects.exists()
    assert not LimitCounter.objects.exists()
    assert AuditEvent.objects.count() == events


def test_try_it_shows_why_an_action_is_held_and_staging_is_a_dry_run(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="big refunds",
            effect="hold",
            action="payments.refund",
            condition="params.amount > 500",
        ),
    )
    body = '{"action": "payments.refund", "resource": "stripe:charge/1", "params": {"amount": 900}}'
    page = _try(client, owner, agent, body).content.decode()
    assert "Would be <strong>pending</strong>" in page and "big refunds" in page
    assert (
        "Would be <strong>dry_run</strong>"
        in _try(client, owner, agent, body, env="staging").content.decode()
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "Give a JSON object"),
        ('{"action": "x"}', "must be strings"),
        ('{"action": "a.b", "resource": "r", "params": 3}', "must be an object"),
        ('{"action": "a.b", "resource": "r", "extra": 1}', "Unknown key: extra"),
    ],
)
def test_try_it_explains_bad_input(
    client: Client, owner: Any, agent: Any, body: str, message: str
) -> None:
    assert message in _try(client, owner, agent, body).content.decode()


def test_a_reviewer_granted_the_agent_may_try_it(
    client: Client, reviewer: Any, agent: Any, grant: Grant
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="viewer")
    body = '{"action": "payments.refund", "resource": "stripe:charge/1"}'
    assert _try(client, reviewer, agent, body).status_code == 200


def test_an_outsider_cannot_probe_the_policy(client: Client, outsider: Any, agent: Any) -> None:
    body = '{"action": "payments.refund", "resource": "stripe:charge/1"}'
    assert _try(client, outsider, agent, body).status_code == 404


def test_try_it_shows_each_limits_usage_in_its_window(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    from oversight.policy.limits import window_start

    count_limit = policy_object_create(
        actor=SYSTEM,
        obj=Limit(
            agent=agent,
            name="per hour",
            action="payments.refund",
            window_seconds=3600,
            max_count=10,
        ),
    )
    sum_limit = policy_object_create(
        actor=SYSTEM,
        obj=Limit(
            agent=agent,
            name="total",
            action="payments.refund",
            window_seconds=3600,
            sum_param="amount",
            max_sum=1000,
        ),
    )
    now = timezone.now()
    for limit, count, total in ((count_limit, 3, 0), (sum_limit, 2, 950)):
        window = window_start(now, limit.window_seconds)
        LimitCounter.objects.create(limit=limit, window_start=window, count=count, total=total)
    old = window_start(now, sum_limit.window_seconds) - timedelta(hours=1)
    LimitCounter.objects.create(limit=sum_limit, window_start=old, count=9, total=999)

    body = '{"action": "payments.refund", "resource": "stripe:charge/1", "params": {"amount": 100}}'
    page = _try(client, owner, agent, body).content.decode()
    assert "Would be <strong>denied</strong>" in page
    assert "3 of 10 actions used" in page
    assert "amount 950 of 1000 used" in page  # the old window is not counted
    assert page.count("would exceed") == 1


def test_try_it_says_a_full_deny_limit_wins_over_a_hold_limit(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    from oversight.policy.limits import window_start

    def limit(name: str, on_exceed: str, **fields: Any) -> Limit:
        return policy_object_create(
            actor=SYSTEM,
            obj=Limit(
                agent=agent,
                name=name,
                action="payments.refund",
                window_seconds=3600,
                on_exceed=on_exceed,
                **fields,
            ),
        )

    limit("ask above 1000", "hold", sum_param="amount", max_sum=1000)
    cap = limit("one an hour", "deny", max_count=1)
    window = window_start(timezone.now(), cap.window_seconds)
    LimitCounter.objects.create(limit=cap, window_start=window, count=1, total=0)

    # Over the sum by itself (held before any counter is read), and the cap is full.
    body = '{"action": "payments.refund", "resource": "stripe:charge/1", "params": {"amount": 5e3}}'
    page = _try(client, owner, agent, body).content.decode()
    assert "Would be <strong>denied</strong>" in page
    assert LimitCounter.objects.get(limit=cap).count == 1


def test_the_owner_adds_a_reversible_grant_and_the_page_says_how_it_is_undone(
    client: Client, owner: Any, agent: Any
) -> None:
    response = _add(
        client,
        owner,
        agent,
        "grant",
        action="payments.refund",
        resource="stripe:charge/*",
        reversibility="reversible",
        undo_action="payments.charge",
        undo_params='{"charge": "params.charges[0]"}',
        undo_window_seconds="3600",
    )
    assert response.status_code == 302
    page = client.get(_page(agent)).content.decode()
    assert 'reversible</span> by <span class="mono">payments.charge</span> within 1 hour' in page
    bad = _add(
        client,
        owner,
        agent,
        "grant",
        action="crm.contact.update",
        resource="crm:contact/*",
        reversibility="reversible",
        undo_action="crm.contact.update",
        undo_params='{"phone": "before.phone +"}',
    )
    assert bad.status_code == 422
    assert "undo param &#x27;phone&#x27;" in bad.content.decode()
    assert Grant.objects.filter(agent=agent).count() == 1


def test_the_policy_page_and_try_it_say_which_revision_with_what_it_counts(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    agent.refresh_from_db()
    meaning = "Counts every change to the agent's grants, rules and limits"
    client.force_login(owner)
    page = client.get(_page(agent)).content.decode()
    assert f">revision {agent.policy_version}</span>" in page and meaning in page
    body = '{"action": "payments.refund", "resource": "stripe:charge/1", "params": {"amount": 5}}'
    tried = _try(client, owner, agent, body).content.decode()
    assert f">policy revision {agent.policy_version}</span>" in tried and meaning in tried


def test_try_it_starts_with_the_agents_latest_request(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    """It started with a refund on every agent, an email campaigner's too."""
    client.force_login(owner)
    page = client.get(_page(agent)).content.decode()
    assert "&quot;action&quot;: &quot;payments.refund&quot;" in page  # nothing asked yet
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    decide(token, {"action": "email.send", "resource": "segment:vip", "params": {"n": 3}})
    page = client.get(_page(agent)).content.decode()
    assert "&quot;action&quot;: &quot;email.send&quot;" in page
    assert "&quot;resource&quot;: &quot;segment:vip&quot;" in page


def test_try_it_denies_a_resource_the_api_refuses(
    client: Client, owner: Any, agent: Any, grant: Grant
) -> None:
    body = '{"action": "payments.refund", "resource": "stripe:charge/ch 1"}'
    page = _try(client, owner, agent, body).content.decode()
    assert "Would be <strong>denied</strong>" in page
    assert "is empty or holds whitespace" in page
