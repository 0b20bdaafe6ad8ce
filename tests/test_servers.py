"""The suite's own helpers for servers started in other processes: the port a test
picks, and the zygote servers are forked from."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.servers import _ephemeral_low, free_port


def test_a_port_in_use_as_an_outgoing_connections_source_cannot_be_listened_on() -> None:
    """Why `free_port` keeps out of the ephemeral range: a client's source port blocks a
    server's bind even with SO_REUSEADDR (the proxy's "Address already in use")."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        source_port = client.getsockname()[1]
        try:
            assert source_port >= _ephemeral_low()
            with socket.socket() as server:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    server.bind(("127.0.0.1", source_port))
                except OSError as exc:
                    assert "in use" in str(exc)
                else:
                    raise AssertionError("bound a port an open connection uses")
        finally:
            client.close()


def test_free_ports_are_below_the_ephemeral_range_and_free() -> None:
    low = _ephemeral_low()
    ports = {free_port() for _ in range(50)}
    assert all(20000 <= port < low for port in ports)
    assert len(ports) > 40  # chosen at random, not one after another from the same place
    for port in ports:
        with socket.create_server(("127.0.0.1", port)):
            pass


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_servers_of_one_environment_are_forked_fresh_from_one_zygote(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Each server is a process of its own, forked from the zygote of its environment,
    which is made once and serves nothing itself; a server writes to the test's own
    output, and is gone once stopped."""
    from tests import zygote
    from tests.servers import _project_env, _wait_until_healthy

    env = _project_env({"ALLOWED_HOSTS": "127.0.0.1", "TEST_ZYGOTE": "1"})
    servers = []
    for _ in range(2):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            servers.append(zygote.fork_server(env, listener))
            port = listener.getsockname()[1]
        _wait_until_healthy(f"http://127.0.0.1:{port}", servers[-1])
    made = [z for key, z in zygote._zygotes.items() if ("TEST_ZYGOTE", "1") in key]
    assert len(made) == 1
    assert {_parent_of(server.pid) for server in servers} == {made[0].process.pid}
    assert servers[0].pid != servers[1].pid
    for server in servers:
        server.stop()
        assert server.poll() is not None
    assert "Application startup complete" in capfd.readouterr().err
