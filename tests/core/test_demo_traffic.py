"""The demo's simulated agents: what an action leaves behind when a reviewer edited it."""

from __future__ import annotations

import random

from oversight.core.demo_traffic import _contact, _deploy, _refund


def test_the_after_state_follows_the_params_as_run() -> None:
    rng = random.Random(3)
    refund = _refund(rng, 600, 900)
    assert refund.after_running(refund.params) == refund.after
    half = {**refund.params, "amount": refund.params["amount"] // 2}
    assert refund.after_running(half) == {"refunded": half["amount"]}

    contact = _contact(rng)
    edited = {**contact.params, "title": "Head of ops"}
    assert contact.after_running(edited) == edited

    deploy = _deploy(rng)
    older = {**deploy.params, "version": "v1.0.0"}
    assert deploy.after_running(older) == {"version": "v1.0.0"}
