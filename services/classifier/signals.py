"""What a message says besides its intent that sends it to a person: a customer who may leave us (churn risk), and
several distinct requests in one message. Pure functions; the cues come from the catalogue's `churn_risk` section.

Cue syntax (catalogue.yaml): words matched on the folded message (case, accents, apostrophes ignored); `*` alone
stands for up to two words, `word*` for any ending (`compte*`: compte, comptes), `#` for a number. A cue with a
negation just before it in its clause ("je ne vais pas fermer mon compte", "I won't leave you") does not count; the
look-back stops at the speaker ("si vous ne faites rien je ferme mon compte" is a threat, not a negation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from relais.classifier.sentiment import NEGATORS as _NEGATORS  # one list of negations, the sentiment's
from relais.common.language import fold

_CLAUSE_BREAKS = frozenset({".", "!", "?", ";", ",", ":", "but", "mais", "if", "si", "unless", "sinon", "otherwise"})
_SPEAKER = frozenset({"je", "j", "i", "we", "nous", "on"})  # the cue's own clause starts here
NEGATION_WINDOW = 4  # "pas l'intention de partir", "no intention of leaving"
_TOKEN = re.compile(r"[a-z0-9]+|[.!?;,:]")
_CUE_START = "(?:^| )"
_GAP = "(?:[a-z0-9]+ ){0,2}"  # `*`: up to two words, never across punctuation


def tokens(text: str) -> list[str]:
    """Folded words and clause punctuation: "Je n'ai PAS" -> [je, n, ai, pas]; "won't" -> [wo, not]."""
    folded = fold(text).replace("n't", " not").replace("'", " ").replace("-", " ")
    return _TOKEN.findall(folded)


def compile_cue(cue: str) -> re.Pattern[str]:
    """The regex of one cue over a message's tokens joined by single spaces (see the module doc for the syntax)."""
    pattern, has_word = "", False
    for raw in cue.split():
        if raw == "*":
            pattern += _GAP
            continue
        if raw == "#":
            pattern += r"\d+ "
            continue
        words = tokens(raw.rstrip("*"))
        has_word = has_word or bool(words)
        for i, word in enumerate(words):
            ending = r"[a-z0-9]*" if raw.endswith("*") and i == len(words) - 1 else ""
            pattern += re.escape(word) + ending + " "
    if not has_word:
        raise ValueError(f"cue {cue!r} has no words")
    return re.compile(_CUE_START + pattern)


def _negated(words: Sequence[str], start: int) -> bool:
    """A negation within NEGATION_WINDOW words before `start`, in the same clause and after the speaker."""
    for word in reversed(words[max(0, start - NEGATION_WINDOW) : start]):
        if word in _CLAUSE_BREAKS or word in _SPEAKER:
            return False
        if word in _NEGATORS:
            return True
    return False


def matching_cues(text: str, cues: Sequence[re.Pattern[str]]) -> list[str]:
    """The cue patterns found in `text` and not negated (their matched words)."""
    words = tokens(text)
    return _matching(words, " ".join(words) + " ", cues)


def _any_cue(cues: Sequence[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern matching where any cue would: most messages hold no cue, and need one scan instead of dozens."""
    if not cues:
        return re.compile(r"(?!)")
    bodies = (cue.pattern.removeprefix(_CUE_START) for cue in cues)  # the word boundary once, not per cue
    return re.compile(_CUE_START + "(?:" + "|".join(bodies) + ")")


def _matching(words: Sequence[str], joined: str, cues: Sequence[re.Pattern[str]], any_cue=None) -> list[str]:
    if any_cue is not None and not any_cue.search(joined):
        return []
    found = []
    for cue in cues:
        for match in cue.finditer(joined):
            start = len(joined[: match.start() + (1 if match.group().startswith(" ") else 0)].split())
            if not _negated(words, start) or any(w in _NEGATORS for w in match.group().split()):
                found.append(match.group().strip())
                break
    return found


@dataclass(frozen=True)
class ChurnCues:
    """The catalogue's churn_risk section, compiled: per language, cue patterns by kind."""

    leaving: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    loyalty: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    disappointment: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    _joined: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.leaving or self.loyalty)

    def of(self, kind: str, language: str) -> tuple[tuple[re.Pattern[str], ...], re.Pattern[str]]:
        """The cues of one kind in the message's language (every language's when it is not one of the catalogue's),
        and their union for a first scan; built once per kind and language."""
        key = (kind, language)
        if key not in self._joined:
            table = getattr(self, kind)
            cues = table[language] if language in table else tuple(p for ps in table.values() for p in ps)
            self._joined[key] = (cues, _any_cue(cues))
        return self._joined[key]


def churn_risk(text: str, language: str, cues: ChurnCues) -> bool:
    """The customer says they may leave: a leaving cue (leaving, closing or cancelling, a competitor's offer, a threat
    to close the account), or a long-standing customer (loyalty cue) who is disappointed (disappointment cue)."""
    if not cues:
        return False
    words = tokens(text)
    joined = " ".join(words) + " "
    if _matching(words, joined, *cues.of("leaving", language)):
        return True
    return bool(
        _matching(words, joined, *cues.of("loyalty", language))
        and _matching(words, joined, *cues.of("disappointment", language))
    )


# --- several requests in one message ---

# Where a message may pass to another request: a sentence end, "and also" / "par ailleurs"..., or a bare "and" / "et"
# followed by a question or a request ("... and can you tell me", "... et je voudrais"), not "get X and Y".
_CONNECTORS = (
    r"et aussi|et puis|et egalement|par ailleurs|autre chose|ainsi que|d'autre part|"
    r"and also|and then|also|as well as|another thing|besides|on top of that"
)
_OPENERS = (
    r"can you|could you|can i|could i|will you|i want|i'd like|i would like|i need|i'd also|what|where|when|how|why|"
    r"do you|is there|please|a quel|a quelle|pouvez|pourriez|pourrais|peux|est-ce que|je veux|je voudrais|je souhaite|j'aimerais|"
    r"je dois|j'ai besoin|quel|quelle|quels|quelles|comment|ou|quand|combien|pourquoi|merci de"
)
_SPLIT_FR_EN = re.compile(rf"[.?!;\n]+|,?\s+(?:{_CONNECTORS})\s+|,?\s+(?:et|and)\s+(?=(?:{_OPENERS})\b)")
MIN_SEGMENT_WORDS = 3
# Redacted personal data ("[email]", "[phone]") is not a word of a request: "Mon mail : [EMAIL]" only gives details.
_PLACEHOLDER = re.compile(r"\[[a-z_]+\]")
MULTI_MIN_CONFIDENCE = 0.8  # each request must be this clear on its own


def segments(text: str) -> list[str]:
    """The parts of a message that could each be a request: split at sentence ends and at "and (also)", "et (aussi)",
    "par ailleurs"...; parts under MIN_SEGMENT_WORDS words (placeholders of redacted data not counted) are joined to the
    next ("bonjour, ...")."""
    folded = fold(text)
    parts = [p.strip(" ,") for p in _SPLIT_FR_EN.split(folded) if p and p.strip(" ,")]
    merged: list[str] = []
    carry = ""
    for part in parts:
        part = f"{carry} {part}".strip() if carry else part
        if sum(len(word) > 1 for word in _TOKEN.findall(_PLACEHOLDER.sub(" ", part))) < MIN_SEGMENT_WORDS:
            carry = part
            continue
        merged.append(part)
        carry = ""
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]} {carry}"
        else:
            merged.append(carry)
    return merged


def distinct_requests(
    segment_intents: Sequence[tuple[str | None, float]],
    threshold_for: Callable[[str], float],
    excluded: frozenset[str] = frozenset(),
) -> list[str]:
    """The distinct intents, in order, of the segments the model is sure of (its own threshold and
    MULTI_MIN_CONFIDENCE); `excluded` intents (e.g. "a person, please") are not requests of their own."""
    found: list[str] = []
    for intent, confidence in segment_intents:
        if intent is None or intent in excluded or intent in found:
            continue
        if confidence >= max(threshold_for(intent), MULTI_MIN_CONFIDENCE):
            found.append(intent)
    return found
