"""The hash chain, for the application. Its rules live in ``verifier.py``, the file an
auditor runs without Oversight; on PostgreSQL the database builds the same canonical JSON
when it appends (append_sql.py)."""

from __future__ import annotations

from oversight.audit.verifier import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainBreak,
    canonical_json,
    canonical_text,
    compute_hash,
    find_first_break,
)

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "ChainBreak",
    "canonical_json",
    "canonical_text",
    "compute_hash",
    "find_first_break",
]
