"""Black Friday in a minute: ten times the normal rate, on the real processes. Nothing is dropped, intake
lets the backlog wait in Kafka (not in its memory), waiting customers hear positions and waits that make
sense, and the staffing view sees the surge. Figures are printed (pytest -s)."""

import asyncio
import contextlib
import os
import time
import uuid
from datetime import datetime, timezone

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.timestamp_pb2 import Timestamp
from scipy.stats import spearmanr

from relais.common import bus, cloudevents, topics
from relais.common.config import kafka_security
from relais.common.pb import agent_desk_pb2 as desk, analytics_pb2 as api
from tests.integration.conftest import settled
from tests.integration.test_analytics import analytics_stub

NORMAL_PER_S = 4
SURGE_SECONDS = float(os.environ.get("RELAIS_TEST_SURGE_SECONDS", "45"))
ASKS = [
    ("fr", "Quels sont vos horaires d'ouverture ?"),
    ("en", "What are your opening hours?"),
    ("fr", "Où en est ma commande CMD-100234 ?"),
    ("en", "When are you open on Saturday?"),
    ("fr", "Je veux parler à un conseiller"),
    ("en", "I want to talk to a real person please"),
    ("fr", "C'est inadmissible, je suis furieux, passez-moi quelqu'un !"),
]
HANDOFF_ASKS = {4, 5, 6}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


STAGES = {
    "relais-intake": topics.CONTACT_EVENTS,
    "relais-classifier": topics.TURNS,
    "relais-bot": topics.CLASSIFIED_TURNS,
    "relais-routing": topics.HANDOFFS,
}


class PipelineLag:
    """Records waiting in Kafka before each stage: end offsets minus the stage's committed offsets."""

    def __init__(self, bootstrap: str):
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security())
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **kafka_security())

    async def start(self) -> "PipelineLag":
        await self.admin.start()
        await self.consumer.start()
        self.partitions = {
            group: [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic) or ()]
            for group, topic in STAGES.items()
        }
        return self

    async def __call__(self) -> dict[str, int]:
        lags = {}
        for group, partitions in self.partitions.items():
            committed = await self.admin.list_consumer_group_offsets(group)
            ends = await self.consumer.end_offsets(partitions)
            lags[group] = sum(
                ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp] for tp in partitions
            )
        return lags

    async def stop(self) -> None:
        await self.admin.close()
        with contextlib.suppress(asyncio.CancelledError):  # aiokafka's group-less consumer, on stop
            await self.consumer.stop()


async def test_ten_times_the_rate_loses_nothing_keeps_memory_bounded_and_staffing_sees_it(
    stack, producer, replies, db, agent_session
):
    run = uuid.uuid4().hex[:8]
    sent: dict[str, int] = {}  # conversation -> the ask's index
    memory: dict[str, list[float]] = {name: [] for name in ("intake", "classifier", "bot", "routing", "analytics")}
    lags = []
    stop_sampling = asyncio.Event()

    async def sample():
        while not stop_sampling.is_set():
            for name in memory:
                memory[name].append(rss_mb(stack.processes[name].pid))
            lags.append(await lag())
            await asyncio.sleep(1)

    async def offer(rate: float, seconds: float, phase: str):
        """`rate` new conversations a second, each one message, in batches every 0.1 s."""
        started, n = time.monotonic(), 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            batch = []
            for i in range(n, due):
                index = i % len(ASKS)
                language, text = ASKS[index]
                cid = f"surge-{run}-{phase}-{i}"
                value, headers = cloudevents.contact_message(cid, f"cust-{run}-{i}", text, language=language)
                batch.append(bus.Record(topics.CONTACT_EVENTS, cid.encode(), value, headers))
                sent[cid] = index
            n = due
            if batch:
                await bus.publish(producer, batch)
            await asyncio.sleep(0.1)
        return n

    async def work(agent):
        """An advisor who takes every offer, answers in about a second and closes."""
        while True:
            try:
                offer = await agent.next_event("offer", timeout=3600)
                await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
                await asyncio.sleep(1.0)
                await agent.stub.Close(
                    desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
                )
            except grpc.aio.AioRpcError:
                continue

    baseline = {name: rss_mb(stack.processes[name].pid) for name in memory}
    lag = await PipelineLag(stack.bootstrap).start()
    sampler = asyncio.create_task(sample())
    async with agent_session(f"surge-a-{run}") as first, agent_session(f"surge-b-{run}") as second:
        workers = [asyncio.create_task(work(a)) for a in (first, second)]
        t0 = datetime.now(timezone.utc)
        normal = await offer(NORMAL_PER_S, 10, "normal")
        t1 = datetime.now(timezone.utc)
        surge = await offer(NORMAL_PER_S * 10, SURGE_SECONDS, "surge")
        t2 = datetime.now(timezone.utc)
        after = await offer(NORMAL_PER_S, 10, "after")
        async with asyncio.timeout(600):  # every inbound event gets its answer, however long the backlog
            for cid, index in sent.items():
                kind = cloudevents.REPLY_HANDOFF if index in HANDOFF_ASKS else cloudevents.REPLY_BOT
                while not any(r["type"] == kind for r in replies.replies[cid]):
                    await asyncio.sleep(0.2)
        await settled(stack.bootstrap, replies)  # a duplicate would be in by now
        for task in workers:
            task.cancel()
        signing_out = datetime.now(timezone.utc)
    stop_sampling.set()
    await sampler
    await lag.stop()

    total = normal + surge + after
    answers = [
        r
        for cid in sent
        for r in replies.replies[cid]
        if r["type"] in (cloudevents.REPLY_BOT, cloudevents.REPLY_HANDOFF)
    ]
    assert len(answers) == total == len(sent)  # nothing dropped, nothing answered twice
    assert len({r["id"] for r in answers}) == total

    # Waiting customers: positions from 1, and waits that follow the position (the two advisors take about
    # 1-2 s per contact here, so a wait is at most a few seconds per place in the queue), while they were signed in:
    # once they sign out, a customer still waiting is told that nobody serves the queue, and one whose conversation
    # was open that it is back in the queue ("requeued").
    waiting = [
        r["data"]
        for cid, index in sent.items()
        if index in HANDOFF_ASKS
        for r in replies.replies[cid][:3]
        if r["type"] == cloudevents.REPLY_QUEUE
        and r["data"]["status"] == "waiting"
        and datetime.fromisoformat(r["time"]) < signing_out
    ]
    assert waiting and all(w["position"] >= 1 and w["expected_wait_seconds"] >= 0 for w in waiting)
    positions = [w["position"] for w in waiting]
    waits = [w["expected_wait_seconds"] for w in waiting]
    assert all(wait <= 3 * position + 2 for position, wait in zip(positions, waits))
    rho = spearmanr(positions, waits).statistic
    assert rho > 0.7, (rho, sorted(zip(positions, waits))[:: max(1, len(waiting) // 60)])  # what was told, when not

    # Whatever backlog there was waited in Kafka, before the stage that could not keep up, and drained;
    # memory stayed bounded meanwhile.
    assert not any((await lag()).values())
    most_behind = {group: max(sample[group] for sample in lags) for group in STAGES}
    peaks = {name: max(values) for name, values in memory.items()}
    growth = {name: peaks[name] - baseline[name] for name in memory}
    print(
        f"\nsurge: {total} conversations ({surge} in {SURGE_SECONDS:.0f} s at {NORMAL_PER_S * 10}/s), "
        f"max backlog per stage {most_behind}, RSS peak MB { ({k: round(v) for k, v in peaks.items()}) }, "
        f"growth MB { ({k: round(v) for k, v in growth.items()}) }, max queue position {max(positions)}, position/wait rank correlation {rho:.2f}"
    )
    assert all(peak < 800 for peak in peaks.values()), peaks
    assert all(g < 250 for g in growth.values()), growth

    # The staffing view sees the surge: more arrivals an hour, more advisors needed.
    def span(start, end):
        a, b = Timestamp(), Timestamp()
        a.FromDatetime(start)
        b.FromDatetime(end)
        return {"from": a, "to": b}

    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        async with asyncio.timeout(30):
            while not (during := await stub.GetStaffing(api.StaffingRequest(**span(t1, t2)))).calls_per_hour:
                await asyncio.sleep(0.5)
        before = await stub.GetStaffing(api.StaffingRequest(**span(t0, t1)))
    print(
        f"staffing: before {before.calls_per_hour:.0f}/h -> {before.recommended.agents} agents; "
        f"surge {during.calls_per_hour:.0f}/h -> {during.recommended.agents} agents ({during.basis})"
    )
    assert during.calls_per_hour > 3 * before.calls_per_hour
    assert during.recommended.agents > before.recommended.agents

    # Leave no queue behind for later tests.
    await db.execute(
        "UPDATE tasks SET status = 'closed', closed_at = now() WHERE conversation_id = ANY($1)"
        " AND status IN ('queued', 'offered')",
        list(sent),
    )
