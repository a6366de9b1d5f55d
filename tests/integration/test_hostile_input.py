"""Poison and hostile input through the real services, broker and database: each bad record gets its reason on
the dead-letter topic (or a gRPC status), and nothing crashes or stalls a partition.
"""

import asyncio
import json
import time
import uuid
from typing import cast

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from relais.common import bus, cloudevents, topics, transcript, unit_of_work
from relais.common.pb import (
    agent_desk_pb2 as desk,
    agent_desk_pb2_grpc as desk_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    conversation_pb2 as pb,
)
from relais.demo import send_message
from tests.integration.conftest import service_channel, service_metadata, settled
from tests.integration.test_walking_skeleton import dead_letters

LIMIT = 4000  # RELAIS_MAX_TEXT_CHARS, the default the stack runs with
EN = {"id": "cust-en-001", "language": "en"}
STRUCTURED = [("content-type", cloudevents.STRUCTURED.encode())]


def event(conversation_id: str, **data) -> dict:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:test:hostile",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": conversation_id,
        "time": "2026-11-26T10:00:00Z",
        "data": {"channel": "chat", "customer": {"id": "cust-en-001"}, "text": "hello"} | data,
    }


def raw(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=True).encode()  # lone surrogates travel as "\ud800" escapes


async def produce(producer, key: str, items: list[tuple[bytes, list]]) -> None:
    await bus.publish(
        producer, [bus.Record(topics.CONTACT_EVENTS, key.encode(), value, headers) for value, headers in items]
    )


async def dead_letters_so_far(bootstrap: str, key: bytes) -> list:
    """Every record with this key on the dead-letter topic now (reads to the end once)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    tp = TopicPartition(topics.DEAD_LETTER, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = (await consumer.end_offsets([tp]))[tp]
    found: list[ConsumerRecord] = []
    try:
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                found.extend(r for r in records if r.key == key)
    finally:
        await consumer.stop()
    return found


async def wait_until(predicate, timeout: float, interval: float = 0.5):
    async with asyncio.timeout(timeout):
        while not (value := await predicate()):
            await asyncio.sleep(interval)
    return value


async def test_hostile_events_are_dead_lettered_with_their_reason_and_the_partition_keeps_serving(
    stack, producer, replies, db, conversation_id
):
    c = conversation_id
    data_not_object = event(c)
    data_not_object["data"] = "Where is my order?"
    subject_number = event(c)
    subject_number["subject"] = 12345
    survey_scale_7 = pb.ContactSurvey(score=3, scale=cast(pb.SurveyScale, 7)).SerializeToString()  # no such scale
    binary = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"s-1"),
        ("ce_source", b"urn:test:hostile"),
        ("ce_subject", c.encode()),
        ("ce_type", cloudevents.CONTACT_SURVEY.encode()),
        ("content-type", b"application/protobuf"),
    ]
    hostile = [  # (value, headers, the reason expected on the dead-letter topic)
        (b'{"specversion": "1.0", "data": {"text": "caf\xe9"}}', STRUCTURED, "value is not valid UTF-8"),
        (raw(event(c)), STRUCTURED + [("ce_traceparent", b"\xff\xfe\x00")], "header is not valid UTF-8"),
        (b"", STRUCTURED, "empty record value"),
        (raw(event(c, text="")), STRUCTURED, "data.text is empty"),
        (raw(event(c, text=" \n\t ")), STRUCTURED, "data.text is empty"),
        (
            raw(event(c, text="x" * (LIMIT + 1))),
            STRUCTURED,
            f"data.text is {LIMIT + 1} characters; the limit is {LIMIT}",
        ),
        (raw(data_not_object), STRUCTURED, "`data` must be a JSON object"),
        (raw(event(c, text=42)), STRUCTURED, "data.text must be a string"),
        (raw(event(c, channel=["chat"])), STRUCTURED, "data.channel must be one of"),
        (raw(event(c, customer="cust-en-001")), STRUCTURED, "data.customer must be an object"),
        (raw(subject_number), STRUCTURED, "`subject` must be a string"),
        (raw(event(c, text="hello\x00world")), STRUCTURED, "data.text contains a NUL character"),
        (raw(event(c, text="hello \ud800")), STRUCTURED, "data.text is not valid Unicode"),
        (raw(event(c, sent_at="0001-01-01T00:00:00+01:00")), STRUCTURED, "sent_at is out of range"),
        (b"[" * 50_000, STRUCTURED, "malformed JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", STRUCTURED, "malformed JSON"),
        (survey_scale_7, binary, "data.scale 7 is unknown"),
    ]
    await produce(producer, c, [(value, headers) for value, headers, _ in hostile])
    # The same key, hence the same partition, keeps serving: a message right after them is answered ...
    await send_message(producer, c, EN, "What are your opening hours?")
    [answer] = await replies.wait_for(c, 1, timeout=60)
    assert answer["type"] == cloudevents.REPLY_BOT
    # ... and a text of exactly the limit is accepted and stored whole.
    limit_text = ("My parcel never arrived and I need it for Monday. " * 100)[:LIMIT]
    await send_message(producer, c, EN, limit_text)
    await replies.wait_for(c, 2, timeout=60)
    assert await db.fetchval("SELECT max(length(text)) FROM turns WHERE conversation_id = $1", c) == LIMIT

    ours = await dead_letters(stack.bootstrap, c.encode(), len(hostile), timeout=30)
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in ours]
    for (_, _, expected), reason in zip(hostile, reasons):
        print(f"dead letter: {reason[:110]}")
        assert expected in reason, (expected, reason)
        assert not reason.startswith("unprocessable"), reason  # a defect, not a reason
    assert all(dict(r.headers)["dlq.service"] == b"intake" for r in ours)
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = $1", c) == 2
    for name in ("intake", "classifier", "bot", "routing"):
        assert stack.processes[name].poll() is None, f"{name} died"


async def test_a_record_over_the_brokers_limit_is_dead_lettered_and_never_retried_for_ever(stack, producer):
    """What a service does when an output can never be published: dead-letter the input, move on."""
    key = f"too-large-{uuid.uuid4().hex[:8]}".encode()
    inputs = [
        ConsumerRecord(topics.TURNS, 0, offset, 0, 0, key, b"input", None, len(key), 5, [("k", b"v")])
        for offset in (10, 11)
    ]

    async def handle(items, unit):
        for item in items:
            if item.record.offset == 10:  # an output of 2 MiB: MessageSizeTooLargeError, forever
                await bus.publish(producer, [bus.Record(topics.REPLIES, key, b"x" * (2 * bus.MAX_MESSAGE_BYTES))])

    # The shared loop (relais.common.unit_of_work) with a real consumer of a group of its own, for the commits.
    consumer = bus.make_consumer(stack.bootstrap, f"too-large-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        partition = TopicPartition(topics.TURNS, 0)
        consumer.assign([partition])
        loop = unit_of_work._Loop(
            "test",
            consumer,
            producer,
            lambda record: record.value,
            handle,
            asyncio.Event(),
            pool=None,
            retry_seconds=0.1,
        )
        started = time.monotonic()
        await asyncio.wait_for(loop.process(inputs), 30)
        await loop.finish()
        assert time.monotonic() - started < 10  # the next record was processed: no stall
        assert await consumer.committed(partition) == 12  # both inputs done: one dead-lettered, the other handled
    finally:
        await consumer.stop()
    # An input close to the limit cannot be copied whole with the reason: the reason goes without it.
    huge = ConsumerRecord(
        topics.CONTACT_EVENTS,
        0,
        12,
        0,
        0,
        key,
        b"y" * (bus.MAX_MESSAGE_BYTES - 200),
        None,
        len(key),
        bus.MAX_MESSAGE_BYTES - 200,
        [("content-type", b"application/cloudevents+json")],
    )
    await bus.dead_letter(producer, "test", huge, "malformed JSON: test")

    first, second = await dead_letters(stack.bootstrap, key, 2, timeout=30)
    reason = dict(first.headers)["dlq.reason"].decode()
    assert "over the broker's limit of 1048576 bytes" in reason and "MessageSizeTooLargeError" in reason
    assert first.value == b"input"
    headers = dict(second.headers)
    assert headers["dlq.reason"] == b"malformed JSON: test" and second.value == b""
    assert b"too large to copy" in headers["dlq.value.omitted"]


async def _settled(db, conversation_id: str, turns: int, forwarded: int):
    bot = await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = 'bot' AND event_key LIKE $1",
        f"urn:relais:demo#{conversation_id}-%",
    )
    routed = await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = 'routing' AND event_key LIKE $1",
        f"urn:relais:demo#{conversation_id}-%/message",
    )
    return (bot, routed) if bot >= turns and routed >= forwarded else None


async def test_a_conversation_of_thousands_of_turns_keeps_a_bounded_context_and_every_service_serving(
    stack, producer, replies, db, conversation_id
):
    c, n = conversation_id, 2_000
    long_text = ("Je voudrais comprendre pourquoi ma commande CMD-123456 n'est toujours pas arrivée. " * 60)[:LIMIT]
    texts = ["je veux parler à un conseiller"] + [
        long_text
        if i % 100 == 0
        else f"Message {i}: toujours aucune nouvelle de ma commande, numéro {i * 7919 % 100000}"
        for i in range(1, n)
    ]
    started = time.monotonic()
    for batch in range(0, n, 250):
        items = [
            cloudevents.contact_message(c, "cust-fr-001", text, event_id=f"{c}-{i}")
            for i, text in enumerate(texts[batch : batch + 250], start=batch)
        ]
        await produce(producer, c, items)
    produced = time.monotonic() - started
    # Every turn is stored, the bot handles each once (one hand-off, then forwarding) and routing takes every later one.
    bot, routed = await wait_until(lambda: _settled(db, c, n, n - 1), timeout=150)
    elapsed = time.monotonic() - started
    await settled(stack.bootstrap, replies, groups=("bot", "routing"))  # a stray reply would be in by now
    print(
        f"\n{n} turns: produced in {produced:.1f} s, all through intake, classifier, bot and routing in {elapsed:.1f} s"
        f" ({n / elapsed:.0f} turns/s)"
    )
    assert (bot, routed) == (n, n - 1)
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = $1", c) == n
    bot_types = [
        r["type"] for r in replies.replies[c] if r["type"] in (cloudevents.REPLY_BOT, cloudevents.REPLY_HANDOFF)
    ]
    assert bot_types == [cloudevents.REPLY_HANDOFF], "one reply from the bot (the hand-off), then silence"

    # The contexts stay within the budget, with the opening and the latest turns.
    stored = await db.fetchval("SELECT context FROM bot_conversations WHERE conversation_id = $1", c)
    task = await db.fetchval("SELECT context FROM tasks WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT 1", c)
    for name, raw_context in (("bot", stored), ("routing", task)):
        context = pb.ConversationContext.FromString(raw_context)
        print(
            f"{name} context: {len(raw_context):,} bytes, {len(context.turns)} turns kept, {context.omitted_turns} omitted"
        )
        assert len(raw_context) <= transcript.CONTEXT_BUDGET_BYTES
        assert len(context.turns) + context.omitted_turns == n and context.omitted_turns > 0
        assert context.turns[0].text == texts[0] and context.turns[-1].text == texts[-1]
    assert await dead_letters_so_far(stack.bootstrap, c.encode()) == []

    # And the services still answer a new conversation at once.
    other = f"test-{uuid.uuid4().hex[:12]}"
    asked = time.monotonic()
    await send_message(producer, other, EN, "What are your opening hours?")
    [answer] = await replies.wait_for(other, 1, timeout=60)
    assert answer["type"] == cloudevents.REPLY_BOT
    print(f"a new conversation answered {time.monotonic() - asked:.2f} s after")


def _partition(key: str, partitions: int = 6) -> int:
    every = list(range(partitions))
    return DefaultPartitioner()(key.encode(), every, every)


async def test_a_flood_of_one_key_does_not_stall_the_other_conversations(stack, producer, replies, db, conversation_id):
    flood, n = conversation_id, 1_500
    other = next(k for k in (f"test-{uuid.uuid4().hex[:12]}" for _ in range(100)) if _partition(k) != _partition(flood))
    started = time.monotonic()
    sender = asyncio.create_task(
        produce(
            producer,
            flood,
            [
                cloudevents.contact_message(
                    flood, "cust-en-001", f"Where is my order CMD-{100000 + i}?", event_id=f"{flood}-{i}"
                )
                for i in range(n)
            ],
        )
    )
    latencies = []
    handled: list[int] = []  # how many of the flood's turns the bot had handled as each other conversation was answered
    try:
        await wait_until(lambda: _settled(db, flood, 1, 0), timeout=60, interval=0.1)  # the bot is on the flood
        for i in range(3):
            key = (
                other
                if i == 0
                else next(
                    k
                    for k in (f"test-{uuid.uuid4().hex[:12]}" for _ in range(100))
                    if _partition(k) != _partition(flood)
                )
            )
            asked = time.monotonic()
            await send_message(producer, key, EN, "What are your opening hours?")
            [answer] = await replies.wait_for(key, 1, timeout=60)
            latencies.append(time.monotonic() - asked)
            assert answer["type"] == cloudevents.REPLY_BOT
            handled.append((await _settled(db, flood, 0, 0))[0])
            await asyncio.sleep(1.0)
    finally:
        await sender
    bot = await wait_until(lambda: _settled(db, flood, n, 0), timeout=150)
    print(
        f"\nflood of {n} messages on one key (partition {_partition(flood)}) handled by the bot in"
        f" {time.monotonic() - started:.1f} s; other conversations answered in "
        + ", ".join(f"{s:.2f} s" for s in latencies)
        + f" (the bot had handled {', '.join(map(str, handled))} of the flood's turns then)"
    )
    assert max(latencies) < 30
    assert bot[0] == n


async def test_grpc_bad_input_gets_a_clear_status(stack):
    addr = f"127.0.0.1:{stack.ports['routing']}"
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = desk_grpc.AgentDeskStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.SignIn(
                desk.SignInRequest(agent_id="", languages=["en"]), metadata=service_metadata(), timeout=10
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Accept(desk.AcceptRequest(task_id="task-unknown"), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        agent = f"agent-hostile-{uuid.uuid4().hex[:8]}"
        token = (
            await stub.SignIn(
                desk.SignInRequest(agent_id=agent, languages=["en"], skills=["general"]),
                metadata=service_metadata(),
                timeout=10,
            )
        ).token
        auth = [("authorization", f"Bearer {token}")]
        try:
            for call, expected in (
                (
                    stub.Accept(desk.AcceptRequest(task_id=f"task-{uuid.uuid4()}"), metadata=auth, timeout=10),
                    grpc.StatusCode.NOT_FOUND,
                ),
                (
                    stub.Accept(desk.AcceptRequest(task_id=""), metadata=auth, timeout=10),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
                (
                    stub.Reply(desk.ReplyRequest(task_id="task-x", text=""), metadata=auth, timeout=10),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
                (
                    stub.Close(desk.CloseRequest(task_id="task-\x00"), metadata=auth, timeout=10),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
                (
                    stub.SignIn(
                        desk.SignInRequest(agent_id="agent\x00", languages=["en"]),
                        metadata=service_metadata(),
                        timeout=10,
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await call
                print(f"AgentDesk: {error.value.code().name}: {error.value.details()}")
                assert error.value.code() == expected, error.value.details()
            # Bytes that are not an AcceptRequest at all: refused, and the server goes on.
            garbage = channel.unary_unary(
                "/relais.v1.AgentDesk/Accept", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await garbage(b"\x0a\xff\xff\xff\xff\x0f", metadata=auth, timeout=10)
            print(f"AgentDesk, malformed protobuf: {error.value.code().name}: {error.value.details()}")
            # grpcio's own answer to a request it cannot deserialize is UNKNOWN, with the parse error as details.
            assert error.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN)
            assert "Error parsing message with type 'relais.v1.AcceptRequest'" in error.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Accept(desk.AcceptRequest(task_id="task-unknown"), metadata=auth, timeout=10)
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await stub.SignOut(desk.SignOutRequest(), metadata=auth, timeout=10)

    async with service_channel(f"127.0.0.1:{stack.ports['analytics']}") as channel:
        analytics = analytics_pb2_grpc.AnalyticsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await analytics.GetKpis(analytics_pb2.KpiRequest(window="fortnight"), timeout=10)
        print(f"Analytics: {error.value.code().name}: {error.value.details()}")
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await analytics.GetKpis(analytics_pb2.KpiRequest(window="day"), timeout=30) is not None
