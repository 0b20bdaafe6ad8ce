"""The behaviour diff's reads: every count is a GROUP BY in the database, so a side of
100,000 decisions is a few hundred rows back, never 100,000 model instances.

Per side: the decisions by (action, first decision, status), and by resource (families
are derived from those in Python with the one rule, oversight/monitoring/families.py;
one row per distinct resource, not per decision). For both sides in one statement: each
numeric top-level param per (action, key): count, sum, nearest-rank p50 and p90, max, and
the largest gap between the two sides' distribution functions (the Kolmogorov-Smirnov D).

The numeric statement is the same SQL on PostgreSQL and SQLite except where the params
are opened: ``jsonb_each`` there, ``json_each`` here. Percentiles are nearest-rank (the
smallest value with at least that share of the values at or below it), computed from
running counts, so both databases give the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, QuerySet

from oversight.gateway.models import Action
from oversight.monitoring.families import resource_family


@dataclass(frozen=True)
class MixRow:
    action: str
    decision: str
    status: str
    count: int


@dataclass(frozen=True)
class ParamRow:
    """One numeric param of one action on both sides; ``gap`` is None unless both have it."""

    action: str
    key: str
    counts: tuple[int, int]
    sums: tuple[float, float]
    p50: tuple[float | None, float | None]
    p90: tuple[float | None, float | None]
    maxima: tuple[float | None, float | None]
    gap: float | None


def mix_counts(decisions: QuerySet[Action]) -> list[MixRow]:
    rows = (
        decisions.order_by().values_list("action", "decision", "status").annotate(count=Count("pk"))
    )
    return [MixRow(*row) for row in rows]


def family_counts(decisions: QuerySet[Action]) -> dict[str, int]:
    """Decisions per resource family."""
    families: dict[str, int] = defaultdict(int)
    for resource, count in decisions.order_by().values_list("resource").annotate(count=Count("pk")):
        families[resource_family(resource)] += count
    return dict(families)


_OPEN_PARAMS = {
    "postgresql": """
        SELECT s.side, s.action, p.key, (p.value)::float8 AS value
        FROM sides AS s
        CROSS JOIN LATERAL jsonb_each(
            CASE WHEN jsonb_typeof(s.params) = 'object' THEN s.params ELSE '{}'::jsonb END
        ) AS p(key, value)
        WHERE jsonb_typeof(p.value) = 'number'
    """,
    "sqlite": """
        SELECT s.side, s.action, p.key, p.value AS value
        FROM sides AS s,
            json_each(CASE WHEN json_type(s.params) = 'object' THEN s.params ELSE '{}' END) AS p
        WHERE p.type IN ('integer', 'real')
    """,
}

_DISTRIBUTIONS = """
WITH sides AS (
    SELECT 0 AS side, l.action, l.params FROM ({left}) AS l
    UNION ALL
    SELECT 1 AS side, r.action, r.params FROM ({right}) AS r
),
vals AS ({open_params}),
grouped AS (
    SELECT action, key, value,
        SUM(CASE WHEN side = 0 THEN 1 ELSE 0 END) AS l,
        SUM(CASE WHEN side = 1 THEN 1 ELSE 0 END) AS r
    FROM vals
    GROUP BY action, key, value
),
running AS (
    SELECT action, key, value, l, r,
        SUM(l) OVER upto AS cl, SUM(r) OVER upto AS cr,
        SUM(l) OVER whole AS nl, SUM(r) OVER whole AS nr
    FROM grouped
    WINDOW upto AS (PARTITION BY action, key ORDER BY value ROWS UNBOUNDED PRECEDING),
        whole AS (PARTITION BY action, key)
)
SELECT action, key, MAX(nl), MAX(nr),
    SUM(value * l), SUM(value * r),
    MIN(CASE WHEN l > 0 AND cl * 2 >= nl THEN value END),
    MIN(CASE WHEN r > 0 AND cr * 2 >= nr THEN value END),
    MIN(CASE WHEN l > 0 AND cl * 10 >= nl * 9 THEN value END),
    MIN(CASE WHEN r > 0 AND cr * 10 >= nr * 9 THEN value END),
    MAX(CASE WHEN l > 0 THEN value END),
    MAX(CASE WHEN r > 0 THEN value END),
    MAX(CASE WHEN nl > 0 AND nr > 0 THEN ABS(cl * 1.0 / nl - cr * 1.0 / nr) END)
FROM running
GROUP BY action, key
ORDER BY action, key
"""


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def param_distributions(left: QuerySet[Action], right: QuerySet[Action]) -> list[ParamRow]:
    """Every numeric top-level param of every action, on both sides, in one statement."""
    left_sql, left_params = left.order_by().values_list("action", "params").query.sql_with_params()
    right_sql, right_params = (
        right.order_by().values_list("action", "params").query.sql_with_params()
    )
    sql = _DISTRIBUTIONS.format(
        left=left_sql, right=right_sql, open_params=_OPEN_PARAMS[connection.vendor]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*left_params, *right_params])
        found = cursor.fetchall()
    return [
        ParamRow(
            action=action,
            key=key,
            counts=(int(nl), int(nr)),
            sums=(float(sl or 0.0), float(sr or 0.0)),
            p50=(_number(p50l), _number(p50r)),
            p90=(_number(p90l), _number(p90r)),
            maxima=(_number(maxl), _number(maxr)),
            gap=_number(gap),
        )
        for (action, key, nl, nr, sl, sr, p50l, p50r, p90l, p90r, maxl, maxr, gap) in found
    ]
