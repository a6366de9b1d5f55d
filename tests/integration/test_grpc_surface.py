"""Every gRPC server answers standard health checks and reflection; analytics is readable over gRPC."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from infra.stack import SERVICES
from relais.common import cloudevents
from relais.common.pb import analytics_pb2, analytics_pb2_grpc
from relais.demo import send_message
from tests.integration.conftest import service_channel

SERVED = {"routing": "relais.v1.AgentDesk", "analytics": "relais.v1.Analytics", "lookup": "relais.v1.EnterpriseLookup"}


@pytest.mark.parametrize("service", SERVICES)
async def test_health_and_reflection(stack, service):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports[service]}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in responses for s in r.list_services_response.service}
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    if service in SERVED:
        assert SERVED[service] in names
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports[service]}") as channel:
            status = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVED[service])
            )
        assert status.status == health_pb2.HealthCheckResponse.SERVING


async def test_analytics_counts_contacts_bot_resolved_and_handed_off(stack, producer, replies, conversation_id):
    async with service_channel(f"127.0.0.1:{stack.ports['analytics']}") as channel:
        analytics = analytics_pb2_grpc.AnalyticsStub(channel)
        before = await analytics.GetKpis(analytics_pb2.KpiRequest())
        await send_message(producer, f"{conversation_id}-a", {"id": "cust-fr-001"}, "Quel est le solde de mon compte ?")
        await send_message(
            producer, f"{conversation_id}-b", {"id": "cust-fr-002"}, "Je veux parler à un conseiller tout de suite"
        )
        assert (await replies.wait_for(f"{conversation_id}-a", 1))[0]["type"] == cloudevents.REPLY_BOT
        assert (await replies.wait_for(f"{conversation_id}-b", 1))[0]["type"] == cloudevents.REPLY_HANDOFF
        async with asyncio.timeout(15):
            while (
                after := await analytics.GetKpis(analytics_pb2.KpiRequest())
            ).total.contacts < before.total.contacts + 2:
                await asyncio.sleep(0.2)

    def delta(field, part=lambda k: k.total):
        return getattr(part(after), field) - getattr(part(before), field)

    assert (delta("contacts"), delta("bot_resolved"), delta("handed_off")) == (2, 1, 1)
    fr = lambda k: k.by_language["fr"]
    assert (delta("contacts", fr), delta("bot_resolved", fr), delta("handed_off", fr)) == (2, 1, 1)
    balance = lambda k: k.by_intent["account_balance"]
    assert (delta("contacts", balance), delta("bot_resolved", balance)) == (1, 1)
    advisor = lambda k: k.by_intent["speak_to_advisor"]
    assert (delta("contacts", advisor), delta("handed_off", advisor)) == (1, 1)
