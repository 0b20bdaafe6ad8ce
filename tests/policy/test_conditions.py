"""CEL conditions: checked at save time, evaluated fail-closed at decision time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from oversight.policy.engine import ConditionError, Request, check_condition
from oversight.policy.engine.conditions import (
    build_activation,
    compile_condition,
    evaluate,
    to_cel,
)

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def _request(**changes: Any) -> Request:
    fields: dict[str, Any] = {
        "action": "stripe.refund.create",
        "resource": "stripe:charge/ch_1",
        "params": {"amount": 700, "charges": ["ch_1", "ch_2"], "note": "hi"},
        "agent": {"slug": "refund-bot", "team": "payments", "risk_tier": "high"},
        "env": "production",
        "time": NOW,
    }
    fields.update(changes)
    return Request(**fields)


def _run(source: str, request: Request | None = None) -> bool | str:
    expression = compile_condition(source)
    return evaluate(expression, build_activation(request or _request()))


@pytest.mark.parametrize(
    "source",
    [
        "params.amount > 500",
        "size(params.charges) > 1",
        'resource.startsWith("crm:contact/vip")',
        'env == "production"',
        'agent.risk_tier == "high" && action.endsWith(".delete")',
        "time.getHours() >= 9 && time.getHours() < 17",
        'has(params.amount) && params.amount > 10.5 || agent.team in ["a", "b"]',
        "params.charges.exists(c, c.matches('^ch_'))",
        "params.flag == true",
    ],
)
def test_a_valid_boolean_condition_passes(source: str) -> None:
    check_condition(source)


def test_an_empty_condition_is_valid_and_always_true() -> None:
    check_condition("")
    check_condition("   ")
    assert compile_condition("") is None


def test_a_syntax_error_says_where_and_what_was_expected() -> None:
    with pytest.raises(ConditionError) as caught:
        check_condition("params.amount >")
    assert str(caught.value) == (
        "line 1, column 16: the condition ends too early: a value (a name such as "
        "params.amount, a number, a quoted string or a bracket) was expected"
    )
    assert (caught.value.line, caught.value.column) == (1, 16)


def test_a_syntax_error_on_a_later_line_gives_that_line() -> None:
    with pytest.raises(ConditionError, match=r"^line 2, column 24: the condition ends too early"):
        check_condition('env == "production" &&\n  params.amount > 500 +')


def test_a_type_error_is_refused_with_its_position() -> None:
    with pytest.raises(ConditionError) as caught:
        check_condition("action + 1")
    assert str(caught.value) == "line 1, column 8: `+` does not apply to a string and a number"


def test_a_non_boolean_condition_is_refused() -> None:
    with pytest.raises(ConditionError, match=r"^condition must be a boolean, it is a map$"):
        check_condition("params")
    with pytest.raises(ConditionError, match="it is a string"):
        check_condition("action")
    with pytest.raises(ConditionError, match="it is an integer"):
        check_condition("1 + 2")


def test_a_condition_only_typed_at_run_time_is_refused_with_the_fix() -> None:
    with pytest.raises(ConditionError, match=r"params.flag == true"):
        check_condition("params.flag")


def test_an_unknown_variable_is_refused_with_the_variables_there_are() -> None:
    with pytest.raises(ConditionError) as caught:
        check_condition("foo > 1")
    assert str(caught.value) == (
        "line 1, column 1: `foo` is not a variable (the variables are action, resource, "
        "params, agent, env, time and undo; text goes in quotes)"
    )


def test_every_error_is_reported() -> None:
    with pytest.raises(ConditionError) as caught:
        check_condition("foo && bar")
    assert "line 1, column 1: `foo` is not a variable" in str(caught.value)
    assert "line 1, column 8: `bar` is not a variable" in str(caught.value)


def test_a_deeply_nested_condition_is_refused() -> None:
    with pytest.raises(ConditionError, match="recursion limit"):
        check_condition("(" * 100 + "true" + ")" * 100)


def test_a_condition_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConditionError, match="must be text"):
        check_condition(None)  # type: ignore[arg-type]


def test_condition_errors_are_value_errors() -> None:
    assert issubclass(ConditionError, ValueError)


def test_it_evaluates_against_the_request() -> None:
    assert _run("params.amount > 500") is True
    assert _run("params.amount > 500", _request(params={"amount": 5})) is False
    assert _run("size(params.charges) > 1") is True
    assert _run('resource.startsWith("stripe:charge/")') is True
    assert _run('agent.slug == "refund-bot" && env == "production"') is True


def test_time_is_a_timestamp_in_utc() -> None:
    assert _run("time.getHours() == 10") is True
    assert _run('time > timestamp("2026-11-24T10:00:00Z")') is True
    # An aware time in another zone is the same instant, read in UTC.
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert _run("time.getHours() == 10", _request(time=paris)) is True
    assert _run('time.getHours("Europe/Paris") == 11') is True


@pytest.mark.parametrize(
    ("source", "params", "says"),
    [
        ("params.amount > 500", {}, "Key not found"),
        ("params.amount > 500", {"amount": "700"}, "No matching overloads"),
        ("params.amount / 0 > 1", {"amount": 7}, "divide by zero"),
        ("params.amount > 1", {"amount": 2**70}, "out of range"),
        ("params.amount > 1", {"amount": {1, 2}}, "Non-CEL value"),
        ("size(params) > 0", {1: "a"}, "Expected STRING"),
    ],
)
def test_run_time_errors_come_back_as_the_error_text(
    source: str, params: dict[Any, Any], says: str
) -> None:
    result = _run(source, _request(params=params))
    assert isinstance(result, str)
    assert says in result


def test_read_only_mappings_and_tuples_are_converted_for_cel() -> None:
    params = MappingProxyType({"amount": 700, "charges": ("a", "b"), "nested": {"x": (1,)}})
    assert _run("params.amount > 500 && size(params.charges) == 2", _request(params=params)) is True
    assert to_cel(params) == {"amount": 700, "charges": ["a", "b"], "nested": {"x": [1]}}


def test_plain_json_params_are_passed_as_they_are() -> None:
    params = {"amount": 700, "note": "x"}
    assert to_cel(params) is params


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


def test_deeply_nested_params_fail_instead_of_crashing_cel() -> None:
    # CEL converts values recursively in C++: 100,000 levels would kill the process.
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        build_activation(_request(params=_nested(100_000)))
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        to_cel(_nested_list(70))


def _nested_list(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def test_reasonably_nested_params_are_fine() -> None:
    assert _run("size(params) == 1", _request(params=_nested(60))) is True
