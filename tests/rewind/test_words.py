"""A rewind's codes read as words on its pages."""

from __future__ import annotations

import pytest

from oversight.rewind.words import undo_words


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("already_undone", "already rolled back"),
        ("not_run:denied", "never succeeded (denied)"),
        ("not_run:pending", "never succeeded (waiting for approval)"),
        ("cancel:pending", "not run yet (waiting for approval): cancelled as the rewind starts"),
        ("cancelled", "cancelled: it had not run"),
        ("ran_after_plan", "it ran after the plan was made: not in this rewind"),
        ("unknown", "reversibility unknown: its grant does not say"),
        ("read", "a read: nothing to undo"),
        ("irreversible", "irreversible"),
        ("no_compensation", "reversible, but its grant names no undo"),
        ("window_closed", "its undo window has closed"),
        ("conflict", "conflict: changed since, left alone"),
        ("halted", "undo halted by a kill switch"),
        ("rejected", "undo denied by a reviewer"),
        ("refused", "refused"),
        ("", ""),
        ("something_new", "something_new"),
    ],
)
def test_each_code_reads_as_words(code: str, words: str) -> None:
    assert undo_words(code) == words
