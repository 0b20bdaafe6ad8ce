"""Oversight's ASGI server for a test, forked from a process that has imported it already.

Most tests that need a server in another process (``servers.asgi_server``) start one
with the same environment, and importing Django and the project is most of the CPU a
server start costs (about a second, where the fork costs a hundredth). So each pytest
worker keeps one process per environment (a zygote) that imports the application once
and, when asked, forks: the child is a fresh uvicorn serving ``oversight.asgi`` on the
listening socket the test bound, with the test's own stdout and stderr, as
``python -m uvicorn`` would (the same server and options; compare ``servers.py``). The
zygote never serves, connects or starts a thread, so every child starts as a new server
does: no connection, no cache, no state of an earlier test.

The socket, stdout and stderr go to the zygote over a Unix socket (SCM_RIGHTS); it
answers with the child's pid. Children are reaped by the kernel (SIGCHLD ignored): the
test ends its server by pid.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WS_PROTOCOL = "oversight.live.websocket:SharedDeflateProtocol"  # as in the Procfile


class Server:
    """A server forked for a test: what ``asgi_server`` needs of a process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _alive(self.pid):
            self.returncode = -1  # ended (reaped by the kernel: its status is gone)
        return self.returncode

    def stop(self, timeout: float = 10) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not _alive(self.pid):
                    return
                time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Zygote:
    def __init__(self, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [sys.executable, "-m", "tests.zygote", str(theirs.fileno())]
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.control = ours
        self.lock = threading.Lock()
        if self.control.recv(16) != b"ready":
            raise RuntimeError("the server zygote did not start")

    def fork(self, listener: socket.socket) -> Server:
        fds = [listener.fileno(), 1, 2]  # the test's own (pytest captures them by fd)
        with self.lock:
            socket.send_fds(self.control, [b"fork"], fds)
            answer = self.control.recv(32)
        if not answer:
            raise RuntimeError("the server zygote ended")
        return Server(int(answer))

    def close(self) -> None:
        self.control.close()  # it reads end-of-file and exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


_zygotes: dict[tuple[tuple[str, str], ...], _Zygote] = {}  # least recently used first
_made = threading.Lock()
KEPT = 4  # zygotes a worker keeps (an environment used once would otherwise stay)


def fork_server(env: dict[str, str], listener: socket.socket) -> Server:
    """A server on ``listener`` (bound and listening) with the environment ``env``."""
    # Not what pytest sets anew for each test: one zygote serves every test of an env.
    key = tuple(sorted((k, v) for k, v in env.items() if k != "PYTEST_CURRENT_TEST"))
    with _made:
        zygote = _zygotes.pop(key, None)
        if zygote is None or zygote.process.poll() is not None:
            zygote = _Zygote(env)
        _zygotes[key] = zygote
        while len(_zygotes) > KEPT:
            _zygotes.pop(next(iter(_zygotes))).close()
    return zygote.fork(listener)


@atexit.register
def _close_all() -> None:
    for zygote in _zygotes.values():
        zygote.close()


# --- the zygote itself ------------------------------------------------------------------


def _serve_forks(control: socket.socket) -> None:
    import uvicorn

    import oversight.asgi  # Django set up: what each child would import
    import oversight.live.websocket  # noqa: F401

    assert threading.active_count() == 1, "a zygote must not have threads to fork"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    control.sendall(b"ready")
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 16, 3)
        except OSError:
            return
        if not message:
            return  # the pytest worker is gone
        listener_fd, out, err = fds
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in (out, err):
                os.close(fd)
            code = 0
            try:
                uvicorn.run(
                    "oversight.asgi:application", fd=listener_fd, ws=WS_PROTOCOL, access_log=False
                )
            except BaseException:
                code = 1
                raise
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
        control.sendall(str(pid).encode())


if __name__ == "__main__":
    _serve_forks(socket.socket(fileno=int(sys.argv[1])))
