#!/usr/bin/env python
"""The policy engine on a 150-entry policy (50 grants, 100 rules), against cedarpy.

Usage:

    .venv/bin/python bench/engine.py [--requests 5000] [--rounds 5] [--seed 7]

It builds a synthetic but realistic policy over 12 systems (crm, stripe, github, ...):
50 grants (exact actions, `obj.*` and `system.*` prefixes, some expiring) and 100 rules
(forbid, hold and permit; most with a CEL condition), generates representative requests,
and times `CompiledPolicy.decide` per call. In the same run, the same policy written in
Cedar is evaluated by cedarpy for the same requests, and both outcomes are compared.

The Cedar translation (Cedar has no "hold"):
- grant / permit rule -> `permit`; forbid rule -> `forbid`; hold rule -> `forbid`
  annotated `@id("hold-N")`. Cedar's Deny lists every satisfied forbid, so: a Deny naming
  a real forbid is deny, a Deny naming nothing is the default deny, Allow is allow. A Deny
  naming only holds is a hold when the same request is allowed by the policy set without
  its holds (least privilege: a hold never lifts a missing grant), else a deny. Only that
  case needs a second Cedar call, made for the comparison and not timed.
- action patterns -> action groups: `crm.contact.*` is the entity `Action::"crm.contact.*"`
  and every action lists its groups as parents (`action in ...`); `*` is no constraint.
- resource globs -> `context.resource like "crm:contact/*"` (Cedar entity ids cannot be
  matched as strings).
- conditions -> the same test on `context`; `size(params.charges)` becomes a
  precomputed `context.charge_count` and `time.getHours()` a precomputed `context.hour`
  (Cedar sets have no size; the hour would need Cedar's datetime extension, left out to
  keep the translation plain). Requests always carry the
  parameters a condition reads, so no condition errors and fail-closed handling (which
  Cedar does not have: an erroring Cedar policy is skipped) does not come into it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cedarpy

from oversight.policy.engine import (
    GrantSpec,
    LimitSpec,
    Request,
    RuleSpec,
    compile_policy,
)
from oversight.policy.engine.conditions import build_activation, compile_condition, evaluate

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
SYSTEMS = {
    "crm": ["contact", "deal", "company", "note"],
    "stripe": ["refund", "charge", "customer", "invoice"],
    "github": ["repo", "issue", "pr"],
    "jira": ["ticket", "sprint"],
    "slack": ["message", "channel"],
    "email": ["message", "draft"],
    "s3": ["object", "bucket"],
    "db": ["row", "table"],
    "k8s": ["deployment", "pod"],
    "hr": ["employee"],
    "calendar": ["event"],
    "billing": ["plan", "credit"],
}
VERBS = ["read", "list", "create", "update", "delete"]
MONEY = ("stripe", "billing")  # requests to these always carry params.amount
AGENTS = [
    {"slug": "refund-bot", "team": "payments", "risk_tier": "high", "owner": "alice"},
    {"slug": "crm-helper", "team": "sales", "risk_tier": "medium", "owner": "bob"},
    {"slug": "ops-bot", "team": "platform", "risk_tier": "low", "owner": "carol"},
]
# (CEL, Cedar, which actions it may be put on); {n} and {h} are drawn from THRESHOLDS per
# rule, as thresholds vary in real policies (the run prints how many conditions are distinct).
CONDITIONS: list[tuple[str, str, str]] = [
    ("", "", "any"),
    ('env == "production"', 'context.env == "production"', "any"),
    ('agent.risk_tier == "high"', 'context.agent.risk_tier == "high"', "any"),
    ('env == "production" && agent.risk_tier != "low"',
     'context.env == "production" && context.agent.risk_tier != "low"', "any"),
    ("time.getHours() < {h}", "context.hour < {h}", "any"),
    ('resource.startsWith("crm:contact/vip")', 'context.resource like "crm:contact/vip*"', "any"),
    ("has(params.amount) && params.amount > {n}0",
     "context.params has amount && context.params.amount > {n}0", "any"),
    ("params.amount > {n}", "context.params.amount > {n}", "money"),
    ('params.amount > {n} && env == "production"',
     'context.params.amount > {n} && context.env == "production"', "money"),
    ("size(params.charges) > 1", "context.charge_count > 1", "charges"),
]  # fmt: skip
THRESHOLDS = {"n": [250, 500, 1000, 2500, 5000, 10000], "h": [5, 6, 7, 8]}


def _actions() -> list[str]:
    return [f"{s}.{o}.{v}" for s, objs in SYSTEMS.items() for o in objs for v in VERBS]


def _action_pattern(rng: random.Random, wildcard_share: float) -> str:
    system = rng.choice(list(SYSTEMS))
    obj = rng.choice(SYSTEMS[system])
    roll = rng.random()
    if roll < wildcard_share:
        return "*"
    if roll < 0.6:
        return f"{system}.{obj}.{rng.choice(VERBS)}"
    if roll < 0.9:
        return f"{system}.{obj}.*"
    return f"{system}.*"


def _resource_pattern(rng: random.Random, action: str) -> str:
    if action == "*" or rng.random() < 0.5:
        return "*"
    system, obj = action.split(".")[:2]
    if obj == "*":
        return f"{system}:*"
    return f"{system}:{obj}/vip*" if rng.random() < 0.2 else f"{system}:{obj}/*"


def _condition(rng: random.Random, action: str) -> tuple[str, str]:
    fits = {"any"}
    if action.split(".")[0] in MONEY and action != "*":
        fits.add("money")
    if action.startswith("stripe.charge."):
        fits.add("charges")
    cel, cedar, _ = rng.choice([c for c in CONDITIONS if c[2] in fits])
    values = {name: rng.choice(choices) for name, choices in THRESHOLDS.items()}
    return cel.format(**values), cedar.format(**values)


def build_policy(rng: random.Random) -> tuple[list[GrantSpec], list[RuleSpec], list[Any]]:
    """50 grants and 100 rules, each with its Cedar text."""
    grants: list[GrantSpec] = []
    cedar: list[str] = []
    for gid in range(1, 51):
        action = _action_pattern(rng, wildcard_share=0.0)
        resource = _resource_pattern(rng, action)
        expires = rng.choice([None] * 8 + [NOW - timedelta(days=1), NOW + timedelta(days=30)])
        grants.append(GrantSpec(gid, action, resource, expires))
        cedar.append(_cedar("permit", f"grant-{gid}", action, resource, "", expires))
    rules: list[RuleSpec] = []
    for rid in range(101, 201):
        effect = rng.choices(["forbid", "hold", "permit"], weights=[3, 4, 3])[0]
        action = _action_pattern(rng, wildcard_share=0.03)
        resource = _resource_pattern(rng, action)
        cel, cedar_condition = _condition(rng, action)
        approvals = rng.choice([1, 1, 2]) if effect == "hold" else 1
        rules.append(RuleSpec(rid, f"rule {rid}", effect, action, resource, cel, approvals))
        keyword = "permit" if effect == "permit" else "forbid"
        cedar.append(_cedar(keyword, f"{effect}-{rid}", action, resource, cedar_condition, None))
    return grants, rules, cedar


def _cedar(
    keyword: str, ident: str, action: str, resource: str, condition: str, expires: Any
) -> str:
    if action == "*":
        scope = "action"
    elif action.endswith(".*"):
        scope = f'action in Action::"{action}"'
    else:
        scope = f'action == Action::"{action}"'
    tests = [f'context.resource like "{resource}"'] if resource != "*" else []
    if condition:
        tests.append(f"({condition})")
    if expires is not None:
        tests.append(f"context.now < {int(expires.timestamp())}")
    when = f" when {{ {' && '.join(tests)} }}" if tests else ""
    return f'@id("{ident}")\n{keyword}(principal, {scope}, resource){when};'


def cedar_entities(actions: list[str]) -> str:
    """Every action with all of its prefix groups as parents."""
    entities: list[dict[str, Any]] = []
    groups: set[str] = set()
    for action in actions:
        parts = action.split(".")
        parents = [".".join(parts[:i]) + ".*" for i in range(1, len(parts))]
        groups.update(parents)
        entities.append(
            {
                "uid": {"type": "Action", "id": action},
                "attrs": {},
                "parents": [{"type": "Action", "id": p} for p in parents],
            }
        )
    entities += [{"uid": {"type": "Action", "id": g}, "attrs": {}, "parents": []} for g in groups]
    return json.dumps(entities)


def build_requests(rng: random.Random, count: int) -> list[Request]:
    actions = _actions()
    requests = []
    for _ in range(count):
        action = rng.choice(actions)
        system, obj = action.split(".")[:2]
        ident = rng.choice(["vip-", ""]) + str(rng.randrange(1, 10_000))
        params: dict[str, Any] = {"note": "synthetic"}
        if system in MONEY:
            params["amount"] = rng.choice([rng.randrange(1, 500), rng.randrange(500, 20_000)])
        if action.startswith("stripe.charge."):
            params["charges"] = [f"ch_{i}" for i in range(rng.randrange(1, 4))]
        requests.append(
            Request(
                action=action,
                resource=f"{system}:{obj}/{ident}",
                params=params,
                agent=rng.choice(AGENTS),
                env=rng.choice(["staging", "production"]),
                time=NOW + timedelta(hours=rng.randrange(0, 24)),
            )
        )
    return requests


def cedar_request(request: Request) -> dict[str, Any]:
    params = dict(request.params)
    return {
        "principal": {"type": "Agent", "id": request.agent["slug"]},
        "action": {"type": "Action", "id": request.action},
        "resource": {"type": "Resource", "id": request.resource},
        "context": {
            "resource": request.resource,
            "params": params,
            "agent": dict(request.agent),
            "env": request.env,
            "hour": request.time.hour,
            "now": int(request.time.timestamp()),
            "charge_count": len(params.get("charges", ())),
        },
    }


def cedar_outcome(result: Any, allowed_without_holds: Any) -> str:
    """`allowed_without_holds()` asks Cedar again without the hold policies."""
    if result.allowed:
        return "allow"
    named = result.diagnostics.id_annotations_by_reason.values()
    if named and all(name.startswith("hold-") for name in named):
        return "hold" if allowed_without_holds() else "deny"
    return "deny"


def _summary(label: str, samples_ns: list[int]) -> str:
    us = sorted(s / 1000 for s in samples_ns)
    p50 = statistics.median(us)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    mean = statistics.fmean(us)
    return (
        f"{label:<38} mean {mean:7.2f}  p50 {p50:7.2f}  p99 {p99:7.2f}  µs  ({1e6 / mean:,.0f}/s)"
    )


def _timed(call: Any, items: list[Any], rounds: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for item in items:
            start = clock()
            call(item)
            samples.append(clock() - start)
    return samples


def _decide_all(decide: Any, requests: list[Request]) -> None:
    for request in requests:
        decide(request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 -- synthetic data, not secrets
    grants, rules, cedar_policies = build_policy(rng)
    requests = build_requests(rng, args.requests)
    limits = [LimitSpec(i, f"limit {i}", _action_pattern(rng, 0.1)) for i in range(1, 11)]
    effects = Counter(rule.effect for rule in rules)
    conditional = sum(1 for rule in rules if rule.condition)
    distinct = len({rule.condition for rule in rules if rule.condition})
    print(
        f"policy: {len(grants)} grants, {len(rules)} rules {dict(effects)}, {conditional} "
        f"with a condition ({distinct} distinct), {len(limits)} limits; {len(requests)} requests"
    )

    compile_times = []
    for version in range(20):
        start = time.perf_counter_ns()
        policy = compile_policy(version=version, grants=grants, rules=rules, limits=limits)
        compile_times.append(time.perf_counter_ns() - start)
    assert policy.problems == (), policy.problems
    print(
        f"engine compile_policy: median {statistics.median(compile_times) / 1e6:.2f} ms (20 runs)"
    )
    policy_text = "\n".join(cedar_policies)
    start = time.perf_counter_ns()
    policy_set = cedarpy.PolicySet.from_str(policy_text)
    entities = cedarpy.Entities.from_json_str(cedar_entities(_actions()))
    print(f"cedarpy PolicySet + Entities parse: {(time.perf_counter_ns() - start) / 1e6:.2f} ms")

    cold = compile_policy(version=99, grants=grants, rules=rules, limits=limits)
    print(_summary("engine decide, first pass (cold plans)", _timed(cold.decide, requests, 1)))
    decisions = [policy.decide(r) for r in requests]  # warm the per-action plans
    print(_summary("engine decide (warm)", _timed(policy.decide, requests, args.rounds)))
    decide = policy.decide
    start = time.perf_counter_ns()
    for _ in range(args.rounds):
        for request in requests:
            decide(request)
    loop_s = (time.perf_counter_ns() - start) / 1e9
    rate = args.rounds * len(requests) / loop_s
    print(f"{'engine decide, plain loop (no timer)':<38} {rate:,.0f} decisions/s")

    threads = os.cpu_count() or 1
    per_thread = [requests[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=_decide_all, args=(decide, part)) for part in per_thread]
    start = time.perf_counter_ns()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = len(requests) / ((time.perf_counter_ns() - start) / 1e9)
    print(f"{f'engine decide, {threads} threads sharing it':<38} {rate:,.0f} decisions/s")

    activation = build_activation(requests[0])
    expression = compile_condition('env == "production"')
    one_eval = _timed(lambda _: evaluate(expression, activation), range(20_000), 1)
    print(_summary("one CEL condition, prebuilt activation", one_eval))
    print(_summary("building the CEL activation", _timed(build_activation, requests, 1)))

    cedar_requests = [cedar_request(r) for r in requests]

    def cedar_one(cedar_req: dict[str, Any]) -> Any:
        return cedarpy.is_authorized(cedar_req, policy_set, entities)

    print(_summary("cedarpy is_authorized (one request)", _timed(cedar_one, cedar_requests, 1)))
    start = time.perf_counter_ns()
    results = cedarpy.is_authorized_batch(cedar_requests, policy_set, entities)
    batch_us = (time.perf_counter_ns() - start) / 1e3 / len(cedar_requests)
    print(f"{'cedarpy is_authorized_batch (all)':<38} mean {batch_us:7.2f} µs per request")

    without_holds = "\n".join(p for p in cedar_policies if '@id("hold-' not in p)

    def outcome_of(cedar_req: dict[str, Any], result: Any) -> str:
        def allowed_without_holds() -> bool:
            return cedarpy.is_authorized(cedar_req, without_holds, entities).allowed

        return cedar_outcome(result, allowed_without_holds)

    theirs = [outcome_of(q, c) for q, c in zip(cedar_requests, results, strict=True)]
    mismatches = [
        (r, d.outcome, t)
        for r, d, t in zip(requests, decisions, theirs, strict=True)
        if d.outcome != t
    ]
    errors = sum(1 for c in results if c.diagnostics.errors)
    print(f"outcomes: {dict(Counter(d.outcome for d in decisions))}; "
          f"engine and Cedar agree on {len(requests) - len(mismatches)}/{len(requests)}; "
          f"Cedar policy errors: {errors}")  # fmt: skip
    for request, ours, theirs in mismatches[:5]:
        print(
            f"  mismatch: {request.action} {request.resource} {request.params}: {ours} vs {theirs}"
        )


if __name__ == "__main__":
    main()
