"""Real MCP sessions through `oversight-mcp` against a live Oversight: the payments MCP
server (clients/python/tests/mcp_payments_server.py) behind the proxy, over stdio or
streamable HTTP, and an MCP client session in front of it.

Each refund the payments server runs is a line in its log file: what the side effect
actually ran with.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.integrations import forked
from tests.servers import ROOT, free_port, stop_process

PAYMENTS_SERVER = ROOT / "clients" / "python" / "tests" / "mcp_payments_server.py"
RESOURCE = "refund=stripe:charge/{charge}"

T = TypeVar("T")


@dataclass
class Payments:
    """The side effect's record."""

    log: Path

    def executed(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@dataclass
class Proxied:
    """How to reach the payments server through the proxy: the MCP client's target."""

    target: StdioServerParameters | str
    payments: Payments
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Over http: stop the payments server and start it again on the same port; or each.
    restart_upstream: Callable[..., None] | None = None
    stop_upstream: Callable[..., None] | None = None
    start_upstream: Callable[[], None] | None = None

    def session(
        self, body: Callable[[Client], Awaitable[T]], *, mode: str = "auto", **options: Any
    ) -> T:
        """Open an MCP client session, run `body` in it, close it. `mode="legacy"` speaks
        the initialize handshake (protocol 2025-11-25 and before); `options` go to the
        client (its callbacks)."""

        async def run() -> T:
            async with Client(self.target, mode=mode, **options) as client:  # type: ignore[arg-type]
                return await body(client)

        return anyio.run(run)

    def call(self, name: str, arguments: dict[str, Any], **options: Any) -> types.CallToolResult:
        return self.session(lambda client: client.call_tool(name, arguments), **options)

    def call_in_thread(
        self, name: str, arguments: dict[str, Any], **options: Any
    ) -> Callable[[], Any]:
        """Start a call in another thread (`options` as for `session`); the returned
        function joins it (60 s at most) and returns its result (or raises what it
        raised)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = self.call(name, arguments, **options)
            except BaseException as exc:  # handed to the test thread
                box["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def join() -> Any:
            thread.join(timeout=60)
            if thread.is_alive():
                raise AssertionError("the MCP call did not end")
            if "error" in box:
                raise box["error"]
            return box["result"]

        return join


def proxy_args(*, hold_wait: float, extra: list[str]) -> list[str]:
    args = ["-m", "oversight_sdk.mcp.cli", "--resource", RESOURCE, "--hold-wait", str(hold_wait)]
    return [*args, *extra]


def payments_args(
    log: Path, description: str | None, description_file: Path | None, extra: list[str]
) -> list[str]:
    args = [str(PAYMENTS_SERVER), "--log", str(log), *extra]
    if description_file:
        args += ["--description-file", str(description_file)]
    return args + (["--description", description] if description else [])


@contextmanager
def proxied(
    transport: str,
    *,
    url: str,
    token: str,
    tmp: Path,
    hold_wait: float = 20,
    description: str | None = None,
    description_file: Path | None = None,
    extra: list[str] | None = None,
    upstream_extra: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
) -> Iterator[Proxied]:
    """The payments server behind the proxy, reached over `transport` (stdio or http).
    With `description_file`, the refund tool's description is that file's text, and
    writing the file changes the definition in the middle of a session. `extra` goes to
    the proxy, `upstream_extra` to the payments server, `env_extra` to the proxy's
    environment."""
    payments = Payments(tmp / "refunds.jsonl")
    env = {"OVERSIGHT_URL": url, "OVERSIGHT_TOKEN": token, **(env_extra or {})}
    args = proxy_args(hold_wait=hold_wait, extra=extra or [])
    if transport == "stdio":
        upstream_args = payments_args(
            payments.log, description, description_file, upstream_extra or []
        )
        # Both forked from a process that imported `mcp` already (forked.py).
        upstream = [sys.executable, *forked.command(upstream_args)]
        command = forked.command([*args, "--", *upstream])
        yield Proxied(
            StdioServerParameters(command=sys.executable, args=command, env=env), payments
        )
        return
    upstream_port, proxy_port = free_port(), free_port()
    upstream_args = payments_args(payments.log, description, description_file, upstream_extra or [])
    upstream_command = [
        sys.executable,
        *forked.command([*upstream_args, "--http", str(upstream_port)]),
    ]
    processes = [subprocess.Popen(upstream_command)]

    def stop_upstream(*, crash: bool = False) -> None:
        """Stop the payments server (`crash`: killed, closing nothing)."""
        if crash:
            processes[0].kill()  # its launcher: the server kills itself as it sees that
            processes[0].wait()
            _wait_until_refused(upstream_port)
        else:
            stop_process(processes[0])

    def start_upstream() -> None:
        processes[0] = subprocess.Popen(upstream_command)
        _wait_for_port(upstream_port, processes[0])

    def restart_upstream(*, crash: bool = False) -> None:
        stop_upstream(crash=crash)
        start_upstream()

    try:
        _wait_for_port(upstream_port, processes[0])
        upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
        listen = f"127.0.0.1:{proxy_port}"
        proxy = subprocess.Popen(
            [
                sys.executable,
                *forked.command([*args, "--upstream", upstream_url, "--listen", listen]),
            ],
            env={**os.environ, **env},
        )
        processes.append(proxy)
        _wait_for_port(proxy_port, proxy)
        yield Proxied(
            f"http://{listen}/mcp",
            payments,
            processes,
            restart_upstream,
            stop_upstream,
            start_upstream,
        )
    finally:
        for process in reversed(processes):
            stop_process(process)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp", timeout=1)
        except urllib.error.HTTPError:
            return  # it answers (an MCP endpoint refuses a bare GET)
        except OSError:
            time.sleep(0.1)
        else:
            return
    raise RuntimeError(f"nothing listened on port {port} in time")


def _wait_until_refused(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    raise RuntimeError(f"port {port} still listens")


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))
