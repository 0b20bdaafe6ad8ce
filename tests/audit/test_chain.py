from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.audit.chain import (
    GENESIS_HASH,
    canonical_json,
    canonical_json_parts,
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


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=10**12),
    prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    label=st.text(),
    request_id=st.text(max_size=64),
    before=_json,
    after=_json,
    agent_id=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_the_parts_rebuild_the_canonical_json(
    seq: int, prev: str, label: str, request_id: str, before, after, agent_id
) -> None:
    """What the database appends with: head + prev_hash + middle + seq + tail."""
    row = _chain(1)[0] | {
        "seq": seq,
        "prev_hash": prev,
        "actor_label": label,
        "target_label": label,
        "request_id": request_id,
        "before": before,
        "after": after,
        "agent_id": agent_id,
    }
    head, middle, tail = canonical_json_parts(row)
    assert head + prev + middle + str(seq) + tail == canonical_json(row)
