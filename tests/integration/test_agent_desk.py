"""The agent's desk on the real stack: it holds up across routing restarts, every offer is pushed with its expiry,
and the agent reads the conversation as it happened (advisors' replies included).

Each test speaks its own made-up language, so tasks left by other tests never reach its agents (the customer's
notices then fall back to English). Timings are the test stack's (conftest): offers expire after 3 s, an agent
without a stream is signed out after RECONNECT_SECONDS.
"""

import asyncio
import signal
import time
import uuid

import grpc
import pytest

from relais.common import cloudevents
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, conversation_pb2 as pb
from relais.routing.texts import requeued_notice
from tests.integration.conftest import RECONNECT_SECONDS, SERVICE_TOKEN, ConsoleScript, reply_of_type, service_metadata
from tests.integration.test_routing import context, customer_writes, events_of, hand_off, task_of


@pytest.fixture
def language():
    return f"x{uuid.uuid4().hex[:6]}"


async def stop_routing(stack) -> None:
    assert await asyncio.to_thread(stack.stop_service, "routing", signal.SIGTERM) == 0


async def start_routing(stack) -> None:
    await asyncio.to_thread(stack.start_service, "routing")
    await asyncio.to_thread(stack.wait_healthy, ["routing"])


async def turns_stored(db, conversation_id: str, n: int) -> pb.ConversationContext:
    """The task's context once it holds n turns (routing took the customer's message)."""
    async with asyncio.timeout(30):
        while (
            len((ctx := pb.ConversationContext.FromString((await task_of(db, conversation_id))["context"])).turns) < n
        ):
            await asyncio.sleep(0.1)
    return ctx


async def queued(replies, conversation_id: str) -> None:
    """Routing decided: the customer was told they wait (no agent took the task)."""
    await reply_of_type(replies, conversation_id, cloudevents.REPLY_QUEUE)


async def reply_with_status(replies, conversation_id: str, status: str, timeout: float) -> dict:
    async with asyncio.timeout(timeout):
        while not (found := [r for r in replies.replies[conversation_id] if r["data"].get("status") == status]):
            await asyncio.sleep(0.1)
    return found[0]


def kinds(steps) -> list[str]:
    return [kind for kind, _ in steps]


async def handed_off_and_left_queued(producer, replies, db, ctx: pb.ConversationContext):
    """Hands `ctx` off and returns its task once routing has told the customer to wait, never having offered it."""
    await hand_off(producer, ctx)
    await queued(replies, ctx.conversation_id)
    task = await task_of(db, ctx.conversation_id)
    assert task["status"] == "queued" and "offered" not in kinds(await events_of(db, task["task_id"]))
    return task


def spoken(lines) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in lines]


async def test_an_agent_keeps_its_conversation_across_a_routing_restart_and_no_offer_goes_to_a_dead_desk(
    stack, producer, replies, db, agent_session, language
):
    ctx = context(f"kept-{language}", language, text="My parcel is late")
    async with agent_session(f"kept-{language}", languages=[language], capacity={"chat": 2}) as agent:
        await hand_off(producer, ctx)
        offer = await agent.next_event("offer")
        await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
        await agent.next_event("assignment")  # as it was accepted, on the stream about to drop
        # A desk signed in that never subscribes: its sign-out shows when the reconnect window after the restart closed.
        never_back = f"never-back-{language}"
        await agent.stub.SignIn(
            desk.SignInRequest(agent_id=never_back, languages=[language]), metadata=service_metadata()
        )

        await stop_routing(stack)
        await customer_writes(
            producer, ctx.conversation_id, "Hello? Are you still there?", language
        )  # while it is down
        await start_routing(stack)
        await turns_stored(db, ctx.conversation_id, 2)

        # Its desk has not re-subscribed yet: a new customer is queued, not offered to it.
        newcomer = context(f"newcomer-{language}", language)
        await handed_off_and_left_queued(producer, replies, db, newcomer)

        # The desk comes back with its token: its conversation, with the message sent meanwhile, then the newcomer at once.
        subscribed = time.monotonic()
        await agent.resubscribe()
        assignment = await agent.next_event("assignment")
        assert assignment.task_id == offer.task_id
        assert spoken(assignment.transcript) == [
            ("customer", "My parcel is late"),
            ("customer", "Hello? Are you still there?"),
        ]
        second = await agent.next_event("offer", timeout=10)
        assert (
            second.context.conversation_id == newcomer.conversation_id and time.monotonic() - subscribed < 5
        )  # not the 30 s pass

        # The reconnect window counted from the restart has closed (the desk that never came back is signed out, in
        # the same tick as any other): the customer stays with this advisor, who came back within it.
        async with asyncio.timeout(RECONNECT_SECONDS + 20):
            while await db.fetchval("SELECT state FROM agents WHERE agent_id = $1", never_back) != "offline":
                await asyncio.sleep(0.1)
        await agent.stub.Reply(desk.ReplyRequest(task_id=offer.task_id, text="Yes, I am here."), metadata=agent.auth)
        task = await task_of(db, ctx.conversation_id)
        assert (task["status"], task["agent_id"]) == ("assigned", agent.agent_id)
        assert "requeued" not in [kind for kind, _ in await events_of(db, task["task_id"])]
        assert not [r for r in replies.replies[ctx.conversation_id] if r["data"].get("status") == "requeued"]
        for task_id in (offer.task_id, second.task_id):
            if task_id == second.task_id:
                await agent.stub.Accept(desk.AcceptRequest(task_id=task_id), metadata=agent.auth)
            await agent.stub.Close(
                desk.CloseRequest(task_id=task_id, disposition="resolved", resolved=True), metadata=agent.auth
            )


async def test_an_agent_without_a_stream_gets_no_offer_until_it_subscribes(producer, replies, db, stack, language):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['routing']}") as channel:
        stub = desk_grpc.AgentDeskStub(channel)
        token = (
            await stub.SignIn(
                desk.SignInRequest(agent_id=f"streamless-{language}", languages=[language]), metadata=service_metadata()
            )
        ).token  # signed in, no Subscribe yet
        auth = [("authorization", f"Bearer {token}")]
        ctx = context(f"streamless-{language}", language)
        task = await handed_off_and_left_queued(producer, replies, db, ctx)

        subscribed = time.monotonic()
        stream = stub.Subscribe(desk.SubscribeRequest(), metadata=auth)
        async with asyncio.timeout(10):
            event = await anext(aiter(stream))
        assert event.offer.task_id == task["task_id"] and time.monotonic() - subscribed < 5
        assert event.offer.expires_at.ToSeconds() > time.time()
        stream.cancel()
        await stub.SignOut(desk.SignOutRequest(), metadata=auth)


async def test_a_re_offer_of_the_same_task_is_pushed_with_its_expiry(producer, db, agent_session, language):
    async with agent_session(f"alone-{language}", languages=[language]) as agent:
        ctx = context(f"again-{language}", language)
        await hand_off(producer, ctx)
        first = await agent.next_event("offer")
        await agent.resubscribe()  # the offer is delivered again on the new stream, as after a reconnect
        delivered = await agent.next_event("offer")
        assert (delivered.task_id, delivered.expires_at) == (first.task_id, first.expires_at)

        await agent.stub.Reject(desk.RejectRequest(task_id=first.task_id), metadata=agent.auth)
        assert (await agent.next_event("offer_withdrawn")).reason == "rejected"
        again = await agent.next_event("offer", timeout=5)  # nobody else speaks the language: the same agent, at once
        assert again.task_id == first.task_id and again.expires_at.ToNanoseconds() > first.expires_at.ToNanoseconds()
        assert again.expires_at.ToSeconds() > time.time()

        await agent.stub.Accept(desk.AcceptRequest(task_id=first.task_id), metadata=agent.auth)
        await agent.stub.Transfer(
            desk.TransferRequest(task_id=first.task_id, queue="billing", note="refund agreed"), metadata=agent.auth
        )
        transferred = await agent.next_event("offer", timeout=5)
        assert (transferred.task_id, transferred.note) == (first.task_id, "refund agreed")
        assert transferred.expires_at.ToNanoseconds() > again.expires_at.ToNanoseconds()
        await agent.stub.Reject(desk.RejectRequest(task_id=first.task_id), metadata=agent.auth)
    steps = [kind for kind, _ in await events_of(db, first.task_id)]
    assert [s for s in steps if s != "overflow"][:7] == [
        "queued",
        "offered",
        "rejected",
        "offered",
        "accepted",
        "transferred",
        "offered",
    ]


async def test_the_customer_of_an_agent_who_does_not_come_back_is_requeued_first_and_told(
    producer, replies, db, agent_session, language
):
    ctx = context(f"lost-{language}", language)
    async with agent_session(f"lost-{language}", languages=[language]) as lost:
        await hand_off(producer, ctx)
        offer = await lost.next_event("offer")
        await lost.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=lost.auth)
        lost.crash()  # the front end crashed and does not come back
        notice = await reply_with_status(replies, ctx.conversation_id, "requeued", RECONNECT_SECONDS + 20)
        assert notice["type"] == cloudevents.REPLY_QUEUE
        assert notice["data"]["text"] == requeued_notice(language, signed_out=False)
        assert (await task_of(db, ctx.conversation_id))["status"] == "queued"
        newcomer = context(f"lost-newcomer-{language}", language)
        await hand_off(producer, newcomer)
        await queued(replies, newcomer.conversation_id)
        async with agent_session(f"next-{language}", languages=[language], capacity={"chat": 1}) as following:
            first = await following.next_event("offer")  # ahead of the newcomer
            assert first.task_id == offer.task_id and first.note == "the previous advisor was disconnected"
        lost.auth = [
            (
                "authorization",
                "Bearer "
                + (
                    await lost.stub.SignIn(
                        desk.SignInRequest(  # for its SignOut on exit
                            agent_id=lost.agent_id, languages=[language]
                        ),
                        metadata=service_metadata(),
                    )
                ).token,
            )
        ]


async def test_the_next_advisor_reads_the_conversation_as_it_happened_with_the_first_advisors_replies(
    producer, replies, db, agent_session, language
):
    ctx = context(f"story-{language}", language, text="Where is my order?")
    async with agent_session(f"first-{language}", languages=[language]) as first:
        await hand_off(producer, ctx)
        offer = await first.next_event("offer")
        await first.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=first.auth)
        said = "Hello, I am checking your order. My direct line: 020 7946 0958."
        reply = await first.stub.Reply(desk.ReplyRequest(task_id=offer.task_id, text=said), metadata=first.auth)
        await customer_writes(producer, ctx.conversation_id, "Thanks, it is CMD-123456", language)
        stored = await turns_stored(db, ctx.conversation_id, 2)
        assert [(m.reply_id, m.agent_id, m.after_turn_id) for m in stored.advisor_messages] == [
            (reply.reply_id, first.agent_id, ctx.turns[0].turn_id)
        ]
    sent = await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_AGENT)
    assert (sent["id"], sent["data"]["text"]) == (reply.reply_id, said)  # the customer gets it as written
    async with agent_session(f"second-{language}", languages=[language]) as second:  # the first signed out: requeued
        again = await second.next_event("offer")
        assert again.task_id == offer.task_id
        assert spoken(again.transcript) == [
            ("customer", "Where is my order?"),
            ("advisor", "Hello, I am checking your order. My direct line: [PHONE]."),
            ("customer", "Thanks, it is CMD-123456"),
        ]
        assert again.transcript[1].agent_id == first.agent_id and again.transcript[1].HasField("at")
        notice = await reply_with_status(replies, ctx.conversation_id, "requeued", 10)
        assert notice["data"]["text"] == requeued_notice(language, signed_out=True)


async def test_the_console_desk_reconnects_through_routing_restarts(stack, producer, db, language):
    from relais import desk as console

    script = ConsoleScript()
    lines, said, shown = script.lines, script.said, script.shown
    agent_id = f"console-{language}"
    desk_run = asyncio.create_task(
        console.run(
            f"127.0.0.1:{stack.ports['routing']}",
            agent_id,
            "Console",
            [language],
            console.parse_skills("orders"),
            {"chat": 1},
            script.typed(),
            said.append,
            service_token=SERVICE_TOKEN,
        )
    )
    await shown("signed in as")
    ctx = context(f"console-{language}", language, text="My parcel is late")
    await hand_off(producer, ctx)
    assert "(accept within " in said[await shown("#1 OFFER")]
    lines.put_nowait("accept 1")
    mark = await shown("#1 is yours")

    # SIGTERM and start again: the desk says it reconnects, then gets its conversation back.
    await stop_routing(stack)
    lost = await shown("reconnecting…", mark)
    await customer_writes(producer, ctx.conversation_id, "Anyone there?", language)
    await start_routing(stack)
    back = await shown("reconnected", lost)
    assignment = said[await shown("#1 ASSIGNED to you", back)]
    assert "My parcel is late" in assignment  # the transcript of what the agent holds, or the new message on its own
    await shown("Anyone there?", back)

    # Routing no longer knows the token (signed out while away): the desk signs in again and says so.
    await stop_routing(stack)
    lost = await shown("reconnecting…", back + 1)
    await db.execute("UPDATE agents SET token_sha256 = '' WHERE agent_id = $1", agent_id)
    await start_routing(stack)
    again = await shown("signed in again", lost)
    await shown("#1 ASSIGNED to you", again)
    lines.put_nowait("close 1 resolved")
    await shown("#1 closed (resolved)")
    lines.put_nowait("show 1")
    assert said[await shown("#1 closed (resolved)\n")].count("OFFER") == 0
    lines.put_nowait(None)
    await desk_run
    assert said[-1] == "signed out"
    assert not [s for s in said if s.startswith(("?", "!"))], said
    task = await task_of(db, ctx.conversation_id)
    assert (task["status"], task["agent_id"]) == ("closed", agent_id)


async def test_the_history_gives_the_intent_the_bot_understood(
    producer, replies, agent_session, language, conversation_id
):
    from relais.demo import send_message

    customer = {"id": f"cust-{conversation_id}", "language": "en"}
    await send_message(producer, f"{conversation_id}-before", customer, "What are your opening hours?")
    answered = await reply_of_type(replies, f"{conversation_id}-before", cloudevents.REPLY_BOT)
    assert answered["data"]["intent"]
    async with agent_session(f"historian-{language}", languages=[language]) as agent:
        ctx = context(conversation_id, language, customer_id=customer["id"])
        await hand_off(producer, ctx)
        offer = await agent.next_event("offer")
        history = await agent.stub.GetCustomerHistory(desk.HistoryRequest(task_id=offer.task_id), metadata=agent.auth)
        assert [(c.conversation_id, c.outcome, c.intent) for c in history.conversations] == [
            (f"{conversation_id}-before", "bot_answered", answered["data"]["intent"])
        ]
