from __future__ import annotations

import datetime as dt

from oversight.audit.chain import (
    GENESIS_HASH,
    compute_hash,
    find_first_break,
)


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
