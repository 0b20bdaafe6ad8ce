"""The suite's own helper for servers started in subprocesses: the port it picks."""

from __future__ import annotations

import socket

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
