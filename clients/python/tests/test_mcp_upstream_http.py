"""The proxy's HTTP transport to its upstream (upstream.py, `_NotSentAnswered`): a
JSON-RPC request it could not send (nothing listens) is answered as not sent, and only
its own answer counts as one."""

from __future__ import annotations

import json
import socket

import anyio
import pytest
import sdk_extras

pytest.importorskip("mcp", reason=sdk_extras.reason("mcp"))

import httpx2
from mcp.shared.exceptions import MCPError

from oversight_sdk.mcp import upstream


def _closed_port() -> int:
    """A port nothing listens on (bound, then closed: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _send(method: str, body: object | None) -> httpx2.Response:
    async def run() -> httpx2.Response:
        transport = upstream._NotSentAnswered(httpx2.AsyncHTTPTransport())
        async with httpx2.AsyncClient(transport=transport) as http:
            url = f"http://127.0.0.1:{_closed_port()}/mcp"
            content = None if body is None else json.dumps(body).encode()
            return await http.request(method, url, content=content)

    return anyio.run(run)


def test_a_request_that_could_not_be_sent_is_answered_as_not_sent() -> None:
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "refund"}}
    response = _send("POST", call)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["id"] == 7 and answer["error"]["code"] == upstream.NOT_SENT_CODE
    error = answer["error"]
    assert upstream._not_sent(MCPError(error["code"], error["message"], error["data"]))


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"jsonrpc": "2.0", "method": "notifications/cancelled"}),  # no answer due
        ("POST", {"jsonrpc": "2.0", "id": 3, "result": {}}),  # a response, not a request
        ("POST", [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),  # a batch
        ("GET", None),  # the listening stream
    ],
)
def test_anything_else_that_could_not_be_sent_fails_as_it_did(
    method: str, body: object | None
) -> None:
    with pytest.raises(httpx2.ConnectError):
        _send(method, body)


def test_an_upstreams_own_error_is_not_taken_for_not_sent() -> None:
    """An upstream that answers with the same code and marker (having run the call, say)
    does not make the proxy report it as not run: the marker's value is the process's."""
    for data in ({upstream.NOT_SENT_MARK: True}, {upstream.NOT_SENT_MARK: "guess"}, None):
        assert not upstream._not_sent(MCPError(upstream.NOT_SENT_CODE, "no", data))
