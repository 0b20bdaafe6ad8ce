"""CEL conditions: compile and type-check at save time, evaluate fail-closed at decision time.

Conditions see ``action``, ``resource``, ``env`` (strings), ``params`` and ``agent``
(maps from string to any JSON value), ``time`` (a timestamp) and ``undo`` (a boolean: the
action undoes an earlier one). A condition must be
typed ``bool`` by the checker: an expression the checker can only type as ``dyn``, such as
``params.flag``, is refused at save time, with the fix (``params.flag == true``) in the
message, so that "is it a boolean?" is settled once at save time and not on every request.

At save time ``check_condition`` also checks with what is known of the parameters' types
(param_types.py), and every error is told in words (cel_messages.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

from .cel_messages import clean_message, explain, problems
from .param_types import typed_problems, used_params
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
        "undo": _T.BOOL,
    }
)
_BOOL = _T.BOOL
_ERROR = _T.ERROR

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
    `line` and `column` hold the first reported position, or None. `typed` is set when the
    error shows only with the parameters' known types (the caller may say where the types
    come from).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        typed: bool = False,
    ):
        super().__init__(message)
        self.line = line
        self.column = column
        self.typed = typed


def compile_condition(source: str) -> Any | None:
    """Compile and type-check `source`; None for an empty (always true) condition."""
    if not isinstance(source, str):
        raise ConditionError(f"condition must be text, not {type(source).__name__}")
    if source.strip() == "":
        return None
    try:
        expression = ENV.compile(source)
    except Exception as exc:  # the binding raises RuntimeError; anything else is refused too
        raise _compile_error(str(exc), source) from None
    return_type = expression.return_type()
    if return_type != _BOOL:
        raise ConditionError(f"condition must be a boolean, it is {describe_type(return_type)}")
    return expression


def check_condition(source: str, *, param_types: Mapping[str, str] | None = None) -> None:
    """Raise ConditionError if `source` is not a valid boolean CEL condition, or cannot
    work with parameters of the given types (name -> a param_types.PARAM_TYPES entry)."""
    if compile_condition(source) is None:
        return
    found = typed_problems(source, param_types or {})
    if found:
        used = used_params(source, param_types or {})
        known = ", ".join(f"params.{name} is {_article(kind)}" for name, kind in used.items())
        error = _compile_error_of(found, source)
        message = f"{error}; {known}" if known else str(error)
        raise ConditionError(message, line=error.line, column=error.column, typed=bool(known))


def _article(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


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


def _compile_error(text: str, source: str) -> ConditionError:
    return _compile_error_of(problems(text), source)


def _compile_error_of(found: list[Any], source: str) -> ConditionError:
    """One error for CEL's problems: each in words, the first one's place kept. A parse
    error often brings a second report of the same mistake further on; the first says it."""
    if found[0].text.startswith("Syntax error") and len(found) > 1:
        found = found[:1]
    message = "; ".join(dict.fromkeys(explain(problem, source) for problem in found))
    return ConditionError(message, line=found[0].line, column=found[0].column)


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
            "undo": request.undo,
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
