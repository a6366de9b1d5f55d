"""Routing as an active process and a standby (docs/operations.md), on a private broker and database:
the standby reports NOT_SERVING and refuses AgentDesk calls until the active one is killed with SIGKILL mid-stream;
then it serves within 15 s, hand-offs published after the kill get their queue message, the agents reconnect to it
and keep their assignment and their pending offer, no task or reservation is lost or doubled, and the killed process
started again is the standby. And health tells the truth: NOT_SERVING while PostgreSQL is stopped, SERVING after.

Only routing runs here (hand-offs are published on relais.handoffs.v1 as the bot does): the test stays short.
"""

import asyncio
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.stack import STANDBY, Stack
from relais import desk
from relais.common import bus, cloudevents
from relais.common.pb import (
    agent_desk_pb2 as desk_pb,
    agent_desk_pb2_grpc as desk_grpc,
    live_pb2 as live_pb,
    live_pb2_grpc as live_grpc,
)
from relais.demo import ReplyWatcher
from tests.integration.conftest import ConsoleScript
from tests.integration.test_routing import context, hand_off

AGENT_DESK = "relais.v1.AgentDesk"
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
TAKEOVER_SECONDS = 15


@pytest.fixture(scope="module")
def pair():
    state_dir = Path(tempfile.mkdtemp(prefix="relais-standby-"))
    state_dir.chmod(0o755)  # PostgreSQL's OS user must reach it when the tests run as root
    s = Stack.with_free_ports(
        state_dir,
        fast_db=True,
        extra_env={
            "RELAIS_LOG_LEVEL": "INFO",
            "RELAIS_HEALTH_SECONDS": "0.5",
            "RELAIS_ROUTING_TICK_SECONDS": "0.2",
            "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": "120",  # the pending offer is still pending after the takeover
            "RELAIS_ROUTING_RECONNECT_SECONDS": "60",
            "RELAIS_ROUTING_CENTER": "{time_zone: Europe/Paris}",
        },
    )
    try:
        s.start_infra()
        s.start_services(["routing"])
        s.start_standby()
        yield s
    finally:
        s.stop()
        shutil.rmtree(Path(tempfile.gettempdir()) / "relais-standby-logs", ignore_errors=True)
        shutil.copytree(state_dir / "logs", Path(tempfile.gettempdir()) / "relais-standby-logs", dirs_exist_ok=True)
        shutil.rmtree(state_dir, ignore_errors=True)


def addr(stack: Stack, name: str) -> str:
    return f"127.0.0.1:{stack.ports[name]}"


async def health(address: str, service: str = AGENT_DESK) -> int | None:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return (
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
            ).status
        except grpc.aio.AioRpcError:
            return None


async def wait_health(address: str, status: int, timeout: float) -> float:
    """Seconds until `address` reports `status` for AgentDesk."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while await health(address) != status:
            await asyncio.sleep(0.1)
    return time.monotonic() - started


class Agent:
    """An agent's front end: signed in once, then subscribed to whichever address it is told."""

    def __init__(self, stack: Stack, agent_id: str, languages=("fr",)):
        self.stack, self.agent_id, self.languages = stack, agent_id, list(languages)
        self.events: asyncio.Queue = asyncio.Queue()
        self.channel: grpc.aio.Channel | None = None
        self.reader: asyncio.Task | None = None

    async def sign_in(self, address: str) -> "Agent":
        self.use(address)
        reply = await self.stub.SignIn(
            desk_pb.SignInRequest(
                agent_id=self.agent_id,
                languages=self.languages,
                capacity={"chat": 1},
                skill_levels=[desk_pb.SkillLevel(skill=s, level=5) for s in ("general", "orders")],
            ),
            metadata=[("authorization", f"Bearer {self.stack.service_token}")],
        )
        self.auth = [("authorization", f"Bearer {reply.token}")]
        await self.subscribe()
        return self

    def use(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = desk_grpc.AgentDeskStub(self.channel)

    async def subscribe(self) -> None:
        self.stream = self.stub.Subscribe(desk_pb.SubscribeRequest(), metadata=self.auth)
        await self.stream.initial_metadata()
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for event in self.stream:
                await self.events.put(event)
        except grpc.aio.AioRpcError as error:
            await self.events.put(error)

    async def next(self, kind: str, timeout: float = 20):
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if isinstance(event, grpc.aio.AioRpcError):
                    raise event
                if event.HasField(kind):
                    return getattr(event, kind)

    async def reconnect(self, address: str) -> None:
        assert self.reader is not None and self.channel is not None  # signed in first
        self.reader.cancel()
        await self.channel.close()
        self.events = asyncio.Queue()
        self.use(address)
        await self.subscribe()

    async def close(self):
        if self.reader:
            self.reader.cancel()
        if self.channel:
            await self.channel.close()


async def test_standby_takes_over_when_the_active_is_killed(pair):
    active, standby = addr(pair, "routing"), addr(pair, STANDBY)
    assert pair.endpoints()["ROUTING_STANDBY_GRPC_ADDR"] == standby
    assert (pair.state_dir / "run" / "routing-standby.pid").exists()
    assert await health(active) == SERVING and await health(active, "") == SERVING
    assert await health(standby) == NOT_SERVING and await health(standby, "") == NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async with grpc.aio.insecure_channel(standby) as channel:
            await desk_grpc.AgentDeskStub(channel).SignIn(
                desk_pb.SignInRequest(agent_id="x", languages=["fr"]),
                metadata=[("authorization", f"Bearer {pair.service_token}")],
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and f"standby: call {active}" in refused.value.details()
    # The supervisors' live view too: only the active process holds the queues.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async with grpc.aio.insecure_channel(standby) as channel:
            await live_grpc.LiveViewStub(channel).GetSnapshot(
                live_pb.WatchRequest(), metadata=[("authorization", f"Bearer {pair.service_token}")]
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and f"standby: call {active}" in refused.value.details()

    run = uuid.uuid4().hex[:6]
    producer = bus.make_producer(pair.bootstrap)
    await producer.start()
    watcher = await ReplyWatcher(pair.bootstrap).start()
    pool = await asyncpg.create_pool(pair.dsn, min_size=1, max_size=2)
    keeper, pending = Agent(pair, f"keeper-{run}"), Agent(pair, f"pending-{run}")
    # `relais desk`, given both addresses, as an agent's front end: it must follow the takeover by itself.
    script = ConsoleScript()
    lines, said, shown = script.lines, script.said, script.shown
    console = asyncio.create_task(
        desk.run(
            f"{active},{standby}",
            f"console-{run}",
            "Console",
            ["de"],
            desk.parse_skills("orders"),
            {"chat": 1},
            script.typed(),
            said.append,
            service_token=pair.service_token,
        )
    )
    try:
        await shown("signed in as")
        await hand_off(producer, context(f"standby-console-{run}", "de", text="Mein Paket ist verspätet"))
        await shown("#1 OFFER")
        lines.put_nowait("accept 1")
        mark = await shown("#1 is yours")
        # An assignment and a pending offer, held by the active process.
        await keeper.sign_in(active)
        assigned_cid, pending_cid = f"standby-assigned-{run}", f"standby-pending-{run}"
        await hand_off(producer, context(assigned_cid, "fr"))
        offer = await keeper.next("offer")
        assert offer.context.conversation_id == assigned_cid
        await keeper.stub.Accept(desk_pb.AcceptRequest(task_id=offer.task_id), metadata=keeper.auth)
        assigned_task = offer.task_id
        await pending.sign_in(active)
        await hand_off(producer, context(pending_cid, "fr"))
        offer = await pending.next("offer")
        assert offer.context.conversation_id == pending_cid  # the keeper is full (one chat)
        pending_task, pending_expiry = offer.task_id, offer.expires_at

        # Hand-offs nobody signed in can take (English): each must get one task and its queue message.
        stream = [f"standby-stream-{run}-{i}" for i in range(30)]
        sent = asyncio.Event()

        async def send():
            for i, cid in enumerate(stream):
                await hand_off(producer, context(cid, "en"))
                if i == len(stream) // 3:
                    sent.set()
                await asyncio.sleep(0.15)

        sender = asyncio.create_task(send())
        await sent.wait()
        killed_at = time.monotonic()
        await asyncio.to_thread(pair.stop_service, "routing", signal.SIGKILL)
        await wait_health(standby, SERVING, TAKEOVER_SECONDS)
        takeover = time.monotonic() - killed_at
        print(f"\nfigures: standby SERVING {takeover:.1f} s after the SIGKILL of the active routing process")
        assert takeover < TAKEOVER_SECONDS
        after_kill = stream[len(stream) // 3 + 1 :]
        async with asyncio.timeout(TAKEOVER_SECONDS + 5):  # the new active consumes: the first hand-off after the kill
            while not watcher.replies[after_kill[0]]:
                await asyncio.sleep(0.1)
        consuming = time.monotonic() - killed_at
        print(f"figures: the first hand-off published after the kill queued and told {consuming:.1f} s after it")
        assert consuming < TAKEOVER_SECONDS
        await sender

        # The agents' front ends reconnect to the process that serves: the assignment and the pending offer are theirs.
        await keeper.reconnect(standby)
        assignment = await keeper.next("assignment")
        assert assignment.task_id == assigned_task
        await pending.reconnect(standby)
        reoffered = await pending.next("offer")
        assert (reoffered.task_id, reoffered.expires_at) == (pending_task, pending_expiry)
        back = await shown("reconnected", mark)  # the console found the process that serves now
        assert "Mein Paket ist verspätet" in said[await shown("#1 ASSIGNED to you", back)]
        lines.put_nowait("reply 1 Ich bin noch da.")
        await shown("sent to #1", back)
        # ... and the new active process decides: the agent replies and closes on it.
        await keeper.stub.Reply(
            desk_pb.ReplyRequest(task_id=assigned_task, text="Bonjour, je reprends."), metadata=keeper.auth
        )
        await keeper.stub.Close(
            desk_pb.CloseRequest(task_id=assigned_task, disposition="resolved", resolved=True), metadata=keeper.auth
        )

        # Every hand-off of the stream, before and after the kill, has one task and one queue message.
        async with asyncio.timeout(30):
            while any(not [r for r in watcher.replies[cid] if r["type"] == cloudevents.REPLY_QUEUE] for cid in stream):
                await asyncio.sleep(0.2)
        tasks = Counter(
            {
                r["conversation_id"]: r["n"]
                for r in await pool.fetch(
                    "SELECT conversation_id, count(*) AS n FROM tasks WHERE conversation_id = ANY($1) GROUP BY 1",
                    stream,
                )
            }
        )
        assert tasks == Counter({cid: 1 for cid in stream}), "a hand-off lost or doubled"
        for cid in stream:
            first = {
                r["id"]
                for r in watcher.replies[cid]
                if r["type"] == cloudevents.REPLY_QUEUE and r["id"].endswith("/queued")
            }
            assert len(first) == 1, (cid, watcher.replies[cid])
        assert all(watcher.replies[cid] for cid in after_kill)

        # No reservation lost or doubled: the pending offer was made once, the assignment accepted once and closed.
        events = Counter(
            (r["task_id"], r["kind"])
            for r in await pool.fetch(
                "SELECT task_id, kind FROM task_events WHERE task_id = ANY($1)", [assigned_task, pending_task]
            )
        )
        assert events[(pending_task, "offered")] == 1 and events[(assigned_task, "accepted")] == 1
        assert events[(assigned_task, "closed")] == 1
        held = {
            r["task_id"]: (r["status"], r["agent_id"])
            for r in await pool.fetch(
                "SELECT task_id, status, agent_id FROM tasks WHERE task_id = ANY($1)", [assigned_task, pending_task]
            )
        }
        assert held == {assigned_task: ("closed", keeper.agent_id), pending_task: ("offered", pending.agent_id)}

        # The killed process, started again, is the standby: it tells callers where the active one is.
        await asyncio.to_thread(pair.start_service, "routing")
        await asyncio.to_thread(pair.wait_healthy, ["routing"], 60, True)
        async with asyncio.timeout(10):
            while True:
                try:
                    async with grpc.aio.insecure_channel(active) as channel:
                        await desk_grpc.AgentDeskStub(channel).SetState(desk_pb.SetStateRequest(), metadata=keeper.auth)
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                    if f"standby: call {standby}" in error.details():
                        break
                await asyncio.sleep(0.2)
        assert await health(active) == NOT_SERVING and await health(standby) == SERVING
        lines.put_nowait("close 1 resolved")
        await shown("#1 closed (resolved)")
        lines.put_nowait(None)
        await console
    finally:
        console.cancel()
        await keeper.close()
        await pending.close()
        await pool.close()
        await watcher.stop()
        await producer.stop()


async def test_health_is_not_serving_while_the_database_is_down(pair):
    addresses = [addr(pair, "routing"), addr(pair, STANDBY)]
    [serving] = [a for a in addresses if await health(a) == SERVING]
    log = pair.state_dir / "logs" / ("routing.log" if serving == addresses[0] else f"{STANDBY}.log")
    await asyncio.to_thread(pair.postgres.stop, "fast")
    try:
        down = await wait_health(serving, NOT_SERVING, 10)
        assert await health(serving, "") == NOT_SERVING
    finally:
        await asyncio.to_thread(pair.postgres.start)
    async with asyncio.timeout(20):  # one of the two serves again (either may take the lease back first)
        while [await health(a) for a in addresses].count(SERVING) != 1:
            await asyncio.sleep(0.2)
    statuses = [await health(a) for a in addresses]
    assert sorted(statuses, key=str) == sorted([SERVING, NOT_SERVING], key=str)  # str: None (unreachable) sorts too
    print(f"\nfigures: NOT_SERVING {down:.1f} s after PostgreSQL stopped")
    assert log.read_text().count("database unreachable") == 1
