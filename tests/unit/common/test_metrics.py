"""relais.common.metrics without servers: settings, what a unit of work counts, lag, routing's snapshot, the text a
scrape gets, the HTTP endpoint, and an OTLP export to an in-process receiver."""

import socket
import threading
import urllib.request
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field
from typing import NamedTuple

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from relais.common import metrics
from relais.common.config import DEFAULT_METRICS_PORTS, ConfigError, check_environment


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int


@dataclass
class Unit:
    duplicates: dict = field(default_factory=dict)
    dead: list = field(default_factory=list)
    tally: Counter = field(default_factory=Counter)


# --- settings ---


def test_metrics_addr_defaults_to_the_services_port_and_accepts_off_and_any_port():
    assert metrics.metrics_addr("intake", {}) == ("127.0.0.1:19151", False)
    assert DEFAULT_METRICS_PORTS["routing-standby"] == 19164 and DEFAULT_METRICS_PORTS["gateway"] == 19180
    assert metrics.metrics_addr("bot", {"RELAIS_METRICS_ADDR": "off"}) == (None, True)
    assert metrics.metrics_addr("bot", {"RELAIS_METRICS_ADDR": "OFF"}) == (None, True)
    assert metrics.metrics_addr("bot", {"RELAIS_METRICS_ADDR": "0.0.0.0:9464"}) == ("0.0.0.0:9464", True)
    assert metrics.metrics_addr("bot", {"RELAIS_METRICS_ADDR": "127.0.0.1:0"}) == ("127.0.0.1:0", True)


@pytest.mark.parametrize("bad", ["9464", "localhost", "127.0.0.1:99999", "on", "http://127.0.0.1:9464"])
def test_a_bad_metrics_addr_stops_the_start_naming_the_variable(bad):
    with pytest.raises(ConfigError, match="RELAIS_METRICS_ADDR: expected host:port"):
        check_environment({"RELAIS_METRICS_ADDR": bad})


def test_otlp_export_follows_the_standard_variables():
    assert not metrics.otlp_enabled({})
    assert metrics.otlp_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert metrics.otlp_enabled({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4317"})
    assert not metrics.otlp_enabled(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_METRICS_EXPORTER": "none"}
    )


# --- what is counted ---


def test_a_units_records_are_ok_duplicate_or_dead_letter_per_topic():
    records = [Rec("turns", 0, 1), Rec("turns", 0, 2), Rec("turns", 1, 7), Rec("events", 0, 3)]
    assert metrics.topic_results(records, {"turns": 1}, ["events"]) == {
        ("turns", "ok"): 2,
        ("turns", "duplicate"): 1,
        ("events", "dead_letter"): 1,
    }
    assert metrics.topic_results([], {}, []) == {}


def test_lag_is_the_highwater_past_the_position_for_partitions_with_both():
    a, b, c = TP("t", 0), TP("t", 1), TP("t", 2)
    assert metrics.lags({a: 10, b: 5}, {a: 25, b: 5, c: 9}) == {a: 15, b: 0}
    assert metrics.lags({a: 10}, {a: None}) == {}


def test_a_partition_counts_from_its_first_record_polled_then_from_what_was_processed():
    loop = metrics.LoopMetrics("bot", "relais-bot", consumer=None)
    tp = TP("t", 0)
    loop.polled({tp: [Rec("t", 0, 40), Rec("t", 0, 41)]})
    assert loop.positions == {tp: 40}
    loop.polled({tp: [Rec("t", 0, 42)]})  # still handling the first: the position moves once processed
    assert loop.positions == {tp: 40}
    loop.positions.update({tp: 43})
    loop.revoked([tp])
    assert loop.positions == {}


def test_agents_by_state_shows_every_state_at_zero_too():
    assert metrics.agents_by_state({"busy": 2, "training": 1}) == {
        "available": 0,
        "busy": 2,
        "wrap_up": 0,
        "break": 0,
        "offline": 0,
        "training": 1,
    }


def test_a_stale_routing_snapshot_is_not_shown():
    metrics.routing_snapshot([metrics.QueueNow("fr", "", 3, 12.5)], {"available": 1}, now=100.0)
    assert metrics.current_routing(now=101.0) == ((metrics.QueueNow("fr", "", 3, 12.5),), {"available": 1})
    assert metrics.current_routing(now=100.0 + metrics.SNAPSHOT_MAX_AGE + 1) is None


# --- what a scrape gets ---


@pytest.fixture
def bound():
    provider = metrics.make_provider("test", prometheus=True, environ={})
    metrics.bind(provider.get_meter("relais"))
    yield provider
    metrics.unbind()
    provider.shutdown()


def samples(name: str) -> dict[tuple, float]:
    """{(labels without the OTel scope's, sorted): value} of one series in the default registry's text."""
    text = generate_latest(REGISTRY).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if not k.startswith("otel_scope")))
                found[labels] = sample.value
    return found


class Consumer:
    """What LoopMetrics reads of an aiokafka consumer."""

    def __init__(self, highwaters):
        self.highwaters = highwaters

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, tp):
        return self.highwaters[tp]


def test_a_scrape_shows_the_units_counts_histograms_and_lag(bound):
    tp = TP("relais.turns.v1", 0)
    loop = metrics.watch_loop("bot", "relais-bot", Consumer({tp: 120}))
    assert loop is not None  # metrics on (the bound fixture)
    try:
        unit = Unit(duplicates={"relais.turns.v1": 1}, dead=["relais.turns.v1"])
        unit.tally[metrics.HANDOFFS, "customer_request"] += 2
        unit.tally[metrics.BOT_ANSWERS, "opening_hours"] += 1
        records = [Rec("relais.turns.v1", 0, n) for n in range(100, 105)]
        loop.polled({tp: records})
        loop.handled(0.004)
        loop.done(records, unit, {tp: 105})
        metrics.OFFERS.add(1, "accepted")
        assert samples("relais_records_processed_total") == {
            (("result", "ok"), ("service", "bot"), ("topic", "relais.turns.v1")): 3,
            (("result", "duplicate"), ("service", "bot"), ("topic", "relais.turns.v1")): 1,
            (("result", "dead_letter"), ("service", "bot"), ("topic", "relais.turns.v1")): 1,
        }
        assert samples("relais_dead_letters_total") == {(("service", "bot"),): 1}
        assert samples("relais_handoffs_total") == {(("reason", "customer_request"),): 2}
        assert samples("relais_bot_answers_total") == {(("intent", "opening_hours"),): 1}
        assert samples("relais_offers_total") == {(("result", "accepted"),): 1}
        assert samples("relais_batch_records_sum") == {(("service", "bot"),): 5}
        assert samples("relais_handler_duration_seconds_count") == {(("service", "bot"),): 1}
        assert samples("relais_consumer_lag_records") == {
            (("group", "relais-bot"), ("partition", "0"), ("topic", "relais.turns.v1")): 15
        }
    finally:
        metrics.unwatch(loop)
    assert samples("relais_consumer_lag_records") == {}


def test_a_scrape_shows_routings_queues_and_agents(bound):
    metrics.routing_snapshot([metrics.QueueNow("fr", "any", 4, 42.5)], {"available": 2, "busy": 1})
    assert samples("relais_queue_waiting_tasks") == {(("language", "fr"), ("queue", "any")): 4}
    assert samples("relais_queue_oldest_wait_seconds") == {(("language", "fr"), ("queue", "any")): 42.5}
    agents = samples("relais_agents")
    assert agents[(("state", "available"),)] == 2 and agents[(("state", "offline"),)] == 0


def test_nothing_is_recorded_while_unbound():
    metrics.HANDOFFS.add(3, "anger")  # no instrument: a no-op, not an error
    assert metrics.watch_loop("bot", "relais-bot", Consumer({})) is None


# --- the endpoint ---


def test_the_endpoint_serves_the_process_series_on_a_free_port():
    server = metrics._serve("127.0.0.1:0", explicit=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
            assert f"\n{name} " in text
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_in_use_fails_when_set_and_falls_back_when_defaulted():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"RELAIS_METRICS_ADDR: cannot listen on 127.0.0.1:{port}"):
            metrics._serve(f"127.0.0.1:{port}", explicit=True)
        server = metrics._serve(f"127.0.0.1:{port}", explicit=False)
        try:
            assert server.server_port not in (0, port)
        finally:
            server.shutdown()
            server.server_close()


# --- OTLP ---


class MetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self):
        self.names: set[str] = set()
        self.received = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request, context):
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                self.names |= {m.name for m in scope.metrics}
        self.received.set()
        return metrics_service_pb2.ExportMetricsServiceResponse()


def test_metrics_are_exported_over_otlp_to_the_standard_endpoint(monkeypatch):
    receiver = MetricsReceiver()
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    provider = metrics.make_provider("test", prometheus=False, environ=environ)
    try:
        metrics.bind(provider.get_meter("relais"))
        metrics.HANDOFFS.add(1, "anger")
        assert provider.force_flush(10_000)
        assert receiver.received.wait(10)
        assert "relais_handoffs" in receiver.names
    finally:
        metrics.unbind()
        provider.shutdown()
        receiver.server.stop(0)


def test_no_provider_without_an_endpoint_or_a_reader():
    assert metrics.make_provider("test", prometheus=False, environ={}) is None
