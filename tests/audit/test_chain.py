from __future__ import annotations

import datetime as dt
import json

from oversight.audit.chain import (
    GENESIS_HASH,
    compute_hash,
    find_first_break,
)
from oversight.audit.verifier import content_matches, stored_content_matches, with_stored_texts


def _chain(n: int) -> list[dict]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        row = {
            "seq": seq,
            "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seq),
            "actor_type": "system",
            "actor_user_id": None,
            "actor_agent_id": None,
            "actor_label": "system:tests",
            "verb": "test.event",
            "target_type": "test.thing",
            "target_id": str(seq),
            "target_label": f"thing {seq}",
            "agent_id": None,
            "request_id": "",
            "before": None,
            "after": {"n": seq},
            "prev_hash": prev,
        }
        row["hash"] = compute_hash(row)
        prev = row["hash"]
        rows.append(row)
    return rows


def test_an_intact_chain_has_no_break() -> None:
    assert find_first_break(_chain(5)) is None


def test_the_hash_covers_the_content() -> None:
    rows = _chain(3)
    rows[1]["after"] = {"n": 999}
    found = find_first_break(rows)
    assert found is not None and found.seq == 2 and "altered" in found.reason


def test_the_hash_ignores_key_order_but_not_values() -> None:
    row = _chain(1)[0]
    reordered = dict(reversed(list(row.items())))
    assert compute_hash(reordered) == compute_hash(row)


def test_a_missing_row_is_named_by_the_row_after_the_gap() -> None:
    rows = _chain(5)
    del rows[2]
    found = find_first_break(rows)
    assert found is not None and found.seq == 4 and "missing" in found.reason


def test_reordered_rows_break_the_prev_hash_link() -> None:
    rows = _chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    rows[1]["seq"], rows[2]["seq"] = 2, 3
    found = find_first_break(rows)
    assert found is not None and found.seq == 2


def test_a_deleted_first_row_is_detected() -> None:
    found = find_first_break(_chain(3)[1:])
    assert found is not None and found.seq == 2


# --- before and after in the text they are stored in ------------------------------------


def _stored(before_text: str | None, *, hashed_over: str) -> tuple[dict, dict[str, str | None]]:
    """An event whose before is stored as ``before_text``, hashed as the database hashes
    ("text": over the stored text) or as events before it kept the canonical text were
    ("values": over the canonical text of the values)."""
    (row,) = _chain(1)
    row["before"] = None if before_text is None else json.loads(before_text)
    texts = {"before": before_text, "after": '{"n":1}'}
    hashed = {**row, "before_text": before_text} if hashed_over == "text" else row
    row["hash"] = compute_hash(hashed)
    return row, texts


def test_a_stored_event_matches_its_hash_over_its_text_or_over_its_values() -> None:
    for before_text, hashed_over in [
        ('{"a":1.5}', "text"),  # as Oversight writes: the canonical text
        ('{"b": 1, "a" : 1.50}', "text"),  # appended by hand in another layout
        ('{"a": 1.5, "b": 1}', "values"),  # written before the canonical text was kept
        (None, "text"),
    ]:
        row, texts = _stored(before_text, hashed_over=hashed_over)
        assert stored_content_matches(row, texts), before_text
        fields = {k: v for k, v in row.items() if k not in ("before", "after")}
        assert stored_content_matches(fields, texts)  # the values are not needed
        exported = with_stored_texts(dict(row), texts)
        assert ("before_text" in exported) == (before_text == '{"b": 1, "a" : 1.50}')
        assert content_matches(exported)


def test_a_changed_stored_text_or_value_does_not_match() -> None:
    row, texts = _stored('{"b": 1, "a" : 1.50}', hashed_over="text")
    assert not stored_content_matches(row, {**texts, "before": '{"b": 1, "a" : 2}'})
    exported = with_stored_texts(dict(row), texts)
    assert not content_matches({**exported, "before": {"a": 2, "b": 1}})  # shown otherwise
    assert not content_matches({**exported, "before_text": '{"b": 1, "a" : 2}'})
    assert not content_matches({**exported, "before_text": "{not json"})
    assert not content_matches({k: v for k, v in exported.items() if k != "before_text"})
