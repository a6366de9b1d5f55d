"""Scale-out on Kafka's own mechanism: a second process of the classifier and of the bot joins the same consumer
group (relais-classifier, relais-bot); the processes share the topics' partitions, no turn is answered twice or
not at all, and a conversation's replies come in the order of its turns. When one of the two dies (SIGKILL)
mid-stream, the other takes over its partitions and nothing is lost.

Runs on the session's stack; the extra processes are stopped at the end, leaving one process per service.
"""

import asyncio
import signal
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from relais.common import cloudevents, topics
from relais.demo import send_message
from tests.integration.conftest import settled

SIMPLE = "What are your opening hours?"
ADVISOR = "I want to speak to an advisor please"
CUSTOMER = {"id": "cust-en-001", "language": "en"}
# Two bot answers (the intent allows two), then the customer asks for a person: four replies in a fixed order.
TURNS = [SIMPLE, SIMPLE, ADVISOR]
EXPECTED = [cloudevents.REPLY_BOT, cloudevents.REPLY_BOT, cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE]
GROUPS = {"relais-classifier": topics.TURNS, "relais-bot": topics.CLASSIFIED_TURNS}
PARTITIONS = set(range(6))


async def assignments(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """The partitions of `topic` each member of the consumer group holds (one set per member)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.groups
        state, members = described[2], described[5]
        if state != "Stable":
            return []
        held = []
        for member in members:
            assignment = ConsumerProtocolMemberAssignment.decode(member[4]) if member[4] else None
            held.append({p for t, ps in (assignment.assignment if assignment else []) for p in ps if t == topic})
        return held
    finally:
        await admin.close()


async def wait_members(bootstrap: str, members: int, timeout: float = 90) -> dict[str, list[set[int]]]:
    """Waits until each group is stable with `members` members that split the six partitions between them."""
    deadline = time.monotonic() + timeout
    while True:
        found = {group: await assignments(bootstrap, group, topic) for group, topic in GROUPS.items()}
        if all(
            len(held) == members
            and all(held)
            and set().union(*held) == PARTITIONS
            and sum(map(len, held)) == len(PARTITIONS)
            for held in found.values()
        ):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer groups not shared by {members} members after {timeout:.0f}s: {found}")
        await asyncio.sleep(0.5)


class Stream:
    def __init__(self, name: str, conversations: int):
        run = uuid.uuid4().hex[:8]
        self.ids = [f"scale-{name}-{run}-{i}" for i in range(conversations)]
        self.turn_ids: dict[str, list[str]] = {cid: [] for cid in self.ids}
        self.sent = 0

    @property
    def events(self) -> int:
        return len(self.ids) * len(TURNS)

    async def send(self, producer, pause: float = 0.01) -> None:
        # Turn by turn across all conversations, so each conversation's turns are spread over the stream.
        for text in TURNS:
            for cid in self.ids:
                event_id = str(uuid.uuid4())
                self.turn_ids[cid].append(f"urn:relais:demo#{event_id}")
                await send_message(producer, cid, CUSTOMER, text, event_id=event_id)
                self.sent += 1
                await asyncio.sleep(pause)


async def check(stream: Stream, replies, db, timeout: float = 120) -> int:
    """Every turn answered once, in its conversation's order, one task per conversation; returns redelivered copies."""
    deadline = time.monotonic() + timeout
    while any(len({r["id"] for r in replies.replies[cid]}) < len(EXPECTED) for cid in stream.ids):
        assert time.monotonic() < deadline, "replies missing: " + str(
            {
                cid: [r["type"] for r in replies.replies[cid]]
                for cid in stream.ids
                if len({r["id"] for r in replies.replies[cid]}) < len(EXPECTED)
            }
        )
        await asyncio.sleep(0.2)
    await settled(replies.bootstrap, replies)  # a second, different reply would be in by now
    copies = 0
    for cid in stream.ids:
        seen: dict[str, dict] = {}
        for reply in replies.replies[cid]:
            if reply["id"] in seen:  # a redelivered copy (same id, same content) is what at-least-once allows
                copies += 1
                assert reply == seen[reply["id"]], cid
            seen[reply["id"]] = reply
        distinct = list(seen.values())
        assert [r["type"] for r in distinct] == EXPECTED, cid
        answered = [r["data"]["in_reply_to"] for r in distinct if r["type"] != cloudevents.REPLY_QUEUE]
        assert answered == stream.turn_ids[cid], f"{cid}: replies not in the order of the turns"
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = ANY($1)", stream.ids) == stream.events
    tasks = await db.fetch(
        "SELECT conversation_id, count(*) AS n FROM tasks WHERE conversation_id = ANY($1) GROUP BY 1", stream.ids
    )
    assert sorted((r["conversation_id"], r["n"]) for r in tasks) == sorted((cid, 1) for cid in stream.ids)
    await db.execute(
        "UPDATE tasks SET status = 'closed', closed_at = now() WHERE conversation_id = ANY($1)", stream.ids
    )
    return copies


@pytest.fixture(scope="module")
async def second_processes(stack):
    await asyncio.to_thread(stack.start_instance, "classifier", "classifier-2")
    await asyncio.to_thread(stack.start_instance, "bot", "bot-2")
    yield ("classifier-2", "bot-2")
    for name in ("classifier-2", "bot-2"):
        await asyncio.to_thread(stack.stop_service, name)


async def test_two_processes_share_the_partitions_in_order(stack, second_processes, producer, replies, db):
    shared = await wait_members(stack.bootstrap, 2)
    stream = Stream("shared", 60)
    await stream.send(producer)
    copies = await check(stream, replies, db)
    assert copies == 0, "no process died: nothing should have been sent twice"
    # Still two members each: both processes kept their share while the stream went through.
    assert await wait_members(stack.bootstrap, 2, timeout=10) == shared
    for name in second_processes:
        assert stack.processes[name].poll() is None, stack.log_tail(name)
    print(f"\nshared: {shared}; {stream.events} turns of {len(stream.ids)} conversations, each answered once, in order")


async def test_the_survivor_takes_over_when_one_process_is_killed(stack, second_processes, producer, replies, db):
    await wait_members(stack.bootstrap, 2)
    stream = Stream("takeover", 60)
    sender = asyncio.create_task(stream.send(producer, pause=0.03))
    while stream.sent < stream.events // 3:
        await asyncio.sleep(0.05)
    killed_at = time.monotonic()
    for name in second_processes:
        await asyncio.to_thread(stack.stop_service, name, signal.SIGKILL)
    await sender
    alone = await wait_members(stack.bootstrap, 1)  # after the session timeout, the survivor holds all six
    took_over = time.monotonic() - killed_at
    copies = await check(stream, replies, db)
    print(
        f"\ntakeover: all six partitions back on one process {took_over:.1f}s after the SIGKILL ({alone});"
        f" {stream.events} turns answered once each, in order; {copies} redelivered copies"
    )
