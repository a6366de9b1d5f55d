"""`relais desk`: the parsing and rendering parts of the console client, its commands on a fake stub, and the transcript
an agent receives (relais.routing.transcript_view), the offer deduplication and the customer's notice of a lost advisor."""

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from relais import desk as console
from relais.common import transcript
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb
from relais.routing import transcript_view
from relais.routing.desk_view import _bot_intent, offer_key
from relais.routing.texts import requeued_notice


def test_commands_are_parsed_with_their_free_text():
    assert console.parse_command("  ") is None
    assert console.parse_command("accept") == console.Command("accept")
    assert console.parse_command("reply 2 Hello, I'm on it") == console.Command("reply", ("2", "Hello, I'm on it"))
    assert console.parse_command("edit 1 2 Bonjour Madame") == console.Command("edit", ("1", "2", "Bonjour Madame"))
    assert console.parse_command("transfer 1 billing refund agreed") == console.Command(
        "transfer", ("1", "billing refund agreed")
    )
    assert console.parse_command("close 3 follow_up unresolved") == console.Command(
        "close", ("3", "follow_up", "unresolved")
    )
    for bad in ("dance", "reply 1", "use 1", "close", "history 1 2"):
        with pytest.raises(console.UsageError):
            console.parse_command(bad)


def test_skills_and_capacity_options():
    skills = console.parse_skills("billing:3, Orders ,conflict_handling:2")
    assert [(s.skill, s.level) for s in skills] == [("billing", 3), ("orders", 1), ("conflict_handling", 2)]
    assert console.parse_capacity("chat:3,voice:1") == {"chat": 3, "voice": 1}
    with pytest.raises(console.UsageError):
        console.parse_skills("billing:high")
    with pytest.raises(console.UsageError):
        console.parse_capacity("chat")


def offer_event(task_id="task-1", expires_at: datetime | None = None) -> desk.DeskEvent:
    context = pb.ConversationContext(
        conversation_id="c1",
        language="en",
        intent="card_payment_declined",
        customer=pb.Customer(id="cust-1", tier="vip"),
        reason=pb.HANDOFF_REASON_ANGER,
    )
    context.turns.add(
        turn_id="t1",
        text="My card was declined AGAIN!!!",
        sent_at=stamp(NOW - timedelta(minutes=3)),
        classification=pb.Classification(sentiment=pb.Sentiment(anger=True)),
    )
    context.lookups.add(
        turn_id="t1",
        name="account_balance",
        ok=True,
        result={"account": "ACC-1", "balance_cents": "1200", "currency": "EUR"},
    )
    assist = desk.AgentAssist(
        summary="Card declined twice.",
        history_summary="First contact on record.",
        suggestions=[
            desk.Suggestion(
                suggestion_id="sug-1",
                text="I'm sorry, let me check your limit.",
                article_ids=["kb-card-declined-en"],
                source="template",
            )
        ],
    )
    offer = desk.Offer(
        task_id=task_id, context=context, assist=assist, priority=25, transcript=transcript_view.transcript(context)
    )
    if expires_at:
        offer.expires_at.FromDatetime(expires_at)
    return desk.DeskEvent(offer=offer)


NOW = datetime(2025, 6, 3, 14, 30, tzinfo=timezone.utc)


def stamp(moment: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(moment)
    return t


def test_an_offer_is_shown_with_context_transcript_summary_suggestions_and_time_left():
    tasks = console.Tasks()
    n, text = tasks.seen(offer_event(expires_at=NOW + timedelta(seconds=17)), NOW)
    assert n == 1
    for expected in (
        "#1 OFFER priority 25 — accept 1 or reject 1 (accept within 17 s)",
        "customer cust-1 (vip), en, intent card_payment_declined, reason ANGER",
        "14:27 customer> My card was declined AGAIN!!!",
        "lookup: gave the balance of account ACC-1 (€12.00)",
        "summary: Card declined twice.",
        "history: First contact on record.",
        "suggestion 1 [kb-card-declined-en; template]: I'm sorry, let me check your limit.",
    ):
        assert expected in text, expected
    assert "{" not in text  # no raw dictionaries
    assert (
        tasks.seen(desk.DeskEvent(offer_withdrawn=desk.OfferWithdrawn(task_id="task-1", reason="timeout")))[1]
        == "#1 offer withdrawn (timeout)"
    )
    assert tasks.seen(offer_event("task-2"))[0] == 2
    assert tasks.task_id(None) == "task-2" and tasks.task_id("#1") == "task-1"
    with pytest.raises(console.UsageError):
        tasks.task_id("7")
    with pytest.raises(console.UsageError):
        tasks.suggestion("task-1", "2")


def test_the_countdown_of_an_offer():
    assert console.countdown(NOW + timedelta(seconds=17.6), NOW) == "accept within 17 s"
    assert console.countdown(NOW + timedelta(seconds=150), NOW) == "accept within 2 min 30 s"
    assert console.countdown(NOW - timedelta(seconds=1), NOW) == "expired"
    assert console.countdown(None, NOW) == ""


def test_an_offer_about_to_expire_is_announced_once_and_a_re_offer_again():
    tasks = console.Tasks()
    first = NOW + timedelta(seconds=20)
    tasks.seen(offer_event(expires_at=first), NOW)
    assert tasks.reminders(NOW) == []  # 20 s left: not yet
    assert tasks.reminders(first - timedelta(seconds=4)) == ["#1 offer: accept within 4 s (accept 1)"]
    assert tasks.reminders(first - timedelta(seconds=2)) == []
    again = first + timedelta(seconds=30)  # the same task offered again, after a reject
    tasks.seen(offer_event(expires_at=again), first)
    assert tasks.reminders(again - timedelta(seconds=3)) == ["#1 offer: accept within 3 s (accept 1)"]
    tasks.seen(desk.DeskEvent(offer_withdrawn=desk.OfferWithdrawn(task_id="task-1", reason="timeout")))
    assert tasks.reminders(again - timedelta(seconds=1)) == []


def test_show_gives_the_state_of_a_task_never_a_closed_one_as_an_offer():
    tasks = console.Tasks()
    offer = offer_event(expires_at=NOW + timedelta(seconds=10))
    tasks.seen(offer, NOW)
    assert tasks.show("task-1", NOW).startswith("#1 OFFER priority 25 — accept 1 or reject 1 (accept within 10 s)")
    assignment = desk.DeskEvent(
        assignment=desk.Assignment(task_id="task-1", context=offer.offer.context, transcript=offer.offer.transcript)
    )
    assert tasks.seen(assignment, NOW)[1] == "#1 ASSIGNED to you"  # right after the offer: its transcript is on screen
    tasks.seen(
        desk.DeskEvent(
            customer_message=desk.CustomerMessage(task_id="task-1", turn=pb.Turn(text="Any news?", sent_at=stamp(NOW)))
        ),
        NOW,
    )
    tasks.sent("task-1", "Checking now.", NOW)
    shown = tasks.show("task-1", NOW)
    assert shown.startswith("#1 assigned\n") and "OFFER" not in shown
    assert (
        shown.index("My card was declined") < shown.index("customer> Any news?") < shown.index("advisor> Checking now.")
    )
    tasks.states["task-1"] = "closed (resolved)"
    assert tasks.show("task-1", NOW).startswith("#1 closed (resolved)\n")
    # Delivered again (the stream was re-opened): shown in full, with what arrived meanwhile.
    again = tasks.seen(assignment, NOW)[1]
    assert again.startswith("#1 ASSIGNED to you\n") and "My card was declined" in again


def test_transcript_times_are_local_with_the_date_when_not_today():
    lines = [
        desk.TranscriptLine(speaker="customer", text="hello", at=stamp(NOW - timedelta(days=1))),
        desk.TranscriptLine(speaker="lookup", text="gave the opening hours"),
        desk.TranscriptLine(speaker="system", text="… 3 earlier messages …"),
        desk.TranscriptLine(speaker="advisor", agent_id="alice", text="Bonjour", at=stamp(NOW)),
    ]
    assert console.render_transcript(lines, NOW, timezone(timedelta(hours=2))) == [
        "  02/06 16:30 customer> hello",
        "  lookup: gave the opening hours",
        "  … 3 earlier messages …",
        "  16:30 advisor alice> Bonjour",
    ]


class FakeStub:
    """Records the requests; the real API is exercised by the integration tests."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        async def call(request, metadata=None):
            self.calls.append((name, request))
            return {"Accept": desk.AcceptReply(), "SetState": desk.SetStateReply(state=ev.AGENT_STATE_BREAK)}.get(name)

        return call


async def test_using_a_suggestion_sends_it_and_records_its_use():
    stub, tasks, said = FakeStub(), console.Tasks(), []
    tasks.seen(offer_event())
    for line in ("use 1 1", "edit 1 1 Sorry! Checking now.", "ignore 1 1", "close 1 resolved", "state break"):
        assert await console.execute(stub, [], tasks, console.parse_command(line), said.append)
    assert not await console.execute(stub, [], tasks, console.parse_command("quit"), said.append)
    names = [name for name, _ in stub.calls]
    assert names == [
        "Reply",
        "RecordSuggestionUse",
        "Reply",
        "RecordSuggestionUse",
        "RecordSuggestionUse",
        "Close",
        "SetState",
    ]
    assert stub.calls[0][1].text == "I'm sorry, let me check your limit."
    assert [r.use for n, r in stub.calls if n == "RecordSuggestionUse"] == [
        ev.SUGGESTION_USE_USED,
        ev.SUGGESTION_USE_EDITED,
        ev.SUGGESTION_USE_IGNORED,
    ]
    assert stub.calls[2][1].text == "Sorry! Checking now." and stub.calls[5][1].resolved
    assert said[-1] == "state: break"


def assist_update(task_id: str, *texts: str) -> desk.DeskEvent:
    return desk.DeskEvent(
        assist=desk.AssistUpdate(
            task_id=task_id,
            assist=desk.AgentAssist(
                summary="Card declined twice.",
                suggestions=[
                    desk.Suggestion(suggestion_id=f"sug-{k}", text=text, article_ids=[f"kb-{k}"], source="template")
                    for k, text in enumerate(texts, 1)
                ],
            ),
        )
    )


async def test_the_assist_that_follows_an_offer_is_shown_under_its_task_and_its_latest_suggestions_are_used():
    stub, tasks, said = FakeStub(), console.Tasks(), []
    offer = offer_event(expires_at=NOW + timedelta(seconds=20))
    offer.offer.ClearField("assist")  # pushed before its assist was drafted
    shown = tasks.seen(offer, NOW)[1]
    assert "suggestion" not in shown and "summary:" not in shown
    with pytest.raises(console.UsageError):  # nothing to use yet
        tasks.suggestion("task-1", "1")
    n, text = tasks.seen(assist_update("task-1", "Let me check your card limit."), NOW)
    assert n == 1
    assert text.splitlines() == [
        "#1 suggestions:",
        "  summary: Card declined twice.",
        "  suggestion 1 [kb-1; template]: Let me check your card limit.",
    ]
    assert tasks.states["task-1"] == "offered"  # an assist changes no state
    # The accept's assignment may come without its assist (not drafted when it was read): the one shown stays usable.
    assert await console.execute(stub, [], tasks, console.parse_command("accept 1"), said.append)
    assert tasks.suggestion("task-1", "1").text == "Let me check your card limit."
    # A newer assist (after a customer message) replaces the earlier one: `use` sends the latest.
    tasks.seen(
        desk.DeskEvent(customer_message=desk.CustomerMessage(task_id="task-1", turn=pb.Turn(text="Still declined")))
    )
    tasks.seen(assist_update("task-1", "Your limit was raised.", "Try again now."))
    assert await console.execute(stub, [], tasks, console.parse_command("use 1 2"), said.append)
    reply, use = stub.calls[-2][1], stub.calls[-1][1]
    assert reply.text == "Try again now." and (use.suggestion_id, use.use) == ("sug-2", ev.SUGGESTION_USE_USED)
    assert "suggestion 2 [kb-2; template]: Try again now." in tasks.show("task-1", NOW)


# --- the transcript routing puts on offers and assignments (relais.routing.transcript_view) ---


def conversation(language: str, turns: int = 2) -> pb.ConversationContext:
    context = pb.ConversationContext(conversation_id="c1", language=language)
    for i in range(1, turns + 1):
        context.turns.add(turn_id=f"t{i}", text=f"message {i}", sent_at=stamp(NOW + timedelta(minutes=i)))
    return context


def spoken(lines) -> list[tuple[str, str]]:
    return [(line.speaker, line.text) for line in lines]


def test_the_transcript_is_chronological_with_lookups_bot_and_advisor_replies_after_their_turn():
    context = conversation("en", 3)
    # Stored by kind, as the bot and routing append them; the transcript puts each after its turn.
    context.lookups.add(
        turn_id="t2",
        name="order_status",
        ok=True,
        request={"order_id": "CMD-1"},
        result={"status": "shipped", "carrier": "Colissimo", "expected_delivery": "2025-06-05"},
    )
    context.lookups.add(turn_id="t1", name="opening_hours", ok=True)
    context.bot_attempts.add(turn_id="t1", reply_text="We are open 9-18.")
    context.bot_attempts.add(turn_id="t2", reply_text="Your order is on its way.")
    context.advisor_messages.add(after_turn_id="t3", agent_id="alice", text="Hello, Alice here.", sent_at=stamp(NOW))
    context.advisor_messages.add(after_turn_id="t3", agent_id="bob", text="Bob here, I take over.")
    assert spoken(transcript_view.transcript(context)) == [
        ("customer", "message 1"),
        ("lookup", "gave the opening hours"),
        ("bot", "We are open 9-18."),
        ("customer", "message 2"),
        ("lookup", "looked up order CMD-1 — shipped, carrier Colissimo, expected delivery 5 June 2025"),
        ("bot", "Your order is on its way."),
        ("customer", "message 3"),
        ("advisor", "Hello, Alice here."),
        ("advisor", "Bob here, I take over."),
    ]
    lines = transcript_view.transcript(context)
    assert lines[-2].agent_id == "alice" and lines[-2].at == stamp(NOW) and lines[0].at == context.turns[0].sent_at


def test_lookups_are_rendered_in_the_conversation_language():
    for language, order, balance in (
        (
            "fr",
            "commande CMD-1 consultée — expédiée, transporteur Colissimo, livraison prévue le 05/06/2025",
            "solde du compte ACC-1 donné (1\u202f234,56 €)",
        ),
        (
            "en",
            "looked up order CMD-1 — shipped, carrier Colissimo, expected delivery 5 June 2025",
            "gave the balance of account ACC-1 (€1,234.56)",
        ),
    ):
        context = conversation(language, 1)
        context.lookups.add(
            turn_id="t1",
            name="order_status",
            ok=True,
            request={"order_id": "CMD-1"},
            result={"status": "shipped", "carrier": "Colissimo", "expected_delivery": "2025-06-05"},
        )
        context.lookups.add(
            turn_id="t1",
            name="account_balance",
            ok=True,
            result={"account": "ACC-1", "balance_cents": "123456", "currency": "EUR"},
        )
        assert [line.text for line in transcript_view.transcript(context)][1:] == [order, balance], language


def test_a_long_conversation_keeps_its_first_and_latest_lines():
    context = conversation("en", 300)
    for turn in context.turns:
        context.bot_attempts.add(turn_id=turn.turn_id, reply_text=f"bot {turn.turn_id}")
    lines = transcript_view.transcript(context)
    assert spoken(lines) == [
        ("customer", "message 1"),
        ("bot", "bot t1"),
        ("system", "… 590 earlier messages …"),
        *[(who, text) for n in range(297, 301) for who, text in (("customer", f"message {n}"), ("bot", f"bot t{n}"))],
    ]
    french = conversation("fr", 12)
    assert spoken(transcript_view.transcript(french))[2] == ("system", "… 2 messages plus anciens …")
    assert len(transcript_view.transcript(conversation("en", 10))) == 10  # short enough: whole


def test_turns_the_context_left_out_are_counted_where_they_were():
    context = conversation("en", 1)
    for i in range(2, 200):
        context.turns.add(turn_id=f"t{i}", text="x" * 2000)
        context.advisor_messages.add(after_turn_id=f"t{i}", agent_id="alice", text="y" * 1000)
    context.bot_attempts.add(turn_id="t1", reply_text="bot reply")
    transcript.bound(context, budget=20_000)
    assert context.omitted_turns > 0 and context.omitted_advisor_messages == context.omitted_turns
    assert all(m.after_turn_id in {t.turn_id for t in context.turns} for m in context.advisor_messages)
    assert context.ByteSize() <= 20_000
    for head, tail in ((2, 8), (2, 100)):  # summarised, or whole with the context's own gap
        lines = transcript_view.transcript(context, head=head, tail=tail)
        gaps = [line for line in lines if line.speaker == "system"]
        assert len(gaps) == 1
        left_out = int(gaps[0].text.split()[1])
        assert left_out + len(lines) - 1 == 1 + 1 + 198 * 2  # every message is shown or counted, once
    assert spoken(lines[:4]) == [
        ("customer", "message 1"),
        ("bot", "bot reply"),
        ("customer", "x" * 2000),
        ("advisor", "y" * 1000),
    ]
    assert lines[4].speaker == "system"  # where the context left turns out: after its first two


def test_an_advisor_message_follows_the_latest_turn():
    context = conversation("en", 2)
    transcript.append_advisor_message(context, pb.AdvisorMessage(reply_id="r1", agent_id="alice", text="On it."))
    assert context.advisor_messages[0].after_turn_id == "t2"
    context.turns.add(turn_id="t3", text="thanks")
    assert spoken(transcript_view.transcript(context))[-2:] == [("advisor", "On it."), ("customer", "thanks")]


def test_only_the_exact_offer_already_delivered_is_deduplicated():
    first = offer_event(expires_at=NOW).offer
    again = offer_event(expires_at=NOW).offer  # the same offer, delivered at subscription and queued meanwhile
    re_offer = offer_event(expires_at=NOW + timedelta(seconds=25)).offer  # after a reject: same task, new expiry
    assert offer_key(first) == offer_key(again) != offer_key(re_offer)
    assert offer_key(re_offer)[0] == "task-1"


def test_the_customer_of_an_advisor_who_left_is_told_in_their_language():
    assert (
        requeued_notice("fr", signed_out=False)
        == "Votre conseiller a été déconnecté ; vous êtes de nouveau en file, en priorité."
    )
    assert requeued_notice("en", signed_out=False).startswith(
        "Your advisor was disconnected; you are back in the queue"
    )
    assert requeued_notice("fr-CA", signed_out=True).startswith("Votre conseiller a dû s'absenter")
    assert requeued_notice("xq", signed_out=True).startswith("Your advisor had to leave")


def test_the_intent_of_a_bot_answered_contact_comes_from_the_bot():
    bot = conversation("en", 2)
    bot.turns[0].classification.intent = "opening_hours"
    assert _bot_intent(bot.SerializeToString()) == "opening_hours"
    bot.bot_attempts.add(turn_id="t2", intent="order_status", reply_text="On its way.")
    assert _bot_intent(bot.SerializeToString()) == "order_status"
    assert _bot_intent(None) == "" and _bot_intent(b"\x08\x99garbage") == ""
