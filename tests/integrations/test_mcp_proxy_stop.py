"""Stopping `oversight-mcp` over stdio with a signal, as a service manager or an MCP client
that stopped waiting for it does: the call under way finishes, its answer is written and
its outcome reported, and the proxy exits with status 0.

Driven over raw pipes (JSON-RPC lines), not an MCP client library, to have the proxy's
own process to signal.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from oversight.agents.services import token_create
from oversight.gateway.models import Action
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM
from tests.integrations.mcp_world import Payments, payments_args, proxy_args
from tests.integrations.test_mcp_proxy import REFUND, _reported

pytestmark = pytest.mark.postgres


@pytest.fixture
def token(agent: Any) -> str:
    grant = Grant(agent=agent, action=REFUND, resource="stripe:charge/*")
    policy_object_create(actor=SYSTEM, obj=grant)
    return token_create(actor=SYSTEM, agent=agent, environment="production")[1]


class Wire:
    """The proxy's stdin and stdout: a JSON-RPC message a line."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process, self._in, self._out = process, process.stdin, process.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out, selectors.EVENT_READ)
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        self._in.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self._in.flush()

    def answer(self, request_id: int, *, timeout: float = 20) -> dict[str, Any] | None:
        """The answer to `request_id` (notifications skipped); None if the proxy's stdout
        ended first or nothing came in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("id") == request_id:
                    return message
            if not self._selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(self._out.fileno(), 65536)
            if not chunk:
                return None
            self._buffer += chunk
        return None


@contextmanager
def _proxy(url: str, token: str, payments: Payments) -> Iterator[Wire]:
    """The proxy over stdio in front of the payments server, whose refunds answer 3 s
    after they are made; initialized (the handshake) by the time it is yielded."""
    upstream = payments_args(payments.log, None, None, ["--slow", "3"])
    command = [sys.executable, *proxy_args(hold_wait=20, extra=[]), "--", sys.executable]
    env = {**os.environ, "OVERSIGHT_URL": url, "OVERSIGHT_TOKEN": token}
    process = subprocess.Popen(
        [*command, *upstream], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        wire = Wire(process)
        client = {"name": "stop-test", "version": "1"}
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
        wire.send({"id": 1, "method": "initialize", "params": params})
        assert wire.answer(1) is not None
        wire.send({"method": "notifications/initialized"})
        yield wire
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stdio_proxy_stopped_mid_call_finishes_the_call_reports_it_and_exits(
    sig: signal.Signals, live_url: str, token: str, agent: Any, tmp_path: Path
) -> None:
    """It died at once: the refund made upstream was never answered nor reported, its
    action left allowed for a person to settle (a Ctrl-C ended it with a traceback)."""
    arguments = {"charge": "ch_term", "amount": 10}
    payments = Payments(tmp_path / "refunds.jsonl")
    with _proxy(live_url, token, payments) as wire:
        params = {"name": "refund", "arguments": arguments}
        wire.send({"id": 2, "method": "tools/call", "params": params})
        deadline = time.monotonic() + 20
        while not payments.executed() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert payments.executed() == [arguments]
        wire.process.send_signal(sig)
        stopped = time.monotonic()
        answer = wire.answer(2)
        status = wire.process.wait(timeout=30)
        took = time.monotonic() - stopped
    assert answer is not None, "the call under way was not answered"
    assert "result" in answer and answer["result"]["isError"] is False, answer
    assert (status, took < 8) == (0, True), (status, took)
    action = _reported(Action.objects.get(agent=agent))
    assert action.status == "succeeded"
    assert payments.executed() == [arguments]


def test_a_stdio_proxy_stopped_while_idle_exits_at_once(
    live_url: str, token: str, agent: Any, tmp_path: Path
) -> None:
    with _proxy(live_url, token, Payments(tmp_path / "refunds.jsonl")) as wire:
        wire.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        status = wire.process.wait(timeout=30)
        took = time.monotonic() - stopped
    assert (status, took < 3) == (0, True), (status, took)
