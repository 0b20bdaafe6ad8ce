"""CEL's error reports, told in words a policy author understands.

CEL reports parser errors in its grammar's terms (``mismatched input '<EOF>' expecting
{'[', '{', '(', ..., NUM_FLOAT, IDENTIFIER}``) and type errors in its overload names
(``'_>_' applied to '(double, string)'``). Each message here says where (line and
column) and what was expected or what does not fit, without grammar tokens. A report
this module does not recognise is kept, cleaned of its status wrapping, rather than lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .variables import VARIABLE_NAMES

_POSITIONED = re.compile(r"ERROR: <input>:(-?\d+):(-?\d+): ([^\n]*)")
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]$")

# Everything that can start a value: what the parser expects after an operator.
_VALUE_START = frozenset(
    [
        "'['",
        "'{'",
        "'('",
        "'.'",
        "'-'",
        "'!'",
        "'true'",
        "'false'",
        "'null'",
        "NUM_FLOAT",
        "NUM_INT",
        "NUM_UINT",
        "STRING",
        "BYTES",
        "IDENTIFIER",
    ]
)
_TOKEN_WORDS = {
    "NUM_FLOAT": "a number",
    "NUM_INT": "a number",
    "NUM_UINT": "a number",
    "STRING": "a quoted string",
    "BYTES": "bytes",
    "IDENTIFIER": "a name",
    "ESC_IDENTIFIER": "a name",
    "<EOF>": "the end of the condition",
}
_WORD_OPERATORS = {"and": "&&", "or": "||", "not": "!"}

_OPERATORS = {
    "_==_": "==",
    "_!=_": "!=",
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
    "-_": "-",
    "!_": "!",
    "_&&_": "&&",
    "_||_": "||",
    "@in": "in",
}
_COMPARISONS = frozenset({"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"})


@dataclass(frozen=True)
class Problem:
    """One error CEL reported: where (1-based; None when CEL gives no place) and what."""

    line: int | None
    column: int | None
    text: str  # CEL's own words

    def where(self) -> str:
        return f"line {self.line}, column {self.column}" if self.line else ""


def problems(report: str) -> list[Problem]:
    """The errors in one of CEL's reports, in its order; those without a place (CEL adds
    some after a parse error: ``<<nil>> parsetree``) only when there is nothing else."""
    found = [
        Problem(int(line), int(column), text)
        for line, column, text in _POSITIONED.findall(report)
        if int(line) > 0
    ]
    return found or [Problem(None, None, clean_message(report))]


def clean_message(text: str) -> str:
    """CEL's status text without its status-code wrapping (``NOT_FOUND: ... [NOT_FOUND]``)."""
    return _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", text.strip()))


def explain(problem: Problem, source: str) -> str:
    """One problem as a sentence, prefixed with its place."""
    words = _explain(problem, source)
    where = problem.where()
    return f"{where}: {words}" if where else words


def _explain(problem: Problem, source: str) -> str:
    text = problem.text
    if text.startswith("Syntax error: "):
        return _syntax(text.removeprefix("Syntax error: "))
    overload = re.fullmatch(r"found no matching overload for '(.+)' applied to '\((.*)\)'", text)
    if overload:
        return _no_overload(overload.group(1), _split_types(overload.group(2)))
    undeclared = re.fullmatch(r"undeclared reference to '(.+)' \(in container '.*'\)", text)
    if undeclared:
        return _undeclared(undeclared.group(1), _called(source, problem))
    select = re.fullmatch(r"expression of type '(.+)' cannot be the operand of a select op.*", text)
    if select:
        return f"{type_words(select.group(1))} has no fields: nothing can follow it with a dot"
    if text.startswith("has() argument must be a field selection"):
        return "has() takes a field, such as has(params.amount)"
    unsupported = re.fullmatch(r"unsupported syntax '(.*)'", text)
    if unsupported:
        return f"`{unsupported.group(1)}` cannot be used in a condition"
    if "recursion limit" in text:
        return "the condition is nested too deeply (CEL's recursion limit)"
    return clean_message(text)


def _syntax(text: str) -> str:
    found = re.fullmatch(r"(?:mismatched|extraneous) input '(.*)' expecting (.+)", text)
    if found:
        seen, expected = found.group(1), _expected(found.group(2))
        if seen == "<EOF>":
            return f"the condition ends too early: {expected} was expected"
        if seen.lower() in _WORD_OPERATORS:
            return f"`{seen}` is not an operator: write {_WORD_OPERATORS[seen.lower()]}"
        if found.group(2) == "<EOF>":
            return (
                f"`{seen}` was not expected: the condition was already complete "
                "(join conditions with && or ||)"
            )
        return f"`{seen}` was not expected here: {expected} was expected"
    found = re.fullmatch(r"missing '(.*)' at '(.*)'", text)
    if found:
        missing, at = found.groups()
        place = "at the end" if at == "<EOF>" else f"before `{at}`"
        return f"a `{missing}` is missing {place}"
    found = re.fullmatch(r"token recognition error at: '(.*)'", text)
    if found:
        return _unreadable(found.group(1))
    found = re.fullmatch(r"no viable alternative at input '(.*)'", text)
    if found:
        return f"`{found.group(1).strip()}` cannot be read here"
    return clean_message(text)


def _expected(grammar: str) -> str:
    """What the parser expected (``{')', ','}``, ``<EOF>``), in words."""
    tokens = [t.strip() for t in grammar.strip("{}").split(", ")] if grammar else []
    if set(tokens) >= _VALUE_START:
        return "a value (a name such as params.amount, a number, a quoted string or a bracket)"
    words: list[str] = []
    for token in tokens:
        literal = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda u: chr(int(u.group(1), 16)), token)
        word = _TOKEN_WORDS.get(token) or f"`{literal.strip(chr(39))}`"
        if word not in words:
            words.append(word)
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unreadable(text: str) -> str:
    first = text.strip()[:2] or text[:1]
    if first[:1] in "'\"":
        return "a string is not closed: add its closing quote"
    if first in ("=>", "=<"):
        return f"`{first}` is not an operator: write >= or <="
    if first.startswith("="):
        return "`=` is not an operator: compare with =="
    if first.startswith("&"):
        return "`&` is not an operator: write && for “and”"
    if first.startswith("|"):
        return "`|` is not an operator: write || for “or”"
    return f"`{text.strip() or text}` cannot be part of a condition"


def _called(source: str, problem: Problem) -> bool:
    """Whether the name CEL points at is called (``name(``): a function, not a variable."""
    if not problem.line or not problem.column:
        return False
    lines = source.split("\n")
    if problem.line > len(lines):
        return False
    rest = lines[problem.line - 1][problem.column - 1 :]
    # CEL points at the name of a global function, at the "(" of a method.
    return re.match(r"([A-Za-z_][A-Za-z0-9_]*)?\s*\(", rest) is not None


def _undeclared(name: str, called: bool) -> str:
    if called:
        return f"there is no function {name}() taking these arguments"
    names = ", ".join(VARIABLE_NAMES[:-1]) + " and " + VARIABLE_NAMES[-1]
    return f"`{name}` is not a variable (the variables are {names}; text goes in quotes)"


_NUMBER_KINDS = {
    "int": "a whole number",
    "uint": "an unsigned whole number",
    "double": "a decimal number",
}


def _no_overload(function: str, types: list[str]) -> str:
    kinds = [type_words(t) for t in types]
    if function in _OPERATORS and len(types) == 2 and set(types) <= set(_NUMBER_KINDS):
        # CEL's checker keeps int, uint and double apart (run time compares them).
        first, second = (_NUMBER_KINDS[t] for t in types)
        return (
            f"`{_OPERATORS[function]}` cannot take {first} and {second} together: write "
            "numbers alike (500.0 beside a decimal) or convert with double() or int()"
        )
    if function in _COMPARISONS and len(kinds) == 2:
        return f"`{_OPERATORS[function]}` cannot compare {kinds[0]} with {kinds[1]}"
    if function == "@in" and len(kinds) == 2:
        return f"`in` cannot look for {kinds[0]} in {kinds[1]}"
    if function == "_[_]" and len(kinds) == 2:
        return f"{kinds[0]} cannot be indexed with {kinds[1]}"
    if function == "_?_:_" and len(kinds) == 3:
        if types[0] != "bool":
            return f"the test before `?` must be a boolean, it is {kinds[0]}"
        return f"both sides of `:` must be of one type, not {kinds[1]} and {kinds[2]}"
    if function in _OPERATORS:
        return f"`{_OPERATORS[function]}` does not apply to {_and(kinds)}"
    return f"{function}() does not apply to {_and(kinds)}"


def _and(kinds: list[str]) -> str:
    if not kinds:
        return "no arguments"
    return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]


def _split_types(text: str) -> list[str]:
    """``map(string, dyn), int`` -> ``["map(string, dyn)", "int"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return [*parts, last] if last else parts


_TYPE_WORDS = {
    "int": "a number",
    "uint": "a number",
    "double": "a number",
    "string": "a string",
    "bool": "a boolean",
    "bytes": "bytes",
    "null_type": "null",
    "dyn": "a value",
    "google.protobuf.Timestamp": "a timestamp",
    "google.protobuf.Duration": "a duration",
}


def type_words(cel_type: str) -> str:
    """A CEL type name, as the checker prints it, in words. Numbers are one kind: JSON
    has no separate integers, and CEL compares int, uint and double with each other."""
    cel_type = cel_type.strip()
    if cel_type in _TYPE_WORDS:
        return _TYPE_WORDS[cel_type]
    if cel_type.startswith("list("):
        inner = cel_type[5:-1]
        return "a list" if inner == "dyn" else f"a list of {_plural(type_words(inner))}"
    if cel_type.startswith("map("):
        return "a map"
    if cel_type.startswith("type("):
        return "a type"
    return cel_type


def _plural(words: str) -> str:
    """``a list of numbers`` -> ``lists of numbers``."""
    if not words.startswith(("a ", "an ")):
        return words
    first, _space, rest = words.split(" ", 1)[1].partition(" ")
    return f"{first}s {rest}".strip()
