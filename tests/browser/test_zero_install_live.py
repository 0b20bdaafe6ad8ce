"""The zero-install run is live for background work: ``bin/demo`` started for real
(SQLite, no REDIS_URL, so the in-memory channel layer), pages open in Chromium, and what
the periodic jobs change (an expiry, a new alert) reaches them without a reload. Ctrl-C
then stops everything.

This test needs no PostgreSQL itself (the demo has its own SQLite file); it lives with
the browser tests for Chromium.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.ui import RECORD_SOCKET_OPEN, shot
from tests.servers import ROOT, free_port

ADMIN_PASSWORD = "admin-demo-2026"  # printed by the demo itself


@dataclass(frozen=True)
class Demo:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def shell(self, code: str) -> str:
        """Python in a management shell of the demo's own database (another process)."""
        done = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-c", code],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def _demo_env(database: Path, port: int) -> dict[str, str]:
    drop = {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {
        **env,
        "DATABASE_URL": f"sqlite:///{database}",
        "PORT": str(port),
        "SIMULATE": "0",
        # The schedule's own entries, run more often so that the test is short.
        "EXPIRY_INTERVAL_SECONDS": "1",
        "MONITORING_INTERVAL_SECONDS": "2",
        # The browser fixture allows sync ORM calls under Playwright's loop; not the server.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
    }


def _wait_until_up(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"bin/demo exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("bin/demo did not start in time")


def _in_session(session: int) -> list[int]:
    """The processes of a session: bin/demo's own, whatever their process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


def _ctrl_c(process: subprocess.Popen[bytes], timeout: float = 15) -> float:
    """Ctrl-C as a terminal sends it: SIGINT to its foreground process group, bin/demo's.
    Returns how long every process of its session took to stop."""
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _in_session(process.pid):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("a process of bin/demo was still running after Ctrl-C")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with _running_demo(tmp_path) as running:
        yield running


@contextlib.contextmanager
def _running_demo(tmp_path: Path, **extra_env: str) -> Iterator[Demo]:
    port = free_port()
    env = {**_demo_env(tmp_path / "demo.sqlite3", port), **extra_env}
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / "bin/demo")],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield Demo(base, env, process)
    finally:
        if process.poll() is None:
            try:
                _ctrl_c(process)
            except (AssertionError, subprocess.TimeoutExpired):
                for pid in _in_session(process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        log.close()


def _token(demo: Demo) -> str:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "agent_token", "refund-bot"],
        env=demo.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return next(word for word in done.stdout.split() if word.startswith("ovs_"))


def _hold_refund(demo: Demo, token: str, charge: str) -> str:
    body = {
        "action": "payments.refund",
        "resource": f"stripe:charge/{charge}",
        "params": {"amount": 900},
    }
    response = httpx.post(
        f"{demo.base}/api/v1/actions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    return response.json()["id"]


def _log_in_as_admin(page: Page, base: str, path: str) -> None:
    page.goto(f"{base}/login/?next={path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{path}")


def _wait_for_socket(page: Page) -> None:
    page.wait_for_function("window.__socketOpen === true")
    page.evaluate("window.__marker = 'no reload'")


def test_an_expiry_leaves_an_open_queue_and_a_new_alert_reaches_an_open_alert_list(
    demo: Demo, page: Page
) -> None:
    token = _token(demo)
    soon = _hold_refund(demo, token, "ch_expires_soon")
    later = _hold_refund(demo, token, "ch_expires_later")
    # The demo's rule holds refunds for 15 minutes; this one's time runs out in seconds.
    demo.shell(
        "import datetime as dt; from django.utils import timezone; "
        "from oversight.gateway.models import Action; "
        f"Action.objects.filter(pk='{soon}').update("
        "expires_at=timezone.now() + dt.timedelta(seconds=6))"
    )

    page.add_init_script(RECORD_SOCKET_OPEN)
    _log_in_as_admin(page, demo.base, "/approvals/")
    _wait_for_socket(page)
    expect(page.locator(f"#queue-{soon}")).to_be_visible()
    expect(page.locator(f"#queue-{later}")).to_be_visible()

    # The server's expiry job expires it; the open queue drops its card, buttons and all.
    expect(page.locator(f"#queue-{soon}")).to_have_count(0, timeout=20_000)
    expect(page.locator(f"#queue-{later}")).to_be_visible()
    assert page.evaluate("window.__marker") == "no reload"
    shot(page, "zero-install-queue-after-expiry")

    page.goto(f"{demo.base}/alerts/")
    _wait_for_socket(page)
    expect(page.locator("#alert-table")).not_to_contain_text("Refund bot")
    # A burst of traffic, written by another process; the server's monitoring job finds
    # it and raises an alert, which the open list shows.
    demo.shell(
        "import datetime as dt; from django.utils import timezone; "
        "from oversight.agents.models import Agent; "
        "from tests.monitoring.helpers import actions_at; "
        "actions_at(Agent.objects.get(slug='refund-bot'), "
        "timezone.now() - dt.timedelta(seconds=5), 320)"
    )
    expect(page.locator("#alert-table")).to_contain_text("Refund bot", timeout=20_000)
    assert page.evaluate("window.__marker") == "no reload"
    shot(page, "zero-install-alerts-live")


def test_ctrl_c_stops_the_demo_its_traffic_first_and_its_periodic_jobs(tmp_path: Path) -> None:
    """Ctrl-C with its traffic under way (a held action waited on): the simulator
    abandons what it waits on, everything stops within seconds, and the server cuts off
    no request (each one cut off would log a traceback)."""
    with _running_demo(tmp_path, SIMULATE="1") as demo:
        log = tmp_path / "demo.log"
        held = (
            "from oversight.gateway.models import Action; "
            "print(Action.objects.filter(status='pending').count())"
        )
        deadline = time.monotonic() + 60
        while demo.shell(held).strip() == "0":  # until the simulator waits on a held action
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(1)
        took = _ctrl_c(demo.process)
    said = log.read_text(errors="replace")
    assert took < 12, f"bin/demo took {took:.1f} s to stop"
    assert "stopping: finishing open actions" in said
    assert "Traceback" not in said and "Exception in ASGI application" not in said, said[-3000:]
