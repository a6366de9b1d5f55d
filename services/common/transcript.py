"""The conversation context's bound: a conversation may have thousands of turns, its context may not.

The context is rewritten at every turn (bot_conversations, tasks) and travels whole in a hand-off record, so it
keeps to a byte budget: the first turns (why the customer came) and the most recent ones (where things stand)
are kept, the turns in between are dropped oldest first and counted in `omitted_turns`. The budget is far
below Kafka's 1 MiB record limit, and it makes each turn's cost constant instead of growing with the
conversation. Every turn stays in the `turns` table.
"""

from relais.common.pb import conversation_pb2 as pb

CONTEXT_BUDGET_BYTES = 256 * 1024  # about 60 turns at the 4,000-character limit, thousands of short ones
FIRST_TURNS = 2


def append_turn(context: pb.ConversationContext, turn: pb.Turn, budget: int = CONTEXT_BUDGET_BYTES) -> None:
    context.turns.append(turn)
    bound(context, budget)


def bound(context: pb.ConversationContext, budget: int = CONTEXT_BUDGET_BYTES) -> int:
    """Drops the turns after the first FIRST_TURNS, oldest first, until the context fits; returns how many."""
    size = context.ByteSize()
    if size <= budget:
        return 0
    turns = context.turns
    first = min(FIRST_TURNS, len(turns) - 1)
    drop = 0
    while size > budget and first + drop < len(turns) - 1:  # the newest turn always stays
        size -= _entry_size(turns[first + drop].ByteSize())
        drop += 1
    del turns[first:first + drop]
    context.omitted_turns += drop
    return drop


def _entry_size(n: int) -> int:
    """A repeated message field's entry: its tag (1 byte for field 5), its length as a varint, its bytes."""
    return 1 + max(1, (n.bit_length() + 6) // 7) + n
