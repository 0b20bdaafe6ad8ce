"""Number fields of the policy's and the registry's forms say the model's own bounds: in
the browser's input (min, max) and in the model's message for any number out of range."""

from __future__ import annotations

import pytest

from oversight.agents.forms import AgentForm
from oversight.policy.forms import RuleForm
from oversight.policy.models import Rule


def test_a_hold_rules_numbers_have_the_models_bounds_in_the_browser() -> None:
    form = RuleForm()
    approvals, hold = form.fields["approvals"], form.fields["expires_in_seconds"]
    assert approvals.widget.attrs["min"] == 1
    assert hold.widget.attrs["min"] == 30
    assert 'name="approvals" value="1" min="1"' in str(form["approvals"])


@pytest.mark.parametrize("approvals", ["0", "-3"])
def test_any_number_below_says_at_least_the_models_bound(approvals: str) -> None:
    form = RuleForm(
        data={"name": "big", "effect": "hold", "action": "*", "resource": "*",
              "approvals": approvals, "expires_in_seconds": "10"},
        instance=Rule(),
    )  # fmt: skip
    assert not form.is_valid()
    assert form.errors["approvals"] == ["Ensure this value is greater than or equal to 1."]
    # The model's own words, with the unit (the form's own said "greater than or equal
    # to 30" of what a manifest writes as 30s).
    assert form.errors["expires_in_seconds"] == ["Ensure this is at least 30 seconds."]


@pytest.mark.django_db
def test_the_re_certification_interval_says_at_least_a_day(owner: object) -> None:
    field = AgentForm(user=owner).fields["review_interval_days"]
    assert (field.widget.attrs["min"], field.min_value) == (1, 1)


def test_a_limits_maximum_sum_reads_as_typed_not_with_the_columns_four_places() -> None:
    from decimal import Decimal

    from oversight.policy.forms import LimitForm
    from oversight.policy.models import Limit

    for stored, shown in ((Decimal("20000.0000"), "20000"), (Decimal("0.5000"), "0.5")):
        form = LimitForm(instance=Limit(name="x", window_seconds=60, max_sum=stored))
        assert form["max_sum"].value() == shown
