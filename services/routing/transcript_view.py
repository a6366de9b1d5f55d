"""The conversation as it happened, as the advisor reads it: one chronological transcript built from the context.

Each customer turn is followed by what answered it — the lookups and the bot's reply made for that turn (they
carry its turn_id), then the advisors' messages sent after it — and lookups are sentences in the conversation's
language (dates, amounts, statuses formatted), not raw fields. A long conversation keeps its first HEAD and its
latest TAIL lines and says how many are left out in between (with those the context itself left out).
"""

from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.common.transcript import FIRST_TURNS
from relais.routing.assist import _lookup_summary, conversation_language
from relais.routing.texts import GAP

HEAD, TAIL = 2, 8


def transcript(
    context: pb.ConversationContext, language: str | None = None, head: int = HEAD, tail: int = TAIL
) -> list[desk.TranscriptLine]:
    lang = language or conversation_language(context)
    return summarised(chronological(context, lang), head, tail, lang)


def chronological(context: pb.ConversationContext, lang: str) -> list[desk.TranscriptLine | int]:
    """Every line in conversation order; an int stands for that many lines left out of the context."""
    turn_ids = {t.turn_id for t in context.turns}
    after: dict[str, list[desk.TranscriptLine]] = {}
    left_out = context.omitted_turns + context.omitted_advisor_messages
    unplaced = []  # no turn id (older contexts): after the latest turn

    def place(turn_id: str, line: desk.TranscriptLine) -> None:
        nonlocal left_out
        if turn_id in turn_ids:
            after.setdefault(turn_id, []).append(line)
        elif turn_id and context.omitted_turns:  # its turn was left out of the context: so is it
            left_out += 1
        else:
            unplaced.append(line)

    for lookup in context.lookups:
        place(lookup.turn_id, desk.TranscriptLine(speaker="lookup", text=_lookup_summary(lookup, lang)))
    for attempt in context.bot_attempts:
        if attempt.reply_text:
            place(attempt.turn_id, desk.TranscriptLine(speaker="bot", text=attempt.reply_text))
    for message in context.advisor_messages:
        line = desk.TranscriptLine(speaker="advisor", text=message.text, agent_id=message.agent_id)
        if message.HasField("sent_at"):
            line.at.CopyFrom(message.sent_at)
        place(message.after_turn_id, line)

    lines: list[desk.TranscriptLine | int] = []
    for n, turn in enumerate(context.turns):
        if n == FIRST_TURNS and left_out:
            lines.append(left_out)
        line = desk.TranscriptLine(speaker="customer", text=turn.text)
        if turn.HasField("sent_at"):
            line.at.CopyFrom(turn.sent_at)
        lines += [line, *after.pop(turn.turn_id, [])]
    if left_out and len(context.turns) <= FIRST_TURNS:
        lines.append(left_out)
    return lines + unplaced


def summarised(lines: list[desk.TranscriptLine | int], head: int, tail: int, lang: str) -> list[desk.TranscriptLine]:
    """The first `head` and last `tail` lines, one "system" line counting those in between."""
    shown = [i for i, line in enumerate(lines) if not isinstance(line, int)]
    if len(shown) > head + tail:
        start, end = shown[head], shown[-tail] if tail else len(lines)
        lines = lines[:start] + [sum(x if isinstance(x, int) else 1 for x in lines[start:end])] + lines[end:]
    merged: list[desk.TranscriptLine | int] = []
    for line in lines:
        if isinstance(line, int) and merged and isinstance(merged[-1], int):
            merged[-1] += line
        else:
            merged.append(line)
    forms = GAP.get(lang, GAP["en"])
    return [
        desk.TranscriptLine(speaker="system", text=forms[0 if line == 1 else 1].format(n=line))
        if isinstance(line, int)
        else line
        for line in merged
    ]
