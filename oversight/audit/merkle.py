"""The Merkle tree over all events, stored for proofs (the rules are in verifier.py).

Leaf ``i`` is event ``seq = i + 1``. Nodes of ``STORED_LEVEL`` and up (subtrees of 256
events and more) are stored once, when a checkpoint first covers them; anything smaller
is computed from at most 256 events' hashes. So a root, an inclusion proof or a
consistency proof reads O(log n) stored nodes and at most a few chunks of events, at any
size of the log, and writing a checkpoint costs O(1) per new event plus O(log n).
"""

from __future__ import annotations

from collections.abc import Iterator

from oversight.audit import verifier
from oversight.audit.models import AuditEvent, MerkleNode

STORED_LEVEL = 8
CHUNK = 1 << STORED_LEVEL
_BATCH = 5000


class TreeError(Exception):
    """The events or stored nodes a hash needs are not there (events were deleted, or
    the tree was not extended to this size)."""


def _event_hashes(start: int, stop: int) -> Iterator[str]:
    """Hashes of events ``seq`` in (start, stop], in order, checked for gaps."""
    expected = start + 1
    rows = (
        AuditEvent.objects.filter(seq__gt=start, seq__lte=stop)
        .order_by("seq")
        .values_list("seq", "hash")
    )
    for seq, value in rows.iterator(chunk_size=_BATCH):
        if seq != expected:
            raise TreeError(f"event {expected} is missing")
        yield value
        expected += 1
    if expected != stop + 1:
        raise TreeError(f"event {expected} is missing")


class Tree:
    """Subtree hashes of the log's tree, from stored nodes and events; one instance
    caches what it read, for one proof or one checkpoint."""

    def __init__(self) -> None:
        self._chunks: dict[int, list[bytes]] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}

    def _chunk(self, chunk: int, stop: int) -> list[bytes]:
        """Leaf hashes of ``chunk`` up to leaf ``stop`` (exclusive) at least."""
        leaves = self._chunks.get(chunk, [])
        have = chunk * CHUNK + len(leaves)
        if have < stop:
            leaves = leaves + [verifier.leaf_hash(h) for h in _event_hashes(have, stop)]
            self._chunks[chunk] = leaves
        return leaves

    def _stored(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._nodes:
            row = MerkleNode.objects.filter(level=level, index=index).values_list("hash").first()
            if row is None:
                raise TreeError(f"node {level}/{index} is not stored: no checkpoint covers it")
            self._nodes[key] = bytes(row[0])
        return self._nodes[key]

    def subtree(self, start: int, stop: int) -> bytes:
        """The hash of leaves [start, stop) (RFC 9162's MTH of that range)."""
        width = stop - start
        if width <= 0:
            raise ValueError(f"empty range {start}..{stop}")
        if width & (width - 1) == 0 and start % width == 0 and width >= CHUNK:
            return self._stored(width.bit_length() - 1, start // width)
        chunk = start // CHUNK
        if chunk == (stop - 1) // CHUNK:
            offset = chunk * CHUNK
            leaves = self._chunk(chunk, stop)
            return verifier.merkle_root(leaves[start - offset : stop - offset])
        k = 1 << ((width - 1).bit_length() - 1)
        return verifier.node_hash(self.subtree(start, start + k), self.subtree(start + k, stop))

    def root(self, size: int) -> bytes:
        return verifier.EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return verifier.inclusion_path(index, size, self.subtree)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        return verifier.consistency_path(size1, size2, self.subtree)


def stored_chunks() -> int:
    """How many whole chunks of 256 events have their node stored."""
    last = MerkleNode.objects.filter(level=STORED_LEVEL).order_by("-index").values("index").first()
    return 0 if last is None else last["index"] + 1


def tree_extend(size: int) -> int:
    """Store the nodes of every whole chunk within the first ``size`` events, and their
    parents; return how many nodes were written. Reads only the events not yet covered."""
    done = stored_chunks()
    whole = size // CHUNK
    if whole <= done:
        return 0
    pending: dict[tuple[int, int], bytes] = {}
    written = 0
    leaves: list[bytes] = []
    chunk = done
    for value in _event_hashes(done * CHUNK, whole * CHUNK):
        leaves.append(verifier.leaf_hash(value))
        if len(leaves) < CHUNK:
            continue
        level, index, node = STORED_LEVEL, chunk, verifier.merkle_root(leaves)
        pending[(level, index)] = node
        while index & 1:
            left = pending.get((level, index - 1))
            if left is None:
                left = Tree()._stored(level, index - 1)
            level, index = level + 1, index >> 1
            node = verifier.node_hash(left, node)
            pending[(level, index)] = node
        leaves, chunk = [], chunk + 1
        if len(pending) >= _BATCH:
            written += _save(pending)
    return written + _save(pending)


def _save(pending: dict[tuple[int, int], bytes]) -> int:
    MerkleNode.objects.bulk_create(
        [MerkleNode(level=level, index=index, hash=h) for (level, index), h in pending.items()]
    )
    count = len(pending)
    pending.clear()
    return count
