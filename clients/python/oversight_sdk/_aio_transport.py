"""A lean HTTP/1.1 transport for `AsyncOversight`, on asyncio's own streams.

httpx's default async transport (httpcore over anyio) spends about 1 ms of CPU on each
request on a machine where the request itself takes 0.2 ms: cancel scopes, checkpoints
and several turns of the event loop per request. That was most of what an agent's ask
cost on its own side (docs/performance.md). The SDK sends small JSON bodies over
keep-alive connections, so this transport does that and nothing more:

- one request at a time per connection; connections are kept alive and reused (at most
  `max_idle` kept), and a kept one the server has closed is dropped before use;
- `http` and `https`, with httpx's own default SSL context (the same certificates,
  `SSL_CERT_FILE`...);
- the whole response read at once: by Content-Length, chunked, or to the end of the
  connection;
- httpx's timeouts (connect, read, write) and errors (`ConnectError`, `ReadTimeout`,
  `RemoteProtocolError`...), so the client's retry policy sees what it always saw. Like
  httpx, it never sends a request twice on its own.

`AsyncOversight` hands its requests straight to its transport (`_http.Endpoint`).
`for_server` picks this one unless the environment sets a proxy for the server
(`HTTPS_PROXY`...): then httpx's own transport, which knows proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from . import _http

_HEAD_LIMIT = 64 * 1024  # bytes of status line and headers (asyncio's stream limit)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def for_server(url: str) -> httpx.AsyncBaseTransport:
    """This transport for `url`; httpx's own, through the proxy, when the environment sets
    one for it (`_http.environment_proxy`)."""
    proxy = _http.environment_proxy(url)
    return httpx.AsyncHTTPTransport(proxy=proxy) if proxy else AsyncioTransport()


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop

    def usable(self) -> bool:
        """Still open, on this loop, with nothing unread (a kept connection)."""
        return (
            self.loop is asyncio.get_running_loop()
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # its event loop has ended
            self.writer.close()


class AsyncioTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_idle: int = 8) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._max_idle = max_idle
        self._ssl: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 80))
        body = await request.aread()
        connection = self._kept(origin) or await self._connect(
            request, origin, timeouts.get("connect")
        )
        try:
            await _send(request, body, connection.writer, timeouts.get("write"))
            response, reusable = await _receive(request, connection.reader, timeouts.get("read"))
        except BaseException:
            connection.close()
            raise
        if reusable and len(self._idle.setdefault(origin, [])) < self._max_idle:
            self._idle[origin].append(connection)
        else:
            connection.close()
        return response

    def _kept(self, origin: tuple[str, str, int]) -> _Connection | None:
        kept = self._idle.get(origin)
        while kept:
            connection = kept.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(
        self, request: httpx.Request, origin: tuple[str, str, int], timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        tls: dict[str, Any] = {}
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            tls = {"ssl": self._ssl, "server_hostname": host}
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=_HEAD_LIMIT, **tls)
        except TimeoutError as exc:
            message = f"connecting to {host}:{port} timed out"
            raise httpx.ConnectTimeout(message, request=request) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return _Connection(reader, writer, asyncio.get_running_loop())

    async def aclose(self) -> None:
        for kept in self._idle.values():
            for connection in kept:
                connection.close()
        self._idle.clear()


async def _send(
    request: httpx.Request, body: bytes, writer: asyncio.StreamWriter, timeout: float | None
) -> None:
    head = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    head += [name + b": " + value for name, value in request.headers.raw]
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    try:
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError as exc:
        raise httpx.WriteTimeout("sending the request timed out", request=request) from exc
    except OSError as exc:
        raise httpx.WriteError(f"{type(exc).__name__}: {exc}", request=request) from exc


async def _receive(
    request: httpx.Request, reader: asyncio.StreamReader, timeout: float | None
) -> tuple[httpx.Response, bool]:
    """The response, and whether its connection may carry another request."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_response(request, reader)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("reading the response timed out", request=request) from exc
    except asyncio.IncompleteReadError as exc:
        raise httpx.RemoteProtocolError(
            "the server closed the connection before the whole response", request=request
        ) from exc
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise httpx.RemoteProtocolError(f"malformed response: {exc}", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc


async def _read_response(
    request: httpx.Request, reader: asyncio.StreamReader
) -> tuple[httpx.Response, bool]:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].split(b"\r\n")
        version, status_text, *reason = status_line.split(b" ", 2)
        status = int(status_text)
        if not version.startswith(b"HTTP/1.") or not 100 <= status <= 999:
            raise ValueError(f"status line {status_line[:100]!r}")
        if status >= 200 or status == 101:
            break  # else an interim answer (100 Continue): the real one follows
    headers = [_header(line) for line in lines]
    fields = {name.lower(): value for name, value in headers}
    keep_alive = version == b"HTTP/1.1" and fields.get(b"connection", b"").lower() != b"close"
    if request.method == "HEAD" or status in (204, 304) or status < 200:
        content = b""
    elif fields.get(b"transfer-encoding", b"").lower().endswith(b"chunked"):
        content = await _read_chunked(reader)
    elif b"content-length" in fields:
        content = await reader.readexactly(int(fields[b"content-length"]))
    else:  # delimited by the end of the connection
        content, keep_alive = await reader.read(), False
    response = httpx.Response(
        status,
        headers=headers,
        content=content,
        extensions={"http_version": version, "reason_phrase": b"".join(reason)},
    )
    return response, keep_alive


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, sep, value = line.partition(b":")
    if not sep or not name.strip():
        raise ValueError(f"header line {line[:100]!r}")
    return name.strip(), value.strip()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the end
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
