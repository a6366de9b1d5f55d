"""The conversation context's bound: a conversation may have thousands of turns, its context may not.

The context is rewritten at every turn (bot_conversations, tasks) and travels whole in a hand-off record, so it
keeps to a byte budget: the first turns (why the customer came) and the most recent ones (where things stand)
are kept, the turns in between are dropped oldest first and counted in `omitted_turns` (the advisors' messages
that followed them go with them, counted in `omitted_advisor_messages`). The budget is far
below Kafka's 1 MiB record limit, and it makes each turn's cost constant instead of growing with the
conversation. Every turn stays in the `turns` table.
"""

from relais.common.pb import conversation_pb2 as pb

CONTEXT_BUDGET_BYTES = 256 * 1024  # about 60 turns at the 4,000-character limit, thousands of short ones
FIRST_TURNS = 2


def append_turn(context: pb.ConversationContext, turn: pb.Turn, budget: int = CONTEXT_BUDGET_BYTES) -> None:
    context.turns.append(turn)
    bound(context, budget)


def append_advisor_message(
    context: pb.ConversationContext, message: pb.AdvisorMessage, budget: int = CONTEXT_BUDGET_BYTES
) -> None:
    """An advisor's reply, placed after the latest turn (the one it answers)."""
    if not message.after_turn_id and context.turns:
        message.after_turn_id = context.turns[-1].turn_id
    context.advisor_messages.append(message)
    bound(context, budget)


def bound(context: pb.ConversationContext, budget: int = CONTEXT_BUDGET_BYTES) -> int:
    """Drops the turns after the first FIRST_TURNS, oldest first, with the advisor messages that followed them,
    until the context fits; returns how many turns."""
    size = context.ByteSize()
    if size <= budget:
        return 0
    turns = context.turns
    first = min(FIRST_TURNS, len(turns) - 1)
    following: dict[str, list[int]] = {}  # turn id -> sizes of the advisor messages after it
    for message in context.advisor_messages:
        following.setdefault(message.after_turn_id, []).append(message.ByteSize())
    drop, dropped_ids = 0, set()
    while size > budget and first + drop < len(turns) - 1:  # the newest turn always stays
        turn = turns[first + drop]
        size -= _entry_size(turn.ByteSize()) + sum(_entry_size(n) for n in following.get(turn.turn_id, ()))
        if turn.turn_id:
            dropped_ids.add(turn.turn_id)
        drop += 1
    del turns[first : first + drop]
    context.omitted_turns += drop
    kept = [m for m in context.advisor_messages if m.after_turn_id not in dropped_ids]
    if len(kept) < len(context.advisor_messages):
        context.omitted_advisor_messages += len(context.advisor_messages) - len(kept)
        del context.advisor_messages[:]
        context.advisor_messages.extend(kept)
    return drop


def _entry_size(n: int) -> int:
    """A repeated message field's entry: its tag (1 byte for fields 5 and 15), its length as a varint, its bytes."""
    return 1 + max(1, (n.bit_length() + 6) // 7) + n
