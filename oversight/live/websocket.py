"""uvicorn's websocket protocol, compressing each distinct message once for all sockets.

uvicorn negotiates permessage-deflate with context takeover: each socket's compressor
keeps the bytes it sent before, so a message's compressed bytes differ from socket to
socket and a batch sent to 100 sockets is compressed 100 times (record 0009 measured it
as half the live path's CPU). With ``server_no_context_takeover`` every message is
compressed on its own, so its compressed bytes depend only on the message and the
negotiated window, and sockets that are sent the same text can share them: this module
keeps the last few in a small cache per process, shared by all its connections.

Browsers' side is unchanged: they decompress with a fresh context when the server said
``server_no_context_takeover`` (RFC 7692 section 7.1.1.1), and their own messages (there
are none here) may still use context takeover. Sockets that ask for no compression get
none, as before.

Served with ``uvicorn --ws oversight.live.websocket:SharedDeflateProtocol`` (Procfile).
"""

from __future__ import annotations

import logging
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CONT, CTRL_OPCODES, Frame
from websockets.server import ServerProtocol
from websockets.typing import ExtensionParameter

# uvicorn's settings for the sliding windows and zlib's memory: kept, so that only the
# context takeover changes.
WINDOW_BITS = 12
COMPRESS_SETTINGS = {"memLevel": 5}

# A window's batch goes to every socket of a group one after the other, so its
# compressed bytes are needed only for a moment; a few groups' worth is plenty. Larger
# messages (a burst) are compressed per socket rather than held.
CACHE_ENTRIES = 64
CACHE_MAX_PAYLOAD = 256 * 1024

_EMPTY_UNCOMPRESSED_BLOCK = b"\x00\x00\xff\xff"


class CompressedMessages:
    """Compressed payloads by (payload, window bits), least recently used dropped first.
    Used on the event loop only, so it needs no lock."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._cache: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def compress(self, payload: bytes, window_bits: int) -> bytes:
        """``payload`` deflated from a fresh context, without the trailing empty block
        (RFC 7692 section 7.2.1)."""
        if len(payload) > CACHE_MAX_PAYLOAD:
            return _deflate(payload, window_bits)
        key = (payload, window_bits)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        compressed = self._cache[key] = _deflate(payload, window_bits)
        if len(self._cache) > self.entries:
            self._cache.popitem(last=False)
        return compressed


def _deflate(payload: bytes, window_bits: int) -> bytes:
    encoder = zlib.compressobj(wbits=-window_bits, **COMPRESS_SETTINGS)
    data = encoder.compress(payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
    assert data[-4:] == _EMPTY_UNCOMPRESSED_BLOCK
    return data[:-4]


compressed_messages = CompressedMessages()  # this process's, shared by its connections


class SharedPerMessageDeflate(PerMessageDeflate):
    """permessage-deflate whose outgoing messages come from ``compressed_messages``.
    Only negotiated with server_no_context_takeover, which is what makes that correct."""

    def encode(self, frame: Frame) -> Frame:
        # uvicorn sends every message as one final frame; anything else (control frames
        # go uncompressed anyway, fragmented messages never happen) takes the usual way.
        if frame.opcode in CTRL_OPCODES or frame.opcode is CONT or not frame.fin:
            return super().encode(frame)
        data = compressed_messages.compress(bytes(frame.data), self.local_max_window_bits)
        return Frame(frame.opcode, data, frame.fin, True, frame.rsv2, frame.rsv3)


class SharedServerPerMessageDeflateFactory(ServerPerMessageDeflateFactory):
    """Always answers with server_no_context_takeover (a server may add it whatever the
    client offered, RFC 7692 section 7.1.1.1) and shares the compressed messages."""

    def __init__(self) -> None:
        super().__init__(
            server_no_context_takeover=True,
            server_max_window_bits=WINDOW_BITS,
            client_max_window_bits=WINDOW_BITS,
            compress_settings=dict(COMPRESS_SETTINGS),
        )

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, negotiated = super().process_request_params(params, accepted_extensions)
        assert negotiated.local_no_context_takeover  # forced by server_no_context_takeover
        shared = SharedPerMessageDeflate(
            negotiated.remote_no_context_takeover,
            negotiated.local_no_context_takeover,
            negotiated.remote_max_window_bits,
            negotiated.local_max_window_bits,
            negotiated.compress_settings,
        )
        return response, shared


class SharedDeflateProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default websocket protocol (websockets' sans-I/O one) with the shared
    permessage-deflate above in place of its own. ``--ws-per-message-deflate false``
    still turns compression off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:
            # Nothing has been received yet: replacing the connection's state machine
            # here changes only the extensions it negotiates.
            self.conn = ServerProtocol(
                extensions=[SharedServerPerMessageDeflateFactory()],
                max_size=self.config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )
