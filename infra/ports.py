"""Free loopback ports for the local launchers."""

import socket

from relais.common.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS

# The fixed ports of `make up`'s stack: a test stack on free ports never takes one, so both can run at once.
RESERVED = frozenset(DEFAULT_PORTS.values()) | frozenset(DEFAULT_METRICS_PORTS.values())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (never one of `make up`'s).

    The port is released before returning, so another process could take it
    in between; good enough for local runs, and launchers fail clearly if so.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RESERVED:
            return port


def port_in_use(port: int) -> bool:
    """True if something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
