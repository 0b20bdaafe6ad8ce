"""The proxy's own stdio, read and written on the event loop.

`mcp.server.stdio.stdio_server()` reads each line of stdin, and writes and flushes each
answer, in a worker thread (`anyio.wrap_file`): three hand-offs between threads per call,
each a wake-up that costs more than the line's work on a small machine. When stdin and
stdout are pipes or sockets, as they are under an MCP client, the proxy gives
`stdio_server` streams of its own instead, read and written by the event loop with no
thread (`native_stdio`); otherwise (a file, a terminal, Windows) it keeps the package's.

As the package does, the proxy serves the wire from private copies of the two
descriptors, and points fd 0 at the null device and fd 1 at stderr while it serves, so a
stray print cannot corrupt the protocol; both are restored on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

logger = logging.getLogger(__name__)

# A message is one line; the package's own reader has no limit either.
MAX_LINE = 256 * 1024 * 1024


class Lines:
    """The lines of a pipe, as `stdio_server` iterates its stdin."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        self._reader, self._transport = reader, transport
        self._held = False
        self._ended = asyncio.Event()

    def hold(self) -> None:
        """Take no more lines (a proxy being stopped: stopping.py); the input stays open,
        and the proxy answers what it took, until `end`."""
        self._held = True
        self._transport.pause_reading()

    def end(self) -> None:
        """The input ends here (once held)."""
        self._ended.set()
        self._reader.feed_eof()  # a read under way returns

    def __aiter__(self) -> Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()  # (held: only a line read before the hold)
        if self._held:  # not taken
            await self._ended.wait()
            raise StopAsyncIteration
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class Writer:
    """A pipe written as `stdio_server` writes its stdout: `write` then `flush`. A client
    that stopped reading (it was killed, say) is not written to any more: what it would
    have been told is dropped, and the proxy ends when its stdin does, as for any client
    that leaves (a held call stays held in Oversight; calling again finds it)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.gone = False

    async def write(self, text: str) -> None:
        if not self.gone:
            self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        if self.gone:
            return
        try:
            await self._writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            self.gone = True
            logger.debug("the client stopped reading; its answers are dropped")


def _pipe_like(fd: int) -> bool:
    if sys.platform == "win32":  # the proactor loop reads pipes by handle, not by fd
        return False
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def native_stdio() -> AsyncIterator[tuple[Lines, Writer] | None]:
    """Streams over private copies of fds 0 and 1, or None when either is not a pipe
    or a socket (then the caller uses the package's own stdio)."""
    if not (_pipe_like(0) and _pipe_like(1)):
        yield None
        return
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved = _divert()
    transports: list[asyncio.BaseTransport] = []
    try:
        reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(wire_in, "rb", buffering=0),
        )
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop),
            os.fdopen(wire_out, "wb", buffering=0),
        )
        transports.append(write_transport)
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        # (uvloop's pipe transports do not subclass asyncio's, but are read transports)
        yield Lines(reader, cast(asyncio.ReadTransport, read_transport)), Writer(writer)
    finally:
        for transport in transports:
            transport.close()
        _restore(saved)


def _divert() -> tuple[int, int]:
    """Point fd 0 at the null device and fd 1 at stderr; the originals' copies back."""
    saved = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    os.dup2(2, 1)
    return saved


def _restore(saved: tuple[int, int]) -> None:
    for fd, copy in zip((0, 1), saved, strict=True):
        os.dup2(copy, fd)
        os.close(copy)
