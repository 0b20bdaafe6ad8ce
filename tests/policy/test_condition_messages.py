"""Condition errors in words: where, and what was expected or what does not fit; never the
grammar's tokens or CEL's overload names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oversight.policy.engine import ConditionError, check_condition
from oversight.policy.engine.cel_messages import type_words

# What CEL's own reports are made of, and a person should never have to read.
RAW = re.compile(
    r"NUM_FLOAT|NUM_INT|IDENTIFIER|\\u00|STRING\b|<EOF>|mismatched input|extraneous input|"
    r"no viable alternative|token recognition|overload|'_[^']*_'|@in|\(in container|"
    r"INVALID_ARGUMENT|Syntax error"
)


def _message(source: str) -> str:
    with pytest.raises(ConditionError) as caught:
        check_condition(source)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "params.amount >",
            "line 1, column 16: the condition ends too early: a value (a name such as "
            "params.amount, a number, a quoted string or a bracket) was expected",
        ),
        (
            "action in ['a', 'b'",
            "line 1, column 20: the condition ends too early: `]` or `,` was expected",
        ),
        ("(params.amount > 5", "line 1, column 19: a `)` is missing at the end"),
        (
            "params.amount > 5)",
            "line 1, column 18: `)` was not expected: the condition was already complete "
            "(join conditions with && or ||)",
        ),
        (
            "params.amount >> 5",
            "line 1, column 16: `>` was not expected here: a value (a name such as "
            "params.amount, a number, a quoted string or a bracket) was expected",
        ),
        ("params.amount = 5", "line 1, column 15: `=` is not an operator: compare with =="),
        ("params.amount => 5", "line 1, column 15: `=>` is not an operator: write >= or <="),
        (
            "params.amount > 5 and env == 'x'",
            "line 1, column 19: `and` is not an operator: write &&",
        ),
        ("action == 'x", "line 1, column 11: a string is not closed: add its closing quote"),
        ("params..amount > 1", "line 1, column 8: `..` cannot be read here"),
        ("#", "line 1, column 1: `#` cannot be part of a condition"),
        ("action > 5", "line 1, column 8: `>` cannot compare a string with a number"),
        ("1 + 'a' == 2", "line 1, column 3: `+` does not apply to a number and a string"),
        ("-action == 'a'", "line 1, column 1: `-` does not apply to a string"),
        ("action[0] == 'a'", "line 1, column 7: a string cannot be indexed with a number"),
        ("1 in action", "line 1, column 3: `in` cannot look for a number in a string"),
        (
            "action ? true : false",
            "line 1, column 8: the test before `?` must be a boolean, it is a string",
        ),
        (
            "true ? 1 : 'a'",
            "line 1, column 6: both sides of `:` must be of one type, not a number and a string",
        ),
        (
            "action.foo",
            "line 1, column 7: a string has no fields: nothing can follow it with a dot",
        ),
        (
            "time.getHours('x', 1) > 1",
            "line 1, column 14: there is no function getHours() taking these arguments",
        ),
        ("has(params)", "line 1, column 5: has() takes a field, such as has(params.amount)"),
        (
            "duration('1h') > 5",
            "line 1, column 16: `>` cannot compare a duration with a number",
        ),
        (
            "params.amount * 1.1 > 500",
            "line 1, column 21: `>` cannot take a decimal number and a whole number together: "
            "write numbers alike (500.0 beside a decimal) or convert with double() or int()",
        ),
        (
            "agent.risk_tier > 3",  # agent's fields are strings
            "line 1, column 17: `>` cannot compare a string with a number",
        ),
    ],
)
def test_each_error_says_where_and_what(source: str, message: str) -> None:
    assert _message(source) == message


def test_a_second_report_of_the_same_parse_error_is_left_out() -> None:
    # CEL reports the unclosed string, then the end it did not expect: one mistake.
    assert _message("action == 'x").count("line 1") == 1


def test_the_place_is_kept_on_the_error() -> None:
    with pytest.raises(ConditionError) as caught:
        check_condition('env == "production" &&\n  action > 5')
    assert (caught.value.line, caught.value.column) == (2, 10)


@pytest.mark.parametrize(
    ("cel_type", "words"),
    [
        ("int", "a number"),
        ("double", "a number"),
        ("list(string)", "a list of strings"),
        ("list(list(int))", "a list of lists of numbers"),
        ("map(string, dyn)", "a map"),
        ("google.protobuf.Timestamp", "a timestamp"),
        ("dyn", "a value"),
    ],
)
def test_types_are_told_in_words(cel_type: str, words: str) -> None:
    assert type_words(cel_type) == words


VALID = [
    "params.amount > 500 && env == 'production'",
    "has(params.charges) && size(params.charges) > 1",
    'resource.startsWith("stripe:") || agent.risk_tier in ["high", "critical"]',
    "time.getHours() >= 9 && !(action == 'payments.refund')",
    "params.charges.exists(c, c.matches('^ch_')) ? true : false",
]


@given(st.sampled_from(VALID).flatmap(lambda s: st.tuples(st.just(s), st.integers(1, len(s)))))
def test_a_condition_cut_anywhere_is_refused_without_grammar_words(cut: tuple[str, int]) -> None:
    source, at = cut
    try:
        check_condition(source[:at])
    except ConditionError as exc:
        assert not RAW.search(str(exc)), str(exc)
        assert re.match(r"line \d+, column \d+: |condition must be a boolean", str(exc)), exc


@given(
    st.sampled_from(VALID).flatmap(
        lambda s: st.tuples(
            st.just(s), st.integers(0, len(s)), st.sampled_from("()[]{}'\"=&|<>.,!?:#+-*/%@$\\`~;^")
        )
    )
)
def test_a_stray_character_anywhere_is_refused_without_grammar_words(
    edit: tuple[str, int, str],
) -> None:
    source, at, char = edit
    try:
        check_condition(source[:at] + char + source[at:])
    except ConditionError as exc:
        assert not RAW.search(str(exc)), str(exc)
