"""When the bot may answer and when a person must take over. Pure rules, no I/O.

Checked in this order, first match wins: the customer asked for a person; anger; distress; the
intent is out of scope or below its threshold; the catalogue does not let the bot handle it or
the bot has no answer for it. After the bot's answer, two unresolved attempts hand off too.
"""

from dataclasses import dataclass

from relais.common.pb import conversation_pb2 as pb

MAX_FAILED_ATTEMPTS = 2


@dataclass(frozen=True)
class Decision:
    handoff: bool
    reason: int = pb.HANDOFF_REASON_UNSPECIFIED
    detail: str = ""
    intent: str = ""


def decide(turn: pb.Turn, bot_allowed: set[str]) -> Decision:
    """What to do with a classified turn of a conversation the bot still holds."""
    c = turn.classification
    if c.asks_for_human:
        return Decision(True, pb.HANDOFF_REASON_CUSTOMER_REQUEST, "customer asked for an advisor", c.intent)
    if c.sentiment.anger:
        return Decision(True, pb.HANDOFF_REASON_ANGER, "anger detected", c.intent)
    if c.sentiment.distress:
        return Decision(True, pb.HANDOFF_REASON_DISTRESS, "distress detected", c.intent)
    if c.out_of_scope or not c.intent:
        guess = f" (best guess {c.best_guess} at {c.confidence:.2f})" if c.best_guess else ""
        return Decision(True, pb.HANDOFF_REASON_OUT_OF_SCOPE, f"out of scope{guess}", c.best_guess)
    if c.intent not in bot_allowed:
        return Decision(True, pb.HANDOFF_REASON_NOT_BOT_ALLOWED, f"intent {c.intent} is for advisors", c.intent)
    return Decision(False, intent=c.intent)


def after_failed_attempt(failed_attempts: int, intent: str) -> Decision:
    """Called when the bot could not resolve the request; `failed_attempts` includes this one."""
    if failed_attempts >= MAX_FAILED_ATTEMPTS:
        return Decision(True, pb.HANDOFF_REASON_REPEATED_FAILURE, f"{failed_attempts} failed attempts", intent)
    return Decision(False, intent=intent)
