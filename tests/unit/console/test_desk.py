"""`relais desk`: the parsing and rendering parts of the console client and its commands on a fake stub (what routing
puts in an offer's transcript: tests/unit/routing/test_transcript_view.py)."""

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from relais import desk as console
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb
from relais.routing import transcript_view


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


def command(line: str) -> console.Command:
    parsed = console.parse_command(line)
    assert parsed is not None, line
    return parsed


async def test_using_a_suggestion_sends_it_and_records_its_use():
    stub, tasks = FakeStub(), console.Tasks()
    said: list[str] = []
    tasks.seen(offer_event())
    for line in ("use 1 1", "edit 1 1 Sorry! Checking now.", "ignore 1 1", "close 1 resolved", "state break"):
        assert await console.execute(stub, [], tasks, command(line), said.append)
    assert not await console.execute(stub, [], tasks, command("quit"), said.append)
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
    stub, tasks = FakeStub(), console.Tasks()
    said: list[str] = []
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
    assert await console.execute(stub, [], tasks, command("accept 1"), said.append)
    assert tasks.suggestion("task-1", "1").text == "Let me check your card limit."
    # A newer assist (after a customer message) replaces the earlier one: `use` sends the latest.
    tasks.seen(
        desk.DeskEvent(customer_message=desk.CustomerMessage(task_id="task-1", turn=pb.Turn(text="Still declined")))
    )
    tasks.seen(assist_update("task-1", "Your limit was raised.", "Try again now."))
    assert await console.execute(stub, [], tasks, command("use 1 2"), said.append)
    reply, use = stub.calls[-2][1], stub.calls[-1][1]
    assert reply.text == "Try again now." and (use.suggestion_id, use.use) == ("sug-2", ev.SUGGESTION_USE_USED)
    assert "suggestion 2 [kb-2; template]: Try again now." in tasks.show("task-1", NOW)
