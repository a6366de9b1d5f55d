"""The walking skeleton's "done when", end to end through the real service processes."""

import asyncio
import json
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from relais.common import bus, cloudevents, topics
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.demo import send_message
from tests.integration.conftest import reply_of_type, settled

FR = {"id": "cust-fr-001"}
EN = {"id": "cust-en-001", "language": "en"}


async def test_french_simple_request_is_answered_by_the_bot_through_the_lookup(producer, replies, db, conversation_id):
    await send_message(producer, conversation_id, FR, "Bonjour, quels sont vos horaires d'ouverture ?")
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT
    assert reply["subject"] == conversation_id
    assert reply["data"]["language"] == "fr"
    assert "lundi 08:00–20:00" in reply["data"]["text"] and "dimanche fermé" in reply["data"]["text"]
    context = pb.ConversationContext.FromString(
        await db.fetchval("SELECT context FROM bot_conversations WHERE conversation_id = $1", conversation_id)
    )
    assert [(l.name, l.ok) for l in context.lookups] == [("opening_hours", True)]
    assert context.turns[0].classification.intent == "opening_hours"


async def test_english_order_status_is_answered_with_the_lookup_result(producer, replies, conversation_id):
    await send_message(producer, conversation_id, EN, "Hi, where is my order CMD-654321?")
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT
    assert (
        reply["data"]["text"]
        == "Your order CMD-654321 is being prepared (carrier: DHL), expected delivery on 02 December 2026."
    )


async def test_binary_mode_event_with_protobuf_data_is_answered(producer, replies, conversation_id):
    message = pb.ContactMessage(
        channel=pb.CHANNEL_SMS, customer=pb.Customer(id="cust-en-001"), text="What is my account balance please?"
    )
    message.sent_at.GetCurrentTime()
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_source", b"urn:test:binary"),
        ("ce_type", cloudevents.CONTACT_MESSAGE.encode()),
        ("ce_subject", conversation_id.encode()),
        ("content-type", b"application/protobuf"),
    ]
    await bus.publish(
        producer, [bus.Record(topics.CONTACT_EVENTS, conversation_id.encode(), message.SerializeToString(), headers)]
    )
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT
    assert "£980.10" in reply["data"]["text"] and reply["data"]["language"] == "en"


async def test_angry_customer_is_handed_off_with_the_complete_context(
    producer, replies, agent_session, conversation_id
):
    customer = {"id": "cust-en-002", "tier": "vip"}
    async with agent_session(f"agent-{conversation_id}") as agent:
        await send_message(producer, conversation_id, customer, "Where is my order CMD-424242?")
        [answer] = await replies.wait_for(conversation_id, 1)
        assert answer["type"] == cloudevents.REPLY_BOT and "shipped" in answer["data"]["text"]
        await send_message(
            producer,
            conversation_id,
            customer,
            "This is RIDICULOUS!!! It has been shipped for a week, your service is a joke, I am furious.",
        )
        handoff = (await replies.wait_for(conversation_id, 2))[1]
        assert handoff["type"] == cloudevents.REPLY_HANDOFF and handoff["data"]["reason"] == "HANDOFF_REASON_ANGER"

        offer = await agent.offer_for(conversation_id)
        context = offer.context
        assert [t.text for t in context.turns] == [
            "Where is my order CMD-424242?",
            "This is RIDICULOUS!!! It has been shipped for a week, your service is a joke, I am furious.",
        ]
        assert context.turns[0].classification.intent == "order_status"
        assert context.turns[1].classification.sentiment.anger
        assert [(l.name, l.request["order_id"], l.result["status"]) for l in context.lookups] == [
            ("order_status", "CMD-424242", "shipped")
        ]
        assert len(context.bot_attempts) == 1 and context.bot_attempts[0].resolved
        assert context.reason == pb.HANDOFF_REASON_ANGER and context.customer.tier == "vip"

        accepted = await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
        assert len(accepted.assignment.context.turns) == 2
        await agent.stub.Reply(
            desk.ReplyRequest(task_id=offer.task_id, text="I'm sorry, let me sort this out now."), metadata=agent.auth
        )
        agent_reply = await reply_of_type(replies, conversation_id, cloudevents.REPLY_AGENT)
        assert (
            agent_reply["data"]["text"] == "I'm sorry, let me sort this out now."
            and agent_reply["data"]["language"] == "en"
        )
        await agent.stub.Close(
            desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
        )


async def test_french_request_for_an_advisor_hands_off_and_the_bot_stays_silent(
    producer, replies, agent_session, conversation_id
):
    async with agent_session(f"agent-{conversation_id}", languages=["fr"]) as agent:
        await send_message(producer, conversation_id, FR, "Bonjour, ma commande CMD-123456 est-elle partie ?")
        [answer] = await replies.wait_for(conversation_id, 1)
        assert answer["type"] == cloudevents.REPLY_BOT and "expédiée" in answer["data"]["text"]
        await send_message(producer, conversation_id, FR, "je veux parler à un conseiller")
        handoff = (await replies.wait_for(conversation_id, 2))[1]
        assert handoff["type"] == cloudevents.REPLY_HANDOFF and handoff["data"]["language"] == "fr"
        assert handoff["data"]["reason"] == "HANDOFF_REASON_CUSTOMER_REQUEST"

        offer = await agent.offer_for(conversation_id)
        assert [t.text for t in offer.context.turns] == [
            "Bonjour, ma commande CMD-123456 est-elle partie ?",
            "je veux parler à un conseiller",
        ]
        assert offer.context.lookups[0].result["carrier"] == "Colissimo"
        await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)

        # After the hand-off the customer's messages reach the advisor, never the bot.
        await send_message(producer, conversation_id, FR, "Et quels sont vos horaires d'ouverture ?")
        message = await agent.next_event("customer_message")
        assert message.task_id == offer.task_id and message.turn.text == "Et quels sont vos horaires d'ouverture ?"
        await settled(replies.bootstrap, replies)  # a bot answer to it would be in by now
        after_handoff = [r["type"] for r in replies.replies[conversation_id][1:]]
        assert cloudevents.REPLY_BOT not in after_handoff, "the bot answered after the hand-off"
        await agent.stub.Close(
            desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
        )

        # Writing again after the close reopens the conversation for a person, with the whole story.
        await send_message(producer, conversation_id, FR, "Finalement, j'ai encore une question sur ma carte")
        reopened = await agent.offer_for(conversation_id)
        assert reopened.task_id != offer.task_id
        assert [t.text for t in reopened.context.turns][-2:] == [
            "Et quels sont vos horaires d'ouverture ?",
            "Finalement, j'ai encore une question sur ma carte",
        ]
        await agent.stub.Accept(desk.AcceptRequest(task_id=reopened.task_id), metadata=agent.auth)
        await agent.stub.Close(
            desk.CloseRequest(task_id=reopened.task_id, disposition="resolved", resolved=True), metadata=agent.auth
        )


async def test_out_of_scope_question_is_handed_off(producer, replies, conversation_id):
    await send_message(
        producer, conversation_id, EN, "Can you recommend a good Italian restaurant near the Eiffel Tower tonight?"
    )
    handoff = (await replies.wait_for(conversation_id, 1))[0]
    assert handoff["type"] == cloudevents.REPLY_HANDOFF and handoff["data"]["reason"] == "HANDOFF_REASON_OUT_OF_SCOPE"


async def test_a_duplicated_event_is_ignored(producer, replies, db, conversation_id):
    event_id = str(uuid.uuid4())
    for _ in range(3):
        await send_message(producer, conversation_id, EN, "What are your opening hours?", event_id=event_id)
    await replies.wait_for(conversation_id, 1)
    await settled(replies.bootstrap, replies)  # a second reply would be in by now
    assert len(replies.replies[conversation_id]) == 1
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = $1", conversation_id) == 1


async def dead_letters(bootstrap: str, key: bytes, count: int, timeout: float = 20) -> list:
    """The first `count` dead-lettered records with this key."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    tp = TopicPartition(topics.DEAD_LETTER, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    found: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend(r for r in records if r.key == key)
    finally:
        await consumer.stop()
    return found


async def test_malformed_events_go_to_the_dead_letter_topic_and_intake_keeps_serving(
    stack, producer, replies, conversation_id
):
    bad = [
        b"{not json",
        json.dumps({"specversion": "0.3", "id": "x", "source": "s", "type": cloudevents.CONTACT_MESSAGE}).encode(),
        json.dumps(
            {"specversion": "1.0", "id": "x", "source": "s", "type": "com.example.unknown", "subject": "c"}
        ).encode(),
    ]
    marker = uuid.uuid4().hex.encode()
    for value in bad:
        await bus.publish(
            producer,
            [bus.Record(topics.CONTACT_EVENTS, marker, value, [("content-type", cloudevents.STRUCTURED.encode())])],
        )
    await bus.publish(
        producer,
        [
            bus.Record(
                topics.CONTACT_EVENTS,
                marker,
                b"\x08\x99garbage",
                [
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"1"),
                    ("ce_source", b"s"),
                    ("ce_subject", b"c"),
                    ("ce_type", cloudevents.CONTACT_MESSAGE.encode()),
                    ("content-type", b"application/protobuf"),
                ],
            )
        ],
    )
    await send_message(producer, conversation_id, EN, "What are your opening hours?")
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT

    ours = await dead_letters(stack.bootstrap, marker, 4)
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in ours]
    assert reasons[0].startswith("malformed JSON")
    assert "unsupported CloudEvents specversion '0.3'" in reasons[1]
    assert "unknown event type 'com.example.unknown'" in reasons[2]
    assert reasons[3].startswith("bad protobuf")
    for record in ours:
        headers = dict(record.headers)
        assert headers["dlq.original.topic"] == topics.CONTACT_EVENTS.encode()
        assert int(headers["dlq.original.offset"]) >= 0 and int(headers["dlq.original.partition"]) >= 0
    assert stack.processes["intake"].poll() is None
