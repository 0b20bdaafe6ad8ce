"""The adapters' offline tests: an Oversight URL nothing listens on."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def nowhere() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens
