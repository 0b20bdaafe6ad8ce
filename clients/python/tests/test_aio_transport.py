"""`AsyncOversight`'s own HTTP/1.1 transport (oversight_sdk/_aio_transport.py) against a
real socket server that answers as told: keep-alive, the ways a body can end, TLS, and
every way a connection can fail, each seen by the client as httpx would have shown it;
and both clients' choice of a proxy from the environment.

The conformance suite (conformance/) runs the same transport against a live Oversight.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from oversight_sdk import AsyncOversight, ConnectionFailed, Decision, Oversight
from oversight_sdk._aio_transport import AsyncioTransport, for_server

ACTION_ID = "5b0c4b8e-7a53-4d5e-9d55-0a8f3b1f6c11"
DECISION = json.dumps({"id": ACTION_ID, "status": "allowed", "reasons": []}).encode()


def ok(body: bytes = DECISION, *extra: str) -> bytes:
    head = ["HTTP/1.1 201 Created", "Content-Type: application/json", *extra]
    return ("\r\n".join(head) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


@dataclass
class Seen:
    """What the server was sent: each request's head and body, and on which connection."""

    requests: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    connections: int = 0


# An answer: the bytes to send for the n-th request (then the connection stays open), or
# a tuple (bytes, "close") to close it after them.
Answer = Callable[[int], "bytes | tuple[bytes, str]"]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        seen = self.server.seen
        with self.server.lock:
            seen.connections += 1
            connection = seen.connections
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = self.rfile.read(length)
            with self.server.lock:
                seen.requests.append((connection, head, body))
                n = len(seen.requests)
            answer = self.server.answer(n)
            close = isinstance(answer, tuple)
            self.wfile.write(answer[0] if close else answer)
            self.wfile.flush()
            if close:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.seen = Seen()
        self.lock = threading.Lock()
        self.tls = tls

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[str, Seen]]]:
    servers: list[_Server] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> tuple[str, Seen]:
        server = _Server(answer, tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}", server.seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def _asks(url: str, count: int, **options: Any) -> list[Decision]:
    async with AsyncOversight(url, "tok", backoff=0, **options) as client:
        return [await client.ask("refund", f"charge/{n}") for n in range(count)]


def test_the_client_uses_it_by_default_and_keeps_one_connection_alive(serve: Any) -> None:
    url, seen = serve(lambda n: ok())
    assert isinstance(AsyncOversight(url, "tok")._transport, AsyncioTransport)
    decisions = asyncio.run(_asks(url, 3))
    assert [d.status for d in decisions] == ["allowed"] * 3
    assert seen.connections == 1
    assert [connection for connection, _, _ in seen.requests] == [1, 1, 1]
    _, head, body = seen.requests[0]
    assert head.startswith(b"POST /api/v1/actions HTTP/1.1\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"authorization: bearer tok" in lines
    assert f"content-length: {len(body)}".encode() in lines
    assert any(line.startswith(b"idempotency-key: ") for line in lines)
    assert json.loads(body)["resource"] == "charge/0"


def test_a_query_string_is_sent(serve: Any) -> None:
    url, seen = serve(lambda n: ok())

    async def poll() -> None:
        async with AsyncOversight(url, "tok") as client:
            await client.wait(ACTION_ID, timeout=1)

    asyncio.run(poll())
    assert seen.requests[0][1].startswith(f"GET /api/v1/actions/{ACTION_ID}?wait=1.0 ".encode())


def test_chunked_close_delimited_and_interim_answers_are_read_whole(serve: Any) -> None:
    half = len(DECISION) // 2
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x;ext=1\r\n%s\r\n" % (half, DECISION[:half])
        + b"%x\r\n%s\r\n" % (len(DECISION) - half, DECISION[half:])
        + b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + ok()
    until_closed = (b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n" + DECISION, "close")
    answers = {1: chunked, 2: interim, 3: until_closed}
    url, seen = serve(lambda n: answers.get(n, ok()))
    decisions = asyncio.run(_asks(url, 4))
    assert [d.id for d in decisions] == [ACTION_ID] * 4
    # The chunked and interim answers kept the connection; the one read to its end did not.
    assert [connection for connection, _, _ in seen.requests] == [1, 1, 1, 2]


def test_a_compressed_body_is_decoded(serve: Any) -> None:
    url, _ = serve(lambda n: ok(gzip.compress(DECISION), "Content-Encoding: gzip"))
    assert asyncio.run(_asks(url, 1))[0].id == ACTION_ID


def test_a_kept_connection_the_server_closed_is_not_used(serve: Any) -> None:
    """The server drops the connection after each answer without saying so (as one does
    when its keep-alive time is up): the next request opens another, with no error and
    no second attempt."""
    url, seen = serve(lambda n: (ok(), "close"))

    async def spaced() -> list[Decision]:
        async with AsyncOversight(url, "tok", retries=0) as client:
            first = await client.ask("refund", "charge/1")
            await asyncio.sleep(0.2)  # the close reaches the client
            return [first, await client.ask("refund", "charge/2")]

    assert [d.status for d in asyncio.run(spaced())] == ["allowed", "allowed"]
    assert [connection for connection, _, _ in seen.requests] == [1, 2]


def test_a_cancelled_request_leaves_no_answer_behind_for_the_next(serve: Any) -> None:
    """A request cancelled while its answer is on the way closes its connection: the next
    request must not read the first one's answer."""
    first = json.dumps({"id": "00000000-0000-4000-8000-000000000001", "status": "denied"})

    def answer(n: int) -> bytes:
        if n == 1:
            time.sleep(0.3)
            return ok(first.encode())
        return ok()

    url, seen = serve(answer)

    async def cancel_then_ask() -> Decision:
        async with AsyncOversight(url, "tok") as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.ask("refund", "charge/1"), 0.1)
            await asyncio.sleep(0.4)
            return await client.ask("refund", "charge/2")

    assert asyncio.run(cancel_then_ask()).id == ACTION_ID
    assert [connection for connection, _, _ in seen.requests] == [1, 2]


def test_one_client_serves_two_event_loops_in_turn(serve: Any) -> None:
    url, seen = serve(lambda n: ok())
    client = AsyncOversight(url, "tok")
    assert asyncio.run(client.ask("refund", "charge/1")).allowed
    assert asyncio.run(client.ask("refund", "charge/2")).allowed  # the first loop has ended
    assert seen.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((b'HTTP/1.1 201 Created\r\nContent-Length: 500\r\n\r\n{"id"', "close"), "whole response"),
        ((b"", "close"), "whole response"),
        (b"NOT-HTTP garbage\r\n\r\n", "malformed response"),
        (b"HTTP/1.1 201 Created\r\nno colon here\r\n\r\n", "malformed response"),
    ],
)
def test_a_broken_answer_is_a_protocol_error_and_retried(
    serve: Any, answer: Any, error: str
) -> None:
    url, seen = serve(lambda n: answer)
    with pytest.raises(ConnectionFailed, match=f"RemoteProtocolError: .*{error}") as failed:
        asyncio.run(_asks(url, 1, retries=1))
    assert failed.value.attempts == 2
    assert len(seen.requests) == 2


def test_no_server_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    with pytest.raises(ConnectionFailed, match="ConnectError") as failed:
        asyncio.run(_asks(f"http://127.0.0.1:{port}", 1, retries=2))
    assert failed.value.attempts == 3


def test_a_slow_answer_is_a_read_timeout(serve: Any) -> None:
    url, _ = serve(lambda n: time.sleep(0.5) or ok())
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="ReadTimeout"):
        asyncio.run(_asks(url, 1, retries=0, timeout=0.1))
    assert time.monotonic() - started < 0.45


@pytest.fixture
def deaf() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    """A listening socket that never accepts, and the connections made to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        made: list[socket.socket] = []
        yield listener, made
        for sock in made:
            sock.close()


def test_a_server_that_takes_no_connection_is_a_connect_timeout(deaf: Any) -> None:
    listener, made = deaf
    port = listener.getsockname()[1]
    for _ in range(4):  # its backlog full: the next handshake is left unanswered
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        made.append(sock)
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="ConnectTimeout"):
        asyncio.run(_asks(f"http://127.0.0.1:{port}", 1, retries=0, timeout=0.2))
    assert time.monotonic() - started < 2


def test_a_server_that_reads_nothing_is_a_write_timeout(deaf: Any) -> None:
    listener, _ = deaf
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def post() -> None:
        # Accepted by the kernel, never read: a body larger than both sockets' buffers.
        transport = AsyncioTransport()
        async with httpx.AsyncClient(transport=transport, timeout=0.2) as client:
            await client.post(url, content=b"x" * (64 * 1024 * 1024))

    started = time.monotonic()
    with pytest.raises(httpx.WriteTimeout):
        asyncio.run(post())
    assert time.monotonic() - started < 2


def test_an_unsupported_scheme_is_refused() -> None:
    async def ask() -> None:
        async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
            await client.get("ftp://127.0.0.1/")

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(ask())


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate (and its key, in one file) for 127.0.0.1."""
    pem = tmp_path / "server.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(pem),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    pem.write_text(pem.read_text() + (tmp_path / "cert.pem").read_text())
    return pem


def test_https_trusts_what_httpx_trusts(
    serve: Any, certificate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate)
    url, seen = serve(lambda n: ok(), tls)
    # Not trusted: refused, as httpx refuses it.
    with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(_asks(url, 1, retries=0))
    # Trusted through SSL_CERT_FILE, as httpx reads it.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    assert [d.status for d in asyncio.run(_asks(url, 2))] == ["allowed", "allowed"]
    # Both on one connection (the refused handshake never got as far as a request).
    assert [connection for connection, _, _ in seen.requests] == [1, 1]


def test_a_proxy_in_the_environment_leaves_the_requests_to_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert isinstance(for_server("https://oversight.example.com"), AsyncioTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(for_server("https://oversight.example.com"), httpx.AsyncHTTPTransport)
    assert isinstance(for_server("http://oversight.example.com"), AsyncioTransport)
    monkeypatch.setenv("NO_PROXY", "oversight.example.com")
    assert isinstance(for_server("https://oversight.example.com"), AsyncioTransport)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert isinstance(for_server("http://elsewhere.example.com"), httpx.AsyncHTTPTransport)


def test_through_a_proxy_both_clients_send_to_the_proxy(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, an ask is sent to the proxy, for the server's address."""
    proxy_url, seen = serve(lambda n: ok())
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    server = "http://oversight.internal:8000"
    assert asyncio.run(_asks(server, 1))[0].id == ACTION_ID
    with Oversight(server, "tok", backoff=0) as client:
        assert client.ask("refund", "charge/1").id == ACTION_ID
    for _, head, _ in seen.requests:
        assert head.startswith(b"POST http://oversight.internal:8000/api/v1/actions HTTP/1.1\r\n")
    assert len(seen.requests) == 2
