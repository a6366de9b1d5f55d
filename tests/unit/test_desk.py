"""`relais desk`: the parsing and rendering parts of the console client, and its commands on a fake stub."""

import pytest

from relais import desk as console
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb


def test_commands_are_parsed_with_their_free_text():
    assert console.parse_command("  ") is None
    assert console.parse_command("accept") == console.Command("accept")
    assert console.parse_command("reply 2 Hello, I'm on it") == console.Command("reply", ("2", "Hello, I'm on it"))
    assert console.parse_command("edit 1 2 Bonjour Madame") == console.Command("edit", ("1", "2", "Bonjour Madame"))
    assert console.parse_command("transfer 1 billing refund agreed") == console.Command("transfer", ("1", "billing refund agreed"))
    assert console.parse_command("close 3 follow_up unresolved") == console.Command("close", ("3", "follow_up", "unresolved"))
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


def offer_event(task_id="task-1") -> desk.DeskEvent:
    context = pb.ConversationContext(conversation_id="c1", language="en", intent="card_payment_declined",
                                     customer=pb.Customer(id="cust-1", tier="vip"), reason=pb.HANDOFF_REASON_ANGER)
    context.turns.add(text="My card was declined AGAIN!!!", classification=pb.Classification(sentiment=pb.Sentiment(anger=True)))
    context.lookups.add(name="account_balance", ok=True, result={"balance": "12.00"})
    assist = desk.AgentAssist(summary="Card declined twice.", history_summary="First contact on record.", suggestions=[
        desk.Suggestion(suggestion_id="sug-1", text="I'm sorry, let me check your limit.", article_ids=["kb-card-declined-en"],
                        source="template")])
    return desk.DeskEvent(offer=desk.Offer(task_id=task_id, context=context, assist=assist, priority=25))


def test_an_offer_is_shown_with_context_summary_and_suggestions_with_their_articles():
    tasks = console.Tasks()
    n, text = tasks.seen(offer_event())
    assert n == 1
    for expected in ("#1 OFFER priority 25", "customer cust-1 (vip), en, intent card_payment_declined, reason ANGER",
                     "angry customer> My card was declined AGAIN!!!", "lookup account_balance: {'balance': '12.00'}",
                     "summary: Card declined twice.", "history: First contact on record.",
                     "suggestion 1 [kb-card-declined-en; template]: I'm sorry, let me check your limit."):
        assert expected in text, expected
    assert tasks.seen(desk.DeskEvent(offer_withdrawn=desk.OfferWithdrawn(task_id="task-1", reason="timeout")))[1] == \
        "#1 offer withdrawn (timeout)"
    assert tasks.seen(offer_event("task-2"))[0] == 2
    assert tasks.task_id(None) == "task-2" and tasks.task_id("#1") == "task-1"
    with pytest.raises(console.UsageError):
        tasks.task_id("7")
    with pytest.raises(console.UsageError):
        tasks.suggestion("task-1", "2")


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
    assert names == ["Reply", "RecordSuggestionUse", "Reply", "RecordSuggestionUse", "RecordSuggestionUse", "Close", "SetState"]
    assert stub.calls[0][1].text == "I'm sorry, let me check your limit."
    assert [r.use for n, r in stub.calls if n == "RecordSuggestionUse"] == [ev.SUGGESTION_USE_USED, ev.SUGGESTION_USE_EDITED,
                                                                             ev.SUGGESTION_USE_IGNORED]
    assert stub.calls[2][1].text == "Sorry! Checking now." and stub.calls[5][1].resolved
    assert said[-1] == "state: break"
