"""Free loopback ports for the local launchers."""

import random
import socket

from relais.common.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS

# The fixed ports of `make up`'s stack: a test stack on free ports never takes one, so both can run at once.
RESERVED = frozenset(DEFAULT_PORTS.values()) | frozenset(DEFAULT_METRICS_PORTS.values())
# Below Linux's ephemeral range (32768-60999): a port handed out here is never the local end of an outgoing
# connection in the meantime. A port the kernel picks (bind to 0) is in that range, and a Kafka or database client
# took one between free_port() and the service's own bind ("Address already in use" in CI).
FREE_RANGE = range(20000, 32000)
_handed_out: set[int] = set()  # not given twice by this process, even before anyone binds it


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (never one of `make up`'s, never one given before).

    The port is released before returning, so another process could take it
    in between; good enough for local runs, and launchers fail clearly if so.
    """
    while True:
        port = random.choice(FREE_RANGE)
        if port in RESERVED or port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def port_in_use(port: int) -> bool:
    """True if something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
