"""A PostgreSQL that is down: every decision is an error within 2 s, /healthz says 503.

The real server runs against a throwaway PostgreSQL cluster of the test's own, which is
either never running, or stopped under the server after it has decided with it (its pool
holds connections to the server that went away). The SDK then raises and never runs the
guarded block, and once the cluster is back the server decides again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from oversight_sdk import Oversight, OversightUnavailable
from tests.gateway_live.helpers import (
    BURST,
    WITHIN,
    no_collection,
    refund,
    report,
    timed_burst,
    timed_get,
)
from tests.servers import ROOT, asgi_server, free_port

pytestmark = [pytest.mark.postgres]

MANIFEST = """
teams:
  - name: payments
agents:
  - slug: refund-bot
    name: Refund bot
    owner: alice
    team: payments
    purpose: Issues refunds for support tickets
    grants:
      - {action: "payments.refund", resource: "stripe:charge/*"}
"""


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on loopback, as bin/test starts one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/oversight"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", str(root / "data"), "-U", "postgres", "--auth=trust")

    def _run(self, program: str, *args: str) -> None:
        command = [*self.as_postgres, str(self.bin / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", log, "-w", "start", "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def count_actions(self) -> int:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT count(*) FROM gateway_action").fetchone()[0]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """Initialised, not running."""
    root = Path(tempfile.mkdtemp(prefix="oversight-down-"))
    root.chmod(0o755)
    try:
        made = Cluster(root)
        yield made
        subprocess.run(
            [*made.as_postgres, str(made.bin / "pg_ctl"), "-D", str(root / "data"), "stop"],
            capture_output=True,
            check=False,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def manage(database_url: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def cluster_with_agent(cluster: Cluster) -> tuple[Cluster, str]:
    """Running, migrated, with an agent allowed to refund, and that agent's token."""
    cluster.start()
    with psycopg.connect(cluster.url.replace("/oversight", "/postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE oversight")
    manage(cluster.url, "migrate", "--noinput", "-v", "0")
    manage(
        cluster.url, "createsuperuser", "--noinput", "--username", "alice", "--email", "a@x.test"
    )
    manage(cluster.url, "policy_apply", "-", stdin=MANIFEST)
    token = manage(cluster.url, "agent_token", "refund-bot").strip()
    return cluster, token


@contextmanager
def server_without_database(database_url: str) -> Iterator[str]:
    """The real server on ``database_url``, ready once it answers /ping (its /healthz
    cannot be 200 without a database)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [sys.executable, "-m", "uvicorn", "oversight.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2):  # noqa: S310
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def assert_every_decision_fails_in_time(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    answers = asyncio.run(timed_burst(url, headers, [refund(n) for n in range(BURST)]))
    report("decisions with the database down", [seconds for _, seconds in answers])
    for response, seconds in answers:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert seconds < WITHIN


def assert_healthz_says_unavailable_in_time(url: str) -> None:
    status, body, seconds = timed_get(f"{url}/healthz")
    print(f"/healthz with the database down: {status} in {seconds:.3f}s")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is False
    assert body["redis"]["ok"] is True
    assert seconds < WITHIN


def test_a_database_that_was_never_reachable(cluster: Cluster) -> None:
    with server_without_database(cluster.url) as url:
        assert_every_decision_fails_in_time(url, "ovs_prod_" + "x" * 43)
        assert_healthz_says_unavailable_in_time(url)
        # The rest of the agent API (Django's handler) says the same, in time too.
        with no_collection():
            started = time.monotonic()
            agent = httpx.get(f"{url}/api/v1/agent", headers={"Authorization": "Bearer ovs_x"})
            seconds = time.monotonic() - started
        assert agent.status_code == 503, agent.text
        assert agent.json()["error"]["code"] == "unavailable"
        assert seconds < WITHIN


def test_a_database_stopped_under_a_warm_server(cluster_with_agent: tuple[Cluster, str]) -> None:
    cluster, token = cluster_with_agent
    headers = {"Authorization": f"Bearer {token}"}
    with asgi_server({"DATABASE_URL": cluster.url}) as url:
        for n in range(3):  # the pool's connections are in use, the token is recalled
            decided = httpx.post(f"{url}/api/v1/actions", json=refund(1000 + n), headers=headers)
            assert decided.status_code == 201 and decided.json()["status"] == "allowed"

        cluster.stop()
        assert_every_decision_fails_in_time(url, token)
        assert_healthz_says_unavailable_in_time(url)
        ran = False
        with Oversight(url, token, retries=1, backoff=0.1) as client:  # noqa: SIM117
            with pytest.raises(OversightUnavailable):
                with client.guard("payments.refund", resource="stripe:charge/ch_sdk"):
                    ran = True
        assert not ran

        cluster.start()
        assert cluster.count_actions() == 3  # nothing of the outage was written
        deadline = time.monotonic() + 20  # the pool reconnects on its own
        while True:
            again = httpx.post(f"{url}/api/v1/actions", json=refund(2000), headers=headers)
            if again.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert again.status_code == 201 and again.json()["status"] == "allowed"
