"""The policy's view of a conversation (ConversationState.from_context) read in one pass over the bot's attempts:
the same as counting each thing on its own, on conversations drawn at random."""

import random
from collections import Counter

from relais.bot import policy
from relais.common.pb import conversation_pb2 as pb


def counted_one_by_one(context: pb.ConversationContext) -> policy.ConversationState:
    attempts = list(context.bot_attempts)
    last = attempts[-1] if attempts else None
    return policy.ConversationState(
        sentiment_scores=tuple(t.classification.sentiment.score for t in context.turns[:-1]),
        bot_turns_by_intent=dict(Counter(a.intent for a in attempts)),
        clarifications=sum(a.clarification for a in attempts),
        pending_clarification=last.intent if last is not None and last.clarification else "",
        failed_attempts=sum(not a.resolved and not a.clarification for a in attempts),
    )


def test_one_pass_reads_the_conversation_as_counting_each_thing_does():
    rng = random.Random(7)
    kinds = set()
    for _ in range(500):
        context = pb.ConversationContext()
        for _ in range(rng.randint(0, 4)):
            context.turns.add().classification.sentiment.score = rng.uniform(-1, 1)
        for _ in range(rng.randint(0, 5)):
            context.bot_attempts.add(
                intent=rng.choice("abc"), resolved=rng.random() < 0.5, clarification=rng.random() < 0.3
            )
        state = policy.ConversationState.from_context(context)
        assert state == counted_one_by_one(context)
        assert state.failed_attempts == policy.failed_attempts(context.bot_attempts)
        kinds.add((bool(state.pending_clarification), state.failed_attempts > 0, state.clarifications > 0))
    assert len(kinds) == 6  # every possible combination was drawn (a pending question is a clarification)
