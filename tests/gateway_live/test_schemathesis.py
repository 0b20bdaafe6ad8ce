"""schemathesis with all its checks against the served OpenAPI document: no server errors,
responses match the document, and the document says what the API accepts and refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_live.conftest import LiveAgent
from tests.servers import ROOT

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def server_env() -> dict[str, str]:
    """Long-polls answer at once (a cap of 0 s): the fuzzer asks GET /compensations?wait=N
    and GET /actions/{id}?wait=N with any N up to the documented 60, nothing will ever
    arrive for it, and waiting (it waited up to 1 s) was a third of this test's time. The
    parameter is still checked and the poll still reads once; the waiting itself is
    tested in tests/gateway/test_read_action.py and tests/sdk/test_compensators_live.py."""
    return {"LONG_POLL_CAP_SECONDS": "0"}


@pytest.mark.slow
def test_the_api_survives_schemathesis(live_agent: LiveAgent) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{live_agent.url}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {live_agent.token}",
            "--checks", "all",
            "--max-examples", "60",
            "--seed", "1",
            "--no-color",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
