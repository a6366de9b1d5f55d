"""Events made by the official CloudEvents Python SDK (cloudevents 2.x, its Kafka binding) and published with
aiokafka as an integrator would, through the real services, broker and database: both content modes are
answered by the bot, survey answers reach analytics, a time that is not RFC 3339 is dead-lettered with its reason.
"""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import kafka as ce_kafka_v1
from cloudevents.v1.http import CloudEvent as CloudEventV1API

from relais.common import cloudevents, topics
from tests.integration.conftest import reply_of_type
from tests.integration.test_walking_skeleton import dead_letters

TRACEPARENT = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"


@pytest.fixture(scope="module")
async def sdk_producer(stack):
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer: AIOKafkaProducer, message) -> None:
    """The SDK's KafkaMessage as is: its key (the partitionkey), value and headers."""
    key = message.key.encode() if isinstance(message.key, str) else message.key
    await producer.send_and_wait(topics.CONTACT_EVENTS, message.value, key=key, headers=list(message.headers.items()))


def contact(conversation_id: str, text: str, language: str, **attributes) -> CloudEvent:
    return CloudEvent(
        {
            "type": cloudevents.CONTACT_MESSAGE,
            "source": "urn:test:sdk",
            "subject": conversation_id,
            "partitionkey": conversation_id,
            "datacontenttype": "application/json",
            **attributes,
        },
        {"channel": "chat", "customer": {"id": f"cust-{language}-001", "language": language}, "text": text},
    )


async def survey_outcome(db, conversation_id: str) -> dict:
    async with asyncio.timeout(20):
        while not (
            row := await db.fetchrow(
                "SELECT * FROM kpi_outcomes WHERE conversation_id = $1 AND kind = 'survey'", conversation_id
            )
        ):
            await asyncio.sleep(0.2)
    return row


async def test_binary_mode_with_json_data_is_answered_and_its_survey_answer_reaches_analytics(
    sdk_producer, replies, db, conversation_id
):
    sent = datetime.now(timezone(timedelta(hours=1))).replace(microsecond=250000)
    event = contact(conversation_id, "Hi, where is my order CMD-654321?", "en", time=sent, traceparent=TRACEPARENT)
    message = ce_kafka.to_binary_event(event)
    assert message.headers["content-type"] == b"application/json" and message.headers["ce_specversion"] == b"1.0"
    await publish(sdk_producer, message)
    answer = await reply_of_type(replies, conversation_id, cloudevents.REPLY_BOT, timeout=60)
    assert answer["subject"] == conversation_id and answer["data"]["language"] == "en"
    assert "CMD-654321 is being prepared" in answer["data"]["text"]
    turn = await db.fetchrow("SELECT turn_id, sent_at FROM turns WHERE conversation_id = $1", conversation_id)
    assert turn["turn_id"] == f"urn:test:sdk#{event.get_id()}" and turn["sent_at"] == sent  # `time`, to the µs

    invitation = answer["data"]["survey"]
    survey = CloudEvent(
        {
            "type": invitation["type"],
            "source": "urn:test:sdk",
            "subject": conversation_id,
            "partitionkey": conversation_id,
            "datacontenttype": "application/json",
        },
        {"score": 5, "scale": invitation["scale"], "comment": "Quick and clear"},
    )
    await publish(sdk_producer, ce_kafka.to_binary_event(survey))
    row = await survey_outcome(db, conversation_id)
    assert (row["survey_scale"], row["survey_score"], row["survey_comment"]) == ("csat", 5, "Quick and clear")


async def test_structured_mode_is_answered_and_its_survey_answer_reaches_analytics(
    sdk_producer, replies, db, conversation_id
):
    message = ce_kafka.to_structured_event(
        contact(conversation_id, "Bonjour, quels sont vos horaires d'ouverture ?", "fr")
    )
    assert message.headers == {"content-type": b"application/cloudevents+json"}
    await publish(sdk_producer, message)
    answer = await reply_of_type(replies, conversation_id, cloudevents.REPLY_BOT, timeout=60)
    assert answer["data"]["language"] == "fr" and "lundi 08:00–20:00" in answer["data"]["text"]

    survey = CloudEvent(
        {
            "type": cloudevents.CONTACT_SURVEY,
            "source": "urn:test:sdk",
            "subject": conversation_id,
            "partitionkey": conversation_id,
        },
        {"score": 2, "comment": "Trop lent"},
    )  # no datacontenttype: JSON
    await publish(sdk_producer, ce_kafka.to_structured_event(survey))
    row = await survey_outcome(db, conversation_id)
    assert (row["survey_scale"], row["survey_score"], row["survey_comment"]) == ("csat", 2, "Trop lent")


async def test_the_1x_api_structured_mode_with_the_data_content_type_in_the_header_is_answered(
    sdk_producer, replies, conversation_id
):
    """cloudevents.v1.kafka (cloudevents.kafka in 1.x) sets content-type to the data's type: what relais refused."""
    event = CloudEventV1API(
        {
            "type": cloudevents.CONTACT_MESSAGE,
            "source": "urn:test:sdk-1x",
            "subject": conversation_id,
            "partitionkey": conversation_id,
            "datacontenttype": "application/json",
        },
        {
            "channel": "chat",
            "customer": {"id": "cust-en-001", "language": "en"},
            "text": "What is my account balance please?",
        },
    )
    message = ce_kafka_v1.to_structured(event)
    assert message.headers == {"content-type": b"application/json"}
    await publish(sdk_producer, message)
    answer = await reply_of_type(replies, conversation_id, cloudevents.REPLY_BOT, timeout=60)
    assert "£980.10" in answer["data"]["text"]


async def test_an_sdk_event_whose_time_is_not_rfc3339_is_dead_lettered_with_its_reason(stack, sdk_producer, replies):
    marker = f"sdk-bad-time-{uuid.uuid4().hex[:8]}"
    event = CloudEventV1API(
        {
            "type": cloudevents.CONTACT_MESSAGE,
            "source": "urn:test:sdk-1x",
            "subject": marker,
            "partitionkey": marker,
            "datacontenttype": "application/json",
            "time": "26/11/2026 10:00",
        },
        {"channel": "chat", "customer": {"id": "cust-en-001"}, "text": "hello"},
    )
    for to_kafka in (ce_kafka_v1.to_binary, ce_kafka_v1.to_structured):
        await publish(sdk_producer, to_kafka(event))
    reasons = [
        dict(r.headers)["dlq.reason"].decode()
        for r in await dead_letters(stack.bootstrap, marker.encode(), 2, timeout=30)
    ]
    assert all("`time` is not an RFC 3339 timestamp: '26/11/2026 10:00'" in reason for reason in reasons), reasons
    # The partition keeps serving: the next event of the same key is answered.
    await publish(sdk_producer, ce_kafka.to_binary_event(contact(marker, "What are your opening hours?", "en")))
    assert (await reply_of_type(replies, marker, cloudevents.REPLY_BOT, timeout=60))["subject"] == marker
