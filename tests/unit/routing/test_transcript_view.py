"""The transcript routing puts on an agent's offers and assignments (relais.routing.transcript_view), the offer
deduplication and the intent of a contact (relais.routing.desk_view), the customer's notice of a lost advisor."""

from datetime import datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from relais.common import transcript
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.routing import transcript_view
from relais.routing.desk_view import _bot_intent, offer_key
from relais.routing.texts import requeued_notice

NOW = datetime(2025, 6, 3, 14, 30, tzinfo=timezone.utc)


def stamp(moment: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(moment)
    return t


def offer(task_id: str = "task-1", expires_at: datetime = NOW) -> desk.Offer:
    made = desk.Offer(task_id=task_id, context=conversation("en", 1))
    made.expires_at.FromDatetime(expires_at)
    return made


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
    first = offer(expires_at=NOW)
    again = offer(expires_at=NOW)  # the same offer, delivered at subscription and queued meanwhile
    re_offer = offer(expires_at=NOW + timedelta(seconds=25))  # after a reject: same task, new expiry
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
