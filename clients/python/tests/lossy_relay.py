"""An HTTP relay in front of a live Oversight that delivers every request but loses the
answers to some of them: the server has decided, the client never hears it (a connection
reset on the way back). For what a client does when an answer is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _Relay(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str, method: str, path_ending: str, times: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = target.rstrip("/")
        self.method, self.path_ending, self.times = method, path_ending, times
        self.lost = 0
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=30)

    def loses(self, method: str, path: str) -> bool:
        """Whether this answer is lost (counted)."""
        if method != self.method or not path.split("?")[0].endswith(self.path_ending):
            return False
        with self.lock:
            if self.lost >= self.times:
                return False
            self.lost += 1
            return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's transport expects
    server: _Relay

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        response = self.server.client.request(
            self.command, self.server.target + self.path, content=body, headers=headers
        )
        if self.server.loses(self.command, self.path):
            self.close_connection = True  # decided, and the answer never leaves
            return
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = do_POST = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def losing_answers(
    target: str, *, method: str = "POST", path_ending: str = "/actions", times: int = 1
) -> Iterator[_Relay]:
    """A relay to `target` that loses the answers to the first `times` requests of
    `method` to a path ending in `path_ending`; its URL is `relay_url(relay)`."""
    relay = _Relay(target, method, path_ending, times)
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        relay.shutdown()
        relay.server_close()
        relay.client.close()


def relay_url(relay: _Relay) -> str:
    host, port = relay.server_address[:2]
    return f"http://{host}:{port}"
