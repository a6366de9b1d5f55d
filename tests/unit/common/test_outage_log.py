"""An outage's repeated error lines are written once, then at 1, 2, 4... minutes (relais.common.runtime.OutageFilter)."""

import logging

from aiokafka.errors import KafkaConnectionError

from relais.common import runtime


def record(name: str, msg: str, *args, level=logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_an_outage_is_logged_once_then_at_doubling_intervals(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    outages = runtime.OutageFilter()
    written = []
    for second in range(0, 8 * 60 + 1):  # ~75 aiokafka lines a second for 8 minutes
        now[0] = 1000.0 + second
        for _ in range(75):
            line = record("aiokafka", "Unable connect to node with id %s: %s", 1, "refused")
            if outages.filter(line):
                written.append((second, line.getMessage()))
    assert [second for second, _ in written] == [0, 60, 120, 240, 480]
    assert written[1][1].startswith("still failing after 60 s (4499 similar lines not logged): Unable connect")
    # Our own loop's line about a Kafka error is the same outage; a defect's line is never held back.
    assert not outages.filter(
        record(
            "relais.common.bus",
            "transient failure on %s@%d, retrying: %r",
            "t",
            1,
            KafkaConnectionError(),
            level=logging.WARNING,
        )
    )
    assert outages.filter(record("relais.common.bus", "unprocessable record %s@%d", "t", 1))
    assert outages.filter(record("aiokafka", "debug detail", level=logging.INFO))


def test_a_new_outage_is_logged_again(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    outages = runtime.OutageFilter()
    line = lambda: record("relais.routing.service", "routing tick failed: %r", ConnectionRefusedError(111, "refused"))  # noqa: E731
    assert outages.filter(line())
    now[0] = 5
    assert not outages.filter(line())
    outages.reset("database")  # the watchdog saw the database come back
    now[0] = 6
    assert outages.filter(line())
    now[0] = 6 + outages.QUIET + 1  # or a minute without such a line
    assert outages.filter(line())
    # A blip is over once its lines stopped for the watchdog's period, not while they still come.
    outages.reset("database", quiet_for=2)
    assert not outages.filter(line())
    now[0] += 3
    outages.reset("database", quiet_for=2)
    assert outages.filter(line())
