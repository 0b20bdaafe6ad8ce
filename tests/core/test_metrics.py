"""/metrics: Prometheus text that parses, right values after real decisions, approvals and
alerts, and nothing for scrapers without the token."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.core import metrics
from oversight.core.metrics import decision_observed
from oversight.monitoring.models import Alert
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, refund, refund_policy_create

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me-" + "s" * 30
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


def _scrape(client: Client, **headers: Any) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, keyed by (name, sorted labels)."""
    with override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256):
        response = client.get("/metrics", **(headers or BEARER))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]
    return _samples(response.content.decode())


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _decisions(samples: dict, outcome: str) -> float:
    return samples.get(("oversight_decisions_total", (("outcome", outcome),)), 0.0)


def _bucket(samples: dict, le: str) -> float:
    return samples[("oversight_decision_seconds_bucket", (("le", le),))]


# --- what is counted -------------------------------------------------------------------


def test_the_exposition_parses_and_names_every_metric(client: Client) -> None:
    with override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256):
        text = client.get("/metrics", **BEARER).content.decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["oversight_decisions"] == "counter"
    assert families["oversight_decision_seconds"] == "histogram"
    assert families["oversight_approvals_pending"] == "gauge"
    assert families["oversight_alerts_open"] == "gauge"


def test_decisions_are_counted_by_outcome_with_their_latency(client: Client) -> None:
    before = _scrape(client)
    decision_observed(status="allowed", seconds=0.0008)
    decision_observed(status="allowed", seconds=0.004)
    decision_observed(status="pending", seconds=0.3)
    decision_observed(status="something-new", seconds=7.0)
    after = _scrape(client)

    def delta(key: tuple) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert _decisions(after, "allowed") - _decisions(before, "allowed") == 2
    assert _decisions(after, "pending") - _decisions(before, "pending") == 1
    assert _decisions(after, "other") - _decisions(before, "other") == 1
    assert delta(("oversight_decision_seconds_count", ())) == 4
    assert delta(("oversight_decision_seconds_sum", ())) == pytest.approx(7.3048)
    assert delta(("oversight_decision_seconds_bucket", (("le", "0.001"),))) == 1
    assert delta(("oversight_decision_seconds_bucket", (("le", "0.005"),))) == 2
    assert delta(("oversight_decision_seconds_bucket", (("le", "0.5"),))) == 3
    assert delta(("oversight_decision_seconds_bucket", (("le", "5.0"),))) == 3
    assert delta(("oversight_decision_seconds_bucket", (("le", "+Inf"),))) == 4


def test_the_latency_buckets_run_from_a_millisecond_to_five_seconds(client: Client) -> None:
    samples = _scrape(client)
    bounds = [
        labels[0][1] for name, labels in samples if name == "oversight_decision_seconds_bucket"
    ]
    assert bounds[0] == "0.001" and bounds[-2:] == ["5.0", "+Inf"]


def test_pending_approvals_follow_real_held_decisions_and_votes(
    client: Client, agent: Any, reviewer: Any
) -> None:
    _, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    refund_policy_create(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    api = AgentApi(Client(), raw)
    assert _scrape(client)[("oversight_approvals_pending", ())] == 0

    held = [api.decide(refund(600, charges=(f"ch_{i}",))) for i in range(3)]
    api.decide(refund(100))  # allowed: not waiting for anyone
    assert [d["status"] for d in held] == ["pending"] * 3
    assert _scrape(client)[("oversight_approvals_pending", ())] == 3

    approval_vote(user=reviewer, action_id=held[0]["id"], vote="approve")
    approval_vote(user=reviewer, action_id=held[1]["id"], vote="deny", comment="Not ours.")
    assert _scrape(client)[("oversight_approvals_pending", ())] == 1


def _alert(agent: Any, severity: str, status: str, key: str) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        agent=agent,
        kind="volume",
        severity=severity,
        status=status,
        title="Volume far above baseline",
        dedupe_key=key,
        opened_at=now,
        last_seen_at=now,
    )


def test_open_alerts_are_counted_by_severity(client: Client, agent: Any, other_agent: Any) -> None:
    _alert(agent, "critical", "open", "a")
    _alert(other_agent, "critical", "acknowledged", "b")
    _alert(agent, "warning", "open", "c")
    _alert(agent, "warning", "resolved", "d")
    samples = _scrape(client)
    assert samples[("oversight_alerts_open", (("severity", "critical"),))] == 2
    assert samples[("oversight_alerts_open", (("severity", "warning"),))] == 1
    assert samples[("oversight_alerts_open", (("severity", "info"),))] == 0


def test_real_decisions_are_counted_once_and_retries_not_at_all(client: Client, agent: Any) -> None:
    _, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    refund_policy_create(agent)
    api = AgentApi(Client(), raw)
    before = _scrape(client)
    api.decide(refund(100))
    api.decide(refund(600))
    api.decide(refund(100, charges=("ch_1", "ch_2")))
    api.decide(refund(50), HTTP_IDEMPOTENCY_KEY="k1")
    assert api.post("/actions", refund(50), HTTP_IDEMPOTENCY_KEY="k1").status_code == 200
    after = _scrape(client)
    for outcome, count in (("allowed", 2), ("pending", 1), ("denied", 1)):
        assert _decisions(after, outcome) - _decisions(before, outcome) == count
    count = ("oversight_decision_seconds_count", ())
    assert after[count] - before.get(count, 0.0) == 4


def test_counts_from_several_processes_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    """As production runs: each uvicorn or Celery worker process counts into the shared
    directory, and any process's scrape reports the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = (
        "from oversight.core.metrics import decision_observed\n"
        "for _ in range({n}): decision_observed(status='denied', seconds=0.002)\n"
    )
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, cwd=ROOT)
    scrape = (
        "import sys\n"
        "from oversight.core import metrics\n"
        "assert metrics.MULTIPROCESS\n"
        "sys.stdout.write(metrics._process_metrics().decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", scrape], env=env, check=True, cwd=ROOT, capture_output=True
    ).stdout.decode()
    samples = _samples(out)
    assert _decisions(samples, "denied") == 7
    assert samples[("oversight_decision_seconds_count", ())] == 7
    assert _bucket(samples, "0.0025") == 7
    assert not metrics.MULTIPROCESS  # this test process kept its default registry


# --- who may scrape --------------------------------------------------------------------


def _refused(response: Any, status: int) -> None:
    assert response.status_code == status
    assert b"oversight_" not in response.content


@override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256)
def test_a_scraper_without_a_token_is_refused(client: Client) -> None:
    response = client.get("/metrics")
    _refused(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256)
@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer ", f"Basic {TOKEN}", TOKEN])
def test_a_wrong_token_is_refused(client: Client, header: str) -> None:
    _refused(client.get("/metrics", HTTP_AUTHORIZATION=header), 401)


@override_settings(METRICS_TOKEN_SHA256="")
def test_no_token_configured_means_no_token_works(client: Client) -> None:
    _refused(client.get("/metrics", **BEARER), 401)
    _refused(client.get("/metrics", HTTP_AUTHORIZATION="Bearer "), 401)


@override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256)
def test_people_who_are_not_admins_are_forbidden(client: Client, owner: Any) -> None:
    client.force_login(owner)
    _refused(client.get("/metrics"), 403)


@override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256)
def test_a_logged_in_admin_may_look(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"oversight_approvals_pending" in response.content


@override_settings(METRICS_TOKEN_SHA256=TOKEN_SHA256)
def test_only_get_is_answered(client: Client) -> None:
    assert client.post("/metrics", **BEARER).status_code == 405


def test_settings_keep_only_the_tokens_hash() -> None:
    assert not hasattr(settings, "METRICS_TOKEN")
    env = {**os.environ, "METRICS_TOKEN": TOKEN, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("METRICS_TOKEN_SHA256", None)
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "print(settings.METRICS_TOKEN_SHA256, hasattr(settings, 'METRICS_TOKEN'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, cwd=ROOT, capture_output=True
    ).stdout.decode()
    assert out.split() == [TOKEN_SHA256, "False"]
