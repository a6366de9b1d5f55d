"""The relais services as real processes, on the session's real Kafka broker and PostgreSQL."""

import asyncio
import os
import secrets
import uuid

import asyncpg
import grpc
import pytest

from infra.ports import free_port
from infra.stack import SERVICES, Stack, prepare
from relais.common import bus, topics
from relais.common.config import kafka_security
from relais.common.grpcserver import token_interceptors
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc
from relais.demo import ReplyWatcher
from tests.integration.otlp import Receiver

# The stack's RELAIS_SERVICE_TOKEN (docs/security.md, "Service token"). Kept in the environment because pytest imports this
# file under two module names (as the conftest, and as tests.integration.conftest from the test modules).
SERVICE_TOKEN = os.environ.setdefault("RELAIS_TEST_SERVICE_TOKEN", secrets.token_urlsafe(24))


RECONNECT_SECONDS = 10  # an agent's front end disconnected this long is signed out


def service_metadata() -> list[tuple[str, str]]:
    """The call metadata the Lookup and Analytics APIs require."""
    return [("authorization", f"Bearer {SERVICE_TOKEN}")]


def service_channel(addr: str) -> grpc.aio.Channel:
    """A channel whose every call carries the service token (for the Lookup and Analytics APIs)."""
    return grpc.aio.insecure_channel(addr, interceptors=token_interceptors(SERVICE_TOKEN))


@pytest.fixture(scope="session")
def otlp():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, kafka_bootstrap, postgres_dsn, otlp):
    asyncio.run(prepare(kafka_bootstrap, postgres_dsn))
    ports = {name: free_port() for name in ("kafka", "kafka_controller", "postgres", *SERVICES)}
    s = Stack(
        tmp_path_factory.mktemp("stack"),
        ports,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",  # every conversation traced whole (shipped default: a share)
            "RELAIS_LOG_LEVEL": "INFO",
            "RELAIS_SERVICE_TOKEN": SERVICE_TOKEN,
            # Short routing timings so offers time out, overflow and wrap-up happen within a test.
            "RELAIS_ROUTING_TICK_SECONDS": "0.2",
            "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": "3",
            "RELAIS_ROUTING_OVERFLOW_SECONDS": "2,4",
            "RELAIS_ROUTING_WRAP_UP_SECONDS": "0.5",
            "RELAIS_ROUTING_DEFAULT_HANDLE_SECONDS": "2",  # expected waits, hence callbacks' due times, of seconds
            "RELAIS_ROUTING_RECONNECT_SECONDS": str(RECONNECT_SECONDS),
            "RELAIS_ROUTING_CENTER": "{time_zone: Europe/Paris}",  # no opening hours: never closed, whatever the test's time
            "RELAIS_ALERT_SECONDS": "1",  # analytics checks the windows touched for alerts every second,
            "RELAIS_ALERT_SETTLE_SECONDS": "4",  # once nothing new came for them for 4 s
        },
    )
    s.use_infra(kafka_bootstrap, postgres_dsn)
    s.start_services()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def gateway(stack) -> str:
    """The HTTP edge (relais.gateway) of the session's stack, started by the first test that needs it: its URL."""
    if "gateway" not in stack.processes:
        stack.start_gateway()
    return stack.endpoints()["RELAIS_HTTP_URL"]


@pytest.fixture(scope="session")
async def producer(stack):
    p = bus.make_producer(stack.bootstrap)
    await p.start()
    yield p
    await p.stop()


# What each service's consumer group reads.
GROUP_TOPICS = {
    "intake": (topics.CONTACT_EVENTS,),
    "classifier": (topics.TURNS,),
    "bot": (topics.CLASSIFIED_TURNS,),
    "routing": (topics.HANDOFFS,),
    "analytics": (topics.OUTCOMES, topics.CLASSIFIED_TURNS, topics.AGENT_EVENTS),
}


async def settled(bootstrap: str, replies: ReplyWatcher | None = None, groups=tuple(GROUP_TOPICS), timeout=180) -> None:
    """Returns once every service group has committed the end of all it reads: everything sent so far was processed,
    and every output of it (a redelivered copy included) acknowledged, since offsets are committed only after that.
    With `replies`, also once the watcher holds every reply published until then. What tests wait on instead of a
    fixed sleep before asserting that nothing more (no duplicate) came."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security())
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **kafka_security())
    await admin.start()
    await reader.start()
    try:
        await reader._client.force_metadata_update()
        behind: dict = {}
        try:
            async with asyncio.timeout(timeout):
                for group in groups:
                    tps = [
                        TopicPartition(topic, p)
                        for topic in GROUP_TOPICS[group]
                        for p in reader.partitions_for_topic(topic) or ()
                    ]
                    ends = await reader.end_offsets(tps)
                    while True:
                        committed = await admin.list_consumer_group_offsets(f"relais-{group}")
                        behind = {
                            f"{group} {tp.topic}[{tp.partition}]": (
                                committed[tp].offset if tp in committed else None,
                                end,
                            )
                            for tp, end in ends.items()
                            if end and (tp not in committed or committed[tp].offset < end)
                        }
                        if not behind:
                            break
                        await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"not settled after {timeout} s; (committed, end) offsets: {behind}") from None
    finally:
        await reader.stop()
        await admin.close()
    if replies is not None:
        await replies.read_to_end()


@pytest.fixture(scope="session")
async def replies(stack):
    watcher = await ReplyWatcher(stack.bootstrap).start()
    yield watcher
    await watcher.stop()


@pytest.fixture(scope="session")
async def db(stack):
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def conversation_id():
    return f"test-{uuid.uuid4().hex[:12]}"


async def reply_of_type(replies, conversation_id: str, event_type: str, timeout: float = 20) -> dict:
    """The conversation's first reply of this type (queue messages may come before it)."""
    async with asyncio.timeout(timeout):
        while True:
            found = [r for r in replies.replies[conversation_id] if r["type"] == event_type]
            if found:
                return found[0]
            await asyncio.sleep(0.05)


ALL_SKILLS = {
    skill: 5
    for skill in ("general", "orders", "billing", "cards", "accounts", "retention", "complaints", "conflict_handling")
}


class AgentSession:
    """A signed-in agent on the real AgentDesk API, with its stream of desk events (every skill at level 5 by default)."""

    def __init__(self, addr: str, agent_id: str, languages=("fr", "en"), skills=(), levels=None, capacity=None):
        self.addr, self.agent_id, self.languages, self.skills = addr, agent_id, list(languages), list(skills)
        self.levels = ALL_SKILLS if levels is None and not skills else (levels or {})
        self.capacity = capacity or {}
        self.events: asyncio.Queue = asyncio.Queue()
        self.assists: dict[str, list[desk.AgentAssist]] = {}  # task_id -> the AssistUpdates received, in order

    async def __aenter__(self):
        self.channel = grpc.aio.insecure_channel(self.addr)
        self.stub = desk_grpc.AgentDeskStub(self.channel)
        reply = await self.stub.SignIn(
            desk.SignInRequest(
                agent_id=self.agent_id,
                languages=self.languages,
                skills=self.skills,
                capacity=self.capacity,
                skill_levels=[desk.SkillLevel(skill=s, level=n) for s, n in self.levels.items()],
            ),
            metadata=service_metadata(),
        )  # what the agents' front end does
        self.token = reply.token
        self.auth = [("authorization", f"Bearer {reply.token}")]
        self.stream = self.stub.Subscribe(desk.SubscribeRequest(), metadata=self.auth)
        # As a front end does: offers go only to agents with a stream, so the session starts once routing has it.
        await self.stream.initial_metadata()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self):
        async for event in self.stream:
            if event.HasField("assist"):
                self.assists.setdefault(event.assist.task_id, []).append(event.assist.assist)
            await self.events.put(event)

    async def assist_for(self, task_id: str, updates: int = 1, timeout: float = 20) -> desk.AgentAssist:
        """The task's assist as the `updates`-th AssistUpdate for it brought it (it follows the offer, then each
        customer message), whatever other events were read meanwhile."""
        async with asyncio.timeout(timeout):
            while len(self.assists.get(task_id, ())) < updates:
                await asyncio.sleep(0.02)
        return self.assists[task_id][updates - 1]

    async def offer_for(self, conversation_id: str, timeout: float = 20) -> desk.Offer:
        """The offer of this conversation; offers left over by other tests are taken and closed."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if not event.HasField("offer"):
                    continue
                if event.offer.context.conversation_id == conversation_id:
                    return event.offer
                try:  # a leftover's offer may have timed out meanwhile
                    await self.stub.Accept(desk.AcceptRequest(task_id=event.offer.task_id), metadata=self.auth)
                    await self.stub.Close(
                        desk.CloseRequest(task_id=event.offer.task_id, disposition="test-cleanup"), metadata=self.auth
                    )
                except grpc.aio.AioRpcError:
                    pass

    def crash(self):
        """The front end is gone without a SignOut: its stream ends, nothing more is read."""
        self._reader.cancel()
        self.stream.cancel()

    async def resubscribe(self):
        """A new stream with the same token, after the routing service restarted."""
        self._reader.cancel()
        self.stream = self.stub.Subscribe(desk.SubscribeRequest(), metadata=self.auth)
        self._reader = asyncio.create_task(self._read())

    async def next_event(self, kind: str, timeout: float = 20):
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event.HasField(kind):
                    return getattr(event, kind)

    async def __aexit__(self, *exc):
        self._reader.cancel()
        self.stream.cancel()
        await self.stub.SignOut(desk.SignOutRequest(), metadata=self.auth)
        await self.channel.close()


@pytest.fixture
def agent_session(stack):
    return lambda agent_id, **kw: AgentSession(f"127.0.0.1:{stack.ports['routing']}", agent_id, **kw)


class ConsoleScript:
    """Drives a console front end (`relais desk`'s run()): lines typed into it, lines it said, waiting for one."""

    def __init__(self):
        self.lines: asyncio.Queue = asyncio.Queue()
        self.said: list[str] = []

    async def typed(self):
        while (line := await self.lines.get()) is not None:
            yield line

    async def shown(self, text: str, after: int = 0, timeout: float = 30) -> int:
        """The index of the first line said from `after` on that contains `text`."""
        async with asyncio.timeout(timeout):
            while not (found := [i for i, line in enumerate(self.said) if i >= after and text in line]):
                await asyncio.sleep(0.05)
        return found[0]
