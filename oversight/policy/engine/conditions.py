"""CEL conditions: compile and type-check at save time, evaluate fail-closed at decision time.

Conditions see ``action``, ``resource``, ``env`` (strings), ``params`` and ``agent``
(maps from string to any JSON value) and ``time`` (a timestamp). A condition must be
typed ``bool`` by the checker: an expression the checker can only type as ``dyn``, such as
``params.flag``, is refused at save time, with the fix (``params.flag == true``) in the
message, so that "is it a boolean?" is settled once at save time and not on every request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

from .types import Request

_T = cel.Type
ENV = cel.NewEnv(
    variables={
        "action": _T.STRING,
        "resource": _T.STRING,
        "params": _T.Map(_T.STRING, _T.DYN),
        "agent": _T.Map(_T.STRING, _T.DYN),
        "env": _T.STRING,
        "time": _T.TIMESTAMP,
    }
)
_BOOL = _T.BOOL
_ERROR = _T.ERROR

_POSITIONED = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]$")
_TYPE_WORDS = {
    "STRING": "a string",
    "INT": "an integer",
    "UINT": "an unsigned integer",
    "DOUBLE": "a number",
    "BYTES": "bytes",
    "NULL": "null",
    "TIMESTAMP": "a timestamp",
    "DURATION": "a duration",
    "TYPE": "a type",
}
_SCALARS = frozenset({str, int, float, bool, type(None)})
# Deeper params are refused (the conditions fail, so closed): see to_cel.
MAX_NESTING = 64


class ConditionError(ValueError):
    """A condition that does not compile, does not type-check, or is not a boolean.

    The message says where (``line 1, column 17: ...``) when CEL reports a position;
    `line` and `column` hold the first reported position, or None.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


def compile_condition(source: str) -> Any | None:
    """Compile and type-check `source`; None for an empty (always true) condition."""
    if not isinstance(source, str):
        raise ConditionError(f"condition must be text, not {type(source).__name__}")
    if source.strip() == "":
        return None
    try:
        expression = ENV.compile(source)
    except Exception as exc:  # the binding raises RuntimeError; anything else is refused too
        raise _compile_error(str(exc)) from None
    return_type = expression.return_type()
    if return_type != _BOOL:
        raise ConditionError(f"condition must be a boolean, it is {describe_type(return_type)}")
    return expression


def check_condition(source: str) -> None:
    """Raise ConditionError if `source` is not a valid boolean CEL condition."""
    compile_condition(source)


def describe_type(cel_type: Any) -> str:
    """A CEL type in words, for messages."""
    name = cel_type.name()
    if name == "DYN":
        return "dyn, known only at run time (compare it explicitly: `params.flag == true`)"
    if name.startswith("MAP"):
        return "a map"
    if name.startswith("LIST"):
        return "a list"
    return _TYPE_WORDS.get(name, name.lower())


def _compile_error(text: str) -> ConditionError:
    found = _POSITIONED.findall(text)
    if not found:
        return ConditionError(clean_message(text))
    message = "; ".join(f"line {line}, column {column}: {what}" for line, column, what in found)
    return ConditionError(message, line=int(found[0][0]), column=int(found[0][1]))


def clean_message(text: str) -> str:
    """CEL's status text without its status-code wrapping (``NOT_FOUND: ... [NOT_FOUND]``)."""
    return _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", text.strip()))


def evaluate(expression: Any, activation: Any) -> bool | str:
    """The condition's value, or a str saying why it could not be had.

    A str rather than an exception because this is the hot path (an exception costs more
    than the evaluation) and a failure is an ordinary result: the caller decides whether it
    counts as firing. CEL reports most run-time errors (missing key, no matching overload,
    division by zero, a value CEL cannot represent) as a Value of type ERROR; the binding
    may still raise, and a non-boolean result is a failure too.
    """
    try:
        value = expression.eval(activation)
        result = value.value()
        if result is True or result is False:
            return result
        if value.type() == _ERROR:
            return clean_message(str(result)) or "evaluation failed"
        return f"condition must be a boolean, it is {describe_type(value.type())}"
    except Exception as exc:
        return clean_message(str(exc)) or type(exc).__name__


def build_activation(request: Request) -> Any:
    """One CEL activation for a request, shared by every condition evaluated for it.

    ``time`` is passed as the datetime itself: CEL converts an aware datetime to UTC.
    """
    return ENV.Activation(
        {
            "action": request.action,
            "resource": request.resource,
            "params": to_cel(request.params),
            "agent": to_cel(request.agent),
            "env": request.env,
            "time": request.time,
        }
    )


def to_cel(value: Any, depth: int = 0) -> Any:
    """`value` with mappings as dicts and tuples as lists, which is what CEL accepts.

    Plain dicts and lists of scalars (the usual JSON params) are returned as they are.
    Anything CEL cannot represent is left in place: CEL then reports it as an evaluation
    error, which fails closed. Nesting is capped because CEL converts values recursively
    in C++ and a deep enough structure overflows its stack and kills the process.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_NESTING:
        raise ValueError(f"values are nested more than {MAX_NESTING} levels deep")
    # The flat dict or list is the common case: a plain loop (no generator) keeps it cheap.
    if kind is dict:
        for item in value.values():
            if type(item) not in _SCALARS:
                return {key: to_cel(item, depth + 1) for key, item in value.items()}
        return value
    if kind is list:
        for item in value:
            if type(item) not in _SCALARS:
                return [to_cel(item, depth + 1) for item in value]
        return value
    if isinstance(value, list | tuple):
        return [to_cel(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {key: to_cel(item, depth + 1) for key, item in value.items()}
    if isinstance(value, str):
        return str(value)
    return value
