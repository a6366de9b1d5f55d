"""The Connect protocol's pure parts: the route table from the descriptors, framing, codecs, error mapping."""

import json
import re
from pathlib import Path

import grpc
import pytest

from relais.common.pb import analytics_pb2, live_pb2
from relais.gateway import connect
from relais.gateway.connect import ConnectError, Route, route_table
from relais.gateway.service import UPSTREAM_OF

PROTO_DIR = Path(__file__).resolve().parents[3] / "proto" / "relais" / "v1"


def declared_methods() -> set[str]:
    """Every `rpc` of every service in proto/, read from the .proto text (not from the generated code)."""
    paths = set()
    for proto in PROTO_DIR.glob("*.proto"):
        text = re.sub(r"//[^\n]*", "", proto.read_text())
        declared = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        assert declared is not None, f"{proto.name} declares no package"
        package = declared.group(1)
        for service, body in re.findall(r"service\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
            for method in re.findall(r"\brpc\s+(\w+)\s*\(", body):
                paths.add(f"/{package}.{service}/{method}")
    return paths


def test_the_route_table_serves_every_method_declared_in_proto():
    routes = route_table()
    declared = declared_methods()
    assert "/relais.v1.Analytics/GetKpis" in declared and "/relais.v1.AgentDesk/Subscribe" in declared
    assert set(routes) == declared


def test_every_service_of_the_descriptors_has_an_upstream():
    services = {route.service for route in route_table().values()}
    assert services - set(UPSTREAM_OF) == set()


def test_streaming_kinds_and_messages_come_from_the_descriptors():
    routes = route_table()
    watch = routes["/relais.v1.LiveView/Watch"]
    assert watch.server_streaming and not watch.client_streaming
    assert watch.request is live_pb2.WatchRequest and watch.response is live_pb2.LiveSnapshot
    assert routes["/relais.v1.AgentDesk/Subscribe"].server_streaming
    kpis = routes["/relais.v1.Analytics/GetKpis"]
    assert not kpis.server_streaming and kpis.response is analytics_pb2.KpiReply


def test_every_grpc_code_but_ok_has_a_connect_code_and_status():
    assert set(connect.CODES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    expected = {
        grpc.StatusCode.UNAUTHENTICATED: ("unauthenticated", 401),
        grpc.StatusCode.PERMISSION_DENIED: ("permission_denied", 403),
        grpc.StatusCode.NOT_FOUND: ("not_found", 404),
        grpc.StatusCode.INVALID_ARGUMENT: ("invalid_argument", 400),
        grpc.StatusCode.UNAVAILABLE: ("unavailable", 503),
        grpc.StatusCode.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
        grpc.StatusCode.UNIMPLEMENTED: ("unimplemented", 501),
        grpc.StatusCode.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
        grpc.StatusCode.CANCELLED: ("canceled", 499),
    }
    for code, pair in expected.items():
        assert connect.CODES[code] == pair


def test_a_connect_error_body_and_status():
    error = ConnectError(grpc.StatusCode.UNAUTHENTICATED, "needs a token")
    response = error.response()
    assert response.status == 401 and isinstance(response.body, bytes)
    assert json.loads(response.body) == {"code": "unauthenticated", "message": "needs a token"}
    assert ConnectError(grpc.StatusCode.UNIMPLEMENTED, "no such procedure", status=404).status == 404


def test_envelopes_round_trip_and_malformed_ones_are_refused():
    data = connect.envelope(b'{"a":1}') + connect.envelope(b"", connect.FLAG_END_STREAM)
    assert data[:5] == b"\x00\x00\x00\x00\x07"
    assert connect.unframe(data) == [(0, b'{"a":1}'), (2, b"")]
    with pytest.raises(ValueError, match="header is 5 bytes"):
        connect.unframe(b"\x00\x00\x00")
    with pytest.raises(ValueError, match="announces 9 bytes, 2 follow"):
        connect.unframe(b"\x00\x00\x00\x00\x09{}")


def test_the_end_of_stream_envelope_carries_the_error_or_nothing():
    flags, payload = connect.unframe(connect.end_of_stream())[0]
    assert flags == connect.FLAG_END_STREAM and json.loads(payload) == {}
    error = ConnectError(grpc.StatusCode.UNAVAILABLE, "standby")
    flags, payload = connect.unframe(connect.end_of_stream(error, [("x-where", "b"), ("grpc-status", "14")]))[0]
    assert json.loads(payload) == {
        "error": {"code": "unavailable", "message": "standby"},
        "metadata": {"x-where": ["b"]},
    }


def test_json_requests_take_camel_case_and_original_names_and_answers_use_json_names():
    by_json_name = connect.decode(connect.JSON, b'{"intervalSeconds": 0.5}', live_pb2.WatchRequest)
    by_proto_name = connect.decode(connect.JSON, b'{"interval_seconds": 0.5}', live_pb2.WatchRequest)
    assert by_json_name.interval_seconds == by_proto_name.interval_seconds == 0.5
    assert connect.decode(connect.JSON, b"", live_pb2.WatchRequest) == live_pb2.WatchRequest()
    snapshot = live_pb2.LiveSnapshot(bot_answers_15m=3, queues=[live_pb2.QueueLive(language="fr", waiting=2)])
    assert json.loads(connect.encode(connect.JSON, snapshot)) == {
        "botAnswers15m": "3",
        "queues": [{"language": "fr", "waiting": "2"}],
    }
    assert connect.decode(connect.PROTO, snapshot.SerializeToString(), live_pb2.LiveSnapshot) == snapshot


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"intervalSeconds": "soon"}', b"[1]", b"\xff\xfe", b'{"window": 3}'],
)
def test_a_body_that_is_not_the_message_in_json_is_invalid_argument(body):
    message_type = analytics_pb2.KpiRequest if b"window" in body else live_pb2.WatchRequest
    with pytest.raises(ConnectError) as raised:
        connect.decode(connect.JSON, body, message_type)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT and raised.value.status == 400
    assert message_type.DESCRIPTOR.full_name in raised.value.message


def test_content_types_per_kind_of_call():
    routes = route_table()
    unary, stream = routes["/relais.v1.Analytics/GetKpis"], routes["/relais.v1.LiveView/Watch"]
    assert connect.codec_of(unary, "application/json; charset=utf-8") == connect.JSON
    assert connect.codec_of(unary, "application/proto") == connect.PROTO
    assert connect.codec_of(stream, "application/connect+json") == connect.JSON
    for route, wrong in ((unary, "application/connect+json"), (stream, "application/json"), (unary, None)):
        with pytest.raises(ConnectError) as raised:
            connect.codec_of(route, wrong)
        assert raised.value.status == 415


def test_the_stream_request_is_exactly_one_envelope():
    route: Route = route_table()["/relais.v1.LiveView/Watch"]
    one = connect.envelope(b'{"intervalSeconds": 1}')
    assert connect.stream_request(route, connect.JSON, one, "").interval_seconds == 1
    for body in (one + one, b"", b"\x00\x00"):
        with pytest.raises(ConnectError) as raised:
            connect.stream_request(route, connect.JSON, body, "")
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_connect_timeout_and_metadata():
    from multidict import CIMultiDict

    assert connect.timeout_of(CIMultiDict({"Connect-Timeout-Ms": "1500"})) == 1.5
    assert connect.timeout_of(CIMultiDict()) is None
    with pytest.raises(ConnectError):
        connect.timeout_of(CIMultiDict({"Connect-Timeout-Ms": "-1"}))
    headers = CIMultiDict({"Authorization": "Bearer t", "Cookie": "c", "Content-Type": "application/json"})
    assert connect.request_metadata(headers) == [("authorization", "Bearer t")]
    assert connect.request_metadata(CIMultiDict()) == []
    assert connect.metadata_headers([("x-a", "1"), ("x-b-bin", b"\x00"), ("grpc-status", "0")], "Trailer-") == {
        "Trailer-x-a": "1"
    }
