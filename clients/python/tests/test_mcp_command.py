"""The `oversight-mcp` command's failures, each said in one line with its exit status,
never a traceback: an upstream that cannot be started or reached, one whose process ends,
and no Oversight to ask."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sdk_extras

pytest.importorskip("mcp", reason=sdk_extras.reason("mcp"))

PAYMENTS = Path(__file__).with_name("mcp_payments_server.py")
NOWHERE = {"OVERSIGHT_URL": "http://127.0.0.1:9", "OVERSIGHT_TOKEN": "ovs_prod_x"}


def oversight_mcp(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Runs the command with its stdin left open, as an MCP client keeps it, until it
    stops by itself: (status, stderr)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OVERSIGHT_")}
    command = [sys.executable, "-m", "oversight_sdk.mcp.cli", *args]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # a pipe, as from an MCP client
        stderr=subprocess.PIPE,
        env={**base, **(NOWHERE if env is None else env)},
        text=True,
    ) as proxy:
        assert proxy.stderr is not None
        status = proxy.wait(timeout=30)
        stderr = proxy.stderr.read()
    assert "Traceback" not in stderr, stderr
    return status, stderr


def test_an_upstream_command_that_cannot_start() -> None:
    status, stderr = oversight_mcp("--", "no-such-command-here")
    assert status == 1
    assert stderr.strip() == (
        "oversight-mcp: could not open a session with the upstream server "
        "(no-such-command-here): [Errno 2] No such file or directory"
    )


def test_an_upstream_url_nothing_answers() -> None:
    status, stderr = oversight_mcp(
        "--upstream", "http://127.0.0.1:9/mcp", "--listen", "127.0.0.1:0"
    )
    assert status == 1
    assert stderr.startswith(
        "oversight-mcp: could not open a session with the upstream server "
        "(http://127.0.0.1:9/mcp): "
    )


def test_an_upstream_process_that_ends_ends_the_proxy_saying_so(tmp_path: Path) -> None:
    """The upstream crashes while no request is under way: the proxy stops within a second,
    saying so, rather than answering every request from then on with "Connection closed"."""
    upstream = [sys.executable, str(PAYMENTS), "--log", str(tmp_path / "log"), "--exit-after", "1"]
    status, stderr = oversight_mcp("--", *upstream)
    assert status == 1, stderr
    assert stderr.strip() == (  # that line alone, nothing about its change stream first
        f"oversight-mcp: the upstream server's process ended ({shlex.join(upstream)}); "
        "the proxy stops with it"
    )


def test_no_oversight_to_ask() -> None:
    status, stderr = oversight_mcp("--", sys.executable, str(PAYMENTS), "--log", "x", env={})
    assert status == 2
    assert stderr.strip() == (
        "oversight-mcp: no Oversight server: pass --oversight-url or set OVERSIGHT_URL"
    )
    url = {"OVERSIGHT_URL": "http://127.0.0.1:9"}
    status, stderr = oversight_mcp("--", sys.executable, str(PAYMENTS), "--log", "x", env=url)
    assert status == 2
    assert stderr.strip() == (
        "oversight-mcp: no agent token: pass --oversight-token or set OVERSIGHT_TOKEN"
    )


def test_a_bad_resource_template_is_refused_before_anything_starts() -> None:
    """Refused as the options are read: the upstream command is never started (it does
    not exist here), and the message names the option and what is wrong."""
    status, stderr = oversight_mcp("--resource", "refund=x:{card.id}", "--", "no-such-command")
    assert status == 2
    assert stderr.strip().endswith(
        "--resource 'refund=x:{card.id}': the resource template 'x:{card.id}' uses "
        "{card.id}: only top-level arguments can be named, nested fields are not supported"
    )


def test_a_port_in_use_is_said_in_one_line_before_anything_starts() -> None:
    """Nothing is started (the upstream URL is never reached) when the proxy cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = oversight_mcp(
            "--upstream", "http://127.0.0.1:9/mcp", "--listen", f"127.0.0.1:{port}"
        )
    assert status == 1
    assert stderr.strip() == (
        f"oversight-mcp: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def test_a_resource_template_for_no_tool_or_no_argument_is_warned_of(tmp_path: Path) -> None:
    """The upstream's tools are checked against the templates when first listed (here for
    a tools/list that Oversight, unreachable, then cannot answer): a mistyped tool or
    argument is said once on stderr, not left for every call to find."""
    upstream = [sys.executable, str(PAYMENTS), "--log", str(tmp_path / "log")]
    resources = ["--resource", "refnud=stripe:charge/{charge}"]
    resources += ["--resource", "balance=account:{acount}"]
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
    ]
    stderr = _speak([*resources, "--", *upstream], messages, answers=3)
    assert stderr.count("--resource refnud=") == stderr.count("--resource balance=") == 1, stderr
    assert (
        "oversight-mcp: --resource refnud=stripe:charge/{charge}: the upstream server has no "
        "tool refnud (its tools: balance, refund)"
    ) in stderr
    assert (
        "oversight-mcp: --resource balance=account:{acount}: the tool has no argument acount "
        "(its arguments: none), so each of its calls is refused"
    ) in stderr


def _speak(
    args: list[str], messages: list[dict[str, Any]], answers: int, *, gone: bool = False
) -> str:
    """Runs the proxy, sends `messages` one by one, reads `answers` answers, then closes
    its stdin and returns its stderr (the proxy must end by itself, without a traceback).
    `gone`: the client stops reading first (killed, say), and the answers go to nobody."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OVERSIGHT_")}
    command = [sys.executable, "-m", "oversight_sdk.mcp.cli", *args]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**base, **NOWHERE},
        text=True,
    ) as proxy:
        assert proxy.stdin is not None and proxy.stdout is not None and proxy.stderr is not None
        if gone:
            proxy.stdout.close()
        for message in messages:
            proxy.stdin.write(json.dumps(message) + "\n")
            proxy.stdin.flush()
        for _ in range(answers):
            assert proxy.stdout.readline()
        if gone:
            time.sleep(3)  # the upstream starts, and the answers are written to nobody
        proxy.stdin.close()
        status = proxy.wait(timeout=30)
        stderr = proxy.stderr.read()
    assert "Traceback" not in stderr, stderr
    assert status == 0, stderr
    return stderr


def test_a_client_that_goes_away_is_not_a_traceback(tmp_path: Path) -> None:
    """The client stops reading (killed, say) before its answer is written: the answer is
    dropped, and the proxy ends when its stdin does, quietly."""
    upstream = [sys.executable, str(PAYMENTS), "--log", str(tmp_path / "log")]
    stderr = _speak(["--", *upstream], [INITIALIZE], answers=0, gone=True)
    assert "Error" not in stderr, stderr
