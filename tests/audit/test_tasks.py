from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from oversight.audit.tasks import audit_verify_chain
from oversight.celery import app
from tests.audit.helpers import record, tamper
from tests.servers import celery_worker


@pytest.fixture(autouse=True)
def sink(settings: Any, tmp_path: Path) -> str:
    """The nightly run reads the checkpoints of the directory sink: one of this test's."""
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{tmp_path}"]
    return f"dir:{tmp_path}"


@pytest.mark.django_db
def test_the_task_reports_an_intact_chain_when_run_inline() -> None:
    record(3)
    assert audit_verify_chain.apply().get() == {"ok": True, "checked": 3}


def test_the_nightly_check_is_on_the_beat_schedule() -> None:
    entry = app.conf.beat_schedule["audit-verify-chain"]
    assert entry["task"] == audit_verify_chain.name


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_finds_a_tampered_row(sink: str) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    record(4)
    with celery_worker(extra_env={"AUDIT_CHECKPOINT_SINKS": sink}):
        assert audit_verify_chain.delay().get(timeout=30) == {"ok": True, "checked": 4}
        tamper("UPDATE audit_auditevent SET target_label = 'nothing to see' WHERE seq = 3")
        result = audit_verify_chain.delay().get(timeout=30)
    assert result["ok"] is False
    assert result["seq"] == 3
