"""Consume blast-radius limits exactly, under any concurrency.

Each matching limit is charged with one conditional upsert on its counter row for the
current window: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <still under> RETURNING``.
The row lock makes concurrent charges queue; a charge that would pass the maximum updates
nothing and returns no row. If any limit of a decision is exceeded, none of its charges is
kept. On PostgreSQL all of a decision's limits are charged in one statement (the database
function ``limits_charge``, policy/charge_sql.py; rows taken in
limit-id order, so concurrent deciders lock alike) and the charges that went through are
given back when another did not; elsewhere each is charged in turn inside a savepoint.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction

from oversight.lib import prepared
from oversight.policy.charge_sql import CALL_SQL
from oversight.policy.constants import OnExceed
from oversight.policy.models import Limit

# Strictest first: when several limits are exceeded, the strictest response wins.
_STRICTNESS = {OnExceed.PAUSE: 0, OnExceed.DENY: 1, OnExceed.HOLD: 2}

_CHARGE_SQL = """
INSERT INTO policy_limitcounter (limit_id, window_start, count, total)
VALUES (%(limit)s, %(window)s, 1, %(amount)s)
ON CONFLICT (limit_id, window_start) DO UPDATE
    SET count = policy_limitcounter.count + 1,
        total = policy_limitcounter.total + excluded.total
    WHERE (%(max_count)s IS NULL OR policy_limitcounter.count + 1 <= %(max_count)s)
      -- CAST: SQLite receives a Decimal as text, and text always compares above a number.
      AND (%(max_sum)s IS NULL
           OR policy_limitcounter.total + excluded.total <= CAST(%(max_sum)s AS NUMERIC))
RETURNING id
"""


@dataclass(frozen=True)
class Charge:
    limit_id: int
    counter_id: int
    amount: str  # Decimal as text, JSON-safe


@dataclass(frozen=True)
class Exceeded:
    limit: Limit
    why: str


@dataclass(frozen=True)
class LimitResult:
    charges: list[Charge]
    exceeded: list[Exceeded]

    @property
    def strictest(self) -> Exceeded | None:
        if not self.exceeded:
            return None
        return min(self.exceeded, key=lambda e: _STRICTNESS[OnExceed(e.limit.on_exceed)])


def window_start(now: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def _amount(limit: Limit, params: dict[str, Any]) -> Decimal | None:
    """The numeric param to add up; None when it is missing or not a number (fail closed)."""
    if not limit.sum_param:
        return Decimal(0)
    value = params.get(limit.sum_param)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _charge(limit: Limit, amount: Decimal, now: dt.datetime) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _CHARGE_SQL,
            {
                "limit": limit.pk,
                "window": window_start(now, limit.window_seconds),
                "amount": amount,
                "max_count": limit.max_count,
                "max_sum": limit.max_sum,
            },
        )
        row = cursor.fetchone()
    return row[0] if row else None


def charge_plan(
    limits: list[Limit], params: dict[str, Any]
) -> tuple[list[tuple[Limit, Decimal]], list[Exceeded]]:
    """What to charge, and what is exceeded before any counter is touched."""
    todo: list[tuple[Limit, Decimal]] = []
    exceeded: list[Exceeded] = []
    for limit in sorted(limits, key=lambda lim: lim.pk):
        amount = _amount(limit, params)
        if amount is None:
            exceeded.append(Exceeded(limit, f"params.{limit.sum_param} is missing or not a number"))
        elif (limit.max_count is not None and limit.max_count < 1) or (
            limit.max_sum is not None and amount > limit.max_sum
        ):
            exceeded.append(Exceeded(limit, _describe(limit)))
        else:
            todo.append((limit, amount))
    return todo, exceeded


def charge_arrays(todo: list[tuple[Limit, Decimal]], now: dt.datetime) -> list[str]:
    """The arguments of PostgreSQL's ``limits_charge`` (policy/charge_sql.py) for ``todo``,
    as array literals."""
    return [
        prepared.array_literal(limit.pk for limit, _ in todo),
        prepared.array_literal(window_start(now, limit.window_seconds) for limit, _ in todo),
        prepared.array_literal(amount for _, amount in todo),
        prepared.array_literal(limit.max_count for limit, _ in todo),
        prepared.array_literal(limit.max_sum for limit, _ in todo),
    ]


def _charge_all(todo: list[tuple[Limit, Decimal]], now: dt.datetime) -> dict[int, int]:
    """PostgreSQL: {limit id: counter id} for the charges that went through."""
    return dict(prepared.fetch_all(CALL_SQL, charge_arrays(todo, now)))


def limits_consume(*, limits: list[Limit], params: dict[str, Any], now: dt.datetime) -> LimitResult:
    """Charge every limit, all or none."""
    todo, exceeded = charge_plan(limits, params)
    if exceeded or not todo:
        return LimitResult(charges=[], exceeded=exceeded)
    if connection.vendor != "postgresql":
        return _consume_one_by_one(todo, now)
    charged = _charge_all(todo, now)
    charges = [Charge(lim.pk, charged[lim.pk], str(amt)) for lim, amt in todo if lim.pk in charged]
    if len(charges) == len(todo):
        return LimitResult(charges=charges, exceeded=[])
    limits_release([charge.__dict__ for charge in charges])
    over = [Exceeded(lim, _describe(lim)) for lim, _ in todo if lim.pk not in charged]
    return LimitResult(charges=[], exceeded=over)


def _consume_one_by_one(todo: list[tuple[Limit, Decimal]], now: dt.datetime) -> LimitResult:
    charges: list[Charge] = []
    exceeded: list[Exceeded] = []
    try:
        with transaction.atomic():
            for limit, amount in todo:
                counter_id = _charge(limit, amount, now)
                if counter_id is None:
                    exceeded.append(Exceeded(limit, _describe(limit)))
                else:
                    charges.append(Charge(limit.pk, counter_id, str(amount)))
            if exceeded:
                raise _Rollback
    except _Rollback:
        return LimitResult(charges=[], exceeded=exceeded)
    return LimitResult(charges=charges, exceeded=[])


def _describe(limit: Limit) -> str:
    parts = []
    if limit.max_count is not None:
        parts.append(f"{limit.max_count} actions")
    if limit.max_sum is not None:
        parts.append(f"{limit.max_sum.normalize()} of {limit.sum_param}")
    return f"over {' and '.join(parts)} per {limit.window_seconds}s ({limit.scope})"


class _Rollback(Exception):
    """Undo every charge of this decision when any limit is exceeded."""


def limits_release(charges: list[dict[str, Any]]) -> None:
    """Give back the quota a held action reserved, when it is rejected, expires or is
    cancelled."""
    from django.db.models import F

    from oversight.policy.models import LimitCounter

    for charge in charges:
        LimitCounter.objects.filter(pk=charge["counter_id"]).update(
            count=F("count") - 1, total=F("total") - Decimal(charge["amount"])
        )
