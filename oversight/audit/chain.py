"""The hash chain. Its rules live in ``verifier.py``, the file an auditor runs without
Oversight; this adds what only the writer needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    "canonical_json_parts",
    "canonical_text",
    "compute_hash",
    "find_first_break",
]


def canonical_json_parts(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """``canonical_json`` of a row whose ``prev_hash`` and ``seq`` are not known yet, as
    (head, middle, tail): the text is ``head + prev_hash + middle + str(seq) + tail``.

    The database appends with this (see oversight/audit/append_sql.py): it fills in the
    chain head it reads under the append lock. The parts are cut from ``canonical_json``
    itself. Keys are sorted, so the top-level ``prev_hash`` is the last unescaped
    ``"prev_hash":"`` in the text (``before`` and ``after`` come earlier, and only
    strings, where quotes are escaped, come after), followed by ``request_id`` and then
    ``seq``.
    """
    text = canonical_json({**row, "prev_hash": GENESIS_HASH, "seq": 0})
    head, marker, rest = text.rpartition('"prev_hash":"' + GENESIS_HASH)
    middle, seq_marker, tail = rest.rpartition('"seq":0')
    if not marker or not seq_marker:
        raise ValueError("the canonical form has no prev_hash or seq")
    return head + '"prev_hash":"', middle + '"seq":', tail
