"""The deploy checks of checkpoints: a real key, and a sink beyond this machine's tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oversight.audit import signing
from oversight.audit.key_checks import check_checkpoints


def _ids() -> set[str]:
    signing.signing_key.cache_clear()
    try:
        return {message.id for message in check_checkpoints()}
    finally:
        signing.signing_key.cache_clear()


def test_a_configured_key_and_an_outside_sink_are_quiet(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY = signing.new_key_pem()
    settings.AUDIT_SIGNING_KEY_CREATE = False
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{tmp_path}", "email:audit@example.com"]
    assert _ids() == set()


def test_a_missing_key_and_only_local_sinks_warn(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "absent.pem")
    settings.AUDIT_SIGNING_KEY_CREATE = False
    settings.AUDIT_CHECKPOINT_SINKS = [f"dir:{Path(settings.BASE_DIR) / 'var' / 'checkpoints'}"]
    assert _ids() == {"audit.W011", "audit.W012"}
    assert not (tmp_path / "absent.pem").exists()


def test_creating_keys_in_production_warns(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "made.pem")
    settings.AUDIT_SIGNING_KEY_CREATE = True
    settings.AUDIT_CHECKPOINT_SINKS = ["webhook:https://example.com/hook"]
    assert _ids() == {"audit.W010"}


def test_processes_starting_at_once_create_one_key_and_never_read_half_of_it(
    settings: Any, tmp_path: Path
) -> None:
    """Servers, workers and parallel test runs may all start with no key yet: each must
    end with the same key, none with an error about a file still being written."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_CREATE = True
    make = signing.signing_key.__wrapped__  # uncached: each call is a process starting
    for attempt in range(20):
        settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / f"key-{attempt}.pem")
        start = Barrier(8)

        def start_up(start: Barrier) -> bytes:
            start.wait()
            return make().public_key().public_bytes_raw()

        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(start_up, [start] * 8))
        assert len(keys) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"key-{i}.pem" for i in range(20))
