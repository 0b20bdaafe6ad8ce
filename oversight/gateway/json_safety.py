"""JSON from agents that the database and the policy engine can hold.

PostgreSQL's jsonb refuses the NUL character, UTF-8 cannot encode lone UTF-16 surrogates
(JSON allows both as escapes), and the CEL runtime converts nested values recursively in
native code, so very deep nesting is refused before it gets there.

The API's OpenAPI document says the same (``StorableJson``, ``StorableObject``,
``NO_NUL``), so that a client, or a fuzzer, knows what is accepted. Fields stay validated
as plain JSON plus ``check_json`` (no per-value union validation on the decision path);
these types only describe them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, GetJsonSchemaHandler, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

MAX_DEPTH = 32
# A JSON Schema pattern (ECMA 262 and Python alike): text without the NUL character.
NO_NUL = r"^[^\x00]*$"


class UnsafeJsonError(ValueError):
    pass


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise UnsafeJsonError("must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeJsonError("must be valid Unicode (no lone surrogates)") from None


def check_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` unchanged, or raise UnsafeJsonError saying what is wrong."""
    if depth > MAX_DEPTH:
        raise UnsafeJsonError(f"must not nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        # Python's JSON parser takes NaN and Infinity, which JSON (and jsonb) has not.
        raise UnsafeJsonError("must be a finite number (JSON has no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key))
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)
    return value


# --- what the OpenAPI document says -------------------------------------------------------


class _KeysWithoutNul:
    """An object's keys as ``propertyNames`` (pydantic writes ``patternProperties``, which
    constrains only the keys that match and lets any other key through)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        [(pattern, values)] = schema.pop("patternProperties").items()
        return {**schema, "propertyNames": {"pattern": pattern}, "additionalProperties": values}


_Text = Annotated[str, Field(pattern=NO_NUL)]
_LIMITS = (
    "no text in it, key or value, may contain the NUL character (\\u0000) or a lone "
    f"surrogate, and it nests at most {MAX_DEPTH} levels deep"
)
_StorableObject = TypeAliasType(
    "StorableObject",
    Annotated[
        dict[_Text, "_StorableJson"],
        _KeysWithoutNul(),
        Field(description=f"A JSON object; {_LIMITS}."),
    ],
)
_StorableJson = TypeAliasType(
    "StorableJson",
    Annotated[
        _Text | float | bool | list["_StorableJson"] | _StorableObject | None,
        Field(description=f"Any JSON value; {_LIMITS}."),
    ],
)


class _DocumentedAs:
    """The JSON Schema of another type, for a field validated as it is declared."""

    def __init__(self, documented: Any) -> None:
        self.adapter = TypeAdapter(documented)

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.adapter.core_schema)


# Field types for the API's schemas; validate them with check_json.
StorableJson = Annotated[Any, _DocumentedAs(_StorableJson)]
StorableObject = Annotated[dict[str, Any], _DocumentedAs(_StorableObject)]
OptionalStorableObject = Annotated[dict[str, Any] | None, _DocumentedAs(_StorableObject | None)]
