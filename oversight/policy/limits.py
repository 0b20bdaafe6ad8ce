"""Blast-radius limits: what a decision would charge, and charging it exactly.

Each matching limit is charged with one conditional upsert on its counter row for the
current window: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <still under> RETURNING``.
The row lock makes concurrent charges queue; a charge that would pass the maximum updates
nothing and returns no row. A decision's limits are charged all or none.

On PostgreSQL the upsert is the database function ``limits_charge`` (policy/sql/), which
takes the rows in limit-id order so concurrent deciders lock alike; the decision's write
(``decision_record``, gateway/sql/) calls it in the same statement. On SQLite the same
upsert runs here, once per limit. Either way the comparison with the maximum is made by
the database, in one statement per backend; Python only checks what needs no counter
(an amount that is missing, negative or not a number; a maximum below one action).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from oversight.lib import prepared
from oversight.policy.charge_sql import CALL_SQL
from oversight.policy.constants import OnExceed
from oversight.policy.models import Limit, LimitCounter

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

Charges = list[tuple[Limit, Decimal]]


@dataclass(frozen=True)
class Exceeded:
    limit: Limit
    why: str


def strictest(exceeded: list[Exceeded]) -> Exceeded:
    return min(exceeded, key=lambda e: _STRICTNESS[OnExceed(e.limit.on_exceed)])


def window_start(now: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def limit_amount(limit: Limit, params: dict[str, Any]) -> Decimal | None:
    """The numeric param to add up; None when it is missing, negative or not a number
    (fail closed: a negative amount would give quota back)."""
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


def charge_plan(limits: list[Limit], params: dict[str, Any]) -> tuple[Charges, list[Exceeded]]:
    """What to charge, and what is exceeded before any counter is looked at."""
    todo: Charges = []
    exceeded: list[Exceeded] = []
    for limit in sorted(limits, key=lambda lim: lim.pk):
        amount = limit_amount(limit, params)
        if amount is None:
            why = f"params.{limit.sum_param} is missing, negative or not a number"
            exceeded.append(Exceeded(limit, why))
        elif limit.max_count is not None and limit.max_count < 1:
            exceeded.append(Exceeded(limit, describe(limit, which="count")))
        elif limit.max_sum is not None and amount > limit.max_sum:
            alone = f"this action's {limit.sum_param} of {amount.normalize():f} alone is "
            exceeded.append(Exceeded(limit, alone + describe(limit, which="sum")))
        else:
            todo.append((limit, amount))
    return todo, exceeded


def charge_arrays(todo: Charges, now: dt.datetime) -> list[str]:
    """The arguments of PostgreSQL's ``limits_charge`` for ``todo``, as array literals."""
    return [
        prepared.array_literal(limit.pk for limit, _ in todo),
        prepared.array_literal(window_start(now, limit.window_seconds) for limit, _ in todo),
        prepared.array_literal(amount for _, amount in todo),
        prepared.array_literal(limit.max_count for limit, _ in todo),
        prepared.array_literal(limit.max_sum for limit, _ in todo),
    ]


def _charge_one(limit: Limit, amount: Decimal, now: dt.datetime) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _CHARGE_SQL,
            {
                "limit": limit.pk,
                # As the ORM stores it (on SQLite, naive UTC text), so that rows this
                # statement and the ORM write or read are the same rows.
                "window": connection.ops.adapt_datetimefield_value(
                    window_start(now, limit.window_seconds)
                ),
                "amount": amount,
                "max_count": limit.max_count,
                "max_sum": limit.max_sum,
            },
        )
        row = cursor.fetchone()
    return row[0] if row else None


def limits_charge(todo: Charges, now: dt.datetime) -> dict[int, int]:
    """Charge each limit in ``todo`` that stays within its maximum: {limit id: counter id}
    for those that went through. The caller's transaction decides whether they stay."""
    if connection.vendor == "postgresql":
        return dict(prepared.fetch_all(CALL_SQL, charge_arrays(todo, now)))
    charged = {}
    for limit, amount in todo:
        counter_id = _charge_one(limit, amount, now)
        if counter_id is not None:
            charged[limit.pk] = counter_id
    return charged


class _Rollback(Exception):
    """Undo the trial charges of a preview."""


def limits_would_exceed(todo: Charges, now: dt.datetime) -> set[int]:
    """The ids of the limits in ``todo`` that charging now would take over their maximum,
    found by charging in a savepoint that is always rolled back: the same statement as a
    real charge, and nothing is kept."""
    if not todo:
        return set()
    result: set[int] = set()
    try:
        with transaction.atomic():
            charged = limits_charge(todo, now)
            result = {limit.pk for limit, _ in todo if limit.pk not in charged}
            raise _Rollback
    except _Rollback:
        pass
    return result


def describe(limit: Limit, *, which: str = "") -> str:
    """Why an action is over ``limit``: ``which`` bound (``"count"`` or ``"sum"``) when it
    is known. The counter's charge reports only that a limit is over, not which of its
    two bounds: finding out would cost the decision another read, so a limit with both
    says "or" (one of them was passed, not necessarily both)."""
    parts = []
    if limit.max_count is not None and which != "sum":
        parts.append(f"{limit.max_count} actions")
    if limit.max_sum is not None and which != "count":
        parts.append(f"{limit.max_sum.normalize():f} of {limit.sum_param}")
    return f"over {' or '.join(parts)} per {limit.window_seconds}s ({limit.scope})"


def limits_release(charges: list[dict[str, Any]]) -> None:
    """Give back the quota actions reserved (their ``limit_usage``, read under their row
    lock), when they will not run: rejected, expired, cancelled. Counters are taken in
    limit order, as a decision's charge takes them, so that giving back the charges of
    many actions at once does not lock against a decision in the opposite order."""
    for charge in sorted(charges, key=lambda c: (c["limit_id"], c["counter_id"])):
        LimitCounter.objects.filter(pk=charge["counter_id"]).update(
            count=F("count") - 1, total=F("total") - Decimal(charge["amount"])
        )
