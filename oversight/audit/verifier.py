#!/usr/bin/env python3
"""Verify an Oversight audit log away from its database.

This one file is everything an auditor needs: it runs with the Python standard library
and the ``cryptography`` package, and imports nothing else of Oversight. Oversight itself
uses it for the same rules (the chain's canonical form, the Merkle tree, checkpoints), so
what the server writes and what an outsider checks cannot drift apart.

    python verifier.py export EVENTS.jsonl --checkpoints DIR --public-key KEY.pem
    python verifier.py bundle BUNDLE_DIR_OR_ZIP

The rules:

* **Chain.** Each event's ``hash`` is SHA-256 over its canonical JSON (``HASHED_FIELDS``,
  keys sorted, no spaces, UTF-8), which includes the previous event's hash.
* **Merkle tree** (RFC 9162, section 2.1) over all events in ``seq`` order: leaf ``i`` is
  event ``seq = i + 1``, its leaf hash ``SHA-256(0x00 || hash)`` with ``hash`` as 32 raw
  bytes, an interior node ``SHA-256(0x01 || left || right)``.
* **Checkpoint.** A signed statement of the log's state: its number, tree size (the newest
  ``seq``), chain head (that event's hash), Merkle root, time and the previous
  checkpoint's hash. The signature is Ed25519 over the statement's canonical JSON; a
  checkpoint's hash is SHA-256 of the same bytes. A checkpoint file may also list the
  event hashes it adds (``events``), so a verifier can name the first event that differs.
* **Stored text.** An event appended by hand (``audit_append``, by whoever holds the
  database's runtime credentials) may hold ``before`` and ``after`` in another text than
  the canonical one of their values, and is hashed over that text. An export carries it
  beside the value (``before_text``, ``after_text``) for such an event only; the text
  must read back as the value, and the hash covers the text.
* **Withheld events.** An export made by someone who may not read every event carries
  each of the others as ``{"seq", "prev_hash", "hash", "withheld": true}``: no content,
  but its place in the chain and its leaf in the Merkle tree, so the export still verifies
  against the checkpoints. Its content cannot be checked, but changing its hash breaks the
  link to the next event and the checkpoints' roots, as for any event; the verdict says
  how many events were withheld.

Exit codes (``EXIT_*`` below): 0 verified; 1 the chain is broken; 3 the events contradict
a checkpoint; 4 a checkpoint is itself invalid; 5 actions and decision events disagree
(reported by the server's ``audit_verify`` only); 6 the input cannot be read. 2 is a
usage error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT = "oversight-audit-checkpoint/1"

EXIT_OK = 0
EXIT_CHAIN = 1
EXIT_USAGE = 2
EXIT_CHECKPOINT = 3
EXIT_BAD_CHECKPOINT = 4
EXIT_ACTIONS = 5
EXIT_UNREADABLE = 6

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
# What an export keeps of an event its reader may not read: its place in the chain.
WITHHELD_FIELDS = ("seq", "prev_hash", "hash")


# --- the chain ------------------------------------------------------------------------


def timestamp_text(value: datetime | str) -> str:
    """The canonical form of ``created_at``: UTC, microseconds, a ``Z``. Text already in
    that form (an export's) is taken as it is."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_text(value: Any) -> str:
    """JSON with sorted keys and no spaces, as the hash covers it (before and after are
    stored in exactly this text)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Where an export carries the text ``before`` or ``after`` was stored in, when that is not
# the canonical text of the value (an event appended by hand): what the hash covers.
STORED_TEXTS = {"before": "before_text", "after": "after_text"}


def with_stored_texts(row: dict[str, Any], texts: Mapping[str, str | None]) -> dict[str, Any]:
    """``row`` (with its ``hash``) given the texts (by field name) its ``before`` and
    ``after`` were stored in: with those that are not the canonical text of the value, if
    the hash covers them rather than the canonical text. (Events Oversight writes are
    stored in the canonical text; events written before the database kept that text are
    hashed over it and stored otherwise; an event appended by hand is hashed over the text
    it was sent in.)"""
    differing = {
        STORED_TEXTS[name]: text
        for name, text in texts.items()
        if text is not None and text != canonical_text(row[name])
    }
    if differing and compute_hash(row) != row["hash"]:
        row.update(differing)
    return row


def _stored_text_reads_back(row: Mapping[str, Any], name: str) -> bool:
    text = row.get(STORED_TEXTS[name])
    if text is None:
        return True
    try:
        return isinstance(text, str) and canonical_text(json.loads(text)) == canonical_text(
            row[name]
        )
    except ValueError:
        return False


def canonical_json(row: Mapping[str, Any]) -> str:
    payload = {name: row[name] for name in HASHED_FIELDS}
    payload["created_at"] = timestamp_text(payload["created_at"])
    stored = {name: row[key] for name, key in STORED_TEXTS.items() if row.get(key) is not None}
    if not stored:
        return canonical_text(payload)
    # As canonical_text lays the payload out, with the stored texts in their places: the
    # runs of other fields between them laid out whole.
    pieces: list[str] = []
    run: dict[str, Any] = {}
    for name in sorted(payload):
        if name in stored:
            if run:
                pieces.append(canonical_text(run)[1:-1])
                run = {}
            pieces.append(f'"{name}":{stored[name]}')
        else:
            run[name] = payload[name]
    if run:
        pieces.append(canonical_text(run)[1:-1])
    return "{" + ",".join(pieces) + "}"


def compute_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()


def stored_content_matches(row: Mapping[str, Any], texts: Mapping[str, str | None]) -> bool:
    """Whether an event as its database stores it (its fields but ``before`` and ``after``,
    and those two as the texts they are stored in: ``texts``) hashes to its ``hash``: over
    the texts, as the database hashes every event it appends, or, for events written before
    it kept their canonical text, over the canonical text of their values. The values are
    parsed only for the second."""
    fields = {**row, "before": None, "after": None}
    as_stored = {STORED_TEXTS[name]: text or "null" for name, text in texts.items()}
    if compute_hash({**fields, **as_stored}) == row["hash"]:
        return True
    try:
        values = {name: None if text is None else json.loads(text) for name, text in texts.items()}
    except ValueError:
        return False
    return compute_hash({**fields, **values}) == row["hash"]


def content_matches(row: Mapping[str, Any]) -> bool:
    """Whether the event's content hashes to its ``hash``, and any stored text it carries
    reads back as its value."""
    return all(_stored_text_reads_back(row, name) for name in STORED_TEXTS) and (
        compute_hash(row) == row["hash"]
    )


def withheld_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event as an export holds it for someone who may not read it: no content."""
    return {**{name: row[name] for name in WITHHELD_FIELDS}, "withheld": True}


def is_withheld(row: Mapping[str, Any]) -> bool:
    return row.get("withheld") is True


def _is_hash(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


class ChainWalk:
    """Checks events fed in ascending ``seq`` order, one at a time, in constant memory.

    A deleted event shows as a gap, an edited one as a hash mismatch, a reordered or
    inserted one as a ``prev_hash`` that does not point at its predecessor. ``first`` is
    the first break found; the walk stops checking after it.
    """

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.first: ChainBreak | None = None

    def add(self, row: Mapping[str, Any], content_ok: bool | None = None) -> bool:
        """Check one event; False once the chain is broken (at this event or before).
        ``content_ok``: whether the row's content hashes to its ``hash``, when the caller
        has checked that already (the database does, on Oversight's own fast path, and
        then ``row`` needs only ``seq``, ``prev_hash`` and ``hash``); None: check it here."""
        if self.first is not None:
            return False
        seq = row["seq"]
        if seq != self.expected_seq:
            what = "an event is missing" if seq > self.expected_seq else "out of order"
            self.first = ChainBreak(seq, f"expected seq {self.expected_seq}, found {seq}: {what}")
        elif row["prev_hash"] != self.prev_hash:
            self.first = ChainBreak(seq, "prev_hash does not match the previous event's hash")
        elif not (content_matches(row) if content_ok is None else content_ok):
            self.first = ChainBreak(seq, "content does not match its hash: the event was altered")
        else:
            self.prev_hash = row["hash"]
            self.expected_seq += 1
            return True
        return False


def find_first_break(rows: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """Walk rows in ascending seq order; return the first place the chain is broken."""
    walk = ChainWalk()
    for row in rows:
        if not walk.add(row):
            break
    return walk.first


# --- the Merkle tree (RFC 9162, section 2.1) -------------------------------------------


def leaf_hash(event_hash: str | bytes) -> bytes:
    raw = bytes.fromhex(event_hash) if isinstance(event_hash, str) else event_hash
    return hashlib.sha256(b"\x00" + raw).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class Frontier:
    """The tree's right edge: the roots of the perfect subtrees that cover leaves
    ``[0, size)``, largest first. Appending is O(1) amortized, the root O(log n)."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError("a frontier needs one node per set bit of its size")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (``leaf_hash`` of an event)."""
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        node = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            node = node_hash(left, node)
        return node


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162, 2.1.3.2: is ``leaf`` at ``index`` in the tree of ``tree_size`` with
    ``root``?"""
    if index >= tree_size or index < 0:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162, 2.1.4.2: is the tree of ``size1`` with ``root1`` a prefix of the tree of
    ``size2`` with ``root2``?"""
    if size1 > size2 or size1 < 0:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0 or not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the first subtree is root1 itself
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def inclusion_path(index: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """RFC 9162, 2.1.3.1: PATH(index, D[0:size]), with ``subtree(a, b)`` giving the hash of
    leaves ``[a, b)`` (a stored node or one computed from the leaves)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path, lo, hi = [], 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    return path[::-1]


def consistency_path(size1: int, size2: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """RFC 9162, 2.1.4.1: PROOF(size1, D[0:size2])."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from {size1} to {size2}")
    path, lo, hi, m, whole = [], 0, size2, size1, True
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(subtree(lo, hi))
    return path[::-1]


# --- checkpoints ------------------------------------------------------------------------

STATEMENT_FIELDS = ("format", "log", "number", "tree_size", "head", "root", "time", "previous")


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The exact bytes signed and hashed: canonical JSON of the statement's fields."""
    return canonical_text({name: statement[name] for name in STATEMENT_FIELDS}).encode("utf-8")


def checkpoint_hash(statement: Mapping[str, Any]) -> str:
    return hashlib.sha256(statement_bytes(statement)).hexdigest()


def public_key_from_pem(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def key_id(public_key: Any) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_valid(public_key: Any, statement: Mapping[str, Any], signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature, validate=True), statement_bytes(statement))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class Checkpoint:
    """One checkpoint as read from a file: the statement, its signature, the key's id
    and, when present, the hashes of the events it adds (from ``events_from``)."""

    statement: dict[str, Any]
    signature: str
    key_id: str
    events_from: int | None = None
    event_hashes: list[str] = field(default_factory=list)
    source: str = ""
    path: Path | None = None  # a file whose event list is read when it is needed

    def hashes(self) -> list[str]:
        """The event hashes this checkpoint lists (read from its file, when it came from
        a directory: a long log's lists are not all held at once)."""
        if self.event_hashes or self.path is None:
            return self.event_hashes
        events = json.loads(self.path.read_text("utf-8")).get("events") or {}
        return list(events.get("hashes", []))

    @property
    def number(self) -> int:
        return int(self.statement["number"])

    @property
    def tree_size(self) -> int:
        return int(self.statement["tree_size"])

    def label(self) -> str:
        return f"checkpoint #{self.number} ({self.tree_size} events, {self.statement['time']})"

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = "") -> Checkpoint:
        statement = document["checkpoint"]
        missing = [name for name in STATEMENT_FIELDS if name not in statement]
        if missing:
            raise ValueError(f"{source or 'a checkpoint'} lacks {', '.join(missing)}")
        events = document.get("events") or {}
        return cls(
            statement=dict(statement),
            signature=str(document.get("signature", "")),
            key_id=str(document.get("key_id", "")),
            events_from=events.get("from_seq"),
            event_hashes=list(events.get("hashes", [])),
            source=source,
        )


def checkpoint_document(
    statement: Mapping[str, Any],
    signature: str,
    key: str,
    events_from: int | None = None,
    event_hashes: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON document of one checkpoint, as sinks write it and verifiers read it."""
    document: dict[str, Any] = {
        "checkpoint": {name: statement[name] for name in STATEMENT_FIELDS},
        "signature": signature,
        "key_id": key,
    }
    if events_from is not None:
        document["events"] = {"from_seq": events_from, "hashes": list(event_hashes)}
    return document


def dumps_document(document: Mapping[str, Any]) -> str:
    """A checkpoint document as one line of JSON (a file of them is JSON Lines)."""
    return canonical_text(document)


def read_checkpoints(source: str) -> list[Checkpoint]:
    """Checkpoints from a directory of ``*.json`` files, a JSON Lines file, or an
    ``http(s)`` URL serving JSON Lines; sorted by number."""
    documents: list[tuple[str, Mapping[str, Any]]] = []
    if source.startswith(("http://", "https://")):
        from urllib.request import urlopen

        with urlopen(source, timeout=30) as response:  # noqa: S310 (an auditor's URL)
            text = response.read().decode("utf-8")
        documents = [(f"{source} line {i}", json.loads(line)) for i, line in _lines(text)]
    else:
        path = Path(source)
        if path.is_dir():
            checkpoints = []
            for file in sorted(path.glob("*.json")):
                checkpoint = Checkpoint.from_document(
                    json.loads(file.read_text("utf-8")), source=file.name
                )
                checkpoint.event_hashes, checkpoint.path = [], file
                checkpoints.append(checkpoint)
            return sorted(checkpoints, key=lambda c: c.number)
        else:
            text = path.read_text("utf-8")
            documents = [(f"{path.name} line {i}", json.loads(line)) for i, line in _lines(text)]
    checkpoints = [Checkpoint.from_document(doc, source=name) for name, doc in documents]
    return sorted(checkpoints, key=lambda c: c.number)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


@dataclass(frozen=True)
class Finding:
    """What is wrong: the exit code, the first bad sequence number (if one can be named)
    and the checkpoint it contradicts (if any)."""

    code: int
    message: str
    seq: int | None = None
    checkpoint: int | None = None


def check_checkpoints(checkpoints: Sequence[Checkpoint], public_key: Any) -> Finding | None:
    """The checkpoints on their own: each signed by the key, numbered from 1 without a
    gap, each naming its predecessor's hash, their tree sizes never shrinking."""
    want_key = key_id(public_key)
    previous, previous_size = GENESIS_HASH, 0
    for position, checkpoint in enumerate(checkpoints, start=1):
        statement = checkpoint.statement
        if statement["format"] != CHECKPOINT_FORMAT:
            return Finding(EXIT_BAD_CHECKPOINT, f"{checkpoint.label()}: unknown format")
        if checkpoint.key_id and checkpoint.key_id != want_key:
            return Finding(
                EXIT_BAD_CHECKPOINT,
                f"{checkpoint.label()} was signed by key {checkpoint.key_id}, not {want_key}",
                checkpoint=checkpoint.number,
            )
        if not signature_valid(public_key, statement, checkpoint.signature):
            return Finding(
                EXIT_BAD_CHECKPOINT,
                f"{checkpoint.label()}: the signature does not verify with key {want_key}",
                checkpoint=checkpoint.number,
            )
        if checkpoint.number != position:
            return Finding(
                EXIT_BAD_CHECKPOINT,
                f"checkpoint #{position} is missing (the next one found is #{checkpoint.number})",
                checkpoint=position,
            )
        if statement["previous"] != previous:
            return Finding(
                EXIT_BAD_CHECKPOINT,
                f"{checkpoint.label()} does not name checkpoint #{position - 1} as its previous",
                checkpoint=checkpoint.number,
            )
        if checkpoint.tree_size < previous_size:
            return Finding(
                EXIT_BAD_CHECKPOINT,
                f"{checkpoint.label()} covers fewer events than checkpoint #{position - 1}",
                checkpoint=checkpoint.number,
            )
        previous, previous_size = checkpoint_hash(statement), checkpoint.tree_size
    return None


@dataclass
class Verification:
    """Walks events (ascending ``seq``) against the chain rules and against checkpoints.

    Feed every event with ``add``, then call ``finish``. The result is the first problem
    found, naming the first bad sequence number and the checkpoint it contradicts, or
    None. ``checked`` counts the events read.
    """

    checkpoints: Sequence[Checkpoint] = ()
    checked: int = 0
    withheld: int = 0  # of those checked, events withheld (``is_withheld``)
    finding: Finding | None = None

    def __post_init__(self) -> None:
        self._walk = ChainWalk()
        self._frontier = Frontier()
        self._pending = list(self.checkpoints)
        # The checkpoints' event lists, one at a time, in order.
        self._lists = [c for c in self.checkpoints if c.events_from is not None]
        self._list: Checkpoint | None = None
        self._list_hashes: list[str] = []
        self._list_start = 0

    def _listed(self, seq: int) -> tuple[str, Checkpoint] | None:
        """The hash a checkpoint listed for ``seq``, if one did."""
        while self._list is None or seq >= self._list_start + len(self._list_hashes):
            if not self._lists:
                return None
            self._list = self._lists.pop(0)
            self._list_hashes = self._list.hashes()
            self._list_start = self._list.events_from or 0
        if seq < self._list_start:
            return None
        return self._list_hashes[seq - self._list_start], self._list

    def add(self, row: Mapping[str, Any], content_ok: bool | None = None) -> bool:
        """Check one event; False once a problem is found. ``content_ok``: as for
        ``ChainWalk.add``; likewise ``row["leaf"]``, when there, is the event's
        ``leaf_hash`` already computed (by Oversight's database, on its fast path)."""
        if self.finding is not None:
            return False
        self.checked += 1
        seq = row["seq"]
        if is_withheld(row):
            if not (_is_hash(row.get("hash")) and _is_hash(row.get("prev_hash"))):
                self.finding = Finding(
                    EXIT_CHAIN, f"withheld event {seq} lacks a valid hash or prev_hash", seq=seq
                )
                return False
            content_ok = True  # no content to check: its hash must still chain and fit
            self.withheld += 1
        listed = self._listed(seq)
        if listed is not None and listed[0] != row["hash"]:
            self.finding = Finding(
                EXIT_CHECKPOINT,
                f"event {seq} differs from {listed[1].label()}, which recorded its hash "
                f"as {listed[0][:16]}...: the log was rewritten from here",
                seq=seq,
                checkpoint=listed[1].number,
            )
            return False
        if not self._walk.add(row, content_ok):
            found = self._walk.first
            assert found is not None
            self.finding = Finding(EXIT_CHAIN, found.reason, seq=found.seq)
            return False
        self._frontier.append(row.get("leaf") or leaf_hash(row["hash"]))
        while self._pending and self._pending[0].tree_size == seq:
            self._check_at(self._pending.pop(0), row["hash"])
        return self.finding is None

    def _check_at(self, checkpoint: Checkpoint, head: str) -> None:
        statement = checkpoint.statement
        if statement["head"] == head and statement["root"] == self._frontier.root().hex():
            return
        since = self._last_matching_size(checkpoint)
        self.finding = Finding(
            EXIT_CHECKPOINT,
            f"the events up to seq {checkpoint.tree_size} do not match {checkpoint.label()} "
            f"(its {'root' if statement['head'] == head else 'chain head'} differs): an event "
            f"after seq {since} was changed and the chain recomputed",
            seq=since + 1,
            checkpoint=checkpoint.number,
        )

    def _last_matching_size(self, failed: Checkpoint) -> int:
        earlier = [c.tree_size for c in self.checkpoints if c.number < failed.number]
        return max(earlier, default=0)

    def finish(self) -> Finding | None:
        """After the last event: checkpoints that cover more events than were read mean
        the newest events were deleted."""
        if self.finding is None and self._pending:
            checkpoint = self._pending[-1]
            have = self._walk.expected_seq - 1
            self.finding = Finding(
                EXIT_CHECKPOINT,
                f"{checkpoint.label()} covers {checkpoint.tree_size} events, but the log ends "
                f"at seq {have}: the events after seq {have} were deleted",
                seq=have + 1,
                checkpoint=checkpoint.number,
            )
        return self.finding


# --- exports and evidence bundles -------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def export_verification(
    events: Iterable[Mapping[str, Any]], checkpoints: Sequence[Checkpoint], public_key: Any
) -> Verification:
    """A whole log exported as JSON Lines (ascending or descending ``seq``, some events
    perhaps withheld) checked against checkpoints: the finished walk, with its counts and
    its ``finding`` (None: verified)."""
    verification = Verification(checkpoints=checkpoints)
    problem = check_checkpoints(checkpoints, public_key)
    if problem:
        verification.finding = problem
        return verification
    for row in sorted(events, key=lambda row: row["seq"]):
        if not verification.add(row):
            break
    verification.finish()
    return verification


def verify_export(
    events: Iterable[Mapping[str, Any]], checkpoints: Sequence[Checkpoint], public_key: Any
) -> tuple[int, Finding | None]:
    """``export_verification``'s (events checked, first problem or None)."""
    verification = export_verification(events, checkpoints, public_key)
    return verification.checked, verification.finding


def verify_bundle_events(
    events: Sequence[Mapping[str, Any]],
    proofs: Mapping[str, Any],
    checkpoints: Sequence[Checkpoint],
    public_key: Any,
) -> tuple[int, Finding | None]:
    """Events of one agent and time range, each with an inclusion proof against a
    checkpoint: each event's content matches its hash, and its hash is in the tree that
    checkpoint signed. The checkpoints must verify among themselves."""
    problem = check_checkpoints(checkpoints, public_key)
    if problem:
        return 0, problem
    by_number = {c.number: c for c in checkpoints}
    checked = 0
    for row in sorted(events, key=lambda r: r["seq"]):
        seq = row["seq"]
        if not content_matches(row):
            return checked, Finding(
                EXIT_CHAIN, f"seq {seq}: content does not match its hash", seq=seq
            )
        proof = proofs.get(str(seq))
        checkpoint = by_number.get(int(proof["checkpoint"])) if proof else None
        if proof is None or checkpoint is None:
            return checked, Finding(EXIT_CHECKPOINT, f"seq {seq}: no inclusion proof", seq=seq)
        path = [bytes.fromhex(p) for p in proof["path"]]
        root = bytes.fromhex(checkpoint.statement["root"])
        if not verify_inclusion(seq - 1, checkpoint.tree_size, leaf_hash(row["hash"]), path, root):
            return checked, Finding(
                EXIT_CHECKPOINT,
                f"seq {seq} is not in the tree {checkpoint.label()} signed",
                seq=seq,
                checkpoint=checkpoint.number,
            )
        checked += 1
    return checked, None


def _bundle_files(source: Path) -> dict[str, bytes]:
    if source.is_dir():
        return {
            str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*") if p.is_file()
        }
    with zipfile.ZipFile(source) as archive:
        names = archive.namelist()
        prefix = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
        return {
            name[len(prefix) :] if name.startswith(prefix) else name: archive.read(name)
            for name in names
            if not name.endswith("/")
        }


def verify_bundle(source: Path) -> tuple[int, Finding | None]:
    """An evidence bundle (a directory or its zip): events.jsonl, proofs.json,
    checkpoints/*.json and public-key.pem."""
    files = _bundle_files(source)
    public_key = public_key_from_pem(files["public-key.pem"])
    checkpoints = sorted(
        (
            Checkpoint.from_document(json.loads(body), source=name)
            for name, body in files.items()
            if name.startswith("checkpoints/") and name.endswith(".json")
        ),
        key=lambda c: c.number,
    )
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines() if line]
    proofs = json.loads(files["proofs.json"])
    return verify_bundle_events(events, proofs, checkpoints, public_key)


def _report(checked: int, finding: Finding | None, what: str) -> int:
    if finding is None:
        print(f"Verified: {checked} {what}.")
        return EXIT_OK
    print(f"FAILED: {finding.message}", file=sys.stderr)
    if finding.seq is not None:
        print(f"first bad seq: {finding.seq}", file=sys.stderr)
    if finding.checkpoint is not None:
        print(f"checkpoint: #{finding.checkpoint}", file=sys.stderr)
    return finding.code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="a whole exported log (JSON Lines)")
    export.add_argument("events", type=Path)
    export.add_argument("--checkpoints", required=True, help="directory, JSONL file or URL")
    export.add_argument("--public-key", required=True, type=Path)
    bundle = commands.add_parser("bundle", help="an evidence bundle (directory or zip)")
    bundle.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "bundle":
            checked, finding = verify_bundle(args.path)
            return _report(checked, finding, "events, each in a signed checkpoint")
        public_key = public_key_from_pem(args.public_key.read_bytes())
        checkpoints = read_checkpoints(args.checkpoints)
        verification = export_verification(read_jsonl(args.events), checkpoints, public_key)
        what = f"events against {len(checkpoints)} checkpoints"
        if verification.withheld:
            what += (
                f"; {verification.withheld} events withheld (not yours to read: only their "
                "hashes are in the export, checked in the chain and the checkpoints)"
            )
        return _report(verification.checked, verification.finding, what)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"cannot read the input: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":
    sys.exit(main())
