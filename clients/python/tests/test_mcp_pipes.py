"""oversight-mcp's own stdio: lines read and written on the event loop over pipes, a stray
print kept off the wire, and the package's stdio kept for anything that is not a pipe."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sdk_extras

pytest.importorskip("mcp", reason=sdk_extras.reason("mcp"))

# Echoes each line back upper-cased through native_stdio; a print() while serving must go
# to stderr, not onto the wire; says on stderr which stdio it had.
ECHO = textwrap.dedent(
    """
    import asyncio, sys
    from oversight_sdk.mcp.pipes import native_stdio

    async def main():
        async with native_stdio() as own:
            if own is None:
                print("package stdio", file=sys.stderr)
                return
            lines, out = own
            print("a stray print")
            async for line in lines:
                await out.write(line.upper())
                await out.flush()
        print("after: fd 1 is the wire again")

    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    """
)
# oversight-mcp runs on uvloop where it is installed, else on asyncio's own loop.
LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def _run(loop: str = "asyncio", **how: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-c", ECHO, loop],
        **how,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


@pytest.mark.parametrize("loop", LOOPS)
def test_over_pipes_each_line_is_answered_and_a_stray_print_misses_the_wire(loop: str) -> None:
    big = "x" * 300_000  # past asyncio's default line limit of 64 KiB
    process = _run(loop, input=f'{{"jsonrpc": "2.0"}}\n{big}\nlast\n')
    wire = f'{{"JSONRPC": "2.0"}}\n{big.upper()}\nLAST\n'
    assert process.stdout == wire + "after: fd 1 is the wire again\n"
    assert "a stray print" in process.stderr
    assert "package stdio" not in process.stderr


@pytest.mark.parametrize("loop", LOOPS)
def test_a_file_on_stdin_keeps_the_packages_stdio(loop: str, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text("{}\n")
    with requests.open() as stdin:
        process = _run(loop, stdin=stdin)
    assert "package stdio" in process.stderr
