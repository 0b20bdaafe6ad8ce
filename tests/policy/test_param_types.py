"""Checking a condition with what is known of the parameters: a number parameter compared
with a string, or given to size(), is refused; what a number may do, in CEL's int or
double, is not; nothing is refused for a parameter of unknown type."""

from __future__ import annotations

from typing import Any

import pytest

from oversight.policy.engine import ConditionError, check_condition
from oversight.policy.engine.param_types import PARAM_TYPES, kind_of, observed_types

TYPES = {
    "amount": "number",
    "charges": "list of strings",
    "note": "string",
    "urgent": "boolean",
    "customer": "map",
}


def _refusal(source: str, types: dict[str, str] = TYPES) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        check_condition(source, param_types=types)
    return caught.value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "params.amount > 'abc'",
            "line 1, column 15: `>` cannot compare a number with a string; "
            "params.amount is a number",
        ),
        (
            "size(params.amount) > 1",
            "line 1, column 5: size() does not apply to a number; params.amount is a number",
        ),
        (
            "params.amount == '900'",
            "line 1, column 15: `==` cannot compare a number with a string; "
            "params.amount is a number",
        ),
        (
            "params.charges[0] == 1",
            "line 1, column 19: `==` cannot compare a string with a number; "
            "params.charges is a list of strings",
        ),
        (
            "params.note > 5",
            "line 1, column 13: `>` cannot compare a string with a number; params.note is a string",
        ),
        (
            "params.urgent == 'yes'",
            "line 1, column 15: `==` cannot compare a boolean with a string; "
            "params.urgent is a boolean",
        ),
        (
            "params.amount.value > 1",
            "line 1, column 14: a number has no fields: nothing can follow it with a dot; "
            "params.amount is a number",
        ),
        (
            "has(params.amount) && params.amount > 'x'",
            "line 1, column 37: `>` cannot compare a number with a string; "
            "params.amount is a number",
        ),
    ],
)
def test_a_condition_that_cannot_work_with_the_known_types_is_refused(
    source: str, message: str
) -> None:
    error = _refusal(source)
    assert str(error) == message
    assert error.typed
    check_condition(source)  # without the types: only run time could tell


@pytest.mark.parametrize(
    "source",
    [
        "params.amount > 500",
        "params.amount > 500.5",
        "params.amount >= 500u",
        "params.amount > 500 && params.amount < 1000.5",  # int and double: CEL compares both
        "params.amount * 2 > 1000",
        "params.amount in [100, 200]",
        "has(params.amount) && params.amount > 500",
        "!has(params.amount) || params.amount > 500",
        "size(params.charges) > 1 && params.charges[0].startsWith('ch_')",
        "params.charges.exists(c, c == 'ch_1')",
        "params.note.contains('refund')",
        "params.urgent == true",
        "params.customer.tier == 'gold' && has(params.customer.tier)",
        "params.unknown > 'abc'",  # no type known: run time decides
        "params['amount'] > 1",
        "string(params.amount) == '900'",
        "int(params.amount) > 5",
    ],
)
def test_what_a_parameter_of_that_type_can_do_is_accepted(source: str) -> None:
    check_condition(source, param_types=TYPES)


def test_places_stay_right_on_later_lines() -> None:
    error = _refusal("params.amount > 500 ||\n  has(params.amount) && params.amount > 'b'")
    assert (error.line, error.column) == (2, 39)


def test_errors_found_without_types_are_not_marked_typed() -> None:
    assert not _refusal("action > 5").typed
    assert not _refusal("agent.risk_tier > 3").typed


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (5, "number"),
        (5.5, "number"),
        (True, "boolean"),
        ("x", "string"),
        ({"a": 1}, "map"),
        (["a", "b"], "list of strings"),
        ([1, 2.5], "list of numbers"),
        ([1, "a"], "list"),
        ([[1]], "list"),
        (None, None),
    ],
)
def test_a_json_value_s_kind(value: Any, kind: str | None) -> None:
    assert kind_of(value) == kind
    assert kind is None or kind in PARAM_TYPES


def test_types_are_those_every_request_agrees_on() -> None:
    seen = [
        {"amount": 900, "note": "a", "charges": ["ch_1"], "mixed": 1, "maybe": None},
        {"amount": 12.5, "note": "b", "charges": [], "mixed": "one"},
        {"amount": 3, "charges": ["ch_2", "ch_3"], "tags": []},
        "not a map",
    ]
    assert observed_types(seen) == {  # type: ignore[arg-type]
        "amount": "number",
        "note": "string",
        "charges": "list of strings",
        "tags": "list",
    }


def test_lists_of_different_elements_are_lists() -> None:
    assert observed_types([{"xs": ["a"]}, {"xs": [1]}]) == {"xs": "list"}
    assert observed_types([{"xs": []}, {"xs": 1}]) == {}
