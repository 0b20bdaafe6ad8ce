"""permessage-deflate as the server negotiates it (oversight/live/websocket.py), read off
the wire of the real server: raw sockets that ask for compression as Chromium does, and
one that does not ask.

With server_no_context_takeover every message is compressed from a fresh context, so
two sockets sent the same text get the same compressed bytes (compressed once, shared)
and each message decompresses on its own.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.test import Client

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.live import groups
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds, refund
from tests.servers import asgi_server, wait_until_the_server_listens

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 15  # seconds, at most, for anything that must arrive
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"


class RawSocket:
    """A websocket client that keeps each frame as it came over the wire."""

    def __init__(self, sock: socket.socket, response: str, rest: bytes) -> None:
        self.sock = sock
        self.response = response
        self.buffer = rest

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def frame(self) -> tuple[int, bool, bytes]:
        """(opcode, rsv1, payload) of the next frame; a server's frames are not masked."""
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        assert first & 0x80, "a fragmented message"
        return first & 0x0F, bool(first & 0x40), self._read(length)

    def frames_until(self, needle: str) -> list[tuple[bool, bytes, str]]:
        """Text frames until one whose text has ``needle``: (compressed, wire payload,
        text), each decompressed from a fresh context."""
        got: list[tuple[bool, bytes, str]] = []
        deadline = time.monotonic() + WAIT
        while not got or needle not in got[-1][2]:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            opcode, compressed, payload = self.frame()
            if opcode != 0x1:
                continue
            text = _inflate(payload) if compressed else payload.decode()
            got.append((compressed, payload, text))
        return got


def _inflate(payload: bytes) -> str:
    decoder = zlib.decompressobj(wbits=-15)  # a fresh context: nothing from earlier frames
    return (decoder.decompress(payload + b"\x00\x00\xff\xff") + decoder.flush()).decode()


@contextmanager
def raw_socket(server: str, user: Any, extensions: str | None) -> Iterator[RawSocket]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    url = urlsplit(server)
    sock = socket.create_connection((url.hostname, url.port), timeout=WAIT)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws/live/ HTTP/1.1",
        f"Host: {url.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://{url.netloc}",
        f"Cookie: {cookie}",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed during the handshake: {received!r}"
        received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    try:
        yield RawSocket(sock, head.decode(), rest)
    finally:
        sock.close()


def _extensions(response: str) -> str:
    assert response.startswith("HTTP/1.1 101"), response
    found = [
        line.split(":", 1)[1].strip()
        for line in response.split("\r\n")
        if line.lower().startswith("sec-websocket-extensions:")
    ]
    return found[0] if found else ""


def test_sockets_sent_the_same_message_get_the_same_compressed_bytes(
    agent: Agent, reviewer: Any, owner: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")

    with (
        asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as server,
        raw_socket(server, reviewer, CHROMIUM_OFFER) as first,
        raw_socket(server, owner, CHROMIUM_OFFER) as second,
        httpx.Client(base_url=server, headers={"Authorization": f"Bearer {raw}"}) as api,
    ):
        for sock in (first, second):
            negotiated = _extensions(sock.response)
            assert negotiated.startswith("permessage-deflate"), negotiated
            assert "server_no_context_takeover" in negotiated, negotiated
        wait_until_the_server_listens(groups.agent_feed(agent.pk))
        ids = []
        for i in range(2):  # two windows: the second message must not lean on the first
            response = api.post("/api/v1/actions", json=refund(20, charges=(f"ch_{i}",)))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
            time.sleep(0.3)
        got_first = first.frames_until(ids[-1])
        got_second = second.frames_until(ids[-1])

    for action_id in ids:
        [(compressed_1, wire_1, text_1)] = [f for f in got_first if action_id in f[2]]
        [(compressed_2, wire_2, text_2)] = [f for f in got_second if action_id in f[2]]
        assert compressed_1 and compressed_2
        assert wire_1 == wire_2  # the same compressed bytes on both sockets
        assert text_1 == text_2 and f'<tr id="action-{action_id}"' in text_1


def test_a_socket_that_asks_for_no_compression_gets_plain_frames(
    agent: Agent, reviewer: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    grant_refunds(agent)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")

    with (
        asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as server,
        raw_socket(server, reviewer, None) as plain,
        raw_socket(server, reviewer, CHROMIUM_OFFER) as deflated,
    ):
        assert _extensions(plain.response) == ""
        wait_until_the_server_listens(groups.agent_feed(agent.pk))
        response = httpx.post(
            f"{server}/api/v1/actions",
            json=refund(20),
            headers={"Authorization": f"Bearer {raw}"},
            timeout=WAIT,
        )
        assert response.status_code == 201, response.text
        action_id = response.json()["id"]
        [*_, (compressed, wire, text)] = plain.frames_until(action_id)
        [*_, (deflated_compressed, _wire, deflated_text)] = deflated.frames_until(action_id)

    assert not compressed and wire.decode() == text
    assert deflated_compressed and deflated_text == text  # one text, two encodings
