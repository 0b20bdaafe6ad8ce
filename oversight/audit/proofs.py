"""Reads of checkpoints and proofs: what the audit page, the event view and evidence
bundles show."""

from __future__ import annotations

from typing import Any

from oversight.audit import merkle
from oversight.audit.models import AuditCheckpoint, AuditEvent


def checkpoint_latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-number").first()


def inclusion_proof(
    event: AuditEvent, checkpoint: AuditCheckpoint | None = None, tree: merkle.Tree | None = None
) -> dict[str, Any] | None:
    """The RFC 9162 inclusion proof of ``event`` in the tree the newest checkpoint (or
    ``checkpoint``) signed; None when no checkpoint covers it yet."""
    checkpoint = checkpoint or checkpoint_latest()
    if checkpoint is None or checkpoint.tree_size < event.seq:
        return None
    tree = tree or merkle.Tree()
    path = tree.inclusion(event.seq - 1, checkpoint.tree_size)
    return {
        "checkpoint": checkpoint.number,
        "tree_size": checkpoint.tree_size,
        "root": checkpoint.root,
        "leaf_index": event.seq - 1,
        "path": [node.hex() for node in path],
    }


def consistency_proof(first: AuditCheckpoint, second: AuditCheckpoint) -> list[str]:
    """The RFC 9162 consistency proof from ``first``'s tree to ``second``'s."""
    return [node.hex() for node in merkle.Tree().consistency(first.tree_size, second.tree_size)]
