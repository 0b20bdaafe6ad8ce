"""How a snapshot's values read in the history (oversight/audit/diff.py)."""

from __future__ import annotations

from oversight.audit.diff import display, field_changes


def test_a_stored_time_reads_as_the_logs_headers_read_times() -> None:
    """Snapshots store times as ISO text; the history showed `2026-12-05T22:47:17.223Z`
    beside headers that say `5 Dec 2026, 22:47:17 UTC`."""
    assert display("2026-12-05T22:47:17.223Z") == "5 Dec 2026, 22:47:17 UTC"
    assert display("2026-12-05T23:47:17+01:00") == "5 Dec 2026, 22:47:17 UTC"
    created = field_changes(None, {"created_at": "2026-12-05T22:47:17Z"})
    assert [(c.field, c.after) for c in created] == [("Created at", "5 Dec 2026, 22:47:17 UTC")]


def test_other_text_is_shown_as_it_is() -> None:
    for text in ("2026-12-05", "2026-12-05T22:47:17", "at 2026-12-05T22:47:17Z", "ch_1"):
        assert display(text) == text


def test_an_access_change_reads_as_words_not_permission_codenames() -> None:
    changes = field_changes(
        {"access of rita": ["approve_agent", "view_agent"]}, {"access of rita": ["view_agent"]}
    )
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("Access of rita", "approve, view", "view")
    ]
    # The same text under another key is what was recorded.
    assert field_changes({}, {"action": "view_agent"})[0].after == "view_agent"
