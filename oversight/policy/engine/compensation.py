"""A reversible grant's compensation: the undo action's params, each a CEL expression over
the original action's ``params``, ``before`` and ``after``.

Checked when the grant is saved (``check_undo_params``: each compiles; a name is a plain
identifier), evaluated when an undo is asked for (``undo_params``), fail-closed: an
expression that cannot be evaluated makes the whole undo impossible, never a partial one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

from .cel_messages import clean_message
from .conditions import ConditionError, _compile_error, to_cel

_T = cel.Type
ENV = cel.NewEnv(variables={"params": _T.Map(_T.STRING, _T.DYN), "before": _T.DYN, "after": _T.DYN})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_PARAMS = 32
MAX_SOURCE = 2000


class UndoError(ValueError):
    """An undo's params could not be had from the original action (the undo is refused)."""


def _compile(name: str, source: Any) -> Any:
    if not isinstance(source, str) or not source.strip():
        raise ConditionError(f"undo param {name!r}: write a CEL expression, e.g. params.amount")
    if len(source) > MAX_SOURCE:
        raise ConditionError(f"undo param {name!r}: at most {MAX_SOURCE} characters")
    try:
        return _compiled(source)
    except Exception as exc:  # the binding raises RuntimeError
        raise ConditionError(f"undo param {name!r}: {_compile_error(str(exc), source)}") from None


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    """Compiled once per source: a rewind asks for the undo of many actions of one grant,
    each with a copy of its contract. (A compiled expression is evaluated from any thread,
    as the policy's conditions are.)"""
    return ENV.compile(source)


def compile_undo_params(params: Any) -> dict[str, Any]:
    """Each param's compiled expression; ConditionError names the first bad one."""
    if not isinstance(params, Mapping):
        raise ConditionError("undo params must be a map of name to CEL expression")
    if len(params) > MAX_PARAMS:
        raise ConditionError(f"at most {MAX_PARAMS} undo params")
    compiled = {}
    for name, source in params.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConditionError(f"undo param name {name!r}: letters, digits and _ only")
        compiled[name] = _compile(name, source)
    return compiled


def check_undo_params(params: Any) -> None:
    compile_undo_params(params)


def _python(value: Any) -> Any:
    """A CEL value's plain Python (``plain_value``: a map's or a list's items are plain
    too, where ``value()`` leaves them CEL's) as JSON: keys as strings. Anything JSON has
    no value for (bytes, a timestamp) is refused."""
    if isinstance(value, Mapping):
        return {str(_python(k)): _python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_python(item) for item in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypeError(f"a {type(value).__name__} has no JSON value")


def undo_params(
    params: Mapping[str, str], *, original: Mapping[str, Any], before: Any, after: Any
) -> dict[str, Any]:
    """The undo's params for one original action; UndoError says which could not be had."""
    compiled = compile_undo_params(params)
    activation = ENV.Activation(
        {"params": to_cel(dict(original)), "before": to_cel(before), "after": to_cel(after)}
    )
    found: dict[str, Any] = {}
    for name, expression in compiled.items():
        try:
            value = expression.eval(activation)
            if value.type() == _T.ERROR:
                raise UndoError(
                    f"undo param {name!r} ({params[name]}): {clean_message(str(value.value()))}"
                )
            found[name] = _python(value.plain_value())
        except UndoError:
            raise
        except Exception as exc:
            raise UndoError(
                f"undo param {name!r} ({params[name]}): {clean_message(str(exc))}"
            ) from None
    return found
