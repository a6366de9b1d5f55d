import socket

from infra.ports import FREE_RANGE, RESERVED, free_port


def test_free_ports_are_below_the_ephemeral_range_distinct_and_bindable():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(p in FREE_RANGE and p < ephemeral_low and p not in RESERVED for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_someone_listens_on_is_never_given(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        choices = iter([taken, taken, 20001 if taken != 20001 else 20002])
        monkeypatch.setattr("infra.ports.random.choice", lambda _: next(choices))
        monkeypatch.setattr("infra.ports._handed_out", set())
        assert free_port() in (20001, 20002)
