"""MCP processes for tests (the proxy, the payments server), forked from a process that
has imported the `mcp` package already.

An MCP client starts `oversight-mcp` as its child for each session, and the proxy starts
the payments server as its own; importing `mcp` is about 0.8 s of CPU in each, where a
fork costs a hundredth. So `command(...)` gives, in place of `PROGRAM ARGS` after
`python`, a launcher (this file run as a script, in `launch` mode: the standard library
only, a few milliseconds) that hands its stdin, stdout and stderr (SCM_RIGHTS), its
arguments, environment and working directory to a zygote (this file too, in `zygote`
mode, one per pytest worker) over a Unix socket. The zygote forks: the child is the
program, run as `python PROGRAM ARGS` would run it, on the launcher's own pipes. The
launcher stands for it to its parent (the MCP client, or the proxy):

- it passes SIGTERM, SIGINT and SIGHUP on to the child;
- it exits with the child's exit status when the child ends;
- killed itself (SIGKILL cannot be passed on), the child kills itself too: it watches
  its connection to the launcher.

The zygote never runs a program, connects or starts a thread: each child starts as a new
process would, with no state of an earlier one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()
# What the programs import, loaded once in the zygote.
PRELOAD = ("oversight_sdk.mcp.cli", "mcp.server.mcpserver", "mcp.server.subscriptions")
KILLED = 128 + signal.SIGKILL  # the launcher's status when its child ended without saying


# --- the tests' side --------------------------------------------------------------------


@dataclass
class _Zygote:
    process: subprocess.Popen[bytes]
    path: str


_zygote: _Zygote | None = None
_lock = threading.Lock()


def command(program: list[str]) -> list[str]:
    """What follows `python` to run `program` (`-m MODULE ARGS` or `SCRIPT ARGS`, as it
    would follow `python`) forked from this worker's zygote."""
    return [str(HERE), "launch", _socket_path(), *program]


def _socket_path() -> str:
    global _zygote
    with _lock:
        if _zygote is None or _zygote.process.poll() is not None:
            path = os.path.join(tempfile.mkdtemp(prefix="mcp-zygote-"), "socket")
            # Its stdin is how it knows the worker is gone: end-of-file.
            process = subprocess.Popen(
                [sys.executable, str(HERE), "zygote", path], stdin=subprocess.PIPE
            )
            deadline = time.monotonic() + 60
            while not os.path.exists(path):  # bound and listening once it exists
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError("the MCP zygote did not start")
                time.sleep(0.05)
            _zygote = _Zygote(process, path)
        return _zygote.path


@atexit.register
def _stop() -> None:
    if _zygote is not None and _zygote.process.stdin is not None:
        _zygote.process.stdin.close()
        try:
            _zygote.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _zygote.process.kill()


# --- the wire: a length, then JSON --------------------------------------------------------


def _send(sock: socket.socket, message: object, fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    head = struct.pack("!I", len(body))
    if fds:
        socket.send_fds(sock, [head], fds)
    else:
        sock.sendall(head)
    sock.sendall(body)


def _receive(sock: socket.socket, *, fds: int = 0) -> tuple[object, list[int]]:
    """One message (and up to `fds` descriptors with it); None at end-of-file."""
    received: list[int] = []
    if fds:
        head, received, _flags, _address = socket.recv_fds(sock, 4, fds)
    else:
        head = sock.recv(4)
    if not head:
        return None, received
    head += _exactly(sock, 4 - len(head))
    (size,) = struct.unpack("!I", head)
    return json.loads(_exactly(sock, size)), received


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the other side closed mid-message")
        data += chunk
    return data


# --- the launcher -------------------------------------------------------------------------


def launch(path: str, program: list[str]) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    _send(sock, {"program": program, "env": dict(os.environ), "cwd": os.getcwd()}, [0, 1, 2])
    pid, _ = _receive(sock)
    if not isinstance(pid, int):
        return KILLED

    def relay(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, relay)
    # The pipes are the child's now: their ends here must not keep them open.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    status, _ = _receive(sock)  # the child's exit status; end-of-file if it was killed
    return status if isinstance(status, int) else KILLED


# --- the zygote ---------------------------------------------------------------------------


def zygote(path: str) -> None:
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    assert threading.active_count() == 1, "a zygote must not have threads to fork"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)  # there once it listens
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    events.register(sys.stdin, selectors.EVENT_READ)
    try:
        while True:
            for key, _mask in events.select():
                if key.fileobj is sys.stdin:
                    if not os.read(0, 1024):
                        return  # the pytest worker is gone
                    continue
                connection, _address = listener.accept()
                with connection:
                    request, fds = _receive(connection, fds=3)
                    if isinstance(request, dict) and len(fds) == 3 and os.fork() == 0:
                        events.close()
                        listener.close()
                        _child(connection, request, fds)  # never returns
                    for fd in fds:
                        os.close(fd)
    finally:
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


def _child(launcher: socket.socket, request: dict, fds: list[int]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _send(launcher, os.getpid())
        threading.Thread(target=_die_with, args=(launcher,), daemon=True).start()
        code = _run(request["program"])
        threading._shutdown()  # type: ignore[attr-defined]  # as Python's own exit does
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        # Everything the program held (its pipes, a listening socket) is closed before the
        # launcher is told and exits: after that, nothing of the child is left to see.
        os.closerange(0, launcher.fileno())
        os.closerange(launcher.fileno() + 1, os.sysconf("SC_OPEN_MAX"))
        try:
            _send(launcher, code)
        finally:
            os._exit(code)


def _die_with(launcher: socket.socket) -> None:
    """Killed, the launcher cannot pass it on: its end of the connection closes."""
    try:
        while launcher.recv(1024):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _run(program: list[str]) -> int:
    """`program` as `python PROGRAM` runs it; its exit status."""
    try:
        if program[0] == "-m":
            sys.path[0] = os.getcwd()
            sys.argv = [program[1], *program[2:]]
            runpy.run_module(program[1], run_name="__main__", alter_sys=True)
        else:
            sys.path[0] = os.path.dirname(os.path.abspath(program[0]))
            sys.argv = list(program)
            runpy.run_path(program[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "launch":
        sys.exit(launch(sys.argv[2], sys.argv[3:]))
    zygote(sys.argv[2])
