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
