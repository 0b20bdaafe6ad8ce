"""Shared by the audit trust tests: a checkpoint delivered, a bundle checked with the
shipped verifier in a Python that cannot import the project."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

from oversight.audit import sinks
from oversight.audit.checkpoints import checkpoint_write
from oversight.audit.models import AuditCheckpoint

# Run verify.py the way an auditor's machine would: isolated mode (no PYTHONPATH, no
# current directory on the path), with the project and Django made unimportable.
_OFFLINE = """
import runpy, sys
sys.modules["django"] = None
sys.modules["oversight"] = None
sys.argv = ["verify.py", "bundle", sys.argv[1]]
runpy.run_path("verify.py", run_name="__main__")
"""


def checkpoint_delivered() -> AuditCheckpoint:
    checkpoint = checkpoint_write()
    assert checkpoint is not None
    for delivery in checkpoint.deliveries.all():
        sinks.checkpoint_deliver(delivery_id=delivery.pk)
    return checkpoint


def verify_bundle_offline(content: bytes, where: Path) -> subprocess.CompletedProcess[str]:
    """Unpack the bundle's verify.py next to the zip and run ``verify.py bundle`` on it."""
    where.mkdir(parents=True, exist_ok=True)
    bundle = where / "bundle.zip"
    bundle.write_bytes(content)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("/verify.py")]
        (where / "verify.py").write_bytes(archive.read(name))
    return subprocess.run(
        [sys.executable, "-I", "-c", _OFFLINE, str(bundle)],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )
