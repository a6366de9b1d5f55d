"""Routing rules: what a hand-off needs (language, skill, priority) and who may take it. Pure."""

from dataclasses import dataclass

from relais.common.pb import conversation_pb2 as pb

GENERAL = "general"  # an agent with this skill may take any task in their languages
PRIORITY_BY_TIER = {"vip": 20, "gold": 10}
EMOTION_PRIORITY = 5
EMOTIONAL = {pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_DISTRESS, pb.HANDOFF_REASON_ESCALATING_SENTIMENT}
DEFAULT_HANDLE_SECONDS = 240


@dataclass(frozen=True)
class Requirement:
    language: str
    skill: str
    priority: int


def requirement(context: pb.ConversationContext, skill_by_intent: dict[str, str]) -> Requirement:
    language = context.language or context.customer.language or "en"
    skill = skill_by_intent.get(context.intent, GENERAL)
    priority = PRIORITY_BY_TIER.get(context.customer.tier.lower(), 0) + context.priority
    if set(context.reasons or [context.reason]) & EMOTIONAL:
        priority += EMOTION_PRIORITY
    return Requirement(language, skill, priority)


def eligible(languages: list[str], skills: list[str], need: Requirement) -> bool:
    return need.language in languages and (need.skill in skills or GENERAL in skills)


def expected_wait_seconds(position: int, recent_handle_seconds: float | None, available_soon: int = 1) -> int:
    """Naive estimate for the queue message: the tasks ahead times a recent handling time."""
    handle = recent_handle_seconds or DEFAULT_HANDLE_SECONDS
    return int(round(position * handle / max(available_soon, 1)))
