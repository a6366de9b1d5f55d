"""`relais bench routing --json`: latency from hand-off event to offer, under load, persistence included.

Starts a private Kafka broker, PostgreSQL (durable settings: fsync on) and the routing service on free ports;
signs in 500 agents (French and English, various skills, 3 chats each) with their offer streams open; queues
1,000 tasks that none of them can take (in German, which none of them speaks: routing widens a task nobody has
the skill for to the overflow stage where someone can, but never across languages) so the queue stays full; then, one at a time, publishes a hand-off on relais.handoffs.v1 and times until its offer arrives
on the agent's stream: Kafka, the transaction in PostgreSQL, the decision and gRPC included. The offer does not
wait for assist (summary and suggestions), which follows on the same stream: its arrival is timed too (`assist_*`).
"""

import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import grpc

from relais.common import bus, grpcserver, progress, topics
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, conversation_pb2 as pb

WAITING_LANGUAGE = "de"  # the waiting tasks' language: none of the agents speaks it
SKILLS = ("general", "orders", "billing", "cards", "accounts", "complaints", "conflict_handling")


def handoff(conversation_id: str, language: str, intent: str) -> bus.Record:
    ctx = pb.ConversationContext(
        conversation_id=conversation_id,
        language=language,
        intent=intent,
        channel=pb.CHANNEL_CHAT,
        customer=pb.Customer(id=f"bench-{conversation_id}"),
        reason=pb.HANDOFF_REASON_CUSTOMER_REQUEST,
    )
    ctx.turns.add(
        turn_id=f"urn:bench#{uuid.uuid4()}",
        conversation_id=conversation_id,
        seq=1,
        language=language,
        text="I would like to speak to someone about my order please",
    )
    return bus.Record(topics.HANDOFFS, conversation_id.encode(), pb.HandoffEvent(handoff=ctx).SerializeToString())


async def measure(
    bootstrap: str,
    dsn: str,
    routing_addr: str,
    tasks: int,
    agents: int,
    samples: int,
    seed: int = 0,
    service_token: str | None = None,
) -> dict:
    rng = random.Random(seed)
    producer = bus.make_producer(bootstrap, linger_ms=0)  # t0 is when the hand-off is sent, not batched
    await producer.start()
    channels = [grpc.aio.insecure_channel(routing_addr) for _ in range(max(1, agents // 100))]
    offered: dict[str, float] = {}
    assisted: dict[str, float] = {}  # task_id -> when its assist arrived
    task_of: dict[str, str] = {}  # conversation_id -> task_id
    arrived = asyncio.Event()
    readers = []
    try:

        async def sign_in(i: int):
            stub = desk_grpc.AgentDeskStub(channels[i % len(channels)])
            levels = {s: rng.randint(1, 3) for s in rng.sample(SKILLS, 3)} | {"orders": rng.randint(1, 3)}
            token = (
                await stub.SignIn(
                    desk.SignInRequest(
                        agent_id=f"bench-agent-{i}",
                        languages=["fr", "en"],
                        capacity={"chat": 3},
                        skill_levels=[desk.SkillLevel(skill=s, level=n) for s, n in levels.items()],
                    ),
                    metadata=grpcserver.token_metadata(service_token),
                )
            ).token
            stream = stub.Subscribe(desk.SubscribeRequest(), metadata=[("authorization", f"Bearer {token}")])

            async def read():
                async for event in stream:
                    if event.HasField("offer"):
                        offered[event.offer.context.conversation_id] = time.perf_counter()
                        task_of[event.offer.context.conversation_id] = event.offer.task_id
                        arrived.set()
                    elif event.HasField("assist"):
                        assisted.setdefault(event.assist.task_id, time.perf_counter())

            readers.append(asyncio.create_task(read()))

        with progress.stage(f"signing in {agents} agents", agents) as signing_in:
            for start in range(0, agents, 50):
                await asyncio.gather(*(sign_in(i) for i in range(start, min(agents, start + 50))))
                signing_in.advance(min(50, agents - start))

        run = uuid.uuid4().hex[:6]
        with progress.stage(f"queueing {tasks} tasks none of them can take"):
            await bus.publish(
                producer, [handoff(f"bench-wait-{run}-{i}", WAITING_LANGUAGE, "close_account") for i in range(tasks)]
            )
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            async with asyncio.timeout(600):
                while (queued := await pool.fetchval("SELECT count(*) FROM tasks WHERE status = 'queued'")) < tasks:
                    taken = await pool.fetchval("SELECT count(*) FROM tasks WHERE status IN ('offered', 'assigned')")
                    if taken:  # the premise is broken: say so rather than wait out the timeout
                        raise RuntimeError(f"{taken} of the tasks meant to wait were offered ({queued} queued)")
                    await asyncio.sleep(0.5)

        latencies, assist_latencies = [], []
        with progress.stage(f"timing {samples + 20} hand-offs one by one", samples + 20) as timing:
            for i in range(samples + 20):  # the first 20 warm up
                cid = f"bench-{run}-{i}"
                arrived.clear()
                started = time.perf_counter()
                await bus.publish(producer, [handoff(cid, rng.choice(("fr", "en")), "order_status")])
                async with asyncio.timeout(30):
                    while cid not in offered:
                        await arrived.wait()
                        arrived.clear()
                await asyncio.sleep(0.05)  # hand-offs one by one, as they come, rather than back to back
                if i >= 20:
                    latencies.append((offered[cid] - started) * 1000)
                    if task_of[cid] in assisted:  # drafted within the 50 ms (else not counted: see assist_samples)
                        assist_latencies.append((assisted[task_of[cid]] - started) * 1000)
                timing.advance()
        waiting = await pool.fetchval("SELECT count(*) FROM tasks WHERE status = 'queued'")
        signed_in = await pool.fetchval("SELECT count(*) FROM agents WHERE state <> 'offline'")
        await pool.close()
    finally:
        for reader in readers:
            reader.cancel()
        for channel in channels:
            await channel.close()
        await producer.stop()
    latencies.sort()
    assist_latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": _p99(latencies),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(latencies[-1], 2),
        "samples": len(latencies),
        "assist_p50_ms": round(statistics.median(assist_latencies), 2) if assist_latencies else None,
        "assist_p99_ms": _p99(assist_latencies) if assist_latencies else None,
        "assist_samples": len(assist_latencies),
        "waiting_tasks": waiting,
        "signed_in_agents": signed_in,
        "measured": "hand-off published on relais.handoffs.v1 (acks=all) -> offer received on the agent's AgentDesk stream,"
        " one hand-off every ~50 ms; assist_*: -> its AssistUpdate on the same stream",
        "persistence": "PostgreSQL, fsync on; outbox and task_events written in the same transaction",
    }


def _p99(values: list[float]) -> float:
    return round(values[min(len(values) - 1, int(len(values) * 0.99))], 2)


def bench_routing(tasks: int = 1000, agents: int = 500, samples: int = 300) -> dict:
    """Runs the whole measurement on a private stack and stops it (needs the repository's infra/)."""
    from infra.stack import Stack

    state = Path(tempfile.mkdtemp(prefix="relais-bench-routing-"))
    stack = Stack.with_free_ports(
        state,
        extra_env={
            "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": "3600",  # offers stay reserved while we measure the next ones
            "RELAIS_ROUTING_OVERFLOW_SECONDS": "3600,7200",  # the 1,000 tasks keep waiting: they do not overflow to the agents
            "RELAIS_LOG_LEVEL": "WARNING",
        },
    )
    try:
        with progress.stage("starting a private stack (Kafka, PostgreSQL, routing)"):
            stack.start_infra()
            stack.start_services(["routing"])
        return asyncio.run(
            measure(
                stack.bootstrap,
                stack.dsn,
                f"127.0.0.1:{stack.ports['routing']}",
                tasks,
                agents,
                samples,
                service_token=stack.service_token,
            )
        )
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def bench_cli(args) -> int:
    result = bench_routing(args.tasks, args.agents, args.samples)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"hand-off to offer, {result['waiting_tasks']} waiting tasks, {result['signed_in_agents']} agents: "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms ({result['samples']} samples);"
            f" its assist follows: p50 {result['assist_p50_ms']} ms, p99 {result['assist_p99_ms']} ms"
        )
    return 0
