"""The before/after columns of audit events: JSON kept as the very text the hash covers.

On PostgreSQL the column is ``json``, not ``jsonb``: ``json`` keeps its text as written,
and what is written is the canonical text (``verifier.canonical_text``: sorted keys, no
spaces), the same the event's hash was computed over. So the database itself can rebuild
each event's canonical line from its columns and hash it (verification.py's fast path);
``jsonb`` would reorder keys and respace the text. Elsewhere it is an ordinary JSONField
storing the same text.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.fields.json import KeyTransform, KeyTransformFactory

from oversight.audit.verifier import canonical_text


class _JsonbKeyTransform(KeyTransform):
    """``after__status="allowed"`` and friends: ``json`` has no equality and no
    containment, so the key lookups read the column as jsonb."""

    def preprocess_lhs(self, compiler: Any, connection: Any) -> Any:
        lhs, params, keys = super().preprocess_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            lhs = f"({lhs})::jsonb"
        return lhs, params, keys


class _JsonbKeyTransformFactory(KeyTransformFactory):
    def __call__(self, *args: Any, **kwargs: Any) -> KeyTransform:
        return _JsonbKeyTransform(self.key_name, *args, **kwargs)


class CanonicalJSONField(models.JSONField):
    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None or hasattr(value, "as_sql"):
            return super().get_db_prep_value(value, connection, prepared)
        return canonical_text(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg parses json (Django asks it for text only for jsonb).
        if value is None or not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)

    def get_transform(self, name: str) -> Any:
        transform = super().get_transform(name)
        if isinstance(transform, KeyTransformFactory):
            return _JsonbKeyTransformFactory(name)
        return transform
