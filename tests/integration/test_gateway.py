"""The HTTP edge (relais.gateway) on the real stack: Connect JSON calls with the gRPC services' own access rules,
an agent's offers streamed over HTTP, CloudEvents POSTed to /events answered by the bot."""

import asyncio
import json
import uuid
from datetime import datetime, timezone

import aiohttp
import pytest
from google.protobuf import json_format

from relais.common import cloudevents
from relais.common.pb import analytics_pb2, analytics_pb2_grpc
from relais.gateway import connect
from tests.integration.conftest import ALL_SKILLS, SERVICE_TOKEN, service_channel
from tests.integration.test_routing import context, hand_off

JSON = {"Content-Type": "application/json"}
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


@pytest.fixture
async def http(gateway):
    async with aiohttp.ClientSession(gateway) as session:
        yield session


async def test_get_kpis_as_json_with_the_service_token_and_401_without(http, stack):
    async with http.post("/relais.v1.Analytics/GetKpis", json={"dimension": "intent"}, headers=SERVICE) as answer:
        assert answer.status == 200 and answer.content_type == "application/json"
        body = await answer.json()
    async with service_channel(f"127.0.0.1:{stack.ports['analytics']}") as channel:
        direct = await analytics_pb2_grpc.AnalyticsStub(channel).GetKpis(analytics_pb2.KpiRequest(dimension="intent"))
    assert body["serviceLevelSeconds"] == direct.service_level_seconds > 0
    assert body.get("currency") == json_format.MessageToDict(direct).get("currency")

    async with http.post("/relais.v1.Analytics/GetKpis", data=b"{}", headers=JSON) as answer:
        assert answer.status == 401
        error = await answer.json()
    assert error["code"] == "unauthenticated" and "token" in error["message"]

    async with http.post("/relais.v1.Analytics/GetKpis", data=b'{"window": 7}', headers=JSON | SERVICE) as answer:
        assert answer.status == 400 and (await answer.json())["code"] == "invalid_argument"
    async with http.post("/relais.v1.Analytics/NoSuchMethod", data=b"{}", headers=JSON) as answer:
        assert answer.status == 404 and (await answer.json())["code"] == "unimplemented"


async def read_envelope(response) -> tuple[int, dict]:
    flags, length = connect.HEADER.unpack(await response.content.readexactly(5))
    return flags, json.loads(await response.content.readexactly(length))


async def test_an_agent_signs_in_and_receives_an_offer_through_the_http_stream(http, producer):
    language = f"x{uuid.uuid4().hex[:6]}"  # its own made-up language: no other test's task reaches this agent
    agent_id, conversation_id = f"agent-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:12]}"
    sign_in = {
        "agentId": agent_id,
        "languages": [language],
        "skill_levels": [{"skill": skill, "level": level} for skill, level in ALL_SKILLS.items()],
    }
    async with http.post("/relais.v1.AgentDesk/SignIn", json=sign_in, headers=SERVICE) as answer:
        assert answer.status == 200, await answer.text()
        agent = {"Authorization": f"Bearer {(await answer.json())['token']}"}
    stream = await http.post(
        "/relais.v1.AgentDesk/Subscribe",
        data=connect.envelope(b"{}"),
        headers={"Content-Type": "application/connect+json", **agent},
    )
    try:
        assert stream.status == 200 and stream.content_type == "application/connect+json"
        # The headers came: routing holds the agent's stream, offers can go to it.
        await hand_off(producer, context(conversation_id, language))
        async with asyncio.timeout(20):
            while True:
                flags, event = await read_envelope(stream)
                assert flags == 0, event  # not the end of the stream
                if "offer" in event:
                    break
        offer = event["offer"]
        assert offer["context"]["conversationId"] == conversation_id and offer["context"]["language"] == language
        async with http.post(
            "/relais.v1.AgentDesk/Accept", json={"taskId": offer["taskId"]}, headers=JSON | agent
        ) as answer:
            assert answer.status == 200, await answer.text()
        close = {"task_id": offer["taskId"], "disposition": "resolved"}
        async with http.post("/relais.v1.AgentDesk/Close", json=close, headers=agent) as answer:
            assert answer.status == 200, await answer.text()
    finally:
        stream.close()
        async with http.post("/relais.v1.AgentDesk/SignOut", json={}, headers=agent) as answer:
            assert answer.status == 200


def message_data(text: str) -> dict:
    return {
        "channel": "chat",
        "customer": {"id": "cust-fr-001"},
        "text": text,
        "sent_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }


async def test_a_structured_cloudevent_posted_to_events_gets_its_bot_reply(http, replies, conversation_id):
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:test:http",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": conversation_id,
        "datacontenttype": "application/json",
        "data": message_data("Bonjour, quels sont vos horaires d'ouverture ?"),
    }
    body = json.dumps(event).encode()
    async with http.post("/events", data=body, headers={"Content-Type": cloudevents.STRUCTURED}) as answer:
        assert answer.status == 202, await answer.text()
        assert (await answer.json())["accepted"] == [
            {"id": event["id"], "source": "urn:test:http", "subject": conversation_id}
        ]
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT and "lundi 08:00–20:00" in reply["data"]["text"]


async def test_a_binary_cloudevent_posted_to_events_gets_its_bot_reply(http, replies, conversation_id):
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex,
        "ce-source": "urn:test:http-binary",
        "ce-type": cloudevents.CONTACT_MESSAGE,
        "ce-subject": conversation_id,
    }
    data = message_data("Hi, where is my order CMD-654321?") | {"customer": {"id": "cust-en-001", "language": "en"}}
    async with http.post("/events", data=json.dumps(data).encode(), headers=headers) as answer:
        assert answer.status == 202, await answer.text()
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT and "CMD-654321" in reply["data"]["text"]


async def test_a_bad_event_gets_400_with_the_reason(http):
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "x",
        "source": "urn:test",
        "type": cloudevents.CONTACT_MESSAGE,
    }
    event["data"] = message_data("Bonjour")
    async with http.post("/events", json=event, headers={"Content-Type": cloudevents.STRUCTURED}) as answer:
        assert answer.status == 400
        assert "subject" in (await answer.json())["reason"]


async def test_healthz_and_the_pages_with_their_assets(http):
    async with http.get("/healthz") as answer:
        assert answer.status == 200
    for path, content_type in (("/desk", "text/html"), ("/wallboard", "text/html"), ("/connect.js", "text/javascript")):
        async with http.get(path) as answer:
            assert (answer.status, answer.content_type) == (200, content_type), path
