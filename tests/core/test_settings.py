"""Settings come from the environment and refuse to start on unsafe or unparseable values."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from oversight.lib.env import envbool, envfloat, envint, envlist, envstr
from tests.servers import ROOT

# Variables the test process itself sets (tests/settings.py, bin/test) that must not
# leak into a "production" start-up.
_SCRUBBED = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "REDIS_URL",
    "AUDIT_SIGNING_KEY_FILE",
    "AUDIT_SIGNING_KEY_CREATE",
    "AUDIT_CHECKPOINT_SINKS",
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "oversight.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _production_env(**overrides: str) -> dict[str, str]:
    from oversight.audit.signing import new_key_pem

    return {
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "ALLOWED_HOSTS": "oversight.example.com",
        "AUDIT_SIGNING_KEY": new_key_pem(),
        "AUDIT_CHECKPOINT_SINKS": "dir:/srv/oversight-checkpoints,email:audit@example.com",
        "SITE_URL": "https://oversight.example.com",
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # named, not reached by the checks
        **overrides,
    }


# --- start-up ------------------------------------------------------------------------


def test_production_settings_pass_the_deploy_checks() -> None:
    env = _production_env()
    assert len(env["SECRET_KEY"]) == 64
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_checks_would_catch_a_weak_secret_key() -> None:
    """Shows the check above has teeth: a short key is a deploy warning, and fails."""
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **_production_env(SECRET_KEY="short")
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_the_deploy_checks_want_a_signing_key_and_a_sink_outside() -> None:
    env = _production_env(
        AUDIT_SIGNING_KEY="",
        AUDIT_SIGNING_KEY_FILE="/nonexistent/audit-key.pem",  # not a demo run's var/ key
        AUDIT_CHECKPOINT_SINKS="dir:var/checkpoints",
    )
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "audit.W011" in result.stderr and "audit.W012" in result.stderr


def test_the_deploy_checks_want_the_site_url_redis_and_no_owner_url() -> None:
    """Left out, SITE_URL made every emailed link and checkpoint name 127.0.0.1:8000; no
    REDIS_URL, no worker or beat; the owner's URL in a process, a role that may change
    audit history."""
    env = _production_env(
        SITE_URL="http://127.0.0.1:8000",  # the default
        REDIS_URL="",
        DATABASE_URL="postgres://oversight_runtime@127.0.0.1:1/oversight",
        DATABASE_OWNER_URL="postgres://oversight_owner@127.0.0.1:1/oversight",
    )
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    for check in ("core.W001", "core.W002", "core.W003"):
        assert check in result.stderr, result.stderr
    assert "http://127.0.0.1:8000" in result.stderr


def test_the_deploy_checks_name_periodic_jobs_in_the_server_beside_a_broker() -> None:
    """With Redis there is a beat; the web processes running the schedule too would run
    every job more than once a period."""
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **_production_env(PERIODIC_IN_SERVER="1")
    )
    assert result.returncode != 0
    assert "core.W004" in result.stderr, result.stderr
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **_production_env())
    assert "core.W004" not in result.stderr


def test_the_deploy_checks_name_a_checkpoint_sink_that_is_none() -> None:
    env = _production_env(AUDIT_CHECKPOINT_SINKS="bogus:/x,email:audit@example.com")
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "audit.W013" in result.stderr and "'bogus:/x'" in result.stderr


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off() -> None:
    result = _manage("check", ALLOWED_HOSTS="oversight.example.com", DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("module", ["oversight.asgi", "oversight.celery"])
def test_the_servers_refuse_to_start_without_a_secret_key(module: str) -> None:
    """Whatever manage.py does for a bare checkout, the web and Celery processes never
    start without a key."""
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    code = f"import {module}; import django.conf; django.conf.settings.SECRET_KEY"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "oversight.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_manage_py_in_a_bare_checkout_runs_as_development() -> None:
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_it_refuses_to_start_on_an_unparseable_debug() -> None:
    result = _manage("check", **_production_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_it_refuses_to_start_on_a_network_that_is_not_one() -> None:
    result = _manage("check", **_production_env(WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8,intranet"))
    assert result.returncode != 0
    assert "WEBHOOK_ALLOWED_NETWORKS: 'intranet' is not an IP network" in result.stderr


def test_debug_mode_starts_without_a_secret_key() -> None:
    result = _manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


# --- bounded waits --------------------------------------------------------------------


def _database_options(**env: str) -> dict[str, object]:
    code = (
        "import json, django.conf;"
        "print(json.dumps(django.conf.settings.DATABASES['default']['OPTIONS']))"
    )
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "oversight.settings", **_production_env(**env)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_database_wait_is_bounded_by_default() -> None:
    options = _database_options(DATABASE_URL="postgres://oversight@db.example.com/oversight")
    assert options["options"] == "-c lock_timeout=1000 -c statement_timeout=30000"
    assert options["connect_timeout"] == 2
    assert options["pool"]["timeout"] == 1  # type: ignore[index]


def test_the_database_waits_come_from_the_environment() -> None:
    options = _database_options(
        DATABASE_URL="postgres://oversight@db.example.com/oversight?sslmode=require",
        DB_LOCK_TIMEOUT="0.25",
        DB_STATEMENT_TIMEOUT="0",
        DB_CONNECT_TIMEOUT="5",
        DB_POOL_TIMEOUT="0.5",
    )
    assert options["options"] == "-c lock_timeout=250 -c statement_timeout=0"
    assert options["connect_timeout"] == 5
    assert options["pool"]["timeout"] == 0.5  # type: ignore[index]
    assert options["sslmode"] == "require"  # the URL's own options are kept


@pytest.mark.postgres
@pytest.mark.django_db
def test_connections_have_the_timeouts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s), current_setting(%s)", ["lock_timeout", "statement_timeout"]
        )
        assert cursor.fetchone() == ("1s", "30s")


# --- env helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " yes "])
def test_envbool_reads_true(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OV_FLAG", raw)
    assert envbool("OV_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off", ""])
def test_envbool_reads_false(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OV_FLAG", raw)
    assert envbool("OV_FLAG", True) is False


@pytest.mark.parametrize("default", [True, False])
def test_envbool_uses_the_default_when_unset(
    monkeypatch: pytest.MonkeyPatch, default: bool
) -> None:
    monkeypatch.delenv("OV_FLAG", raising=False)
    assert envbool("OV_FLAG", default) is default


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled"])
def test_envbool_fails_loudly_on_anything_else(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OV_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=r"OV_FLAG=.* is not a boolean"):
        envbool("OV_FLAG", False)


def test_envint_reads_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OV_NUM", "587")
    assert envint("OV_NUM", 25) == 587


def test_envint_uses_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OV_NUM", raising=False)
    assert envint("OV_NUM", 25, minimum=1) == 25


@pytest.mark.parametrize("raw", ["", "abc", "1.5", "10s"])
def test_envint_fails_loudly_on_a_non_integer(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OV_NUM", raw)
    with pytest.raises(ImproperlyConfigured, match=r"OV_NUM=.* is not an integer"):
        envint("OV_NUM", 25)


def test_envint_enforces_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OV_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="below the minimum of 0"):
        envint("OV_NUM", 60, minimum=0)
    monkeypatch.setenv("OV_NUM", "0")
    assert envint("OV_NUM", 60, minimum=0) == 0


@pytest.mark.parametrize(("raw", "value"), [("1", 1.0), ("0.25", 0.25), (" 30 ", 30.0)])
def test_envfloat_reads_a_number(monkeypatch: pytest.MonkeyPatch, raw: str, value: float) -> None:
    monkeypatch.setenv("OV_SECONDS", raw)
    assert envfloat("OV_SECONDS", 10) == value


def test_envfloat_uses_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OV_SECONDS", raising=False)
    assert envfloat("OV_SECONDS", 1.5, minimum=0) == 1.5


@pytest.mark.parametrize("raw", ["", "abc", "1s", "nan", "inf"])
def test_envfloat_fails_loudly_on_anything_else(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OV_SECONDS", raw)
    with pytest.raises(ImproperlyConfigured, match=r"OV_SECONDS=.* is not a (finite )?number"):
        envfloat("OV_SECONDS", 1)


def test_envfloat_enforces_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OV_SECONDS", "0.05")
    with pytest.raises(ImproperlyConfigured, match=r"below the minimum of 0\.1"):
        envfloat("OV_SECONDS", 1, minimum=0.1)


def test_envlist_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OV_LIST", " a.example.com, ,b.example.com ,")
    assert envlist("OV_LIST", ["default"]) == ["a.example.com", "b.example.com"]


def test_envlist_uses_the_default_only_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OV_LIST", raising=False)
    assert envlist("OV_LIST", ["localhost"]) == ["localhost"]
    monkeypatch.setenv("OV_LIST", "")
    assert envlist("OV_LIST", ["localhost"]) == []


def test_envstr_returns_the_raw_value_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OV_STR", raising=False)
    assert envstr("OV_STR", "fallback") == "fallback"
    assert envstr("OV_STR") is None
    monkeypatch.setenv("OV_STR", "value")
    assert envstr("OV_STR", "fallback") == "value"


def test_without_a_broker_tasks_run_at_once_and_quietly() -> None:
    """The zero-install run: no REDIS_URL, tasks eager. Celery still takes a producer from
    the in-memory transport, which warned "No hostname was supplied" on every task."""
    task = (
        "from oversight.celery import app\n"
        "@app.task\n"
        "def ping():\n"
        "    return 'pong'\n"
        "print(ping.delay().get())\n"
    )
    done = _manage("shell", "-c", task, DEBUG="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("pong")
    assert "No hostname" not in done.stderr, done.stderr
