"""The built-in demo: replays realistic French and English conversations through a running
stack, plays a human advisor for the ones handed off, and prints what happened to each.

The demo advisor signs in at the lowest level of every skill: routing prefers the agent with the better
skill match, then the longest idle, so a real agent signed in with the skill gets the hand-off and the
demo advisor takes only what nobody else can. `relais demo --no-advisor` plays the customers only: the
hand-offs wait for people on `relais desk`, and the demo prints what the customers receive meanwhile.
"""

import asyncio
import json
import uuid
from collections import defaultdict
from pathlib import Path

import grpc
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from relais.common import bus, cloudevents, grpcserver, topics
from relais.common.config import kafka_security
from relais.common.pb import (
    agent_desk_pb2 as desk,
    agent_desk_pb2_grpc as desk_grpc,
    agent_events_pb2 as desk_events,
    analytics_pb2,
    analytics_pb2_grpc,
    conversation_pb2 as pb,
)

CONVERSATIONS = Path(__file__).with_name("conversations.yaml")
DEMO_ADVISOR = "demo-advisor"
# Every skill at level 1, the lowest: any real agent holding the skill matches better (docs/routing.md, "Try it as an agent").
DEMO_ADVISOR_LEVELS = {
    skill: 1
    for skill in ("general", "orders", "billing", "cards", "accounts", "retention", "complaints", "conflict_handling")
}
AGENT_GREETING = {
    "fr": "Bonjour, je suis Camille, conseillère. J'ai tout notre échange sous les yeux ({turns} messages) : je m'en occupe.",
    "en": "Hello, I'm Sam, an advisor. I can see our whole conversation ({turns} messages): I'll take it from here.",
}


class ReplyWatcher:
    """Collects relais.replies.v1 events per conversation, from the moment it starts."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **kafka_security()
        )
        self.replies: dict[str, list[dict]] = defaultdict(list)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None

    async def start(self) -> "ReplyWatcher":
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(topics.REPLIES) or set()
        if not partitions:
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(topics.REPLIES) or set()
        tps = [TopicPartition(topics.REPLIES, p) for p in partitions]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            records = [r for rs in batches.values() for r in rs]
            if records:
                async with self._changed:
                    for r in records:
                        event = json.loads(r.value)
                        self.replies[event["subject"]].append(event)
                    self._changed.notify_all()

    async def read_to_end(self, timeout: float = 30) -> None:
        """Returns once every reply published before the call is in `replies`: the consumer's position moves when
        getmany hands records over, and _run then stores them under the lock (taken here after it)."""
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        async with asyncio.timeout(timeout):
            for tp, end in ends.items():
                while await self.consumer.position(tp) < end:
                    await asyncio.sleep(0.05)
            async with self._changed:
                pass

    async def wait_for(self, conversation_id: str, count: int, timeout: float = 30) -> list[dict]:
        """The conversation's replies, once there are at least `count` (TimeoutError saying what is missing otherwise)."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.replies[conversation_id]) >= count), timeout
                )
            except TimeoutError:
                have = len(self.replies[conversation_id])
                raise TimeoutError(f"{conversation_id}: {have} of {count} replies after {timeout:g} s") from None
            return list(self.replies[conversation_id])

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


async def send_message(
    producer, conversation_id: str, customer: dict, text: str, channel: str = "chat", event_id: str | None = None
) -> str:
    event_id = event_id or str(uuid.uuid4())
    value, headers = cloudevents.contact_message(
        conversation_id,
        customer["id"],
        text,
        channel=channel,
        language=customer.get("language"),
        tier=customer.get("tier"),
        event_id=event_id,
    )
    await bus.publish(producer, [bus.Record(topics.CONTACT_EVENTS, conversation_id.encode(), value, headers)])
    return event_id


async def play_advisor(routing_addr: str, stop: asyncio.Event, log, env: dict[str, str] | None = None) -> None:
    """A demo advisor: signs in (lowest levels, so real agents are preferred), accepts every offer, greets the
    customer with the context, closes. `routing_addr` may list routing's processes (comma-separated): the one
    serving is used."""
    from relais.desk import addresses, serving_address

    addrs = addresses(routing_addr)
    routing_addr = (await serving_address(addrs) if len(addrs) > 1 else None) or addrs[0]
    async with grpcserver.channel(routing_addr, env=env, trace=False) as channel:
        agent = desk_grpc.AgentDeskStub(channel)
        token = (
            await agent.SignIn(
                desk.SignInRequest(
                    agent_id=DEMO_ADVISOR,
                    display_name="Camille / Sam",
                    languages=["fr", "en"],
                    skill_levels=[desk.SkillLevel(skill=s, level=n) for s, n in DEMO_ADVISOR_LEVELS.items()],
                ),
                metadata=grpcserver.token_metadata((env or {}).get("RELAIS_SERVICE_TOKEN") or None),
            )
        ).token
        auth = [("authorization", f"Bearer {token}")]
        stream = agent.Subscribe(desk.SubscribeRequest(), metadata=auth)
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                read = asyncio.ensure_future(stream.read())
                done, _ = await asyncio.wait({read, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                    break
                event = read.result()
                if event is grpc.aio.EOF or not event.HasField("offer"):
                    continue
                task_id, context = event.offer.task_id, event.offer.context
                await agent.Accept(desk.AcceptRequest(task_id=task_id), metadata=auth)
                log(
                    context.conversation_id,
                    f"advisor received {len(context.turns)} turn(s), {len(context.lookups)} lookup(s),"
                    f" reason {pb.HandoffReason.Name(context.reason)}",
                )
                greeting = AGENT_GREETING.get(context.language, AGENT_GREETING["en"]).format(turns=len(context.turns))
                await agent.Reply(desk.ReplyRequest(task_id=task_id, text=greeting), metadata=auth)
                await agent.Close(
                    desk.CloseRequest(task_id=task_id, disposition="resolved", resolved=True), metadata=auth
                )
                # Ready for the next one now, rather than after the wrap-up time.
                await agent.SetState(desk.SetStateRequest(state=desk_events.AGENT_STATE_AVAILABLE), metadata=auth)
        finally:
            stop_waiter.cancel()
            stream.cancel()
            await agent.SignOut(desk.SignOutRequest(), metadata=auth)


async def run_demo(
    endpoints: dict[str, str], timeout: float = 30, advisor: bool = True, wait_for_agents: float = 600
) -> dict[str, str]:
    """Replays the demo; returns each conversation's final reply type. Without `advisor`, the customers only:
    a hand-off waits up to `wait_for_agents` seconds for a person at the desk (its last reply type otherwise)."""
    conversations = yaml.safe_load(CONVERSATIONS.read_text())["conversations"]
    run_id = uuid.uuid4().hex[:6]
    watcher = await ReplyWatcher(endpoints["KAFKA_BOOTSTRAP_SERVERS"]).start()
    producer = bus.make_producer(endpoints["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    stop = asyncio.Event()
    done_count = 0
    results: dict[str, str] = {}

    def log(conversation_id: str, line: str) -> None:
        print(f"  {conversation_id}: {line}", flush=True)

    routing = ",".join(filter(None, (endpoints["ROUTING_GRPC_ADDR"], endpoints.get("ROUTING_STANDBY_GRPC_ADDR"))))
    demo_advisor = asyncio.create_task(play_advisor(routing, stop, log, endpoints)) if advisor else None

    async def play(conversation: dict) -> None:
        nonlocal done_count
        cid = f"{conversation['id']}-{run_id}"
        seen = 0
        for text in conversation["turns"]:
            log(cid, f"customer> {text}")
            await send_message(producer, cid, conversation["customer"], text, conversation.get("channel", "chat"))
            replies = await watcher.wait_for(cid, seen + 1, timeout)
            for reply in replies[seen:]:
                log(cid, f"relais [{reply['type'].split('.')[2]}]> {reply['data']['text']}")
            seen = len(replies)
            if replies[-1]["type"] in (cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE):
                break
        final = (await watcher.wait_for(cid, seen, timeout))[-1]["type"]
        if final in (cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE):
            if advisor:
                replies = await _wait_type(watcher, cid, cloudevents.REPLY_AGENT, timeout)
                log(cid, f"advisor> {replies[-1]['data']['text']}")
                final = cloudevents.REPLY_AGENT
            else:
                log(cid, "handed off: waiting for an advisor at `relais desk`")
                final = await _follow(watcher, cid, seen, wait_for_agents, log) or final
        results[cid] = final
        done_count += 1
        outcome = (
            "answered by the bot"
            if final == cloudevents.REPLY_BOT
            else "handed off, answered by an advisor"
            if final == cloudevents.REPLY_AGENT
            else "handed off, no advisor answered yet (it stays in the queue)"
        )
        print(f"[{done_count}/{len(conversations)}] {cid}: {outcome}", flush=True)

    try:
        print(f"Replaying {len(conversations)} demo conversations (French and English) ...", flush=True)
        if not advisor:
            print(
                f"Customers only: hand-offs wait for an advisor signed in with `relais desk` (up to"
                f" {wait_for_agents:g} s; Ctrl-C stops).",
                flush=True,
            )
        await asyncio.gather(*(play(c) for c in conversations))
        await asyncio.sleep(1)  # let analytics catch up with the last outcomes
        await print_kpis(endpoints["ANALYTICS_GRPC_ADDR"], endpoints.get("RELAIS_SERVICE_TOKEN"), endpoints)
    finally:
        stop.set()
        if demo_advisor:
            await asyncio.gather(demo_advisor, return_exceptions=True)
        await producer.stop()
        await watcher.stop()
    return results


async def _wait_type(watcher: ReplyWatcher, cid: str, event_type: str, timeout: float) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    count = len(watcher.replies[cid])
    while True:
        replies = await watcher.wait_for(cid, count, max(0.1, deadline - asyncio.get_running_loop().time()))
        if any(r["type"] == event_type for r in replies):
            return replies
        count = len(replies) + 1


async def _follow(watcher: ReplyWatcher, cid: str, seen: int, timeout: float, log) -> str | None:
    """Prints the conversation's replies after the first `seen` (queue updates, an advisor's messages) until an
    advisor replies (REPLY_AGENT returned) or `timeout` seconds pass (None)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            replies = await watcher.wait_for(cid, seen + 1, max(0.0, deadline - loop.time()))
        except TimeoutError:
            return None
        for reply in replies[seen:]:
            who = "advisor" if reply["type"] == cloudevents.REPLY_AGENT else f"relais [{reply['type'].split('.')[2]}]"
            log(cid, f"{who}> {reply['data']['text']}")
            if reply["type"] == cloudevents.REPLY_AGENT:
                return cloudevents.REPLY_AGENT
        seen = len(replies)


async def print_kpis(analytics_addr: str, token: str | None = None, env: dict[str, str] | None = None) -> None:
    async with grpcserver.channel(analytics_addr, token, env=env, trace=False) as channel:
        kpis = await analytics_pb2_grpc.AnalyticsStub(channel).GetKpis(analytics_pb2.KpiRequest())
    t = kpis.total
    print(
        f"\nAnalytics (all time): {t.contacts} contacts, {t.bot_resolved} resolved by the bot, {t.handed_off} handed off"
    )
    for language, c in sorted(kpis.by_language.items()):
        print(f"  {language}: {c.contacts} contacts, {c.bot_resolved} bot-resolved, {c.handed_off} handed off")
