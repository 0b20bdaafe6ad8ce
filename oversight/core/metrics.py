"""Prometheus metrics: decisions by outcome and their latency, counted as they happen;
pending approvals and open alerts, read from the database at scrape time.

Production runs several uvicorn workers plus Celery workers, each its own process.
With ``PROMETHEUS_MULTIPROC_DIR`` set (before anything imports prometheus_client),
prometheus_client keeps each process's counters in memory-mapped files in that directory
and a scrape sums them over every process (see docs/deploy.md). Without it, the process's
default registry is used: right for the single-process development server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# The gateway's first answers. Anything else is counted as "other", so a new status can
# never grow the number of series without bound.
DECISION_OUTCOMES = ("allowed", "denied", "halted", "dry_run", "pending")
OTHER = "other"
# 1 ms to 5 s: the decision path aims at single-digit milliseconds; seconds mean trouble.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_DECISIONS = Counter(
    "oversight_decisions",
    "Decisions the gateway made, by outcome (pending means held for a person).",
    labelnames=["outcome"],
)
_LATENCY = Histogram(
    "oversight_decision_seconds",
    "Time the gateway took to decide one action, in seconds.",
    buckets=LATENCY_BUCKETS,
)
# Children looked up once: a labels() call per decision would take a lock and a dict
# lookup keyed by a tuple.
_BY_OUTCOME = {
    outcome: _DECISIONS.labels(outcome=outcome) for outcome in (*DECISION_OUTCOMES, OTHER)
}
_OTHER = _BY_OUTCOME[OTHER]
_observe = _LATENCY.observe


def decision_observed(*, status: str, seconds: float) -> None:
    """Count one decision and its latency. Called on every decision: a few microseconds."""
    _BY_OUTCOME.get(status, _OTHER).inc()
    _observe(seconds if seconds > 0 else 0.0)


class _DatabaseGauges(Collector):
    """Numbers that are the database's, read when scraped: the same answer whichever
    process is asked, and never out of date."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count

        from oversight.gateway.constants import ActionStatus
        from oversight.gateway.models import Action
        from oversight.monitoring.constants import UNRESOLVED, Severity
        from oversight.monitoring.models import Alert

        pending = Action.objects.filter(status=ActionStatus.PENDING).count()
        yield GaugeMetricFamily(
            "oversight_approvals_pending", "Held actions waiting for a person.", value=pending
        )
        counts = dict(
            Alert.objects.filter(status__in=UNRESOLVED)
            .values_list("severity")
            .annotate(n=Count("pk"))
            .values_list("severity", "n")
        )
        alerts = GaugeMetricFamily(
            "oversight_alerts_open",
            "Unresolved alerts (open or acknowledged), by severity.",
            labels=["severity"],
        )
        for severity in Severity.values:
            alerts.add_metric([severity], counts.get(severity, 0))
        yield alerts


def _process_metrics() -> bytes:
    """The counters: every process's summed (multiprocess mode), or this process's."""
    if MULTIPROCESS:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _database_metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseGauges())
    return generate_latest(registry)


def metrics_exposition() -> bytes:
    """The text a scraper is given."""
    return _process_metrics() + _database_metrics()
