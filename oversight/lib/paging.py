"""Numbered pages of a list that stays short (the approval queue, the registry): one
count and one slice, so a page costs the same queries at any length. The audit log,
which grows without end, pages by key instead (oversight/audit/selectors.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import QuerySet

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int  # from 1
    total: int  # on every page
    size: int  # the most a page holds

    @property
    def first(self) -> int:
        """The position of its first item, from 1 (0 when empty)."""
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def more(self) -> int:
        """How many come after this page."""
        return max(0, self.total - self.last)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def is_partial(self) -> bool:
        """Whether there is more than this page: then it says where it stands."""
        return self.more > 0 or self.has_previous


def page_of(queryset: QuerySet[Any], *, number: int, size: int) -> Page[Any]:
    """Page ``number`` of the ordered ``queryset`` (past the end: the last page)."""
    total = queryset.count()
    number = min(max(1, number), max(1, -(-total // size)))
    start = (number - 1) * size
    items = list(queryset[start : start + size]) if total else []
    return Page(items, number, total, size)


def page_number(value: str | None) -> int:
    """A page number from the query string; anything else is the first page."""
    value = value or ""
    return int(value) if value.isdigit() and len(value) < 7 else 1
