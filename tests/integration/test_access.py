"""Access: the Lookup and Analytics APIs need the service token, health stays open, servers speak TLS.

The agents' side (a token per agent; acting on another agent's task is PERMISSION_DENIED, no or a bad
token UNAUTHENTICATED) is tested in test_routing.py::test_an_agent_acts_only_on_its_own_assignments.
"""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.certs.make_certs import make_certs
from relais.common import grpcserver
from relais.common.pb import analytics_pb2, analytics_pb2_grpc, lookup_pb2, lookup_pb2_grpc
from tests.integration.conftest import SERVICE_TOKEN, service_channel, service_metadata

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
SERVING = health_pb2.HealthCheckResponse.SERVING


def protected_calls(stack):
    """(service, a call on a stub over `channel`) for each protected API of the running stack."""
    return [
        ("analytics", lambda ch, **kw: analytics_pb2_grpc.AnalyticsStub(ch).GetKpis(analytics_pb2.KpiRequest(), **kw)),
        ("lookup", lambda ch, **kw: lookup_pb2_grpc.EnterpriseLookupStub(ch).GetOpeningHours(
            lookup_pb2.OpeningHoursRequest(), **kw)),
    ]


@pytest.mark.parametrize("service", ["analytics", "lookup"])
async def test_lookup_and_analytics_refuse_calls_without_the_right_service_token(stack, service):
    call = dict(protected_calls(stack))[service]
    addr = f"127.0.0.1:{stack.ports[service]}"
    async with grpc.aio.insecure_channel(addr) as channel:
        for metadata, says in (([], "needs a service token"),
                               ([("authorization", "Bearer not-the-token")], "invalid service token"),
                               ([("authorization", f"Basic {SERVICE_TOKEN}")], "must be 'Bearer")):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(channel, metadata=metadata, timeout=10)
            assert error.value.code() == UNAUTHENTICATED, metadata
            assert says in error.value.details()
        await call(channel, metadata=service_metadata(), timeout=10)  # the right token: answered
    async with service_channel(addr) as channel:  # what our clients do
        await call(channel, timeout=10)


@pytest.mark.parametrize("service", ["analytics", "lookup"])
async def test_health_checks_need_no_token(stack, service):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports[service]}") as channel:
        assert (await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)).status == SERVING


class Analytics(analytics_pb2_grpc.AnalyticsServicer):
    async def GetKpis(self, request, context):
        return analytics_pb2.KpiReply()


def register(server):
    analytics_pb2_grpc.add_AnalyticsServicer_to_server(Analytics(), server)


async def start_server(env, token="tls-test-token") -> grpcserver.GrpcServer:
    server = grpcserver.GrpcServer("127.0.0.1:0", ["relais.v1.Analytics"], register, token=token,
                                   credentials=grpcserver.server_credentials(env))
    await server.start()
    await server.set_serving(True)
    return server


async def health(channel, timeout=5):
    return (await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)).status


async def test_a_tls_server_refuses_plaintext_and_serves_clients_trusting_its_ca(tmp_path):
    certs = make_certs(tmp_path / "certs")
    other_ca = make_certs(tmp_path / "other")["ca.pem"]
    server = await start_server({"RELAIS_TLS_CERT": str(certs["server.pem"]), "RELAIS_TLS_KEY": str(certs["server.key"])})
    addr = f"127.0.0.1:{server.port}"
    try:
        assert server.tls
        async with grpc.aio.insecure_channel(addr) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await health(plaintext)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        async with grpcserver.channel(addr, env={"RELAIS_TLS_CA": str(other_ca)}) as untrusted:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await health(untrusted)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        tls_env = {"RELAIS_TLS_CA": str(certs["ca.pem"])}
        async with grpcserver.channel(addr, env=tls_env) as anonymous:
            assert await health(anonymous) == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await analytics_pb2_grpc.AnalyticsStub(anonymous).GetKpis(analytics_pb2.KpiRequest(), timeout=5)
            assert error.value.code() == UNAUTHENTICATED
        async with grpcserver.channel(addr, "tls-test-token", env=tls_env) as client:
            assert await analytics_pb2_grpc.AnalyticsStub(client).GetKpis(analytics_pb2.KpiRequest(), timeout=5) == analytics_pb2.KpiReply()

        # The stack's readiness probe (make up) speaks TLS when RELAIS_TLS_CA is set.
        from infra.stack import Stack

        stack = Stack(tmp_path / "stack", {"kafka": 1, "kafka_controller": 2, "postgres": 3, "analytics": server.port},
                      extra_env=tls_env | {"RELAIS_SERVICE_TOKEN": "x"})
        await asyncio.to_thread(stack.wait_healthy, ["analytics"], 10)
    finally:
        await server.stop(0)


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(tmp_path):
    certs = make_certs(tmp_path / "certs")
    server = await start_server({"RELAIS_TLS_CERT": str(certs["server.pem"]), "RELAIS_TLS_KEY": str(certs["server.key"]),
                                 "RELAIS_TLS_CLIENT_CA": str(certs["ca.pem"])})
    addr = f"127.0.0.1:{server.port}"
    try:
        async with grpcserver.channel(addr, env={"RELAIS_TLS_CA": str(certs["ca.pem"])}) as no_certificate:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await health(no_certificate)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        env = {"RELAIS_TLS_CA": str(certs["ca.pem"]), "RELAIS_TLS_CLIENT_CERT": str(certs["client.pem"]),
               "RELAIS_TLS_CLIENT_KEY": str(certs["client.key"])}
        async with grpcserver.channel(addr, env=env) as client:
            assert await health(client) == SERVING
    finally:
        await server.stop(0)


async def test_a_server_without_a_token_configured_refuses_every_protected_call():
    server = await start_server({}, token=None)
    try:
        async with grpcserver.channel(f"127.0.0.1:{server.port}", "any-token", env={}) as client:
            assert await health(client) == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await analytics_pb2_grpc.AnalyticsStub(client).GetKpis(analytics_pb2.KpiRequest(), timeout=5)
            assert error.value.code() == UNAUTHENTICATED
            assert "RELAIS_SERVICE_TOKEN is not set on the server" in error.value.details()
    finally:
        await server.stop(0)
