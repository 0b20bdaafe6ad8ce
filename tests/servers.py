"""Oversight's real ASGI server (uvicorn) in a subprocess, on the test database."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection

from tests.zygote import fork_server

ROOT = Path(__file__).resolve().parent.parent


def _ephemeral_low() -> int:
    """The first port the kernel hands out as the source port of an outgoing
    connection (Linux's `ip_local_port_range`; 32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a server a test starts a moment later. Chosen
    below the kernel's ephemeral range: a port from that range (what binding to port 0
    gives) can become the source port of any outgoing connection (the suite's many
    connections to PostgreSQL and Redis) before the server binds it, and the server
    then fails with "Address already in use"."""
    low = min(_ephemeral_low(), 32768)
    if low <= 21000:  # an unusual range: leave the choice to the kernel
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for _ in range(500):
        port = random.randrange(20000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between 20000 and {low}")


def live_database_url() -> str:
    """The URL of the database the tests are using right now (the test_ database), as
    the role they use (bin/test: the runtime role)."""
    if connection.vendor != "postgresql":
        raise RuntimeError(
            "a server in another process needs PostgreSQL; SQLite's test DB is in memory"
        )
    return _url(connection.settings_dict, connection.settings_dict["NAME"])


def owner_database_url() -> str:
    """The same database as its owner: DATABASE_OWNER_URL's role where there is one (the
    test database's own name either way)."""
    from django.conf import settings

    from oversight.audit.db_roles import OWNER_ALIAS

    owner = settings.DATABASES.get(OWNER_ALIAS, connection.settings_dict)
    return _url(owner, connection.settings_dict["NAME"])


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """An empty database on the test server, made and dropped by the owner: its name, and
    the server's URL as the owner (no database in it)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server = owner_database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name, server
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            _drop(conn, name)


def _drop(conn: Any, name: str) -> None:
    """A backend ends a moment after its client closes the connection; FORCE would
    terminate the rest, but the owner may not terminate another role's (the runtime's,
    from the test or from a process it ran) nor an autovacuum worker (no role: usename
    is NULL), which a freshly migrated database often has: wait for those to end first."""
    others = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = %s AND usename IS DISTINCT FROM current_user"
    )
    deadline = time.monotonic() + 10
    while conn.execute(others, [name]).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _url(s: dict[str, Any], name: str) -> str:
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{name}"


def _project_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process of ours on the test database and the test Redis: as
    the runtime role, without the owner's URL, like the web, worker and beat processes."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_OWNER_URL"}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": live_database_url(),
        **(extra_env or {}),
    }


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate `process`, killing it if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def asgi_server(extra_env: dict[str, str] | None = None, *, port: int = 0) -> Iterator[str]:
    """uvicorn serving Oversight on 127.0.0.1: on ``port``, or any free one. A process of
    its own, forked from one that has imported the application (tests/zygote.py)."""
    # The listening socket is bound here and handed over (--fd): a port picked free and
    # bound later by the server could be taken meanwhile by another worker's server, whose
    # answers this test would then read as its own.
    listener = socket.socket()
    # A server started again on the same port (a restart) must not wait for the last
    # one's connections in TIME_WAIT; uvicorn binds its own sockets this way.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = _project_env({"ALLOWED_HOSTS": "127.0.0.1", **(extra_env or {})})
    with listener:  # forked from a process that imported it already (zygote.py)
        server = fork_server(env, listener)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, server)
        yield base
    finally:
        server.stop()


def _wait_until_healthy(base: str, process: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.03)
    raise RuntimeError("server did not become healthy in time")


def manage(*args: str, extra_env: dict[str, str] | None = None) -> str:
    """Run a management command in a process of its own, on the test database and the
    test Redis, to completion; returns its output."""
    command = [sys.executable, "manage.py", *args]
    done = subprocess.run(
        command, env=_project_env(extra_env), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}: {done.stderr}")
    return done.stdout


@contextmanager
def celery_worker(extra_env: dict[str, str] | None = None) -> Iterator[None]:
    """A real Celery worker (solo pool) on the test database and the test Redis."""
    from oversight.celery import app

    env = _project_env(extra_env)
    command = [sys.executable, "-m", "celery", "-A", "oversight", "worker", "--pool", "solo"]
    command += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start")
        yield
    finally:
        stop_process(process)


@contextmanager
def celery_beat(schedule_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[None]:
    """A real Celery beat on the test Redis, its schedule file in ``schedule_dir``."""
    command = [sys.executable, "-m", "celery", "-A", "oversight", "beat", "--loglevel", "WARNING"]
    command += ["--schedule", str(schedule_dir / "beat-schedule"), "--pidfile="]
    process = subprocess.Popen(command, env=_project_env(extra_env), cwd=ROOT)
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(f"celery beat exited with {process.returncode}")
        yield
    finally:
        stop_process(process)


def wait_until_the_server_listens(group: str, timeout: float = 10, *, prefix: str = "") -> None:
    """Until some server process has subscribed to the group in Redis: a socket joins its
    groups just after it is accepted, and an event sent in between would be lost.
    channels_redis's pub/sub layer subscribes each process once to the Redis channel
    ``<prefix>__group__<group>``."""
    import redis
    from django.conf import settings

    prefix = prefix or settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    channel = f"{prefix}__group__{group}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while not dict(client.pubsub_numsub(channel)).get(channel.encode()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no server subscribed to {channel} in {timeout}s")
            time.sleep(0.05)
    finally:
        client.close()
