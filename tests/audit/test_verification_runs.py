"""Verification runs: started from the audit page (one at a time, CSRF-protected, for
admins and auditors), walked by a task that records progress and the result, polled by
the page until done; the nightly job records its runs too."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import agent_access_grant
from oversight.audit import trust_services, verbs, verifier
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent, VerificationRun
from oversight.audit.tasks import audit_verify_chain
from oversight.audit.trust_services import verification_execute, verification_start
from oversight.celery import app as celery_app
from tests.audit.helpers import record, tamper
from tests.audit.trust_helpers import checkpoint_delivered
from tests.conftest import SYSTEM

# Committed for real: the run's task is queued on commit and, eager, walks the log before
# the page renders, as in the zero-install run.
pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = reverse("audit:list")
START_URL = reverse("audit:verify")
POLL = 'hx-trigger="every 1s"'


@pytest.fixture(autouse=True)
def _own_sink(settings: Any, tmp_path: Path) -> Path:
    sink = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{sink}"]
    return sink


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    """The run's task inline, as in the zero-install run, also when Redis is there."""
    conf = celery_app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved


def _progress_url(run: VerificationRun) -> str:
    return reverse("audit:verification", args=[run.pk])


def _csrf_client(user: Any) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(LIST_URL).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    return client, token.group(1)


def _start(user: Any, *, htmx: bool = True) -> Any:
    client, token = _csrf_client(user)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(START_URL, {"csrfmiddlewaretoken": token}, **headers)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_admin_starts_a_verification_and_sees_it_pass(admin_user: Any) -> None:
    record(5)
    checkpoint_delivered()
    response = _start(admin_user)
    assert response.status_code == 200
    run = VerificationRun.objects.get()
    assert (run.state, run.started_by, run.exit_code) == ("passed", "ada", verifier.EXIT_OK)
    assert run.checked == run.total == 6  # with the start's own audit event
    assert run.checkpoints == 1 and run.finished_at is not None
    fragment = response.content.decode()
    assert POLL not in fragment  # done: the page stops polling
    assert f'value="{run.total}" max="{run.total}"' in fragment
    assert "100 %" in fragment and "Passed" in fragment
    assert "6 events verified against 1 checkpoint from" in _text(fragment)

    started = AuditEvent.objects.get(verb=verbs.AUDIT_VERIFICATION_STARTED)
    assert (started.actor_label, started.target_id) == ("ada", str(run.pk))


def test_without_htmx_the_start_returns_to_the_audit_page(admin_user: Any) -> None:
    record(1)
    response = _start(admin_user, htmx=False)
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert VerificationRun.objects.get().state == "passed"


def test_the_audit_page_shows_the_last_verification(client: Client, admin_user: Any) -> None:
    record(2)
    _start(admin_user)
    client.force_login(admin_user)
    page = _text(client.get(LIST_URL).content.decode())
    assert "Passed #" in page and "by ada" in page and "100 %" in page


def test_starting_needs_the_csrf_token(admin_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(START_URL).status_code == 403
    assert not VerificationRun.objects.exists()


def test_auditors_may_start_a_verification_and_others_may_not(
    agent: Any, auditor: Any, outsider: Any, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=auditor, level="viewer")
    assert _start(auditor).status_code == 200
    assert VerificationRun.objects.get().started_by == auditor.username
    for user in (outsider, reviewer):
        client = Client()
        client.force_login(user)
        assert client.post(START_URL).status_code == 403
        assert client.get(reverse("audit:verification", args=[1])).status_code == 403
    assert VerificationRun.objects.count() == 1


def test_a_second_start_shows_the_run_already_going(admin_user: Any) -> None:
    running = VerificationRun.objects.create(started_by="system:nightly", total=100, checked=40)
    response = _start(admin_user)
    assert VerificationRun.objects.count() == 1
    fragment = response.content.decode()
    assert POLL in fragment and _progress_url(running) in fragment
    assert "40 %" in fragment and "40 of 100 events checked" in fragment
    assert "disabled" in fragment
    assert not AuditEvent.objects.filter(verb=verbs.AUDIT_VERIFICATION_STARTED).exists()


def test_a_run_left_running_for_an_hour_is_marked_failed_by_the_next_start(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = VerificationRun.objects.create(started_by="ada")
    later = timezone.now() + trust_services.ABANDONED_AFTER + dt.timedelta(minutes=1)
    monkeypatch.setattr("oversight.audit.trust_services.timezone.now", lambda: later)
    _start(admin_user)
    lost.refresh_from_db()
    assert lost.state == "failed" and "did not finish" in lost.message
    assert VerificationRun.objects.latest("pk").state == "passed"


def test_the_progress_fragment_polls_while_running_and_stops_when_done(
    client: Client, admin_user: Any
) -> None:
    run = VerificationRun.objects.create(started_by="ada", total=200_000, checked=60_000)
    client.force_login(admin_user)
    fragment = client.get(_progress_url(run)).content.decode()
    assert POLL in fragment and 'hx-swap="outerHTML"' in fragment
    assert "30 %" in fragment and "Running" in fragment
    VerificationRun.objects.filter(pk=run.pk).update(
        state="passed", checked=200_000, finished_at=timezone.now(), exit_code=0
    )
    fragment = client.get(_progress_url(run)).content.decode()
    assert POLL not in fragment and "100 %" in fragment and "Passed" in fragment
    assert client.get(reverse("audit:verification", args=[run.pk + 1])).status_code == 404


def test_progress_is_recorded_as_the_walk_reports_it(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk reports every 20,000 events; here every 2, to see each report land."""
    record(5)
    monkeypatch.setattr("oversight.audit.verification._PROGRESS_EVERY", 2)
    seen: list[tuple[int, int]] = []
    walk = trust_services.audit_log_verify

    def observed(**kwargs: Any) -> Any:
        report = kwargs["progress"]

        def progress(checked: int, total: int) -> None:
            report(checked, total)
            seen.append(VerificationRun.objects.values_list("checked", "total").get())

        return walk(**{**kwargs, "progress": progress})

    monkeypatch.setattr(trust_services, "audit_log_verify", observed)
    run = VerificationRun.objects.create(started_by="ada")
    verification_execute(run_id=run.pk)
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_a_run_names_the_first_bad_seq_of_an_altered_event(client: Client, admin_user: Any) -> None:
    record(6)
    tamper("UPDATE audit_auditevent SET target_label = 'nothing to see' WHERE seq = 4")
    fragment = _start(admin_user).content.decode()
    run = VerificationRun.objects.get()
    assert (run.state, run.first_bad_seq, run.exit_code) == ("failed", 4, verifier.EXIT_CHAIN)
    assert run.checked == 4 and run.total == 7
    assert "the event was altered" in run.message
    text = _text(fragment)
    assert "Failed" in text and "First bad seq 4" in text and "Exit code 1" in text
    assert f'href="{reverse("audit:event", args=[4])}"' in fragment
    assert "57 %" in fragment  # where the walk stopped


def test_a_run_finds_the_newest_events_deleted_against_the_checkpoint_directory(
    admin_user: Any,
) -> None:
    record(6)
    checkpoint_delivered()
    tamper("DELETE FROM audit_auditevent WHERE seq > 4")
    _start(admin_user)
    run = VerificationRun.objects.get()
    assert run.state == "failed" and run.exit_code == verifier.EXIT_CHECKPOINT
    assert (run.first_bad_seq, run.checkpoint_number) == (5, 1)
    # The start's own event took seq 5 after the deletion: the checkpoint names the hash
    # the real event 5 had.
    assert "event 5 differs from checkpoint #1" in run.message


def test_without_a_directory_sink_a_run_checks_the_stored_checkpoints(
    admin_user: Any, settings: Any
) -> None:
    settings.AUDIT_CHECKPOINT_SINKS = []
    record(3)
    checkpoint_delivered()
    _start(admin_user)
    run = VerificationRun.objects.get()
    assert run.state == "passed" and run.checkpoints == 1
    assert "from the database's copies" in run.message


def test_an_unreadable_checkpoint_directory_fails_the_run_with_its_exit_code(
    admin_user: Any, _own_sink: Path
) -> None:
    record(2)
    _own_sink.mkdir()
    (_own_sink / "checkpoint-0000000001.json").write_text("{not json")
    _start(admin_user)
    run = VerificationRun.objects.get()
    assert run.state == "failed" and run.exit_code == verifier.EXIT_UNREADABLE
    assert run.message.startswith("cannot read the checkpoints")


def test_a_run_already_finished_is_not_walked_again() -> None:
    run = VerificationRun.objects.create(started_by="ada", state="passed", checked=3, total=3)
    assert verification_execute(run_id=run.pk).checked == 3


def test_the_nightly_job_records_its_run_for_the_page(client: Client, admin_user: Any) -> None:
    record(3)
    assert audit_verify_chain.apply().get() == {"ok": True, "checked": 3}
    run = VerificationRun.objects.get()
    assert (run.started_by, run.state, run.checked) == ("system:nightly", "passed", 3)
    assert not AuditEvent.objects.filter(verb=verbs.AUDIT_VERIFICATION_STARTED).exists()
    client.force_login(admin_user)
    assert "by system:nightly" in _text(client.get(LIST_URL).content.decode())


def test_the_nightly_job_leaves_a_running_verification_alone() -> None:
    VerificationRun.objects.create(started_by="ada")
    result = audit_verify_chain.apply().get()
    assert result["ok"] is None and VerificationRun.objects.count() == 1


def test_the_service_returns_the_running_run_instead_of_a_second() -> None:
    first, created = verification_start(actor=SYSTEM)
    first.refresh_from_db()
    assert created and first.state == "passed"  # eager: walked on commit
    running = VerificationRun.objects.create(started_by="x")
    again, created = verification_start(actor=SYSTEM)
    assert (again.pk, created) == (running.pk, False)


@pytest.mark.postgres
def test_two_people_pressing_verify_at_once_start_one_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both would see no run and insert one each; the advisory lock makes the second
    wait for the first's commit and find its row. (The walk is left out: it would finish
    the first run before the second looks.)"""
    monkeypatch.setattr(trust_services, "_queue", lambda run_id: None)
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def press(n: int) -> None:
        try:
            barrier.wait()
            run, created = verification_start(actor=Actor.system(f"presser-{n}"))
            results.append((run.pk, created))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(created for _, created in results) == [False, True]
    assert len({pk for pk, _ in results}) == 1
    assert VerificationRun.objects.count() == 1
    assert AuditEvent.objects.filter(verb=verbs.AUDIT_VERIFICATION_STARTED).count() == 1
