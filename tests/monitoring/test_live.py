"""On PostgreSQL and Redis: a real Celery beat and worker catch a burst within a minute,
and with the "hold" response the agent's next action waits for a human."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.monitoring.models import Alert
from tests.gateway.helpers import decide, refund
from tests.servers import celery_beat, celery_worker

INTERVAL_SECONDS = 5
BURST = 320  # a new agent's critical threshold is 300 actions in five minutes


def wait_for(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.5)
    return time.monotonic() - start


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_is_alerted_within_a_minute_and_the_next_action_is_held(
    agent: Agent, prod_token: Any, refunds: Any, tmp_path: Path
) -> None:
    fast = {"MONITORING_INTERVAL_SECONDS": str(INTERVAL_SECONDS)}
    with celery_worker(extra_env=fast), celery_beat(tmp_path, extra_env=fast):
        for i in range(BURST):
            assert decide(prod_token, refund(100, charges=(f"ch_{i}",))).status == "allowed"
        # A run in the middle of the burst may open it as a warning; the next one escalates.
        seconds = wait_for(
            lambda: Alert.objects.filter(agent=agent, severity="critical").exists(), timeout=60
        )
        alert = Alert.objects.get(agent=agent)
        assert alert.kind == "volume"
        assert alert.evidence["actions_in_window"] >= BURST
        agent.refresh_from_db()
        assert agent.hold_all and f"Alert #{alert.pk}" in agent.hold_all_reason
        held = decide(prod_token, refund(100, charges=("ch_next",)))
        assert held.status == ActionStatus.PENDING
        # Later runs update the one alert instead of raising another.
        wait_for(lambda: Alert.objects.get(pk=alert.pk).count >= 2, timeout=3 * INTERVAL_SECONDS)
        assert Alert.objects.filter(agent=agent).count() == 1
    print(f"alerted {seconds:.1f} s after the burst")
