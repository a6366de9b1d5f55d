"""Access: the Lookup and Analytics APIs need the service token, health stays open, servers speak TLS.

The agents' side (a token per agent; acting on another agent's task is PERMISSION_DENIED, no or a bad
token UNAUTHENTICATED) is tested in test_routing.py::test_an_agent_acts_only_on_its_own_assignments.
"""

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.certs.make_certs import make_certs
from infra.kafka.broker import KafkaBroker
from infra.ports import free_port
from relais.common import grpcserver
from relais.common.pb import (
    agent_desk_pb2 as desk,
    agent_desk_pb2_grpc as desk_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
)
from tests.integration.conftest import SERVICE_TOKEN, service_channel, service_metadata

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
SERVING = health_pb2.HealthCheckResponse.SERVING


def protected_calls(stack):
    """(service, a call on a stub over `channel`) for each protected API of the running stack."""
    return [
        ("analytics", lambda ch, **kw: analytics_pb2_grpc.AnalyticsStub(ch).GetKpis(analytics_pb2.KpiRequest(), **kw)),
        (
            "lookup",
            lambda ch, **kw: lookup_pb2_grpc.EnterpriseLookupStub(ch).GetOpeningHours(
                lookup_pb2.OpeningHoursRequest(), **kw
            ),
        ),
        # An agent in a language no conversation has, so that it is never offered other tests' work.
        (
            "routing",
            lambda ch, **kw: desk_grpc.AgentDeskStub(ch).SignIn(
                desk.SignInRequest(agent_id="access-test-agent", languages=["zz"]), **kw
            ),
        ),
    ]


@pytest.mark.parametrize("service", ["analytics", "lookup", "routing"])
async def test_lookup_analytics_and_sign_in_refuse_calls_without_the_right_service_token(stack, service):
    call = dict(protected_calls(stack))[service]
    addr = f"127.0.0.1:{stack.ports[service]}"
    async with grpc.aio.insecure_channel(addr) as channel:
        for metadata, says in (
            ([], "needs a service token"),
            ([("authorization", "Bearer not-the-token")], "invalid service token"),
            ([("authorization", f"Basic {SERVICE_TOKEN}")], "must be 'Bearer"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(channel, metadata=metadata, timeout=10)
            assert error.value.code() == UNAUTHENTICATED, metadata
            assert says in error.value.details()
        await call(channel, metadata=service_metadata(), timeout=10)  # the right token: answered
    async with service_channel(addr) as channel:  # what our clients do
        reply = await call(channel, timeout=10)
    if service == "routing":  # the agent acts with its own token, not the service token
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = desk_grpc.AgentDeskStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.SignOut(desk.SignOutRequest(), metadata=service_metadata(), timeout=10)
            assert error.value.code() == UNAUTHENTICATED
            await stub.SignOut(desk.SignOutRequest(), metadata=[("authorization", f"Bearer {reply.token}")], timeout=10)


@pytest.mark.parametrize("service", ["analytics", "lookup"])
async def test_health_checks_need_no_token(stack, service):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports[service]}") as channel:
        assert (
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        ).status == SERVING


class Analytics(analytics_pb2_grpc.AnalyticsServicer):
    async def GetKpis(self, request, context):
        return analytics_pb2.KpiReply()


def register(server):
    analytics_pb2_grpc.add_AnalyticsServicer_to_server(Analytics(), server)


async def start_server(env, token="tls-test-token") -> grpcserver.GrpcServer:
    server = grpcserver.GrpcServer(
        "127.0.0.1:0", ["relais.v1.Analytics"], register, token=token, credentials=grpcserver.server_credentials(env)
    )
    await server.start()
    await server.set_serving(True)
    return server


async def health(channel, timeout=5):
    return (await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)).status


async def test_a_tls_server_refuses_plaintext_and_serves_clients_trusting_its_ca(tmp_path):
    certs = make_certs(tmp_path / "certs")
    other_ca = make_certs(tmp_path / "other")["ca.pem"]
    server = await start_server(
        {"RELAIS_TLS_CERT": str(certs["server.pem"]), "RELAIS_TLS_KEY": str(certs["server.key"])}
    )
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
            assert (
                await analytics_pb2_grpc.AnalyticsStub(client).GetKpis(analytics_pb2.KpiRequest(), timeout=5)
                == analytics_pb2.KpiReply()
            )

        # The stack's readiness probe (make up) speaks TLS when RELAIS_TLS_CA is set.
        from infra.stack import Stack

        stack = Stack(
            tmp_path / "stack",
            {"kafka": 1, "kafka_controller": 2, "postgres": 3, "analytics": server.port},
            extra_env=tls_env | {"RELAIS_SERVICE_TOKEN": "x"},
        )
        await asyncio.to_thread(stack.wait_healthy, ["analytics"], 10)
    finally:
        await server.stop(0)


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(tmp_path):
    certs = make_certs(tmp_path / "certs")
    server = await start_server(
        {
            "RELAIS_TLS_CERT": str(certs["server.pem"]),
            "RELAIS_TLS_KEY": str(certs["server.key"]),
            "RELAIS_TLS_CLIENT_CA": str(certs["ca.pem"]),
        }
    )
    addr = f"127.0.0.1:{server.port}"
    try:
        async with grpcserver.channel(addr, env={"RELAIS_TLS_CA": str(certs["ca.pem"])}) as no_certificate:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await health(no_certificate)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        env = {
            "RELAIS_TLS_CA": str(certs["ca.pem"]),
            "RELAIS_TLS_CLIENT_CERT": str(certs["client.pem"]),
            "RELAIS_TLS_CLIENT_KEY": str(certs["client.key"]),
        }
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


class SaslBroker(KafkaBroker):
    """A second single-node broker with a SASL_PLAINTEXT (PLAIN) listener next to its PLAINTEXT one."""

    USERS = {"admin": "admin-secret", "relais": "relais-secret"}

    def __init__(self, state_dir: Path):
        self.sasl_port = free_port()
        super().__init__(state_dir, heap="256m")

    def _write_config_files(self):
        props = super()._write_config_files()
        users = " ".join(f'user_{u}="{p}"' for u, p in SaslBroker.USERS.items())
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="admin" password="admin-secret" {users};'
        )
        lines = [
            line
            for line in props.read_text().splitlines()
            if not line.startswith(("listeners=", "advertised.listeners=", "listener.security.protocol.map="))
        ]
        lines += [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
        ]
        props.write_text("\n".join(lines) + "\n")
        return props


async def test_kafka_clients_work_through_a_sasl_plaintext_listener(tmp_path, monkeypatch):
    """make_producer / make_consumer / ensure_topics with KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT, PLAIN."""
    import shutil

    from aiokafka.errors import KafkaError

    from relais.common import bus, topics

    if shutil.which("java") is None:
        pytest.skip("needs Java to start a second broker")
    broker = SaslBroker(tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    try:
        sasl = f"127.0.0.1:{broker.sasl_port}"
        monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
        monkeypatch.setenv("KAFKA_SASL_USERNAME", "relais")
        monkeypatch.setenv("KAFKA_SASL_PASSWORD", "relais-secret")
        spec = topics.TopicSpec("relais.access-test.v1", partitions=1)
        assert await topics.ensure_topics(sasl, [spec]) == [spec.name]
        producer = bus.make_producer(sasl)
        await producer.start()
        try:
            await bus.publish(producer, [bus.Record(spec.name, b"k", b"through SASL")])
        finally:
            await producer.stop()
        consumer = bus.make_consumer(sasl, "relais-access-test", spec.name, isolation_level="read_uncommitted")
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
            assert record.value == b"through SASL"
        finally:
            await consumer.stop()

        monkeypatch.setenv("KAFKA_SASL_PASSWORD", "wrong")
        refused = bus.make_producer(sasl, request_timeout_ms=5000)
        with pytest.raises((KafkaError, OSError)):
            await asyncio.wait_for(refused.start(), 30)
        await refused.stop()
    finally:
        await asyncio.to_thread(broker.stop)


async def test_a_service_process_started_with_tls_serves_only_tls_clients_with_the_token(stack, tmp_path):
    """The real lookup process, started like `make up` does with RELAIS_TLS_* and a token of its own."""
    from infra.ports import free_port
    from infra.stack import Stack

    certs = make_certs(tmp_path / "certs")
    env = {
        "RELAIS_TLS_CERT": str(certs["server.pem"]),
        "RELAIS_TLS_KEY": str(certs["server.key"]),
        "RELAIS_TLS_CA": str(certs["ca.pem"]),
        "RELAIS_SERVICE_TOKEN": "tls-stack-token",
    }
    tls_stack = Stack(tmp_path / "stack", dict(stack.ports) | {"lookup": free_port()}, extra_env=env)
    tls_stack.use_infra(stack.bootstrap, stack.dsn)
    await asyncio.to_thread(tls_stack.start_services, ["lookup"], 60)  # its health check speaks TLS
    addr = f"127.0.0.1:{tls_stack.ports['lookup']}"
    request = lookup_pb2.OpeningHoursRequest()
    try:
        assert tls_stack.endpoints()["RELAIS_TLS_CA"] == str(certs["ca.pem"])
        async with grpc.aio.insecure_channel(addr) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await lookup_pb2_grpc.EnterpriseLookupStub(plaintext).GetOpeningHours(request, timeout=5)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        async with grpcserver.channel(addr, SERVICE_TOKEN, env=env) as other_token:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await lookup_pb2_grpc.EnterpriseLookupStub(other_token).GetOpeningHours(request, timeout=5)
            assert error.value.code() == UNAUTHENTICATED
        async with grpcserver.channel(addr, "tls-stack-token", env=env) as client:
            reply = await lookup_pb2_grpc.EnterpriseLookupStub(client).GetOpeningHours(request, timeout=10)
            assert reply.ListFields()
    finally:
        await asyncio.to_thread(tls_stack.stop_service, "lookup")
