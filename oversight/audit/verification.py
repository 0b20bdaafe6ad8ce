"""Walk the stored chain in order, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from oversight.audit.chain import HASHED_FIELDS, ChainBreak, find_first_break
from oversight.audit.models import AuditEvent


def _rows_in_order(batch_size: int) -> Iterator[dict[str, Any]]:
    fields = (*HASHED_FIELDS, "hash")
    yield from AuditEvent.objects.order_by("seq").values(*fields).iterator(chunk_size=batch_size)


def audit_chain_verify(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Return (rows checked, first break or None)."""
    counted = 0

    def counting() -> Iterator[dict[str, Any]]:
        nonlocal counted
        for row in _rows_in_order(batch_size):
            counted += 1
            yield row

    found = find_first_break(counting())
    return counted, found
