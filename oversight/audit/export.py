"""Streaming CSV and JSONL exports, in bounded memory at any size.

They read ``selectors.audit_export_events``: an event marked ``withheld`` (one the person
may not read, in a whole export) goes into the JSONL as its place in the chain only
(``verifier.withheld_entry``), so the export still verifies; the CSV, for spreadsheets,
leaves it out.

The generators are asynchronous so that an ASGI server streams them row batch
by row batch; a synchronous iterator would be read whole into memory first.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from oversight.audit import verifier
from oversight.audit.models import STORED_TEXT_ANNOTATIONS, AuditEvent, stored_texts_popped

BATCH = 2000
# Every hashed field, so an export verifies away from the database (verifier.py export);
# created_at in the canonical form the hash covers.
COLUMNS = (*verifier.HASHED_FIELDS, "hash")
# Spreadsheet programs run cells that start with these as formulas.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


async def _batches(events: QuerySet[AuditEvent]) -> AsyncIterator[list[dict[str, Any]]]:
    before: int | None = None
    while True:
        page = events if before is None else events.filter(seq__lt=before)
        rows = page.with_stored_texts().order_by("-seq")
        rows = rows.values(*COLUMNS, *STORED_TEXT_ANNOTATIONS.values(), "withheld")
        batch = [row async for row in rows[:BATCH]]
        if not batch:
            return
        before = batch[-1]["seq"]
        for i, row in enumerate(batch):
            texts = stored_texts_popped(row)
            if row.pop("withheld"):
                batch[i] = verifier.withheld_entry(row)
            else:
                verifier.with_stored_texts(row, texts)
                row["created_at"] = verifier.timestamp_text(row["created_at"])
        yield batch


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder)
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


async def csv_lines(events: QuerySet[AuditEvent]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    async for batch in _batches(events):
        for row in batch:
            if verifier.is_withheld(row):
                continue
            writer.writerow([_csv_cell(row[column]) for column in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


async def jsonl_lines(events: QuerySet[AuditEvent]) -> AsyncIterator[str]:
    async for batch in _batches(events):
        yield "".join(
            json.dumps(row, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"
            for row in batch
        )
