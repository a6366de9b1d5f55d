"""OpenTelemetry metrics for every service (docs/operations.md, "Metrics"): scraped in Prometheus text format at
http://RELAIS_METRICS_ADDR/metrics, and exported over OTLP when the standard OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT is
set (OTEL_METRICS_EXPORTER=none: not; OTEL_METRIC_EXPORT_INTERVAL, as the SDK reads it).

Cost: what the data path records is counted per unit of work (a poll's records), not per record, into instruments
bound once at `setup`; with RELAIS_METRICS_ADDR=off and no OTLP endpoint nothing is bound and nothing is recorded.
Gauges (consumer lag, routing's queues and agents) are read when scraped, on the HTTP server's thread, from what the
event loop already keeps: never a query nor an await there.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from relais.common.config import DEFAULT_METRICS_PORTS, ConfigError, setting

log = logging.getLogger(__name__)

# Histogram buckets: a unit's handler and transaction take from a millisecond to seconds (a slow database), and a
# poll brings up to 500 records.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
SNAPSHOT_MAX_AGE = 10.0  # seconds: a routing snapshot older than this (no longer active, ticker stuck) is not shown
AGENT_STATES = ("available", "busy", "wrap_up", "break", "offline")  # always shown, at 0 when nobody is in one


# --- settings (pure) ---


def metrics_addr(service: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, bool]:
    """(host:port to serve /metrics on, or None for off; whether it was set explicitly). Unset: loopback on the
    service's default metrics port (config.DEFAULT_METRICS_PORTS), or any free port for a process without one."""
    addr = setting("RELAIS_METRICS_ADDR", "", environ)
    if addr is None:
        return None, True
    if addr:
        return addr, True
    return f"127.0.0.1:{DEFAULT_METRICS_PORTS.get(service, 0)}", False


def otlp_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether metrics go out over OTLP too: an endpoint is set and OTEL_METRICS_EXPORTER is not none."""
    environ = os.environ if environ is None else environ
    endpoint = environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
    exporters = {e.strip().lower() for e in (environ.get("OTEL_METRICS_EXPORTER") or "otlp").split(",")}
    return bool(endpoint.strip()) and "none" not in exporters


def split_addr(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


# --- instruments: module-level, bound to the meter at setup (until then, and with metrics off, they do nothing) ---


class Counter:
    """A counter kept as plain totals per label values, `add(n, value, ...)` (a dict update: the SDK's own counter
    costs ~5 µs an add), handed to the SDK as an observable counter when collected."""

    def __init__(self, name: str, description: str, *labels: str):
        self.name, self.description, self.labels = name, description, labels
        self.bound = False
        self.totals: dict[tuple[str, ...], int] = {}

    def bind(self, meter: Meter) -> None:
        meter.create_observable_counter(self.name, callbacks=[self.observe], description=self.description)
        self.bound = True

    def add(self, n: int, *values: str) -> None:
        if self.bound and n:
            self.totals[values] = self.totals.get(values, 0) + n

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        for values, n in list(self.totals.items()):  # copied at once: the event loop adds meanwhile
            yield Observation(n, dict(zip(self.labels, values)))


RECORDS_PROCESSED = Counter(
    "relais_records_processed", "Records consumed, by service, topic and result", "service", "topic", "result"
)
DEAD_LETTERS = Counter("relais_dead_letters", "Records sent to the dead-letter topic", "service")
HANDOFFS = Counter("relais_handoffs", "Conversations the bot handed to a person, by primary reason", "reason")
BOT_ANSWERS = Counter("relais_bot_answers", "Requests the bot answered itself (resolved), by intent", "intent")
OFFERS = Counter("relais_offers", "Offers to agents by result: accepted, rejected, timeout", "result")
_COUNTERS = (RECORDS_PROCESSED, DEAD_LETTERS, HANDOFFS, BOT_ANSWERS, OFFERS)
_histograms: dict[str, Histogram] = {}  # name -> instrument, once bound

_provider = None
_server = None


def enabled() -> bool:
    return _provider is not None


def tally(counts: Tally) -> None:
    """Adds a unit's business counts: {(Counter, label value): n}."""
    for (counter, value), n in counts.items():
        counter.add(n, value)


# --- the consume loop's series ---


def topic_results(records: Sequence, duplicates: Mapping[str, int], dead: Sequence[str]) -> dict[tuple[str, str], int]:
    """{(topic, result): n} for a unit's records: those `first_time` found processed already are duplicates, those
    dead-lettered (their topics, one each) dead_letter, the others ok."""
    read = Tally(r.topic for r in records)
    results: dict[tuple[str, str], int] = {}
    dead_by_topic = Tally(dead)
    for topic, n in read.items():
        duplicate, dead_letter = duplicates.get(topic, 0), dead_by_topic.get(topic, 0)
        for result, count in (
            ("ok", n - duplicate - dead_letter),
            ("duplicate", duplicate),
            ("dead_letter", dead_letter),
        ):
            if count > 0:
                results[(topic, result)] = count
    return results


def lags(positions: Mapping, highwaters: Mapping) -> dict:
    """Per partition: how many records were written past what this process processed (highwater minus position),
    for the partitions with both known."""
    return {
        tp: max(0, highwater - positions[tp])
        for tp, highwater in highwaters.items()
        if highwater is not None and tp in positions
    }


@dataclass(eq=False)
class LoopMetrics:
    """What one consume loop (unit_of_work.consume_batches) records: per unit, and its consumer's lag when scraped."""

    service: str
    group: str
    consumer: Any  # the AIOKafkaConsumer, read (never awaited) on the scrape thread
    positions: dict = field(default_factory=dict)  # TopicPartition -> next offset to process

    def __post_init__(self):
        self.service_attributes = {"service": self.service}

    def polled(self, polled: Mapping) -> None:
        """A partition first read here starts at its first record polled (the lag counts from there)."""
        for tp, records in polled.items():
            if tp not in self.positions and records:
                self.positions[tp] = records[0].offset

    def revoked(self, partitions: Iterable) -> None:
        for tp in partitions:
            self.positions.pop(tp, None)

    def handled(self, seconds: float) -> None:
        histogram = _histograms.get("relais_handler_duration")
        if histogram is not None:
            histogram.record(seconds, self.service_attributes)

    def done(self, records: Sequence, unit, offsets: Mapping) -> None:
        """A unit's records were handled and their outputs acknowledged; `offsets`: the next offset of each partition."""
        histogram = _histograms.get("relais_batch_records")
        if histogram is not None:
            histogram.record(len(records), self.service_attributes)
        for (topic, result), n in topic_results(records, unit.duplicates, unit.dead).items():
            RECORDS_PROCESSED.add(n, self.service, topic, result)
        if unit.dead:
            DEAD_LETTERS.add(len(unit.dead), self.service)
        if unit.tally:
            tally(unit.tally)
        self.positions.update(offsets)

    def observe_lag(self) -> list[Observation]:
        consumer = self.consumer
        try:
            assigned = consumer.assignment()
            highwaters = {tp: consumer.highwater(tp) for tp in assigned}
        except Exception:  # the assignment changed while read from this thread: the next scrape has it
            return []
        return [
            Observation(lag, {"group": self.group, "topic": tp.topic, "partition": str(tp.partition)})
            for tp, lag in lags(dict(self.positions), highwaters).items()
        ]


_loops: list[LoopMetrics] = []


def watch_loop(service: str, group: str, consumer) -> LoopMetrics | None:
    """The metrics of a consume loop, until `unwatch`; None when metrics are off."""
    if not RECORDS_PROCESSED.bound:
        return None
    loop = LoopMetrics(service, group, consumer)
    _loops.append(loop)
    return loop


def unwatch(loop: LoopMetrics | None) -> None:
    if loop in _loops:
        _loops.remove(loop)


def _observe_lag(options: CallbackOptions) -> Iterable[Observation]:
    for loop in list(_loops):
        yield from loop.observe_lag()


# --- routing's queues and agents: a snapshot its ticker refreshes ---


@dataclass(frozen=True)
class QueueNow:
    language: str
    queue: str  # "" for the language's own queue; the skill queue (or "any") a task overflowed to
    waiting: int
    oldest_wait_seconds: float


_routing: tuple[float, tuple[QueueNow, ...], dict[str, int]] | None = None


def routing_snapshot(queues: Iterable[QueueNow], agents: Mapping[str, int], now: float | None = None) -> None:
    """What routing's active process sees now (its ticker, about once a second)."""
    global _routing
    _routing = (time.monotonic() if now is None else now, tuple(queues), dict(agents))


def current_routing(now: float | None = None) -> tuple[tuple[QueueNow, ...], dict[str, int]] | None:
    """The snapshot if recent enough; None when there is none or it is stale (a standby, a stuck ticker)."""
    snapshot = _routing
    now = time.monotonic() if now is None else now
    if snapshot is None or now - snapshot[0] > SNAPSHOT_MAX_AGE:
        return None
    return snapshot[1], snapshot[2]


def agents_by_state(counts: Mapping[str, int]) -> dict[str, int]:
    """Every known state (0 when nobody is in it), then any other the database holds."""
    return {state: int(counts.get(state, 0)) for state in AGENT_STATES} | {
        state: int(n) for state, n in counts.items() if state not in AGENT_STATES
    }


def _observe_queue(attribute: str):
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        snapshot = current_routing()
        for queue in snapshot[0] if snapshot else ():
            yield Observation(getattr(queue, attribute), {"language": queue.language, "queue": queue.queue})

    return observe


def _observe_agents(options: CallbackOptions) -> Iterable[Observation]:
    snapshot = current_routing()
    for state, n in agents_by_state(snapshot[1]).items() if snapshot else ():
        yield Observation(n, {"state": state})


# --- the provider and the endpoint ---


def make_provider(service: str, prometheus: bool, environ: Mapping[str, str] | None = None):
    """A MeterProvider with the Prometheus reader (`prometheus`) and, when configured, the OTLP one; None without
    either."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    environ = os.environ if environ is None else environ
    readers: list[Any] = []
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    if otlp_enabled(environ):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if not readers:
        return None
    name = environ.get("OTEL_SERVICE_NAME") or f"relais-{service}"
    return MeterProvider(metric_readers=readers, resource=Resource.create({"service.name": name}))


def bind(meter: Meter) -> None:
    """Creates every relais instrument on `meter`."""
    for counter in _COUNTERS:
        counter.bind(meter)
    _histograms["relais_handler_duration"] = meter.create_histogram(
        "relais_handler_duration",
        unit="s",
        description="Time to handle a unit of work (a poll's records): handler and transaction",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )
    _histograms["relais_batch_records"] = meter.create_histogram(
        "relais_batch_records",
        description="Records per unit of work",
        explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
    )
    meter.create_observable_gauge(
        "relais_consumer_lag_records",
        callbacks=[_observe_lag],
        description="Records written to a partition and not processed yet by this process's consumer group",
    )
    meter.create_observable_gauge(
        "relais_queue_waiting_tasks",
        callbacks=[_observe_queue("waiting")],
        description="Customers waiting for an agent (queued, callbacks due), by language and queue",
    )
    meter.create_observable_gauge(
        "relais_queue_oldest_wait",
        unit="s",
        callbacks=[_observe_queue("oldest_wait_seconds")],
        description="How long the longest-waiting customer has waited, by language and queue",
    )
    meter.create_observable_gauge(
        "relais_agents", callbacks=[_observe_agents], description="Agents by state (routing's active process)"
    )


def unbind() -> None:
    """Back to recording nothing (after shutdown, between tests)."""
    for counter in _COUNTERS:
        counter.bound = False
        counter.totals.clear()
    _histograms.clear()


def setup(service: str) -> bool:
    """Once per process (runtime.serve): the meter provider and the /metrics endpoint. False when metrics are off.
    ConfigError when RELAIS_METRICS_ADDR was set and cannot be listened on."""
    global _provider, _server
    if _provider is not None:
        return True
    addr, explicit = metrics_addr(service)
    provider = make_provider(service, prometheus=addr is not None)
    if provider is None:
        return False
    if addr is not None:
        _server = _serve(addr, explicit)
    _provider = provider
    bind(provider.get_meter("relais"))
    return True


def _serve(addr: str, explicit: bool):
    """Prometheus' own small threaded HTTP server for the default registry (our reader and the process_* series)."""
    from prometheus_client import start_http_server

    host, port = split_addr(addr)
    try:
        server, _ = start_http_server(port, host)
    except OSError as error:
        if explicit or error.errno != errno.EADDRINUSE:
            raise ConfigError(f"RELAIS_METRICS_ADDR: cannot listen on {addr}: {error.strerror}") from None
        # The default port is another process's (a second one of this service started by hand): any free one.
        server, _ = start_http_server(0, host)
        log.warning("metrics port %d in use: serving /metrics on %s:%d", port, host, server.server_port)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server


def port() -> int | None:
    """The /metrics port this process listens on (None: off)."""
    return _server.server_port if _server is not None else None


def shutdown() -> None:
    """The last OTLP export; the endpoint's daemon thread ends with the process (stopping it waits for its poll)."""
    global _provider
    if _provider is not None:
        unbind()
        _provider.shutdown(timeout_millis=5000)
        _provider = None
