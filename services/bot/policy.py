"""When the bot may answer, when it asks one clarifying question, and when a person must take over.

Pure rules, no I/O. A hand-off carries every reason that applied (the first is the main one):

- the customer asked for a person (always honoured, no threshold);
- anger, distress, or a customer getting angrier across the conversation even if each message is mild;
- churn risk: the customer may leave us (the catalogue's churn_risk cues; routing asks for the retention skill);
- several distinct requests in one message (a person takes them together);
- the customer writes in a language the catalogue does not serve (the bot never answers a request
  in a language it cannot speak; the advisor gets the intent when the classifier was sure of it);
- out of scope: no catalogue intent fits, or the bot's one clarifying question did not settle it;
- the catalogue's limits for the intent: the bot may not handle it (or it needs a person's judgement across
  several systems, `needs_judgement`), the customer's tier is kept for
  people, an amount above the intent's limit, or the bot already used the turns it is allowed;
- after answering, two unresolved attempts in a conversation.

When the intent is below its threshold but a plausible guess exists, the bot asks once whether that
is what the customer wants ("Voulez-vous connaître le statut d'une commande ?"), then hands off.
"""

from dataclasses import dataclass, field

from relais.classifier.catalogue import PLAUSIBLE_GUESS, Catalogue
from relais.classifier.sentiment import escalating
from relais.common.language import fold
from relais.common.pb import conversation_pb2 as pb

MAX_FAILED_ATTEMPTS = 2
CLARIFY_FLOOR = PLAUSIBLE_GUESS  # below it, no clarifying question: hand off at once
ANSWER, CLARIFY, HANDOFF = "answer", "clarify", "handoff"
AFFIRMATIVE = {
    "oui",
    "ouais",
    "exactement",
    "c'est ca",
    "c est ca",
    "tout a fait",
    "oui merci",
    "oui svp",
    "oui c'est ca",
    "yes",
    "yeah",
    "yep",
    "exactly",
    "that's it",
    "thats it",
    "correct",
    "right",
    "yes please",
    "sure",
}


@dataclass(frozen=True)
class ConversationState:
    """What the policy needs to know of the conversation before this turn."""

    sentiment_scores: tuple[float, ...] = ()
    bot_turns_by_intent: dict[str, int] = field(default_factory=dict)
    clarifications: int = 0
    pending_clarification: str = ""  # the intent the bot just asked about
    failed_attempts: int = 0

    @classmethod
    def from_context(cls, context: pb.ConversationContext) -> "ConversationState":
        """Derived from the conversation so far (every turn but the current, last one)."""
        by_intent: dict[str, int] = {}
        clarifications = failed = 0
        last = None
        for last in context.bot_attempts:  # one pass: each protobuf field read costs
            by_intent[last.intent] = by_intent.get(last.intent, 0) + 1
            if last.clarification:
                clarifications += 1
            elif not last.resolved:
                failed += 1
        return cls(
            sentiment_scores=tuple(t.classification.sentiment.score for t in context.turns[:-1]),
            bot_turns_by_intent=by_intent,
            clarifications=clarifications,
            pending_clarification=last.intent if last is not None and last.clarification else "",
            failed_attempts=failed,
        )


def failed_attempts(attempts) -> int:
    """The bot's answers that did not resolve the request (its clarifying questions are not failures)."""
    return sum(not a.resolved and not a.clarification for a in attempts)


@dataclass(frozen=True)
class Decision:
    action: str  # ANSWER, CLARIFY or HANDOFF
    intent: str = ""
    reasons: tuple[pb.HandoffReason, ...] = ()
    detail: str = ""

    @property
    def handoff(self) -> bool:
        return self.action == HANDOFF

    @property
    def reason(self) -> pb.HandoffReason:
        return self.reasons[0] if self.reasons else pb.HANDOFF_REASON_UNSPECIFIED


def decide(turn: pb.Turn, state: ConversationState, catalogue: Catalogue) -> Decision:
    """What to do with a classified turn of a conversation the bot still holds."""
    c = turn.classification
    reasons: list[tuple[pb.HandoffReason, str]] = []
    if c.asks_for_human:
        reasons.append((pb.HANDOFF_REASON_CUSTOMER_REQUEST, "the customer asked for a person"))
    if c.sentiment.anger:
        reasons.append((pb.HANDOFF_REASON_ANGER, "anger detected"))
    if c.sentiment.distress:
        reasons.append((pb.HANDOFF_REASON_DISTRESS, "distress detected"))
    if escalating([*state.sentiment_scores, c.sentiment.score]):
        reasons.append((pb.HANDOFF_REASON_ESCALATING_SENTIMENT, "the customer is getting more upset"))
    if c.churn_risk:
        reasons.append((pb.HANDOFF_REASON_CHURN_RISK, "the customer may leave us"))
    if c.other_intents:
        requests = ", ".join(dict.fromkeys([*([c.intent] if c.intent else []), *c.other_intents]))
        reasons.append((pb.HANDOFF_REASON_MULTIPLE_REQUESTS, f"several requests: {requests}"))

    if turn.language and not catalogue.serves(turn.language):
        reasons.append((pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED, f"language {turn.language} not served"))
        return Decision(HANDOFF, c.intent, tuple(r for r, _ in reasons), "; ".join(d for _, d in reasons))

    intent_id = c.intent
    if not intent_id and state.pending_clarification and is_affirmative(turn.text):
        intent_id = state.pending_clarification  # "oui" to "Voulez-vous ... ?"
    intent = catalogue.intents.get(intent_id) if intent_id else None

    handed_off_intent = intent.id if intent else ""
    if intent is None:
        guess = catalogue.intents.get(c.best_guess) if c.best_guess else None
        plausible = guess if guess is not None and c.confidence >= CLARIFY_FLOOR else None
        # A plausible guess travels with the hand-off (marked LOW_CONFIDENCE); an implausible one would send the
        # customer to the wrong queue and the advisor wrong suggestions ("finding a store" for a restaurant tip).
        handed_off_intent = plausible.id if plausible is not None else ""
        if (
            plausible is not None
            and not reasons
            and state.clarifications == 0
            and plausible.on_low_confidence == "clarify"
        ):
            return Decision(CLARIFY, plausible.id, detail=f"unsure: {plausible.id} at {c.confidence:.2f}")
        if plausible is not None:
            reasons.append(
                (pb.HANDOFF_REASON_LOW_CONFIDENCE, f"still unsure: best guess {plausible.id} at {c.confidence:.2f}")
            )
        else:
            reasons.append((pb.HANDOFF_REASON_OUT_OF_SCOPE, "no catalogue intent fits"))
    else:
        reasons.extend(_limits(intent, turn, state))

    if reasons:
        return Decision(HANDOFF, handed_off_intent, tuple(r for r, _ in reasons), "; ".join(d for _, d in reasons))
    assert intent is not None  # without one, a reason was given above
    return Decision(ANSWER, intent.id)


def _limits(intent, turn: pb.Turn, state: ConversationState) -> list[tuple[pb.HandoffReason, str]]:
    """The catalogue's limits for this intent that this turn breaks."""
    broken: list[tuple[pb.HandoffReason, str]] = []
    if intent.needs_judgement:
        broken.append((pb.HANDOFF_REASON_NEEDS_JUDGEMENT, f"{intent.id} needs a person's judgement"))
    elif not intent.bot_allowed:
        broken.append((pb.HANDOFF_REASON_NOT_BOT_ALLOWED, f"{intent.id} is for people"))
    if not intent.serves_tier(turn.customer.tier):
        broken.append(
            (
                pb.HANDOFF_REASON_TIER_NOT_SERVED,
                f"{turn.customer.tier or 'untiered'} customers are served by people for {intent.id}",
            )
        )
    if not intent.amount_within_limit(turn.classification.amount or None):
        broken.append(
            (pb.HANDOFF_REASON_AMOUNT_ABOVE_LIMIT, f"amount {turn.classification.amount:g} above {intent.max_amount:g}")
        )
    if intent.bot_allowed and state.bot_turns_by_intent.get(intent.id, 0) >= intent.max_bot_turns:
        broken.append(
            (pb.HANDOFF_REASON_BOT_TURN_LIMIT, f"the bot already had {intent.max_bot_turns} turns on {intent.id}")
        )
    return broken


def after_failed_attempt(failed_attempts: int, intent: str) -> Decision:
    """Called when the bot could not resolve the request; `failed_attempts` includes this one."""
    if failed_attempts >= MAX_FAILED_ATTEMPTS:
        return Decision(HANDOFF, intent, (pb.HANDOFF_REASON_REPEATED_FAILURE,), f"{failed_attempts} failed attempts")
    return Decision(ANSWER, intent)


def is_affirmative(text: str) -> bool:
    words = fold(text).replace("!", " ").replace(".", " ").replace(",", " ").split()
    return " ".join(words) in AFFIRMATIVE or (0 < len(words) <= 3 and words[0] in {"oui", "yes", "yeah", "yep"})
