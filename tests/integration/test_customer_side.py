"""The customer's side of routing on the real stack: no trap on the way to a person, honest waiting, leaving and
callbacks understood inside a sentence, the end of a conversation.

Tests that only need routing publish hand-offs on relais.handoffs.v1 as the bot would, each in its own made-up
language (its customers read English and French, and tasks left by other tests never reach its agents). Tests of the
whole way (intake, classifier, bot, routing) send CloudEvents in French or English. The test stack's center never
closes (conftest: RELAIS_ROUTING_CENTER); its timings are short (handling time 2 s, overflow after 2 s and 4 s).
"""

import asyncio
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from relais.common import bus, cloudevents, topics
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb
from tests.integration.conftest import reply_of_type, settled
from tests.integration.test_routing import context, customer_writes, hand_off, task_of

README_AGENT = {
    "billing": 3,
    "orders": 2,
    "conflict_handling": 1,
}  # relais desk --skills billing:3,orders:2,conflict_handling


@pytest.fixture
def language():
    return f"x{uuid.uuid4().hex[:6]}"


async def send(
    producer, conversation_id: str, text: str, language: str = "", sent_at: str | None = None, **customer_fields
) -> None:
    """A relais.contact.message.v1 event as an enterprise system sends it (data.customer may carry phone, time_zone)."""
    customer = {"id": f"cust-{conversation_id}", **({"language": language} if language else {}), **customer_fields}
    value = cloudevents.structured(
        cloudevents.CONTACT_MESSAGE,
        "urn:test:customer-side",
        str(uuid.uuid4()),
        conversation_id,
        {
            "channel": "chat",
            "customer": customer,
            "text": text,
            "sent_at": sent_at or datetime.now(timezone.utc).isoformat(),
        },
    )
    await bus.publish(
        producer,
        [
            bus.Record(
                topics.CONTACT_EVENTS,
                conversation_id.encode(),
                value,
                [("content-type", cloudevents.STRUCTURED.encode())],
            )
        ],
    )


async def status_reply(replies, conversation_id: str, status: str, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while not (found := [r for r in replies.replies[conversation_id] if r["data"].get("status") == status]):
            await asyncio.sleep(0.05)
    return found[0]


async def task_event(db, task_id: str, kind: str, timeout: float = 15):
    async with asyncio.timeout(timeout):
        while (
            row := await db.fetchrow(
                "SELECT * FROM task_events WHERE task_id = $1 AND kind = $2 ORDER BY id DESC", task_id, kind
            )
        ) is None:
            await asyncio.sleep(0.05)
    return row


async def callback_offer(agent, conversation_id: str) -> desk.Offer:
    """The callback's offer (the chat task may have been offered as the agent signed in, before its break)."""
    while not (offer := await agent.offer_for(conversation_id)).callback:
        pass
    return offer


async def on_break(agent) -> None:
    """Signed in, serving the queue, but taking no offer for now."""
    await agent.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_BREAK), metadata=agent.auth)


async def test_the_readme_example_agent_gets_a_request_for_a_person_within_seconds(
    producer, replies, db, agent_session
):
    run = uuid.uuid4().hex[:8]
    conversation_id = f"person-{run}"
    async with agent_session(f"alice-{run}", languages=("fr", "en"), levels=README_AGENT) as alice:
        for question in ("What are your opening hours?", "And are you open on Sundays?"):
            before = len([r for r in replies.replies[conversation_id] if r["type"] == cloudevents.REPLY_BOT])
            await send(producer, conversation_id, question, "en")
            async with asyncio.timeout(30):
                while (
                    len([r for r in replies.replies[conversation_id] if r["type"] == cloudevents.REPLY_BOT]) == before
                ):
                    await asyncio.sleep(0.05)
        asked = time.monotonic()
        await send(producer, conversation_id, "Thanks, but I would like to talk to a real person", "en")
        offer = await alice.offer_for(conversation_id, timeout=30)
        waited = time.monotonic() - asked
    assert waited < 10, f"the example agent got the request after {waited:.1f} s"
    task = await task_of(db, conversation_id)
    assert json.loads(task["required"]) == {}  # any advisor of the language, not skill `general`
    assert offer.context.reason == pb.HANDOFF_REASON_CUSTOMER_REQUEST


async def test_a_task_nobody_signed_in_can_take_is_widened_at_once(producer, db, agent_session, language):
    async with agent_session(f"stranger-{language}", languages=[language], levels={"orders": 1}) as stranger:
        dispute = context(f"widen-{language}", language, intent="disputed_payment")  # billing ≥ 2
        started = time.monotonic()
        await hand_off(producer, dispute)
        offer = await stranger.next_event("offer", timeout=10)
        assert offer.context.conversation_id == dispute.conversation_id
        assert time.monotonic() - started < 3.5  # not after the overflow's 4 s
        rows = await db.fetch("SELECT kind, detail FROM task_events WHERE task_id = $1 ORDER BY id", offer.task_id)
        assert [(r["kind"], r["detail"]) for r in rows][:3] == [
            ("queued", f"needs billing ≥ 2 in {language}, priority 0"),
            ("overflow", f"stage 2: queue any at once: no advisor signed in for billing ≥ 2 in {language}"),
            ("offered", ""),
        ]

    # Waiting for a specialist who is signed in (on a break) is no trap; once the specialist signs out, the task is
    # widened at once to someone signed in who can take it — before the overflow's first step (2 s), let alone its 4 s.
    expert = await agent_session(f"expert-{language}", languages=[language], levels={"billing": 3}).__aenter__()
    await on_break(expert)
    async with agent_session(f"other-{language}", languages=[language], levels={"orders": 1}) as other:
        second = context(f"widen2-{language}", language, intent="disputed_payment")
        await hand_off(producer, second)
        task = await task_of(db, second.conversation_id)
        await task_event(db, task["task_id"], "queued")
        await expert.stub.SignOut(desk.SignOutRequest(), metadata=expert.auth)
        offer = await other.offer_for(second.conversation_id, timeout=10)
    expert._reader.cancel()
    await expert.channel.close()
    rows = await db.fetch(
        "SELECT kind, detail FROM task_events WHERE task_id = $1 AND kind = 'overflow' ORDER BY id", offer.task_id
    )
    assert rows[0]["detail"] == f"stage 2: queue any at once: no advisor signed in for billing ≥ 2 in {language}"


async def test_a_transfer_to_a_queue_nobody_signed_in_serves_is_widened_at_once(producer, db, agent_session, language):
    async with (
        agent_session(f"first-{language}", languages=[language], levels={"orders": 2}) as first,
        agent_session(f"next-{language}", languages=[language], levels={"billing": 1}) as following,
    ):
        await on_break(following)
        ctx = context(f"transfer-{language}", language)  # order_status: orders ≥ 1
        await hand_off(producer, ctx)
        offer = await first.next_event("offer")
        await first.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=first.auth)
        await following.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_AVAILABLE), metadata=following.auth)
        await first.stub.Transfer(
            desk.TransferRequest(task_id=offer.task_id, queue="cards", note="a card question"), metadata=first.auth
        )
        moved = await following.next_event("offer", timeout=10)
    assert (moved.task_id, moved.note) == (offer.task_id, "a card question")
    rows = await db.fetch(
        "SELECT detail FROM task_events WHERE task_id = $1 AND kind = 'overflow' ORDER BY id", offer.task_id
    )
    assert rows[0]["detail"] == f"stage 2: queue any at once: no advisor signed in for cards ≥ 1 in {language}"


async def test_with_nobody_signed_in_no_wait_is_made_up_and_a_callback_is_offered(
    producer, replies, db, agent_session, language
):
    alone = context(f"alone-{language}", language)
    await hand_off(producer, alone)
    told = (await reply_of_type(replies, alone.conversation_id, cloudevents.REPLY_QUEUE))["data"]
    assert told["status"] == "waiting" and told["callback_offered"] and told["advisors_available"] is False
    assert "expected_wait_seconds" not in told and " min" not in told["text"]
    # A language without texts here: English, then French.
    assert "No advisor is available" in told["text"] and "Aucun conseiller n'est disponible" in told["text"]
    assert "CALLBACK" in told["text"] and "RAPPEL" in told["text"]

    # Waits come from the advisors who serve that queue: the one on a break counts, a voice-only one does not.
    other = language + "b"
    async with (
        agent_session(f"chat-{other}", languages=[other]) as chat,
        agent_session(f"voice-{other}", languages=[other], capacity={"chat": 0, "voice": 1}),
    ):
        await on_break(chat)
        served = context(f"served-{other}", other)
        await hand_off(producer, served)
        told = (await reply_of_type(replies, served.conversation_id, cloudevents.REPLY_QUEUE))["data"]
    assert told["advisors_available"] and told["position"] == 1
    assert told["expected_wait_seconds"] == 2  # position × default handling time (2 s here) ÷ the one serving advisor
    assert not told["callback_offered"] and "RAPPEL" not in told["text"]


async def test_leaving_is_understood_inside_a_sentence_and_a_look_alike_is_a_message(producer, replies, db, language):
    ctx = context(f"leave-{language}", language)
    await hand_off(producer, ctx)
    await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_QUEUE)
    task = await task_of(db, ctx.conversation_id)
    await customer_writes(producer, ctx.conversation_id, "stop charging my card twice", language)
    await task_event(db, task["task_id"], "customer_message")
    assert (await task_of(db, ctx.conversation_id))["status"] == "queued"
    await customer_writes(producer, ctx.conversation_id, "Bon, stop, j'abandonne, c'est trop long.", language)
    left = await status_reply(replies, ctx.conversation_id, "left")
    assert "You have left the queue" in left["data"]["text"]
    task = await task_of(db, ctx.conversation_id)
    assert (task["status"], task["disposition"]) == ("abandoned", "abandoned")


async def test_a_callback_that_was_not_offered_is_a_message(producer, replies, db, agent_session, language):
    async with agent_session(f"serving-{language}", languages=[language]) as agent:
        await on_break(agent)  # serving the queue: the wait is seconds, no callback offered
        ctx = context(f"nocallback-{language}", language)
        await hand_off(producer, ctx)
        told = (await reply_of_type(replies, ctx.conversation_id, cloudevents.REPLY_QUEUE))["data"]
        assert not told["callback_offered"]
        task = await task_of(db, ctx.conversation_id)
        await customer_writes(producer, ctx.conversation_id, "pouvez-vous me rappeler plutôt ?", language)
        await task_event(db, task["task_id"], "customer_message")
        await settled(replies.bootstrap, replies, groups=("routing",))  # a reply to that message would be in by now
        task = await task_of(db, ctx.conversation_id)
        assert (task["kind"], task["status"], task["phone_asked_at"]) == ("handoff", "queued", None)
        assert not [
            r for r in replies.replies[ctx.conversation_id] if r["data"].get("status", "").startswith("callback")
        ]


async def test_a_callback_is_told_in_the_customer_time_zone_and_its_offer_carries_the_number(
    producer, replies, db, agent_session
):
    run = uuid.uuid4().hex[:8]
    conversation_id = f"callback-{run}"
    phone = "+33 6 12 34 56 78"
    await send(
        producer,
        conversation_id,
        "Je voudrais parler à un conseiller s'il vous plaît",
        "fr",
        phone=phone,
        time_zone="America/Montreal",
    )
    told = (await reply_of_type(replies, conversation_id, cloudevents.REPLY_QUEUE))["data"]
    assert told["callback_offered"] and "expected_wait_seconds" not in told  # nobody signed in for French
    async with agent_session(f"caller-{run}", languages=["fr"]) as caller:
        await on_break(caller)
        await send(producer, conversation_id, "Bon, pouvez-vous me rappeler plutôt ?", "fr")
        answer = (await status_reply(replies, conversation_id, "callback"))["data"]
        due = datetime.fromisoformat(answer["callback_due_at"])
        montreal = datetime.now(ZoneInfo("America/Montreal"))
        assert due.utcoffset() == montreal.utcoffset()  # in the customer's zone, from the event
        assert f"à {due.strftime('%H:%M')} (America/Montreal)" in answer["text"]
        assert answer["text"].startswith("C'est noté : un conseiller vous rappellera")
        task = await task_of(db, conversation_id)
        assert (task["kind"], task["channel"], task["callback_phone"]) == ("callback", "voice", "+33612345678")
        await caller.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_AVAILABLE), metadata=caller.auth)
        offer = await callback_offer(caller, conversation_id)
        assert offer.callback and offer.callback_phone == "+33612345678"
    # The number is in the callback task only: not in the turns, the contexts or the offer's conversation.
    digits = "612345678"
    assert digits not in offer.context.SerializeToString().decode("utf-8", "replace")
    for table, column in (("turns", "text"), ("bot_conversations", "context"), ("tasks", "context")):
        rows = await db.fetch(f"SELECT {column} FROM {table} WHERE conversation_id = $1", conversation_id)
        assert rows and not [
            r
            for r in rows
            if digits in (r[column] if isinstance(r[column], str) else r[column].decode("utf-8", "replace"))
        ], table


async def test_an_unknown_number_is_asked_for_and_the_answer_gives_it_without_storing_it_in_the_transcript(
    producer, replies, db, agent_session
):
    run = uuid.uuid4().hex[:8]
    conversation_id = f"asknumber-{run}"
    await send(producer, conversation_id, "I want to speak to an advisor please", "en")
    await reply_of_type(replies, conversation_id, cloudevents.REPLY_QUEUE)
    await send(producer, conversation_id, "Actually, could you call me back instead?", "en")
    asked = (await status_reply(replies, conversation_id, "callback_phone_requested"))["data"]
    assert asked["text"].startswith("Which number should we call you back on?")
    assert (await task_of(db, conversation_id))["kind"] == "handoff"  # keeps its place meanwhile
    async with agent_session(f"caller-{run}", languages=["en"]) as caller:
        await on_break(caller)
        # Written in India: the time is told in the offset of sent_at.
        sent_at = datetime.now(timezone(timedelta(hours=5, minutes=30))).isoformat()
        await send(producer, conversation_id, "Sure, it's +44 20 7946 0958, thanks", "en", sent_at=sent_at)
        answer = (await status_reply(replies, conversation_id, "callback"))["data"]
        assert answer["callback_due_at"].endswith("+05:30") and "(UTC+05:30)" in answer["text"]
        task = await task_of(db, conversation_id)
        assert (task["kind"], task["callback_phone"]) == ("callback", "+442079460958")
        texts = [
            r["text"]
            for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 ORDER BY seq", conversation_id)
        ]
        assert texts[-1] == "Sure, it's [PHONE], thanks"
        await caller.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_AVAILABLE), metadata=caller.auth)
        offer = await callback_offer(caller, conversation_id)
    # The whole number, written or normalised: four digits alone once matched a random id in the context.
    assert offer.callback_phone == "+442079460958" and not re.search(r"7946\D?0958", str(offer.context))


async def test_thanks_after_the_advisor_closed_opens_no_task_and_a_new_request_opens_one_with_the_history(
    producer, replies, db, agent_session
):
    run = uuid.uuid4().hex[:8]
    conversation_id = f"thanks-{run}"
    async with agent_session(f"advisor-{run}", languages=["en"]) as advisor:
        await send(producer, conversation_id, "I want to talk to a person about my account", "en")
        offer = await advisor.offer_for(conversation_id)
        await advisor.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=advisor.auth)
        await advisor.stub.Reply(
            desk.ReplyRequest(task_id=offer.task_id, text="Done, your account is updated."), metadata=advisor.auth
        )
        await advisor.stub.Close(
            desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=advisor.auth
        )
        await send(producer, conversation_id, "Thanks a lot, bye!", "en")
        goodbye = await status_reply(replies, conversation_id, "ended")
        assert goodbye["type"] == cloudevents.REPLY_QUEUE and goodbye["data"]["text"] == "Thank you, have a nice day!"
        await send(producer, conversation_id, "merci, au revoir", "en")
        await task_event(db, offer.task_id, "after_end")
        async with asyncio.timeout(15):
            while (
                len(
                    await db.fetch("SELECT 1 FROM task_events WHERE task_id = $1 AND kind = 'after_end'", offer.task_id)
                )
                < 2
            ):
                await asyncio.sleep(0.05)
        await settled(replies.bootstrap, replies, groups=("bot", "routing"))  # a second goodbye's reply would be in
        assert await db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", conversation_id) == 1
        assert len([r for r in replies.replies[conversation_id] if r["data"].get("status") == "ended"]) == 1  # once
        await advisor.stub.SetState(desk.SetStateRequest(state=ev.AGENT_STATE_AVAILABLE), metadata=advisor.auth)

        await send(producer, conversation_id, "Sorry, one more thing: my card was declined at the shop today", "en")
        again = await advisor.offer_for(conversation_id)
    assert again.task_id != offer.task_id
    texts = [t.text for t in again.context.turns]
    assert texts[0] == "I want to talk to a person about my account" and texts[-1].startswith("Sorry, one more thing")
    assert "Thanks a lot, bye!" not in texts
    assert await db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", conversation_id) == 2
