"""What is known of an action's parameters, and the type check that uses it.

At run time ``params`` is a map of any JSON values, so CEL's checker alone cannot see
that ``params.amount > 'abc'`` or ``size(params.amount) > 1`` can never work: it types
``params.amount`` as dyn, and the rule fails (so holds or forbids) on every request. When
the caller knows a parameter's type (from the agent's requests, or a limit summing it),
``typed_problems`` checks the condition again with ``params.amount`` declared as that type.

JSON has one kind of number and CEL three (int, uint, double); CEL compares them with
each other at run time but its checker does not. So a number parameter is checked as each
of the three, and only a problem found every time is one: a number can be neither compared
with a string nor given to size(), whatever its kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cel_expr_python import cel

from .cel_messages import Problem, problems

_T = cel.Type

NUMBER = "number"
STRING = "string"
BOOLEAN = "boolean"
MAP = "map"
LIST = "list"
# Every type a parameter may be given, as shown to people.
PARAM_TYPES = (
    NUMBER,
    STRING,
    BOOLEAN,
    MAP,
    LIST,
    "list of numbers",
    "list of strings",
    "list of booleans",
    "list of maps",
)

# The variables every condition sees, with their types (as the checker declares them,
# except ``agent``: the decision path fills it with these four strings only).
AGENT_FIELDS = ("slug", "team", "risk_tier", "owner")
_BASE = {
    "action": _T.STRING,
    "resource": _T.STRING,
    "params": _T.Map(_T.STRING, _T.DYN),
    "agent": _T.Map(_T.STRING, _T.STRING),
    "env": _T.STRING,
    "time": _T.TIMESTAMP,
    "undo": _T.BOOL,
}
_RESERVED = frozenset(
    [
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
        "true",
        "false",
        "null",
    ]
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HAS = re.compile(r"\bhas\([ \t]*params[ \t]*\.[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\)")
_USED = re.compile(r"\bparams\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


def kind_of(value: Any) -> str | None:
    """The parameter type of one JSON value; None for null (it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return MAP
    if isinstance(value, list | tuple):
        kinds = {kind_of(item) for item in value} - {None}
        if len(kinds) == 1 and (inner := kinds.pop()) in (NUMBER, STRING, BOOLEAN, MAP):
            return f"list of {inner}s"
        return LIST
    return None


def observed_types(params_seen: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each parameter's type across requests' params, where every request agrees.

    A parameter seen with two types is left out (dyn: only run time can tell). Lists
    agree when their elements do; an empty list agrees with any list.
    """
    seen: dict[str, set[str]] = {}
    empty_lists: set[str] = set()
    for params in params_seen:
        if not isinstance(params, Mapping):
            continue
        for key, value in params.items():
            if isinstance(value, list | tuple) and not value:
                empty_lists.add(key)
            elif (kind := kind_of(value)) is not None:
                seen.setdefault(key, set()).add(kind)
    types = {key: LIST for key in empty_lists - set(seen)}
    for key, kinds in seen.items():
        if key in empty_lists and not all(kind.startswith(LIST) for kind in kinds):
            continue  # a list here, something else there
        if len(kinds) > 1 and all(kind.startswith(LIST) for kind in kinds):
            kinds = {LIST}  # lists of varying elements: a list
        if len(kinds) == 1:
            types[key] = kinds.pop()
    return types


def _cel_type(kind: str, number: Any) -> Any:
    if kind == NUMBER:
        return number
    if kind.startswith("list of "):
        return _T.List(_cel_type(kind.removeprefix("list of ")[:-1], number))
    return {STRING: _T.STRING, BOOLEAN: _T.BOOL, MAP: _T.Map(_T.STRING, _T.DYN)}.get(
        kind, _T.List(_T.DYN)
    )


def used_params(source: str, param_types: Mapping[str, str]) -> dict[str, str]:
    """The typed parameters ``source`` reads as ``params.<name>``."""
    return {
        name: param_types[name]
        for name in dict.fromkeys(_USED.findall(source))
        if name in param_types and name not in _RESERVED and _IDENTIFIER.fullmatch(name)
    }


def _without_has(source: str, used: Mapping[str, str]) -> str:
    """``has(params.amount)`` tests the map ``params``, which a declared ``params.amount``
    would hide: for the check it becomes ``true`` padded to its length (places stay)."""

    def blank(found: re.Match[str]) -> str:
        if found.group(1) not in used:
            return found.group(0)
        return "true".ljust(len(found.group(0)))

    return _HAS.sub(blank, source)


def typed_problems(source: str, param_types: Mapping[str, str]) -> list[Problem]:
    """The problems CEL's checker finds in ``source`` (which already compiles with
    ``params`` as a map of dyn) once the known parameters are declared with their types
    and ``agent`` as a map of strings; empty when there are none."""
    used = used_params(source, param_types)
    source = _without_has(source, used)
    numeric = any(NUMBER in kind for kind in used.values())
    found: list[list[Problem]] = []
    for number in (_T.INT, _T.DOUBLE, _T.UINT) if numeric else (_T.INT,):
        declared = {f"params.{name}": _cel_type(kind, number) for name, kind in used.items()}
        env = cel.NewEnv(variables={**_BASE, **declared})
        try:
            env.compile(source)
        except Exception as exc:  # the binding raises RuntimeError
            found.append(problems(str(exc)))
        else:
            return []  # one typing that checks is enough: the number may be of that kind
    places = set.intersection(*({(p.line, p.column) for p in typing} for typing in found))
    return [p for p in found[-1] if (p.line, p.column) in places]
