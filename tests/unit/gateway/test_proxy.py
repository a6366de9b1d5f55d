"""The Connect proxy against in-process gRPC servers: unary and streaming calls through HTTP, errors as Connect
tells them, the standby retried on UNAVAILABLE, the upstream stream cancelled when the HTTP client leaves."""

import asyncio
import json

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer

from relais.common.pb import analytics_pb2, live_pb2
from relais.gateway import connect
from relais.gateway.connect import Proxy, Upstream, route_table
from relais.gateway.service import make_app


class FakeRouting:
    """LiveView on one process: Watch sends `count` snapshots (forever when None), or UNAVAILABLE when standby."""

    def __init__(self, standby: bool = False):
        self.standby = standby
        self.watching = asyncio.Event()
        self.watch_ended = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    def handler(self) -> grpc.GenericRpcHandler:
        async def watch(request, context):
            self.calls += 1
            if self.standby:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "standby: call the other one")
            await context.send_initial_metadata([("x-served-by", "active")])
            self.watching.set()
            try:
                yield live_pb2.LiveSnapshot(bot_answers_15m=1)
                await self.release.wait()  # the second one only when the test says so: proof of flushing
                yield live_pb2.LiveSnapshot(bot_answers_15m=2)
                if request.interval_seconds == 0.5:  # the test's "forever"
                    await asyncio.Event().wait()
            finally:
                self.watch_ended.set()

        async def snapshot(request, context):
            self.calls += 1
            if self.standby:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "standby")
            return live_pb2.LiveSnapshot(handoffs_15m=7)

        return grpc.method_handlers_generic_handler(
            "relais.v1.LiveView",
            {
                "Watch": grpc.unary_stream_rpc_method_handler(
                    watch, live_pb2.WatchRequest.FromString, live_pb2.LiveSnapshot.SerializeToString
                ),
                "GetSnapshot": grpc.unary_unary_rpc_method_handler(
                    snapshot, live_pb2.WatchRequest.FromString, live_pb2.LiveSnapshot.SerializeToString
                ),
            },
        )


def analytics_handler() -> grpc.GenericRpcHandler:
    async def kpis(request, context):
        tokens = [v for k, v in context.invocation_metadata() if k == "authorization"]
        if tokens != ["Bearer secret"]:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"needs the token, got {tokens}")
        if request.dimension == "nope":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown dimension 'nope'")
        return analytics_pb2.KpiReply(currency="EUR", service_level_seconds=30)

    return grpc.method_handlers_generic_handler(
        "relais.v1.Analytics",
        {
            "GetKpis": grpc.unary_unary_rpc_method_handler(
                kpis, analytics_pb2.KpiRequest.FromString, analytics_pb2.KpiReply.SerializeToString
            )
        },
    )


async def start_server(*handlers) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


class GatewayClient(TestClient):
    """A test client of the gateway, with the fakes behind it."""

    standby: FakeRouting
    active: FakeRouting
    upstreams: dict[str, Upstream]


@pytest.fixture
async def gateway():
    """A gateway whose LiveView has a standby (first) and an active process (second), and an Analytics."""
    standby, active = FakeRouting(standby=True), FakeRouting()
    servers = [await start_server(standby.handler()), await start_server(active.handler())]
    analytics = await start_server(analytics_handler())
    channels = [grpc.aio.insecure_channel(addr) for _, addr in servers]
    analytics_channel = grpc.aio.insecure_channel(analytics[1])
    upstreams = {
        "relais.v1.LiveView": Upstream([a for _, a in servers], channels),
        "relais.v1.Analytics": Upstream([analytics[1]], [analytics_channel]),
    }
    client = GatewayClient(TestServer(make_app(Proxy(route_table(), upstreams), None), handler_cancellation=True))
    await client.start_server()
    client.standby, client.active, client.upstreams = standby, active, upstreams
    yield client
    await client.close()
    for channel in (*channels, analytics_channel):
        await channel.close()
    for server, _ in (*servers, analytics):
        await server.stop(None)


async def test_a_unary_json_call_passes_the_token_and_answers_json(gateway):
    response = await gateway.post(
        "/relais.v1.Analytics/GetKpis",
        data=b'{"dimension": "intent"}',
        headers={"Content-Type": "application/json", "Authorization": "Bearer secret"},
    )
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == {"currency": "EUR", "serviceLevelSeconds": 30.0}


async def test_errors_are_connect_errors_with_the_mapped_status(gateway):
    cases = [
        ({}, b"{}", 401, "unauthenticated"),
        ({"Authorization": "Bearer secret"}, b'{"dimension": "nope"}', 400, "invalid_argument"),
        ({"Authorization": "Bearer secret"}, b'{"dimension": 12}', 400, "invalid_argument"),
    ]
    for headers, body, status, code in cases:
        response = await gateway.post(
            "/relais.v1.Analytics/GetKpis", data=body, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status == status
        assert (await response.json())["code"] == code


async def test_an_unknown_procedure_is_404_unimplemented(gateway):
    response = await gateway.post(
        "/relais.v1.Analytics/Nothing", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status == 404
    assert (await response.json())["code"] == "unimplemented"


async def test_a_unary_call_meeting_a_standby_goes_to_the_next_process_and_stays_there(gateway):
    for _ in range(2):
        response = await gateway.post(
            "/relais.v1.LiveView/GetSnapshot", data=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status == 200 and await response.json() == {"handoffs15m": "7"}
    assert gateway.standby.calls == 1 and gateway.active.calls == 2  # the second call went to the active at once


async def test_a_process_gone_is_passed_over_by_unary_calls_and_streams(gateway):
    gone_server, gone = await start_server(FakeRouting().handler())
    await gone_server.stop(None)  # nothing listens there any more: UNAVAILABLE before any answer
    channel = grpc.aio.insecure_channel(gone)
    live = gateway.upstreams["relais.v1.LiveView"]
    gateway.upstreams["relais.v1.LiveView"] = Upstream([gone, live.addrs[1]], [channel, live.channels[1]])
    try:
        response = await gateway.post(
            "/relais.v1.LiveView/GetSnapshot", data=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status == 200 and await response.json() == {"handoffs15m": "7"}
        gateway.upstreams["relais.v1.LiveView"].preferred = 0
        gateway.active.release.set()
        stream = await gateway.post(
            "/relais.v1.LiveView/Watch",
            data=connect.envelope(b"{}"),
            headers={"Content-Type": "application/connect+json"},
        )
        assert stream.headers["x-served-by"] == "active"
        assert await read_envelope(stream) == (0, {"botAnswers15m": "1"})
        assert gateway.active.calls == 2 and gateway.upstreams["relais.v1.LiveView"].preferred == 1
    finally:
        await channel.close()


async def read_envelope(response) -> tuple[int, dict]:
    header = await response.content.readexactly(5)
    flags, length = connect.HEADER.unpack(header)
    return flags, json.loads(await response.content.readexactly(length))


async def test_a_stream_is_flushed_message_by_message_then_ended(gateway):
    response = await gateway.post(
        "/relais.v1.LiveView/Watch",
        data=connect.envelope(b"{}"),
        headers={"Content-Type": "application/connect+json"},
    )
    assert response.status == 200 and response.content_type == "application/connect+json"
    assert response.headers["x-served-by"] == "active"
    assert await read_envelope(response) == (0, {"botAnswers15m": "1"})  # before the server sent the second
    gateway.active.release.set()
    assert await read_envelope(response) == (0, {"botAnswers15m": "2"})
    assert await read_envelope(response) == (connect.FLAG_END_STREAM, {})


async def test_the_upstream_stream_is_cancelled_when_the_http_client_leaves(gateway):
    gateway.active.release.set()
    response = await gateway.post(
        "/relais.v1.LiveView/Watch",
        data=connect.envelope(b'{"intervalSeconds": 0.5}'),
        headers={"Content-Type": "application/connect+json"},
    )
    assert (await read_envelope(response))[0] == 0
    assert not gateway.active.watch_ended.is_set()
    response.close()  # the browser tab closes
    await asyncio.wait_for(gateway.active.watch_ended.wait(), 2)


async def test_a_stream_error_comes_in_the_end_of_stream_envelope(gateway):
    response = await gateway.post(
        "/relais.v1.LiveView/Watch", data=b"\x00\x00", headers={"Content-Type": "application/connect+json"}
    )
    assert response.status == 200
    flags, body = await read_envelope(response)
    assert flags == connect.FLAG_END_STREAM and body["error"]["code"] == "invalid_argument"


async def test_cors_for_the_configured_origins_only():
    app = make_app(Proxy(route_table(), {}), None, frozenset({"https://desk.example"}))
    async with TestClient(TestServer(app)) as client:
        preflight = {
            "Origin": "https://desk.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, connect-protocol-version",
        }
        async with client.options("/relais.v1.Analytics/GetKpis", headers=preflight) as answer:
            assert answer.status == 204
            assert answer.headers["Access-Control-Allow-Origin"] == "https://desk.example"
            assert "authorization" in answer.headers["Access-Control-Allow-Headers"]
        async with client.get("/healthz", headers={"Origin": "https://desk.example"}) as answer:
            assert answer.headers["Access-Control-Allow-Origin"] == "https://desk.example"
        async with client.options(
            "/relais.v1.Analytics/GetKpis", headers=preflight | {"Origin": "https://evil.example"}
        ) as answer:
            assert answer.status == 403 and "Access-Control-Allow-Origin" not in answer.headers
        async with client.get("/healthz", headers={"Origin": "https://evil.example"}) as answer:
            assert answer.status == 200 and "Access-Control-Allow-Origin" not in answer.headers
