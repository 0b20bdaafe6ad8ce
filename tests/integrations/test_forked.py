"""The test helper that forks MCP processes from a zygote (forked.py) stands for them as a
process of their own would: the caller's pipes, arguments, environment, working
directory, exit status and signals reach the program, and nothing of it outlives its
launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.integrations import forked
from tests.servers import free_port

PROGRAM = """
import json, os, signal, socket, sys, time
mode = sys.argv[1]
if mode == "echo":
    line = sys.stdin.readline()
    print(json.dumps({"line": line, "argv": sys.argv, "cwd": os.getcwd(),
                      "env": os.environ.get("FORKED_TEST"), "pid": os.getpid()}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    sys.exit(int(sys.argv[2]))
if mode == "term":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
if mode in ("term", "listen"):
    listener = socket.socket()
    listener.bind(("127.0.0.1", int(sys.argv[2])))
    listener.listen()
    print(os.getpid(), flush=True)
    time.sleep(60)
"""


def _start(tmp_path: Path, *args: str, **options: object) -> subprocess.Popen[str]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    return subprocess.Popen(
        [sys.executable, *forked.command([str(script), *args])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[arg-type]
    )


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_a_forked_program_has_the_callers_pipes_arguments_environment_and_status(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "here"
    cwd.mkdir()
    env = {**os.environ, "FORKED_TEST": "yes"}
    process = _start(tmp_path, "echo", "3", cwd=cwd, env=env)
    out, err = process.communicate("hello\n", timeout=30)
    said = json.loads(out)
    assert process.returncode == 3
    assert said["line"] == "hello\n"
    assert said["argv"] == [str(tmp_path / "program.py"), "echo", "3"]
    assert (said["cwd"], said["env"]) == (str(cwd), "yes")
    assert said["pid"] != process.pid  # a child of the zygote, not the launcher
    assert "to stderr" in err


def test_sigterm_reaches_the_program_and_its_socket_is_closed_when_the_launcher_exits(
    tmp_path: Path,
) -> None:
    port = free_port()
    process = _start(tmp_path, "term", str(port))
    assert process.stdout is not None
    pid = int(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 7  # the program's own handler's status
    with socket.socket() as again:  # nothing of the program holds the port any more
        again.bind(("127.0.0.1", port))
    assert _gone(pid)


def test_a_killed_launcher_takes_its_program_with_it(tmp_path: Path) -> None:
    process = _start(tmp_path, "listen", str(free_port()))
    assert process.stdout is not None
    pid = int(process.stdout.readline())
    process.kill()
    process.wait(timeout=10)
    assert _gone(pid), "the program outlived its launcher"
