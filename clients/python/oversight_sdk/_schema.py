"""A tool call's arguments against the tool's input schema (JSON Schema): what the MCP
proxy and the framework adapters check before they ask Oversight, so that a call the tool
would refuse, or read as another value than its resource names, is never put to a
reviewer or a rule. `jsonschema` is imported only when a schema is checked (the `mcp`
extra names it; `mcp` and the OpenAI Agents SDK need it anyway)."""

from __future__ import annotations

import json
from typing import Any


class ArgumentsRefused(ValueError):
    """A call whose arguments its tool's schema refuses, or that the tool might read as
    other values than its resource names: refused before it is decided."""


def mismatch(where: str, message: str) -> ArgumentsRefused:
    """The refusal of arguments that do not match the tool's input schema, in one wording."""
    return ArgumentsRefused(
        f"the arguments do not match the tool's input schema ({where}: {message[:300]}); "
        "call it again with arguments the schema allows"
    )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


def check_types(fields: list[str], arguments: dict[str, Any], schema: Any) -> None:
    """Raise ArgumentsRefused when an argument the resource names (`fields`) is not of a JSON
    type the tool's input schema gives it (`type`, or the `type` of each of its `anyOf` or
    `oneOf`). A server may coerce it: an MCP server on pydantic takes `7.0`, `"07"` or
    `" 7"` for the integer 7, so `crm:contact/{id}` would be `crm:contact/7.0` for the
    contact 7, past a forbid on `crm:contact/7`. An argument whose type the schema does
    not say is not checked."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for name in fields:
        declared = _declared_types(properties.get(name) if isinstance(properties, dict) else None)
        value = arguments.get(name)
        if declared and not any(_of_type(value, kind) for kind in declared):
            raise ArgumentsRefused(
                f"the argument {name} is {json.dumps(value, default=str)[:60]}, not of the "
                f"type the tool's schema gives it ({' or '.join(declared)}); the tool might "
                "read it as another value than the resource names, so it is refused"
            )


def schema_validator(schema: Any) -> Any | None:
    """A validator of a tool's arguments against its input schema (of the draft its
    `$schema` names, else 2020-12, as MCP says), or None when the schema is not a valid
    one, or `jsonschema` is not installed: then the tool is left to check the call, as it
    must anyway."""
    try:
        from jsonschema import Draft202012Validator, validators
        from jsonschema.exceptions import SchemaError
    except ImportError:
        return None
    if not isinstance(schema, dict):
        return None
    try:
        kind = validators.validator_for(schema, default=Draft202012Validator)
        kind.check_schema(schema)
    except SchemaError:
        return None
    return kind(schema)


def check_arguments(validator: Any | None, arguments: dict[str, Any]) -> None:
    """Raise ArgumentsRefused, saying where and what, when `arguments` do not match the tool's
    input schema (`schema_validator`): such a call is refused before it is decided, rather
    than put to a reviewer (or to a rule whose condition cannot read it) and then refused
    by the tool."""
    if validator is None:
        return
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(arguments))
    if error is not None:
        where = error.json_path if error.absolute_path else "the arguments"
        raise mismatch(where, error.message)


def _declared_types(schema: Any) -> list[str]:
    """The JSON types a property's schema allows, or [] when it does not say them all."""
    if not isinstance(schema, dict):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list) and all(isinstance(kind, str) for kind in declared):
        return list(declared)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            found = [_declared_types(option) for option in options]
            return [kind for kinds in found for kind in kinds] if all(found) else []
    return []


def _of_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES.get(kind, ()))
