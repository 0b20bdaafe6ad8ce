"""The hash chain: pure functions shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in addition to prev_hash.
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_type",
    "actor_user_id",
    "actor_agent_id",
    "actor_label",
    "verb",
    "target_type",
    "target_id",
    "target_label",
    "agent_id",
    "request_id",
    "before",
    "after",
    "prev_hash",
)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(row: Mapping[str, Any]) -> str:
    payload = {field: row[field] for field in HASHED_FIELDS}
    payload["created_at"] = _timestamp(payload["created_at"])
    return _dumps(payload)


def compute_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()


def canonical_json_parts(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """``canonical_json`` of a row whose ``prev_hash`` and ``seq`` are not known yet, as
    (head, middle, tail): the text is ``head + prev_hash + middle + str(seq) + tail``.

    The database appends with this (see oversight/audit/append_sql.py): it fills in the
    chain head it reads under the append lock. Keys are sorted, so ``prev_hash`` and
    ``seq`` sit between fixed neighbours: ``request_id`` between them, the ``actor_*``,
    ``after``, ``agent_id``, ``before``, ``created_at`` keys before, and ``target_*`` and
    ``verb`` after.
    """
    payload = {field: row[field] for field in HASHED_FIELDS if field not in ("seq", "prev_hash")}
    payload["created_at"] = _timestamp(payload["created_at"])
    before = {k: v for k, v in payload.items() if k < "prev_hash"}
    after = {k: v for k, v in payload.items() if k > "seq"}
    head = _dumps(before)[:-1] + ',"prev_hash":"'
    middle = '","request_id":' + _dumps(payload["request_id"]) + ',"seq":'
    tail = "," + _dumps(after)[1:]
    return head, middle, tail


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def find_first_break(rows: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """Walk rows in ascending seq order; return the first place the chain is broken.

    A deleted row shows as a gap, an edited row as a hash mismatch, and a
    reordered row as a prev_hash that does not point at its predecessor.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            return ChainBreak(seq, f"expected seq {expected_seq}, found {seq}: a row is missing")
        if row["prev_hash"] != prev_hash:
            return ChainBreak(seq, "prev_hash does not match the previous row's hash")
        if compute_hash(row) != row["hash"]:
            return ChainBreak(seq, "content does not match its hash: the row was altered")
        prev_hash = row["hash"]
        expected_seq += 1
    return None
