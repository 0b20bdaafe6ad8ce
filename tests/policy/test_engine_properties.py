"""Properties of the engine that must hold for every policy and request (hypothesis)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oversight.policy.engine import (
    Decision,
    GrantSpec,
    LimitSpec,
    Request,
    RuleSpec,
    compile_policy,
)
from oversight.policy.engine.conditions import build_activation as activation_for
from oversight.policy.engine.conditions import compile_condition, evaluate

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
ACTIONS = [
    "crm.contact.update",
    "crm.contact.note.add",
    "crm.deal.close",
    "stripe.refund.create",
    "stripe.charge.capture",
]
ACTION_PATTERNS = ["*", "crm.*", "crm.contact.*", "stripe.*", "stripe.refund.*", *ACTIONS]
RESOURCES = ["crm:contact/1", "crm:contact/vip-2", "stripe:charge/ch_1", "stripe:charge/ch_22"]
RESOURCE_PATTERNS = ["*", "crm:contact/*", "crm:contact/vip*", "stripe:*", "*_1", *RESOURCES]
ERRORING = "params.never_present > 1"  # no generated request has this key
CONDITIONS = [
    "",
    "true",
    "false",
    "params.amount > 500",
    'env == "production"',
    'resource.startsWith("crm:contact/vip")',
    "size(params.charges) > 1",  # errors when there are no charges
    "params.amount / params.divisor > 1",  # errors when divisor is 0
    ERRORING,
]
EXPIRIES = [None, NOW - timedelta(hours=1), NOW, NOW + timedelta(hours=1)]

ids = st.integers(min_value=1, max_value=10_000)
grants = st.builds(
    GrantSpec,
    id=ids,
    action=st.sampled_from(ACTION_PATTERNS),
    resource=st.sampled_from(RESOURCE_PATTERNS),
    expires_at=st.sampled_from(EXPIRIES),
)
rules = st.builds(
    RuleSpec,
    id=ids,
    name=st.sampled_from(["a", "b", "c"]),
    effect=st.sampled_from(["permit", "forbid", "hold"]),
    action=st.sampled_from(ACTION_PATTERNS),
    resource=st.sampled_from(RESOURCE_PATTERNS),
    condition=st.sampled_from(CONDITIONS),
    approvals=st.integers(min_value=1, max_value=3),
    expires_in=st.sampled_from([timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1)]),
    separation_of_duties=st.booleans(),
    edits_allowed=st.booleans(),
)
limits = st.builds(
    LimitSpec,
    id=ids,
    name=st.just("limit"),
    action=st.sampled_from(ACTION_PATTERNS),
    resource=st.sampled_from(RESOURCE_PATTERNS),
)
params = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-1000, 2000), st.floats(allow_nan=False), st.text()),
        "divisor": st.integers(0, 3),
        "charges": st.lists(st.text(max_size=3), max_size=3),
    },
)
requests = st.builds(
    Request,
    action=st.sampled_from(ACTIONS),
    resource=st.sampled_from(RESOURCES),
    params=params,
    agent=st.just({"slug": "bot", "team": "payments"}),
    env=st.sampled_from(["staging", "production"]),
    time=st.just(NOW),
)
policies = st.tuples(
    st.lists(grants, max_size=6), st.lists(rules, max_size=8), st.lists(limits, max_size=3)
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decide(
    grant_specs: list[GrantSpec],
    rule_specs: list[RuleSpec],
    request: Request,
    limit_specs: list[LimitSpec] | None = None,
) -> Decision:
    policy = compile_policy(
        version=1, grants=grant_specs, rules=rule_specs, limits=limit_specs or []
    )
    return policy.decide(request)


def _matches_action(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return action.startswith(pattern[:-1])
    return pattern == action


def _matches_resource(pattern: str, resource: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, resource, re.DOTALL) is not None


def _applies(spec: RuleSpec | GrantSpec | LimitSpec, request: Request) -> bool:
    return _matches_action(spec.action, request.action) and _matches_resource(
        spec.resource, request.resource
    )


def _fires(rule: RuleSpec, request: Request) -> bool:
    """The reference semantics, written out directly: no index, no laziness."""
    if not _applies(rule, request):
        return False
    expression = compile_condition(rule.condition)
    if expression is None:
        return True
    result = evaluate(expression, activation_for(request))
    if isinstance(result, str):  # failed: fail closed
        return rule.effect != "permit"
    return result


@FAST
@given(policy=policies, request=requests)
def test_the_engine_agrees_with_the_rules_written_out_directly(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]], request: Request
) -> None:
    grant_specs, rule_specs, limit_specs = policy
    decision = _decide(grant_specs, rule_specs, request, limit_specs)
    firing = [rule for rule in rule_specs if _fires(rule, request)]
    forbids = [r for r in firing if r.effect == "forbid"]
    holds = [r for r in firing if r.effect == "hold"]
    live = [g for g in grant_specs if g.expires_at is None or g.expires_at > request.time]
    allowing = {("grant", g.id) for g in live if _applies(g, request)}
    allowing |= {("rule", r.id) for r in firing if r.effect == "permit"}
    if forbids or not allowing:
        expected = "deny"  # least privilege: without a grant or permit, even a hold denies
    elif holds:
        expected = "hold"
    else:
        expected = "allow"
    assert decision.outcome == expected
    deciding = {(r.kind, r.id) for r in decision.reasons if r.kind in ("grant", "rule")}
    if forbids:
        assert deciding == {("rule", r.id) for r in forbids}
    elif not allowing:
        assert deciding == set()
        assert "default" in {r.kind for r in decision.reasons}
    elif holds:
        assert deciding == {("rule", r.id) for r in holds}
        assert decision.approvals_required == max(r.approvals for r in holds)
        assert decision.hold_expires_in == min(r.expires_in for r in holds)
        assert decision.separation_of_duties == any(r.separation_of_duties for r in holds)
        assert decision.edits_allowed == all(r.edits_allowed for r in holds)
    else:
        assert deciding == allowing
    if decision.outcome == "deny":
        assert decision.limit_ids == ()
    else:
        assert sorted(decision.limit_ids) == sorted(
            spec.id for spec in limit_specs if _applies(spec, request)
        )


@FAST
@given(policy=policies, request=requests, data=st.data())
def test_order_never_changes_a_decision(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]],
    request: Request,
    data: st.DataObject,
) -> None:
    grant_specs, rule_specs, limit_specs = policy
    shuffled_grants = data.draw(st.permutations(grant_specs))
    shuffled_rules = data.draw(st.permutations(rule_specs))
    shuffled_limits = data.draw(st.permutations(limit_specs))
    first = _decide(grant_specs, rule_specs, request, limit_specs)
    again = _decide(shuffled_grants, shuffled_rules, request, shuffled_limits)
    # Reasons come sorted, so the whole decision is equal, not only the reasons as a set.
    assert again == first
    assert set(again.limit_ids) == set(first.limit_ids)


@FAST
@given(policy=policies, request=requests, condition=st.sampled_from(["", "true", 'action != ""']))
def test_a_firing_forbid_always_denies(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]],
    request: Request,
    condition: str,
) -> None:
    grant_specs, rule_specs, _ = policy
    forbid = RuleSpec(99_999, "stop", "forbid", request.action, request.resource, condition)
    decision = _decide(grant_specs, [*rule_specs, forbid], request)
    assert decision.outcome == "deny"
    assert ("rule", 99_999) in {(r.kind, r.id) for r in decision.reasons}


@FAST
@given(policy=policies, request=requests)
def test_without_a_grant_or_a_permit_nothing_is_allowed(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]], request: Request
) -> None:
    _, rule_specs, _ = policy
    no_permits = [rule for rule in rule_specs if rule.effect != "permit"]
    assert _decide([], no_permits, request).outcome == "deny"
    only_forbids = [rule for rule in rule_specs if rule.effect == "forbid"]
    assert _decide([], only_forbids, request).outcome == "deny"


@FAST
@given(policy=policies, request=requests, data=st.data())
def test_an_erroring_condition_never_allows(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]],
    request: Request,
    data: st.DataObject,
) -> None:
    """Replace rule r's condition with one that errors. Then:

    - if the policy allows, it allows without r too: r is never what allows;
    - if r is a forbid or hold whose patterns match, the policy does not allow;
    - if r's patterns match and it was evaluated, an error reason names it.
    """
    grant_specs, rule_specs, _ = policy
    rule = data.draw(rules)
    broken = replace(rule, id=77_777, condition=ERRORING)
    decision = _decide(grant_specs, [*rule_specs, broken], request)
    if decision.outcome == "allow":
        assert _decide(grant_specs, rule_specs, request).outcome == "allow"
        assert ("rule", 77_777) not in {(r.kind, r.id) for r in decision.reasons}
    if broken.effect != "permit" and _applies(broken, request):
        assert decision.outcome != "allow"
        if broken.effect == "forbid":
            assert decision.outcome == "deny"
            assert ("error", 77_777) in {(r.kind, r.id) for r in decision.reasons}


@FAST
@given(policy=policies, request=requests, extra=st.lists(grants, min_size=1, max_size=4))
def test_adding_grants_never_lifts_a_forbid_or_a_hold(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]],
    request: Request,
    extra: list[GrantSpec],
) -> None:
    grant_specs, rule_specs, _ = policy
    before = _decide(grant_specs, rule_specs, request)
    after = _decide([*grant_specs, *extra], rule_specs, request)
    forbidden = any(r.kind == "rule" and r.effect == "forbid" for r in before.reasons)
    if forbidden:
        assert after == before
    if before.outcome == "hold":
        assert after.outcome == "hold"


@FAST
@given(policy=policies, request=requests, extra=rules)
def test_adding_a_forbid_never_turns_a_deny_into_anything_else(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]],
    request: Request,
    extra: RuleSpec,
) -> None:
    grant_specs, rule_specs, _ = policy
    forbid = replace(extra, effect="forbid")
    if _decide(grant_specs, rule_specs, request).outcome == "deny":
        assert _decide(grant_specs, [*rule_specs, forbid], request).outcome == "deny"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
odd_values = st.one_of(
    json_values,
    st.sets(st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.binary(max_size=3),
    st.just(object()),
    st.just(2**80),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
)
odd_requests = st.builds(
    Request,
    action=st.one_of(st.sampled_from(ACTIONS), st.text(max_size=12), st.none(), st.integers()),
    resource=st.one_of(st.sampled_from(RESOURCES), st.text(max_size=12), st.none()),
    params=st.one_of(st.dictionaries(st.text(max_size=4), odd_values, max_size=4), odd_values),
    agent=st.one_of(st.just({"slug": "bot"}), odd_values),
    env=st.one_of(st.sampled_from(["staging", "production"]), st.none(), st.integers()),
    time=st.one_of(
        st.just(NOW),
        st.datetimes(timezones=st.just(UTC)),
        st.datetimes(),
        st.none(),
        st.text(max_size=3),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, request=odd_requests)
def test_decide_never_raises_and_an_odd_request_is_never_allowed_by_accident(
    policy: tuple[list[GrantSpec], list[RuleSpec], list[LimitSpec]], request: Request
) -> None:
    grant_specs, rule_specs, limit_specs = policy
    decision = _decide(grant_specs, rule_specs, request, limit_specs)
    assert decision.outcome in ("allow", "deny", "hold")
    assert decision.reasons
    if decision.outcome == "allow":
        assert isinstance(request.action, str) and isinstance(request.resource, str)
        assert any(r.kind in ("grant", "rule") for r in decision.reasons)
    if decision.outcome == "hold":
        assert decision.approvals_required >= 1
        assert decision.hold_expires_in is not None
