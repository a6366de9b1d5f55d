"""Faults mid-stream: SIGKILL of each service in turn, then a crash and restart of the Kafka broker and of
PostgreSQL. Afterwards every inbound event has exactly one outcome (a bot reply or a hand-off), no conversation
is lost or answered twice, no task is lost or doubled, analytics counts each conversation once, nothing was
dead-lettered and no service died.

These tests run on their own stack (broker, database and services on free ports, in a temporary directory):
crashing the broker or the database must not disturb the session's shared ones.

Redelivery is at least once with deterministic ids (docs/architecture.md, "Delivery guarantees"): a process killed after its
outputs reached the broker but before it recorded that re-sends them with the same id. So replies are
deduplicated by id here, as any consumer does; the copies must be identical to the original, and what is
asserted is that no inbound event gets two different replies, or none.
"""

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from infra.stack import SERVICES, Stack
from relais.common import bus, cloudevents, topics
from relais.demo import ReplyWatcher, send_message
from tests.integration.conftest import settled

SIMPLE = "What are your opening hours?"
ADVISOR = "I want to speak to an advisor please"
CUSTOMER = {"id": "cust-en-001", "language": "en"}
# Three shapes of conversation: a bot answer, a hand-off, and a bot answer then a hand-off (two turns).
SHAPES = [
    ([SIMPLE], [cloudevents.REPLY_BOT]),
    ([ADVISOR], [cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE]),  # no agent signed in: queued
    ([SIMPLE, ADVISOR], [cloudevents.REPLY_BOT, cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE]),
]
LOGS = Path(tempfile.gettempdir()) / "relais-faults-logs"
FIGURES = Path(os.environ.get("RELAIS_FAULT_FIGURES", tempfile.gettempdir())) / "relais-fault-figures.jsonl"


@pytest.fixture(scope="module")
def fault_stack():
    # Directly under /tmp: PostgreSQL's OS user must be able to reach it when the tests run as root.
    state_dir = Path(tempfile.mkdtemp(prefix="relais-faults-"))
    state_dir.chmod(0o755)
    # A durable database (fsync and synchronous commit on, as `make up` runs it): with the tests' fast settings a crash
    # loses commits PostgreSQL had acknowledged, and a reply already sent is then produced again.
    s = Stack.with_free_ports(state_dir, fast_db=False, extra_env={"RELAIS_LOG_LEVEL": "INFO"})
    try:
        s.start_infra()
        s.start_services()
        yield s
    finally:
        s.stop()
        # The services' logs stay readable after the run (the last run's only).
        shutil.rmtree(LOGS, ignore_errors=True)
        shutil.copytree(state_dir / "logs", LOGS, dirs_exist_ok=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def fault_io(fault_stack):
    producer = bus.make_producer(fault_stack.bootstrap, request_timeout_ms=15000)
    await producer.start()
    watcher = await ReplyWatcher(fault_stack.bootstrap).start()
    yield producer, watcher
    await watcher.stop()
    await producer.stop()


class Stream:
    """Conversations of every shape, sent turn by turn; `sent` counts the inbound events the broker acknowledged."""

    def __init__(self, name: str, conversations: int):
        run = uuid.uuid4().hex[:8]
        self.conversations = {f"fault-{name}-{run}-{i}": SHAPES[i % len(SHAPES)] for i in range(conversations)}
        self.turn_ids: dict[str, list[str]] = {cid: [] for cid in self.conversations}
        self.sent = 0
        self.progress = asyncio.Event()
        self.target = 0

    @property
    def events(self) -> int:
        return sum(len(texts) for texts, _ in self.conversations.values())

    async def send(self, producer, pause: float = 0.02) -> None:
        # First turns of every conversation, then the second turns: a conversation's turns are spread over the stream.
        for turn in (0, 1):
            for cid, (texts, _) in self.conversations.items():
                if turn < len(texts):
                    event_id = str(uuid.uuid4())
                    self.turn_ids[cid].append(f"urn:relais:demo#{event_id}")
                    while True:  # the broker may be down: the same event again is harmless (same source + id)
                        try:
                            await send_message(producer, cid, CUSTOMER, texts[turn], event_id=event_id)
                            break
                        except KafkaError:
                            await asyncio.sleep(0.5)
                    self.sent += 1
                    if self.sent >= self.target:
                        self.progress.set()
                    await asyncio.sleep(pause)

    async def reached(self, count: int) -> None:
        self.target = count
        if self.sent < count:
            self.progress.clear()
            await self.progress.wait()


async def wait_outcomes(watcher: ReplyWatcher, stream: Stream, timeout: float, logs: Path | None = None) -> float:
    """Waits until every conversation has its expected number of distinct replies; returns when (monotonic). When
    they do not come, the failure says which service groups are behind and what each service last warned of."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [
            cid
            for cid, (_, expected) in stream.conversations.items()
            if len({r["id"] for r in watcher.replies[cid]}) < len(expected)
        ]
        if not missing:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(missing)} of {len(stream.conversations)} conversations without all their "
                f"replies after {timeout:.0f}s, e.g. {missing[:3]}: "
                f"{[[r['type'] for r in watcher.replies[c]] for c in missing[:3]]}"
                f"\n{await _where_it_stands(watcher.bootstrap, logs)}"
            )
        await asyncio.sleep(0.2)


async def _where_it_stands(bootstrap: str, logs: Path | None) -> str:
    """The groups still behind (committed and end offsets), and each service's last warnings."""
    try:
        await settled(bootstrap, timeout=10)
        lines = ["every group has committed the end of its topics"]
    except AssertionError as behind:
        lines = [str(behind)]
    except Exception as error:  # the broker itself may be what is down
        lines = [f"group offsets unreadable: {error!r}"]
    for log in sorted(logs.glob("*.log")) if logs is not None else ():
        warnings = [
            line for line in log.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line
        ]
        lines += [f"{log.name}: {line}" for line in warnings[-4:]]
    return "\n".join(lines)


async def dead_letters(bootstrap: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topics.DEAD_LETTER, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        found = []
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            found += [(dict(r.headers).get("dlq.reason", b"").decode(), r.value[:200]) for r in batches.get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def check_exactly_one_outcome(stack: Stack, watcher: ReplyWatcher, stream: Stream) -> int:
    """The assertions shared by every fault; returns how many redelivered copies of replies were seen."""
    pool = await asyncpg.create_pool(stack.dsn, min_size=0, max_size=2)  # a new one: the database may have restarted
    try:
        return await _check(stack, watcher, pool, stream)
    finally:
        await pool.close()


def check_replies(stream: Stream, received: dict[str, list[dict]]) -> int:
    """Each conversation's replies (deduplicated by id, copies identical) are the expected ones, one outcome per inbound
    turn in the turns' order; returns how many redelivered copies were seen."""
    copies = 0
    for cid, (_, expected) in stream.conversations.items():
        by_id: dict[str, dict] = {}
        for reply in received[cid]:
            if reply["id"] in by_id:
                copies += 1
                assert reply == by_id[reply["id"]], f"{cid}: two different replies with id {reply['id']}"
            by_id[reply["id"]] = reply
        replies = list(by_id.values())
        assert [r["type"] for r in replies] == expected, cid
        # Every inbound turn has exactly one outcome, in the turns' order: a bot answer or the hand-off notice.
        answers = [
            r["data"]["in_reply_to"] for r in replies if r["type"] in (cloudevents.REPLY_BOT, cloudevents.REPLY_HANDOFF)
        ]
        assert answers == stream.turn_ids[cid], cid
    return copies


async def _check(stack: Stack, watcher: ReplyWatcher, pool, stream: Stream) -> int:
    # Every service settled (analytics included): a second, different reply or outcome would be in by now.
    await settled(watcher.bootstrap, watcher)
    copies = check_replies(stream, watcher.replies)
    ids = list(stream.conversations)
    handed_off = {cid for cid, (texts, _) in stream.conversations.items() if ADVISOR in texts}
    bot = {cid for cid, (texts, _) in stream.conversations.items() if SIMPLE in texts}
    assert await pool.fetchval("SELECT count(*) FROM turns WHERE conversation_id = ANY($1)", ids) == stream.events
    tasks = Counter(
        {
            r["conversation_id"]: r["n"]
            for r in await pool.fetch(
                "SELECT conversation_id, count(*) AS n FROM tasks WHERE conversation_id = ANY($1) GROUP BY 1", ids
            )
        }
    )
    assert set(tasks) == handed_off, "a handed-off conversation has no task, or another one has one"
    assert set(tasks.values()) == {1}, (
        f"conversations with more than one task: {[c for c, n in tasks.items() if n > 1]}"
    )
    assert await pool.fetchval(
        "SELECT count(*) FROM tasks WHERE conversation_id = ANY($1) AND status = 'queued'", ids
    ) == len(handed_off)

    async with asyncio.timeout(60):
        while await pool.fetchval("SELECT count(*) FROM kpi_contacts WHERE conversation_id = ANY($1)", ids) < len(ids):
            await asyncio.sleep(0.2)
    kinds = Counter(
        (r["conversation_id"], r["kind"])
        for r in await pool.fetch("SELECT conversation_id, kind FROM kpi_outcomes WHERE conversation_id = ANY($1)", ids)
    )
    assert {key for key, n in kinds.items() if n > 1} == set(), "an outcome counted twice"
    assert {c for c, k in kinds if k == "bot_answered"} == bot
    assert {c for c, k in kinds if k == "handed_off"} == handed_off
    counts = await pool.fetchrow(
        "SELECT count(*) AS contacts, count(*) FILTER (WHERE bot_answered) AS bot,"
        " count(*) FILTER (WHERE handed_off) AS handed_off, sum(bot_interactions) AS interactions"
        " FROM kpi_contacts WHERE conversation_id = ANY($1)",
        ids,
    )
    assert (counts["contacts"], counts["bot"], counts["handed_off"], counts["interactions"]) == (
        len(ids),
        len(bot),
        len(handed_off),
        len(bot),
    )

    assert await dead_letters(stack.bootstrap) == [], "something was dead-lettered"
    dead = {name: stack.processes[name].returncode for name in SERVICES if stack.processes[name].poll() is not None}
    assert not dead, f"services died: {dead}\n" + "\n".join(stack.log_tail(n) for n in dead)
    # Leave no queue behind for the next test's positions.
    await pool.execute("UPDATE tasks SET status = 'closed', closed_at = now() WHERE conversation_id = ANY($1)", ids)
    return copies


def record_figures(**figures) -> None:
    print("\nfigures:", json.dumps(figures))
    with open(FIGURES, "a") as out:
        out.write(json.dumps(figures) + "\n")


@pytest.mark.parametrize("service", ["intake", "classifier", "bot", "routing", "analytics"])
async def test_sigkill_mid_stream(service, fault_stack, fault_io):
    producer, watcher = fault_io
    stream = Stream(f"kill-{service}", 90)
    sender = asyncio.create_task(stream.send(producer))
    await stream.reached(stream.events // 3)
    killed_at = time.monotonic()
    await asyncio.to_thread(fault_stack.stop_service, service, signal.SIGKILL)
    await asyncio.sleep(1)
    await asyncio.to_thread(fault_stack.start_service, service)
    await asyncio.to_thread(fault_stack.wait_healthy, [service])
    restarted_at = time.monotonic()
    await sender
    done_at = await wait_outcomes(watcher, stream, timeout=120, logs=fault_stack.state_dir / "logs")
    copies = await check_exactly_one_outcome(fault_stack, watcher, stream)
    record_figures(
        fault=f"sigkill {service}",
        events=stream.events,
        conversations=len(stream.conversations),
        down_seconds=round(restarted_at - killed_at, 1),
        all_answered_after_kill=round(done_at - killed_at, 1),
        redelivered_reply_copies=copies,
    )


async def test_kafka_broker_crash_mid_stream(fault_stack, fault_io):
    producer, watcher = fault_io
    stream = Stream("kafka", 90)
    sender = asyncio.create_task(stream.send(producer))
    await stream.reached(stream.events // 3)
    killed_at = time.monotonic()
    await asyncio.to_thread(fault_stack.broker.kill)
    await asyncio.sleep(5)
    await asyncio.to_thread(fault_stack.broker.start)
    restarted_at = time.monotonic()
    await sender
    done_at = await wait_outcomes(watcher, stream, timeout=150, logs=fault_stack.state_dir / "logs")
    copies = await check_exactly_one_outcome(fault_stack, watcher, stream)
    record_figures(
        fault="kafka kill -9 and restart",
        events=stream.events,
        conversations=len(stream.conversations),
        down_seconds=round(restarted_at - killed_at, 1),
        all_answered_after_restart=round(done_at - restarted_at, 1),
        redelivered_reply_copies=copies,
    )


@pytest.mark.parametrize("mode", ["immediate", "fast"])  # a crash; a restart by the administrator
async def test_postgres_restart_mid_stream(mode, fault_stack, fault_io):
    producer, watcher = fault_io
    stream = Stream(f"postgres-{mode}", 90)
    sender = asyncio.create_task(stream.send(producer))
    await stream.reached(stream.events // 3)
    killed_at = time.monotonic()
    await asyncio.to_thread(fault_stack.postgres.stop, mode)
    await asyncio.sleep(5)
    await asyncio.to_thread(fault_stack.postgres.start)
    restarted_at = time.monotonic()
    await sender
    done_at = await wait_outcomes(watcher, stream, timeout=150, logs=fault_stack.state_dir / "logs")
    copies = await check_exactly_one_outcome(fault_stack, watcher, stream)
    record_figures(
        fault=f"postgres stop -m {mode} and restart",
        events=stream.events,
        conversations=len(stream.conversations),
        down_seconds=round(restarted_at - killed_at, 1),
        all_answered_after_restart=round(done_at - restarted_at, 1),
        redelivered_reply_copies=copies,
    )
