"""Routing on the real broker and database: the routing service as a process, agents on the real AgentDesk API.

Hand-offs are published on relais.handoffs.v1 as the bot would. Each test speaks its own made-up language,
so tasks left waiting by other tests never reach its agents. The stack's timings are short (conftest):
offers time out after 3 s, overflow steps come after 2 s and 4 s.
"""

import asyncio
import json
import signal
import time
import uuid

import grpc
import pytest

from relais.common import bus, cloudevents, topics
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb
from tests.integration.conftest import (
    RECONNECT_SECONDS,
    SERVICE_TOKEN,
    reply_of_type,
    service_channel,
    service_metadata,
    settled,
)
from tests.integration.test_walking_skeleton import dead_letters


@pytest.fixture
def language():
    return f"x{uuid.uuid4().hex[:6]}"


def context(
    conversation_id: str,
    language: str,
    intent: str = "order_status",
    tier: str = "",
    text: str = "I need help",
    reasons=(pb.HANDOFF_REASON_CUSTOMER_REQUEST,),
    customer_id: str = "",
) -> pb.ConversationContext:
    ctx = pb.ConversationContext(
        conversation_id=conversation_id,
        language=language,
        intent=intent,
        channel=pb.CHANNEL_CHAT,
        customer=pb.Customer(id=customer_id or f"cust-{conversation_id}", tier=tier),
        reason=reasons[0],
        reasons=list(reasons),
    )
    ctx.turns.add(
        turn_id=f"urn:test#{uuid.uuid4()}", conversation_id=conversation_id, seq=1, text=text, language=language
    )
    ctx.handed_off_at.GetCurrentTime()
    return ctx


async def hand_off(producer, ctx: pb.ConversationContext) -> None:
    await bus.publish(
        producer,
        [bus.Record(topics.HANDOFFS, ctx.conversation_id.encode(), pb.HandoffEvent(handoff=ctx).SerializeToString())],
    )


async def customer_writes(producer, conversation_id: str, text: str, language: str) -> None:
    turn = pb.Turn(turn_id=f"urn:test#{uuid.uuid4()}", conversation_id=conversation_id, text=text, language=language)
    await bus.publish(
        producer,
        [
            bus.Record(
                topics.HANDOFFS, conversation_id.encode(), pb.HandoffEvent(customer_message=turn).SerializeToString()
            )
        ],
    )


async def task_of(db, conversation_id: str, timeout: float = 15):
    async with asyncio.timeout(timeout):
        while (
            task := await db.fetchrow(
                "SELECT * FROM tasks WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT 1", conversation_id
            )
        ) is None:
            await asyncio.sleep(0.1)
    return task


async def events_of(db, task_id: str) -> list[tuple[str, str]]:
    return [
        (r["kind"], r["agent_id"])
        for r in await db.fetch("SELECT kind, agent_id FROM task_events WHERE task_id = $1 ORDER BY id", task_id)
    ]


async def no_offer(agent, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await agent.next_event("offer", timeout=seconds)


async def test_skills_and_language_decide_who_gets_the_task(producer, db, agent_session, language):
    async with (
        agent_session(f"orders-{language}", languages=[language], levels={"orders": 5}) as orders,
        agent_session(f"billing-{language}", languages=[language], levels={"billing": 3}) as billing,
        agent_session(f"billing-other-{language}", languages=["other-" + language], levels={"billing": 5}) as other,
    ):
        dispute = context(f"dispute-{language}", language, intent="disputed_payment")  # billing ≥ 2 by the rules
        await hand_off(producer, dispute)
        offer = await billing.next_event("offer")
        assert offer.context.conversation_id == dispute.conversation_id
        task = await task_of(db, dispute.conversation_id)
        assert task["required"] == '{"billing": 2}' and task["language"] == language
        await no_offer(orders, 0.5)
        await no_offer(other, 0.1)

        nobody = context(f"nobody-{language}", "zz-" + language)  # nobody speaks it: never offered, even after overflow
        await hand_off(producer, nobody)
        await no_offer(orders, 5)
        assert (await task_of(db, nobody.conversation_id))["status"] == "queued"


async def test_a_hand_off_delivered_twice_is_one_task_one_offer_and_one_state_change(
    producer, db, agent_session, language
):
    """The hand-off an agent can take at once is written in one statement (store.py, HANDOFF_OFFERED): the
    deduplication row, the offered task, its steps, the reservation, the agent's state change in the outbox."""
    async with agent_session(f"once-{language}", languages=[language], capacity={"chat": 3}) as agent:
        ctx = context(f"twice-{language}", language)
        await hand_off(producer, ctx)
        await hand_off(producer, ctx)  # delivered again: the same event (same last turn)
        offer = await agent.next_event("offer")
        assert offer.context.conversation_id == ctx.conversation_id and offer.expires_at.seconds > time.time()
        await no_offer(agent, 1.5)
        task = await task_of(db, ctx.conversation_id)
        assert (task["status"], task["agent_id"], task["required"]) == ("offered", agent.agent_id, '{"orders": 1}')
        assert await db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", ctx.conversation_id) == 1
        assert await events_of(db, task["task_id"]) == [("queued", ""), ("offered", agent.agent_id)]
        assert await db.fetchval("SELECT state FROM agents WHERE agent_id = $1", agent.agent_id) == "busy"
        key = f"{ctx.turns[-1].turn_id}/handoff"
        async with asyncio.timeout(10):
            while (
                outbox := [
                    tuple(r)
                    for r in await db.fetch(
                        "SELECT topic, published FROM outbox WHERE consumer = 'routing' AND event_key = $1", key
                    )
                ]
            ) != [(topics.AGENT_EVENTS, True)]:
                assert len(outbox) <= 1, outbox
                await asyncio.sleep(0.1)


async def test_conflict_handlers_get_the_angry_customer_first(producer, agent_session, language):
    async with agent_session(f"plain-{language}", languages=[language], levels={"orders": 3}) as plain:
        await asyncio.sleep(0.2)  # the plain agent has been idle longest
        async with agent_session(
            f"calm-{language}", languages=[language], levels={"orders": 3, "conflict_handling": 2}
        ) as handler:
            angry = context(
                f"angry-{language}",
                language,
                text="This is RIDICULOUS!!!",
                reasons=(pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_CUSTOMER_REQUEST),
            )
            await hand_off(producer, angry)
            offer = await handler.next_event("offer")
            assert offer.context.conversation_id == angry.conversation_id
            assert offer.priority == 5  # the rules' emotion priority
            # Taken, so that a slow machine cannot let the 3 s offer expire and pass it to the plain agent.
            await handler.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=handler.auth)
            calm = context(f"calm-{language}", language)
            await hand_off(producer, calm)
            assert (await plain.next_event("offer")).context.conversation_id == calm.conversation_id


async def test_priority_and_aging_order_the_queue(producer, db, agent_session, language):
    tasks = {}
    for name, tier in (("standard", ""), ("vip", "vip"), ("gold", "gold"), ("old-standard", "")):
        ctx = context(f"{name}-{language}", language, tier=tier)
        await hand_off(producer, ctx)
        tasks[name] = (await task_of(db, ctx.conversation_id))["task_id"]
    # The oldest standard customer has waited 15 minutes: 30 aging points at the default 30 s per point.
    await db.execute(
        "UPDATE tasks SET queued_at = now() - interval '15 minutes' WHERE task_id = $1", tasks["old-standard"]
    )
    async with agent_session(f"agent-{language}", languages=[language], capacity={"chat": 4}) as agent:
        offers = [(await agent.next_event("offer")).context.conversation_id for _ in range(4)]
    assert offers == [f"{n}-{language}" for n in ("old-standard", "vip", "gold", "standard")]


async def test_a_rejected_or_unanswered_offer_goes_to_the_next_agent(producer, db, agent_session, language):
    async with (
        agent_session(f"a1-{language}", languages=[language]) as a1,
        agent_session(f"a2-{language}", languages=[language]) as a2,
        agent_session(f"a3-{language}", languages=[language]) as a3,
    ):
        ctx = context(f"reject-{language}", language)
        await hand_off(producer, ctx)
        first = await a1.next_event("offer")
        await a1.stub.Reject(desk.RejectRequest(task_id=first.task_id, reason="on another call"), metadata=a1.auth)
        second = await a2.next_event("offer")
        assert second.task_id == first.task_id
        started = time.monotonic()
        # a2 does not answer: after the offer timeout (3 s here) it is withdrawn and a3 gets it.
        withdrawn = await a2.next_event("offer_withdrawn", timeout=10)
        assert withdrawn.task_id == first.task_id and withdrawn.reason == "timeout"
        third = await a3.next_event("offer")
        assert third.task_id == first.task_id and time.monotonic() - started >= 2
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await a2.stub.Accept(desk.AcceptRequest(task_id=first.task_id), metadata=a2.auth)
        assert late.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await a3.stub.Accept(desk.AcceptRequest(task_id=first.task_id), metadata=a3.auth)
    steps = await events_of(db, first.task_id)
    assert [s for s in steps if s[0] != "overflow"][:7] == [
        ("queued", ""),
        ("offered", a1.agent_id),
        ("rejected", a1.agent_id),
        ("offered", a2.agent_id),
        ("offer_timeout", a2.agent_id),
        ("offered", a3.agent_id),
        ("accepted", a3.agent_id),
    ]


async def test_overflow_relaxes_the_level_then_opens_the_broader_queue(producer, db, agent_session, language):
    # A billing expert is signed in, on a break: the task waits for the overflow's steps (with nobody signed in able to
    # take it, it would be widened at once: test_customer_side).
    async with (
        agent_session(f"expert-{language}", languages=[language], levels={"billing": 3}) as expert,
        agent_session(f"stranger-{language}", languages=[language], levels={"orders": 1}) as stranger,
    ):
        await expert.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_BREAK), metadata=expert.auth)
        ctx = context(f"overflow-{language}", language, intent="disputed_payment")  # billing ≥ 2
        started = time.monotonic()
        await hand_off(producer, ctx)
        offer = await stranger.next_event("offer", timeout=20)
        waited = time.monotonic() - started
    assert offer.context.conversation_id == ctx.conversation_id
    assert waited >= 3.5  # the broader queue opens after 4 s in the test stack
    rows = await db.fetch("SELECT kind, detail FROM task_events WHERE task_id = $1 ORDER BY id", offer.task_id)
    assert [(r["kind"], r["detail"]) for r in rows][:4] == [
        ("queued", f"needs billing ≥ 2 in {language}, priority 0"),
        ("overflow", "stage 1: levels relaxed by 1"),
        ("overflow", "stage 2: queue any"),
        ("offered", ""),
    ]


async def test_waiting_customers_get_position_and_eta_can_write_and_leave(
    producer, replies, db, agent_session, language
):
    # Callbacks, and what customers hear with nobody signed in: test_customer_side.
    first, second, third = (context(f"wait{i}-{language}", language) for i in (1, 2, 3))
    queued = []
    async with agent_session(f"resting-{language}", languages=[language]) as resting:
        await resting.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_BREAK), metadata=resting.auth)
        for ctx in (first, second, third):
            await hand_off(producer, ctx)
            queued.append(await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_QUEUE))
    assert [q["data"]["position"] for q in queued] == [1, 2, 3]
    assert [q["data"]["status"] for q in queued] == ["waiting"] * 3
    # One advisor serves the queue, no handling time yet: the default (2 s here) per place.
    assert queued[1]["data"]["expected_wait_seconds"] == 2 * 2
    assert queued[1]["data"]["language"] == language and "STOP" in queued[1]["data"]["text"]

    # A message while waiting joins the task's context.
    await customer_writes(producer, first.conversation_id, "Also, my order number is CMD-123456", language)
    async with asyncio.timeout(15):
        while len(pb.ConversationContext.FromString((await task_of(db, first.conversation_id))["context"]).turns) < 2:
            await asyncio.sleep(0.1)

    # The customer leaves: abandonment is recorded.
    await customer_writes(producer, first.conversation_id, "STOP", language)
    left = [r for r in (await replies.wait_for(first.conversation_id, 2)) if r["data"].get("status") == "left"]
    assert left and left[0]["type"] == cloudevents.REPLY_QUEUE
    task = await task_of(db, first.conversation_id)
    assert (task["status"], task["disposition"]) == ("abandoned", "abandoned")
    assert "abandoned" in [kind for kind, _ in await events_of(db, task["task_id"])]


async def test_routing_killed_mid_queue_loses_and_duplicates_no_task(stack, producer, db, agent_session, language):
    conversations = [f"kill{i}-{language}" for i in range(24)]
    async with agent_session(f"agent-{language}", languages=[language], capacity={"chat": 2}) as agent:
        for cid in conversations[:12]:
            await hand_off(producer, context(cid, language))
        held = await agent.next_event("offer")  # a reservation held when routing dies
        code = await asyncio.to_thread(stack.stop_service, "routing", signal.SIGKILL)
        assert code == -signal.SIGKILL
        for cid in conversations[12:]:  # hand-offs keep coming while routing is down
            await hand_off(producer, context(cid, language))
        await asyncio.to_thread(stack.start_service, "routing")
        await asyncio.to_thread(stack.wait_healthy, ["routing"])

        # The agent reconnects with the same token: the reservation is there (or re-offered after its timeout).
        await agent.resubscribe()
        handled: list[str] = []
        async with asyncio.timeout(120):
            while len(handled) < len(conversations):
                offer = await agent.next_event("offer", timeout=60)
                try:
                    await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
                except grpc.aio.AioRpcError:
                    continue  # its reservation expired meanwhile: it will come again
                await agent.stub.Close(
                    desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
                )
                handled.append(offer.context.conversation_id)
    assert sorted(handled) == sorted(conversations)  # each exactly once
    assert held.context.conversation_id in handled
    rows = await db.fetch("SELECT conversation_id, status FROM tasks WHERE conversation_id = ANY($1)", conversations)
    assert sorted(r["conversation_id"] for r in rows) == sorted(conversations)
    assert {r["status"] for r in rows} == {"closed"}


async def test_an_agent_acts_only_on_its_own_assignments(stack, producer, db, agent_session, language):
    async with (
        agent_session(f"owner-{language}", languages=[language]) as owner,
        agent_session(f"other-{language}", languages=[language], levels={"general": 1}) as other,
    ):
        ctx = context(f"own-{language}", language)
        await hand_off(producer, ctx)
        offer = await owner.next_event("offer")
        task_id = offer.task_id

        async def code_of(call, request, metadata):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(request, metadata=metadata)
            return error.value.code()

        denied = grpc.StatusCode.PERMISSION_DENIED
        assert await code_of(other.stub.Accept, desk.AcceptRequest(task_id=task_id), other.auth) == denied
        await owner.stub.Accept(desk.AcceptRequest(task_id=task_id), metadata=owner.auth)
        for call, request in (
            (other.stub.Reply, desk.ReplyRequest(task_id=task_id, text="hi")),
            (other.stub.Close, desk.CloseRequest(task_id=task_id)),
            (other.stub.Reject, desk.RejectRequest(task_id=task_id)),
            (other.stub.Transfer, desk.TransferRequest(task_id=task_id, queue="billing")),
            (other.stub.GetCustomerHistory, desk.HistoryRequest(task_id=task_id)),
            (
                other.stub.RecordSuggestionUse,
                desk.SuggestionUseRequest(task_id=task_id, suggestion_id="x", use=ev.SUGGESTION_USE_USED),
            ),
        ):
            assert await code_of(call, request, other.auth) == denied, call
        assert (
            await code_of(owner.stub.Accept, desk.AcceptRequest(task_id="task-nope"), owner.auth)
            == grpc.StatusCode.NOT_FOUND
        )
        assert (
            await code_of(owner.stub.Reply, desk.ReplyRequest(task_id=task_id, text="  "), owner.auth)
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            await code_of(owner.stub.Accept, desk.AcceptRequest(task_id=task_id), owner.auth)
            == grpc.StatusCode.FAILED_PRECONDITION
        )
        assert (
            await code_of(owner.stub.SetState, desk.SetStateRequest(state=ev.AGENT_STATE_BUSY), owner.auth)
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED
        assert await code_of(owner.stub.Close, desk.CloseRequest(task_id=task_id), []) == unauthenticated
        assert (
            await code_of(
                owner.stub.Close, desk.CloseRequest(task_id=task_id), [("authorization", "Bearer not-a-token")]
            )
            == unauthenticated
        )
        bad_sign_in = desk.SignInRequest(
            agent_id="x", languages=["en"], skill_levels=[desk.SkillLevel(skill="billing", level=9)]
        )
        assert await code_of(owner.stub.SignIn, bad_sign_in, service_metadata()) == grpc.StatusCode.INVALID_ARGUMENT
        # Signing in is the front end's: an agent's own token does not open a session, for itself or another.
        assert (
            await code_of(
                owner.stub.SignIn, desk.SignInRequest(agent_id=other.agent_id, languages=[language]), owner.auth
            )
            == unauthenticated
        )

        # Transfer to another queue with a note: the next agent gets it with the note.
        async with agent_session(f"biller-{language}", languages=[language], levels={"billing": 1}) as biller:
            await owner.stub.Transfer(
                desk.TransferRequest(task_id=task_id, queue="billing", note="refund of 40 EUR agreed"),
                metadata=owner.auth,
            )
            moved = await biller.next_event("offer")
            assert (moved.task_id, moved.note) == (task_id, "refund of 40 EUR agreed")
    assert stack.processes["routing"].poll() is None


async def test_malformed_hand_offs_go_to_the_dead_letter_topic(stack, producer):
    marker = uuid.uuid4().hex.encode()
    await bus.publish(
        producer,
        [
            bus.Record(topics.HANDOFFS, marker, b"\x08\x99garbage"),
            bus.Record(topics.HANDOFFS, marker, pb.HandoffEvent().SerializeToString()),
        ],
    )
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in await dead_letters(stack.bootstrap, marker, 2)]
    assert reasons[0].startswith("bad protobuf") and reasons[1] == "empty HandoffEvent"
    assert stack.processes["routing"].poll() is None


async def test_assist_suggestions_carry_their_articles_history_is_known_and_their_use_reaches_analytics(
    stack, producer, replies, agent_session, conversation_id
):
    from relais.common.pb import analytics_pb2, analytics_pb2_grpc
    from relais.demo import send_message
    from relais.routing.assist import KnowledgeBase

    customer = {"id": f"cust-{conversation_id}", "language": "en"}
    await send_message(producer, f"{conversation_id}-before", customer, "What are your opening hours?")
    await reply_of_type(replies, f"{conversation_id}-before", cloudevents.REPLY_BOT)
    async with service_channel(f"127.0.0.1:{stack.ports['analytics']}") as channel:
        analytics = analytics_pb2_grpc.AnalyticsStub(channel)
        before = (await analytics.GetKpis(analytics_pb2.KpiRequest())).suggestions
        async with agent_session(f"agent-{conversation_id}", languages=["en"]) as agent:
            await send_message(
                producer,
                conversation_id,
                customer,
                "I want to talk to a person: my card payment was declined at the shop twice today",
            )
            offer = await agent.offer_for(conversation_id)
            assert not offer.assist.ByteSize()  # the offer did not wait for its assist: it follows on the stream
            assist = await agent.assist_for(offer.task_id)
            assert assist.summary and assist.suggestions
            knowledge = KnowledgeBase.load()
            for suggestion in assist.suggestions:
                assert suggestion.text and suggestion.source in ("template", "llm") and suggestion.article_ids
                assert all(knowledge.get(a).language == "en" for a in suggestion.article_ids)
            assert "card" in " ".join(assist.suggestions[0].article_ids)

            history = await agent.stub.GetCustomerHistory(
                desk.HistoryRequest(task_id=offer.task_id), metadata=agent.auth
            )
            assert [(c.conversation_id, c.outcome) for c in history.conversations] == [
                (f"{conversation_id}-before", "bot_answered")
            ]
            assert history.conversations[0].summary == "What are your opening hours?"

            accepted = await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
            assert accepted.assignment.assist.suggestions[0].suggestion_id == assist.suggestions[0].suggestion_id
            first = assist.suggestions[0].suggestion_id
            for _ in range(2):  # answered twice: counted once
                await agent.stub.RecordSuggestionUse(
                    desk.SuggestionUseRequest(task_id=offer.task_id, suggestion_id=first, use=ev.SUGGESTION_USE_USED),
                    metadata=agent.auth,
                )
            for other in assist.suggestions[1:]:
                await agent.stub.RecordSuggestionUse(
                    desk.SuggestionUseRequest(
                        task_id=offer.task_id, suggestion_id=other.suggestion_id, use=ev.SUGGESTION_USE_IGNORED
                    ),
                    metadata=agent.auth,
                )
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await agent.stub.RecordSuggestionUse(
                    desk.SuggestionUseRequest(
                        task_id=offer.task_id, suggestion_id="sug-unknown", use=ev.SUGGESTION_USE_EDITED
                    ),
                    metadata=agent.auth,
                )
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
            await agent.stub.Reply(
                desk.ReplyRequest(task_id=offer.task_id, text=assist.suggestions[0].text), metadata=agent.auth
            )

            # A new customer message refreshes the assist.
            await send_message(producer, conversation_id, customer, "It says 'limit reached' on the terminal")
            message = await agent.next_event("customer_message")
            assert message.turn.text == "It says 'limit reached' on the terminal"
            refreshed = await agent.assist_for(offer.task_id, updates=2)
            assert refreshed.summary and refreshed.suggestions
            await agent.stub.Close(
                desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
            )

        ignored = len(assist.suggestions) - 1
        async with asyncio.timeout(20):
            while (
                after := (await analytics.GetKpis(analytics_pb2.KpiRequest())).suggestions
            ).ignored < before.ignored + ignored or after.used < before.used + 1:
                await asyncio.sleep(0.2)
        await settled(stack.bootstrap, groups=("routing", "analytics"))  # a duplicate would be counted by now
        after = (await analytics.GetKpis(analytics_pb2.KpiRequest())).suggestions
    assert (after.used - before.used, after.edited - before.edited, after.ignored - before.ignored) == (1, 0, ignored)
    total = after.used + after.edited + after.ignored
    assert after.acceptance_rate == pytest.approx((after.used + after.edited) / total)


async def test_the_console_desk_takes_an_offer_sends_a_suggestion_and_closes(stack, producer, replies, db, language):
    from relais import desk as console

    lines: asyncio.Queue = asyncio.Queue()
    said: list[str] = []

    async def typed():
        while (line := await lines.get()) is not None:
            yield line

    async def shown(text: str, timeout: float = 20) -> str:
        async with asyncio.timeout(timeout):
            while not any(text in s for s in said):
                await asyncio.sleep(0.05)
        return next(s for s in said if text in s)

    agent_id = f"desk-{language}"
    desk_run = asyncio.create_task(
        console.run(
            f"127.0.0.1:{stack.ports['routing']}",
            agent_id,
            "Console",
            [language],
            console.parse_skills("cards:3,general"),
            {"chat": 1},
            typed(),
            said.append,
            service_token=SERVICE_TOKEN,
        )
    )
    await shown("signed in as")
    ctx = context(
        f"desk-{language}",
        language,
        intent="card_payment_declined",
        text="My card payment was declined at the shop twice today",
    )
    await hand_off(producer, ctx)
    offer = await shown("#1 OFFER")
    assert "My card payment was declined" in offer
    suggestions = await shown("#1 suggestions:")  # drafted after the offer went out, shown under its number
    assert "suggestion 1 [" in suggestions and "summary:" in suggestions
    for line in ("accept 1", "use 1 1", "history 1", "close 1 resolved"):
        lines.put_nowait(line)
    await shown("#1 closed (resolved)")
    lines.put_nowait(None)
    await desk_run
    assert not [s for s in said if s.startswith(("?", "!"))], said
    agent_reply = await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_AGENT)
    assert agent_reply["data"]["agent_id"] == agent_id
    task = await task_of(db, ctx.conversation_id)
    assert (task["status"], task["disposition"], task["resolved"]) == ("closed", "resolved", True)
    survey = await reply_of_type(
        replies, ctx.conversation_id, cloudevents.REPLY_SURVEY
    )  # asked when the contact closes
    assert survey["data"]["survey"]["type"] == cloudevents.CONTACT_SURVEY and survey["data"]["language"] == language

    # Every state change of the agent was an event on relais.agent-events.v1.
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from relais.common.pb import agent_events_pb2 as ev

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [
            TopicPartition(topics.AGENT_EVENTS, p)
            for p in consumer.partitions_for_topic(topics.AGENT_EVENTS)
            or (await consumer._client.force_metadata_update() and consumer.partitions_for_topic(topics.AGENT_EVENTS))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        states = []
        async with asyncio.timeout(20):
            while "offline" not in states:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        event = ev.AgentEvent.FromString(r.value)
                        if event.agent_id == agent_id and event.HasField("state_changed"):
                            states.append(
                                ev.AgentState.Name(event.state_changed.state).removeprefix("AGENT_STATE_").lower()
                            )
    finally:
        await consumer.stop()
    assert states[:3] == ["available", "busy", "wrap_up"] and states[-1] == "offline"


async def test_an_agent_signing_out_hands_its_open_conversations_back(producer, db, agent_session, language):
    ctx = context(f"signout-{language}", language)
    async with agent_session(f"leaving-{language}", languages=[language]) as leaving:
        await hand_off(producer, ctx)
        offer = await leaving.next_event("offer")
        await leaving.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=leaving.auth)
    async with agent_session(f"staying-{language}", languages=[language]) as staying:
        again = await staying.next_event("offer")
    assert again.task_id == offer.task_id and again.note == "the previous advisor signed out"
    assert ("requeued", f"leaving-{language}") in await events_of(db, offer.task_id)


async def test_a_callback_is_a_task_offered_at_its_due_time(producer, replies, db, agent_session, language):
    ctx = context(f"callback-{language}", language)
    # The number to call, as intake keeps it from data.customer.phone (the whole way: test_customer_side).
    await db.execute(
        "INSERT INTO conversations (conversation_id, customer_id, channel, language, callback_phone)"
        " VALUES ($1, $2, 'chat', $3, '+33612345678')",
        ctx.conversation_id,
        ctx.customer.id,
        language,
    )
    await hand_off(producer, ctx)
    await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_QUEUE)
    await customer_writes(producer, ctx.conversation_id, "CALLBACK", language)
    async with asyncio.timeout(15):
        while (task := await task_of(db, ctx.conversation_id))["kind"] != "callback":
            await asyncio.sleep(0.1)
    async with agent_session(f"caller-{language}", languages=[language], capacity={"voice": 1}) as agent:
        offer = await agent.next_event("offer")
    assert offer.callback and offer.task_id == task["task_id"] and offer.callback_phone == "+33612345678"
    offered_at = await db.fetchval("SELECT at FROM task_events WHERE task_id = $1 AND kind = 'offered'", offer.task_id)
    assert offered_at >= task["due_at"]  # not before its due time


async def test_an_agent_disconnected_too_long_is_signed_out_and_its_conversations_go_back(
    producer, db, agent_session, language
):
    ctx = context(f"vanished-{language}", language)
    async with agent_session(f"vanishing-{language}", languages=[language]) as vanishing:
        await hand_off(producer, ctx)
        offer = await vanishing.next_event("offer")
        await vanishing.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=vanishing.auth)
        vanishing.crash()  # the front end crashed: no SignOut
        lost_at = time.monotonic()
        async with agent_session(f"taking-over-{language}", languages=[language]) as taking_over:
            again = await taking_over.next_event("offer", timeout=RECONNECT_SECONDS + 20)
            waited = time.monotonic() - lost_at
        assert again.task_id == offer.task_id and again.note == "the previous advisor was disconnected"
        assert waited >= RECONNECT_SECONDS - 0.5, "signed out before its time to reconnect"
        assert ("requeued", vanishing.agent_id) in await events_of(db, offer.task_id)
        assert await db.fetchval("SELECT state FROM agents WHERE agent_id = $1", vanishing.agent_id) == "offline"
        with pytest.raises(grpc.aio.AioRpcError) as error:  # its session is over: the front end signs in again
            await vanishing.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_AVAILABLE), metadata=vanishing.auth)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        vanishing.auth = [
            (
                "authorization",
                "Bearer "
                + (
                    await vanishing.stub.SignIn(
                        desk.SignInRequest(agent_id=vanishing.agent_id, languages=[language]),
                        metadata=service_metadata(),
                    )
                ).token,
            )
        ]


async def test_an_agent_whose_front_end_is_gone_gets_no_offer(producer, db, agent_session, language):
    async with (
        agent_session(f"gone-{language}", languages=[language]) as gone,
        agent_session(f"present-{language}", languages=[language]) as present,
    ):
        gone.crash()  # the front end crashed: no SignOut
        await asyncio.sleep(0.5)
        ctx = context(f"gone-{language}", language)
        await hand_off(producer, ctx)  # the one who waited longest cannot see it: the other gets it at once
        offer = await present.next_event("offer", timeout=2)
        assert offer.context.conversation_id == ctx.conversation_id
        assert await events_of(db, offer.task_id) == [("queued", ""), ("offered", present.agent_id)]
        # Signing in again means ready to work.
        token = (
            await gone.stub.SignIn(
                desk.SignInRequest(agent_id=gone.agent_id, languages=[language]), metadata=service_metadata()
            )
        ).token
        gone.auth = [("authorization", f"Bearer {token}")]
        assert await db.fetchval("SELECT state FROM agents WHERE agent_id = $1", gone.agent_id) == "available"


async def test_the_queue_news_read_in_postgresql_are_those_the_rules_give(db, language):
    """The ticker asks PostgreSQL which waiting customers have news (store.QUEUE_NEWS) rather than reading and
    sorting the whole queue every tick: the same customers as the rules' places (rules.queue_positions) and test —
    told nobody serves them when that changed, else told their place when it improved. In a transaction rolled back."""
    import random

    from relais.routing import rules, store

    routing_rules = rules.load_rules()
    rng = random.Random(5)
    kinds = [({"orders": 1}, 0), ({"billing": 2}, 0), ({"orders": 1}, 1)]
    unserved = [kinds[1]]  # nobody signed in serves billing ≥ 2 at stage 0
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            for i in range(120):
                required, stage = rng.choice(kinds)
                nobody = (required, stage) in unserved
                callback = i % 15 == 0  # waits for its due time: no place, no queue message
                await conn.execute(
                    "INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, kind, required, stage,"
                    " status, queued_at, last_update_at, told_nobody, due_at) VALUES ($1, $1, $2, '', $3, '',"
                    " $4, $5::jsonb, $6, $7, now() - make_interval(secs => $8), now() - make_interval(secs => $9), $10,"
                    " CASE WHEN $4 = 'callback' THEN now() + interval '1 hour' END)",
                    f"news-{language}-{i}",
                    language,
                    rng.randint(0, 2),
                    "callback" if callback else "handoff",
                    json.dumps(required),
                    stage,
                    "offered" if i % 11 == 0 else "queued",
                    rng.uniform(0, 400),
                    rng.choice((None, None, rng.uniform(0, 120))),
                    nobody == (rng.random() < 0.8),
                )
            now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
            rows = await conn.fetch(
                "SELECT task_id, priority, required::text AS required, stage, status, kind, last_position,"
                " told_nobody, extract(epoch FROM queued_at) AS queued, extract(epoch FROM last_update_at)"
                " AS told_at, extract(epoch FROM due_at) AS due FROM tasks WHERE language = $1",
                language,
            )
            waiting = [
                rules.Task(
                    r["task_id"],
                    language,
                    "chat",
                    json.loads(r["required"]),
                    r["priority"],
                    float(r["queued"]),
                    stage=r["stage"],
                    due_at=float(r["due"]) if r["due"] is not None else None,
                )
                for r in rows
                if r["status"] == "queued"
            ]
            places = rules.queue_positions(waiting, now, routing_rules)
            told = {}  # the place each was last told: none, or around the place they have now
            for task_id, place in places.items():
                told[task_id] = rng.choice((None, place - 1, place, place + 1))
                await conn.execute("UPDATE tasks SET last_position = $2 WHERE task_id = $1", task_id, told[task_id])
            expected = []
            for r in rows:
                if r["status"] != "queued" or r["kind"] != "handoff" or float(r["told_at"] or r["queued"]) >= now - 60:
                    continue
                nobody = (json.loads(r["required"]), r["stage"]) in unserved
                last = told.get(r["task_id"], r["last_position"])
                improved = last is None or places.get(r["task_id"], 0) < last
                if not (nobody == r["told_nobody"] and (nobody or not improved)):
                    expected.append(r["task_id"])
            news = await conn.fetch(
                store.QUEUE_NEWS,
                60,
                routing_rules.aging_seconds_per_point,
                [language],
                ["chat"],
                [json.dumps(required) for required, _ in unserved],
                [stage for _, stage in unserved],
            )
            mine = [r["task_id"] for r in news if r["task_id"].startswith(f"news-{language}-")]
            assert 20 < len(expected) < 80  # both ways occur: some customers have news, others not
            assert sorted(mine) == sorted(expected)
        finally:
            await transaction.rollback()


async def test_the_places_read_from_postgresql_are_the_rules_places(db, language):
    """The waiting customers' places as routing reads them from the database (store.load_places, then counted in
    memory) are rules.queue_position's: priority with aging, then longest waiting; a task not waiting (offered, or a
    callback not due yet) is told 1. In a transaction rolled back."""
    import random

    from relais.routing import rules, store

    routing_rules = rules.load_rules()
    rng = random.Random(7)
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            for i in range(150):
                callback = i % 17 == 0  # waits from its due time, its queued_at (handlers._callback)
                await conn.execute(
                    "INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, kind, status, queued_at,"
                    " due_at) VALUES ($1, $1, $2, '', $3, '', 'handoff', $4, now() - make_interval(secs => $5),"
                    " CASE WHEN $6 THEN now() - make_interval(secs => $5) END)",
                    f"place-{language}-{i}",
                    language,
                    rng.randint(0, 3),
                    "offered" if i % 13 == 0 else "queued",
                    -rng.uniform(60, 600) if callback else rng.choice((rng.uniform(0, 600), 30.0 * rng.randint(1, 9))),
                    callback,
                )
            now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
            rows = await conn.fetch(
                "SELECT task_id, priority, extract(epoch FROM queued_at) AS queued,"
                " extract(epoch FROM due_at) AS due FROM tasks WHERE language = $1 AND status = 'queued'",
                language,
            )
            waiting = [
                rules.Task(
                    r["task_id"],
                    language,
                    "chat",
                    {},
                    r["priority"],
                    float(r["queued"]),
                    due_at=float(r["due"]) if r["due"] is not None else None,
                )
                for r in rows
            ]
            expected = rules.queue_positions(waiting, now, routing_rules)
            places = await store.load_places(conn, routing_rules.aging_seconds_per_point)
            mine = [f"place-{language}-{i}" for i in range(150)]
            assert {t: places.place(t, now) for t in mine} == {t: expected.get(t, 1) for t in mine}
            assert len({places.place(t, now) for t in mine}) > 100  # most are waiting, in distinct places
        finally:
            await transaction.rollback()


async def test_the_overflow_steps_due_are_read_stage_by_stage(db, language):
    """The ticker's overflow read (store.OVERFLOW_DUE, index ranges stage by stage) returns exactly the waiting tasks
    whose next step is due as the rules count it (waited >= the step's after_seconds), callbacks not due left out; and
    TICK_DUE says so in one yes or no. In a transaction rolled back."""
    import random

    from relais.routing import rules, store

    routing_rules = rules.load_rules()
    steps = [step.after_seconds for step in routing_rules.overflow]
    rng = random.Random(11)
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("UPDATE tasks SET status = 'closed' WHERE status = 'queued'")  # this test's tasks alone
            mine = {}
            for i in range(200):
                stage, waited = rng.randint(0, len(steps)), rng.choice((rng.uniform(0, 3 * max(steps)), *steps))
                later = i % 23 == 0  # a callback not due yet
                task_id = f"overflow-{language}-{i}"
                await conn.execute(
                    "INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, kind, status, stage,"
                    " queued_at, due_at) VALUES ($1, $1, $2, '', 0, '', 'handoff', $3, $4, now() - make_interval(secs => $5),"
                    " CASE WHEN $6 THEN now() + interval '1 hour' END)",
                    task_id,
                    language,
                    "offered" if i % 17 == 0 else "queued",
                    stage,
                    waited,
                    later,
                )
                mine[task_id] = (stage, waited, later, i % 17 == 0)
            due = {
                task_id
                for task_id, (stage, waited, later, offered) in mine.items()
                if not offered and not later and stage < len(steps) and waited >= steps[stage]
            }
            rows = await conn.fetch(store.OVERFLOW_DUE, steps, len(steps))
            assert {r["task_id"] for r in rows} == due and len(due) > 20
            assert all(rules.overflow_stage(float(r["waited"]), routing_rules) > r["stage"] for r in rows)
            tick = await conn.fetchrow(store.TICK_DUE, [], steps, len(steps), 2.0)
            assert tick["overflow"]
            await conn.execute("UPDATE tasks SET status = 'closed' WHERE task_id = ANY($1::text[])", sorted(due))
            assert not (await conn.fetchrow(store.TICK_DUE, [], steps, len(steps), 2.0))["overflow"]
        finally:
            await transaction.rollback()


async def test_a_place_counts_the_queue_the_database_holds_even_when_changed_behind_routing(producer, db, language):
    """Routing remembers the waiting customers' places; a waiting task closed by someone else (an operator's SQL)
    is not counted ahead of a newcomer once routing has checked its memory against the database (every second)."""
    from relais.routing import rules
    from relais.routing.memory import PLACES_CHECK_SECONDS

    first = context(f"behind-first-{language}", language)
    await hand_off(producer, first)
    task = await task_of(db, first.conversation_id)
    async with asyncio.timeout(15):  # told its place: routing remembers it waiting
        while (await db.fetchval("SELECT last_position FROM tasks WHERE task_id = $1", task["task_id"])) is None:
            await asyncio.sleep(0.1)
    await db.execute("UPDATE tasks SET status = 'closed', closed_at = now() WHERE task_id = $1", task["task_id"])
    await asyncio.sleep(PLACES_CHECK_SECONDS + 0.2)  # the check's period, not a proof of absence

    newcomer = context(f"behind-new-{language}", language)
    await hand_off(producer, newcomer)
    mine = await task_of(db, newcomer.conversation_id)
    async with asyncio.timeout(15):
        while (
            told := await db.fetchval("SELECT last_position FROM tasks WHERE task_id = $1", mine["task_id"])
        ) is None:
            await asyncio.sleep(0.1)
    now = float(await db.fetchval("SELECT extract(epoch FROM now())"))
    waiting = [
        rules.Task(
            r["task_id"],
            language,
            "chat",
            {},
            r["priority"],
            float(r["queued"]),
            due_at=float(r["due"]) if r["due"] is not None else None,
        )
        for r in await db.fetch(
            "SELECT task_id, priority, extract(epoch FROM queued_at) AS queued,"
            " extract(epoch FROM due_at) AS due FROM tasks WHERE status = 'queued'"
            " AND language = $1",
            language,
        )
    ]
    assert told == rules.queue_positions(waiting, now, rules.load_rules())[mine["task_id"]]
