"""The use-case catalogue: the declared intents the business edits (catalogue.yaml), validated at load."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import yaml

from relais.classifier.signals import ChurnCues, compile_cue
from relais.common.language import SUPPORTED_LANGUAGES

KNOWN_LOOKUPS = frozenset({"opening_hours", "order_status", "account_balance"})
# The lookups the bot can turn into an answer (relais.bot.answers.ANSWERS): a bot_allowed intent needs
# one of them or its own `answer` text, else the bot would have nothing to say.
BOT_ANSWERED_LOOKUPS = frozenset({"opening_hours", "order_status", "account_balance"})
KNOWN_SKILLS = frozenset({"general", "orders", "billing", "cards", "retention", "complaints", "accounts"})
KNOWN_LIMITS = frozenset({"max_bot_turns", "tiers", "max_amount"})
KNOWN_ESCALATION = frozenset({"priority", "on_low_confidence"})
LOW_CONFIDENCE_ACTIONS = frozenset({"clarify", "handoff"})
MAX_PRIORITY = 20
DEFAULT_TIER = "standard"  # a customer without a tier is served as this one
HUMAN_INTENT = "speak_to_advisor"  # says who the customer wants, not what they want
# Below this confidence a best guess is not plausible: not worth a clarifying question, nor a topic to route or suggest on.
PLAUSIBLE_GUESS = 0.15
DEFAULT_CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")


class CatalogueError(ValueError):
    """The catalogue file is unreadable or invalid; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid catalogue:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class Intent:
    """One use case of the catalogue."""

    id: str
    description: str
    bot_allowed: bool
    lookups: tuple[str, ...]
    skill: str
    threshold: float | None
    max_bot_turns: int
    tiers: frozenset[str] | None  # the customer tiers the bot may serve; None = every tier
    max_amount: float | None  # an amount above this in a message goes to a person
    priority: int  # extra routing priority when handed off, 0..MAX_PRIORITY
    on_low_confidence: str  # "clarify" or "handoff"
    clarify: Mapping[str, str] = field(hash=False)  # language -> the one clarifying question
    answer: Mapping[str, str] | None = field(hash=False)  # language -> static answer, or None
    examples: Mapping[str, tuple[str, ...]] = field(hash=False)
    line: int | None = field(default=None, compare=False)
    needs_judgement: bool = False  # a person weighs it across several systems: handed off with that reason

    @property
    def limits(self) -> Mapping[str, Any]:
        """The limits as written in the file (only those set)."""
        limits: dict[str, Any] = {"max_bot_turns": self.max_bot_turns}
        if self.tiers is not None:
            limits["tiers"] = sorted(self.tiers)
        if self.max_amount is not None:
            limits["max_amount"] = self.max_amount
        return MappingProxyType(limits)

    def serves_tier(self, tier: str | None) -> bool:
        """Whether the bot may serve a customer of this tier (no tier given counts as DEFAULT_TIER)."""
        if self.tiers is None:
            return True
        return ((tier or "").strip().casefold() or DEFAULT_TIER) in self.tiers

    def amount_within_limit(self, amount: float | None) -> bool:
        """False when `amount` (currency units) is above max_amount; True when either is unknown."""
        return self.max_amount is None or amount is None or amount <= self.max_amount

    def clarify_text(self, language: str) -> str:
        """The clarifying question in this language (English, else any, when the language is missing)."""
        return _in_language(self.clarify, language)

    def answer_text(self, language: str) -> str | None:
        """The static answer in this language, or None when the intent has none."""
        return None if self.answer is None else _in_language(self.answer, language)


def _in_language(texts: Mapping[str, str], language: str) -> str:
    if language in texts:
        return texts[language]
    return texts.get("en") or next(iter(texts.values()))


@dataclass(frozen=True)
class Catalogue:
    """The validated use-case catalogue."""

    version: str
    languages: tuple[str, ...]
    default_threshold: float
    intents: Mapping[str, Intent] = field(hash=False)
    source: str = "<memory>"
    sha256: str = ""  # hex SHA-256 of the file's bytes: ties a trained model to the exact catalogue
    # language -> the short answer to a customer writing in that language, which the catalogue does not serve
    unsupported_language_replies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    churn_cues: ChurnCues = field(default_factory=ChurnCues, hash=False)  # the churn_risk section, compiled

    def get(self, intent_id: str) -> Intent:
        """The intent with this id; KeyError naming the id when the catalogue has none."""
        try:
            return self.intents[intent_id]
        except KeyError:
            raise KeyError(f"intent {intent_id!r} is not in catalogue {self.version}") from None

    def threshold_for(self, intent_id: str) -> float:
        """The minimum confidence for this intent: its own threshold, else the default."""
        threshold = self.get(intent_id).threshold
        return self.default_threshold if threshold is None else threshold

    def __contains__(self, intent_id: object) -> bool:
        return intent_id in self.intents

    def serves(self, language: str) -> bool:
        return language in self.languages

    def unsupported_language_reply(self, language: str) -> str | None:
        """The short answer in `language`, which the catalogue does not serve; None when it has none."""
        return self.unsupported_language_replies.get(language)

    def __iter__(self) -> Iterator[Intent]:
        return iter(self.intents.values())

    def __len__(self) -> int:
        return len(self.intents)

    def training_examples(self) -> list[tuple[str, str, str]]:
        """(text, intent id, language) for every example, in file order."""
        return [
            (text, intent.id, lang)
            for intent in self.intents.values()
            for lang, texts in intent.examples.items()
            for text in texts
        ]


class _LineStr(str):
    """A YAML string that remembers its line."""

    line: int | None = None


class _LineDict(dict):
    """A YAML mapping that remembers its line."""

    line: int | None = None


class _CatalogueLoader(yaml.SafeLoader):
    """SafeLoader keeping line numbers and refusing duplicate keys."""


def _construct_str(loader: _CatalogueLoader, node: yaml.ScalarNode) -> _LineStr:
    value = _LineStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    return value


def _construct_map(loader: _CatalogueLoader, node: yaml.MappingNode) -> Iterator[_LineDict]:
    data = _LineDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    first_seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in first_seen:
            raise CatalogueError(
                [f"line {line}: key {key!r} appears twice in the same block (first at line {first_seen[key]})"]
            )
        first_seen[key] = line
        data[key] = loader.construct_object(value_node)


_CatalogueLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_CatalogueLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)

_INTENT_KEYS = frozenset(
    {
        "id",
        "description",
        "bot_allowed",
        "lookups",
        "skill",
        "threshold",
        "limits",
        "escalation",
        "clarify",
        "answer",
        "examples",
        "needs_judgement",
    }
)
_REQUIRED_INTENT_KEYS = (
    "id",
    "description",
    "bot_allowed",
    "lookups",
    "skill",
    "limits",
    "escalation",
    "clarify",
    "examples",
)
_INTENT_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def _line(value: Any, fallback: int | None = None) -> int | None:
    return getattr(value, "line", None) or fallback


def _key_line(mapping: Any, key: str) -> int | None:
    """The line of `key` in a parsed mapping, else the mapping's own line."""
    for candidate in mapping:
        if candidate == key:
            return _line(candidate, _line(mapping))
    return _line(mapping)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _example_key(text: str) -> str:
    """Two examples are duplicates when they differ only by case or spacing."""
    return " ".join(text.casefold().split())


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read and validate the catalogue (default: catalogue.yaml beside this module)."""
    path = Path(path) if path is not None else DEFAULT_CATALOGUE_PATH
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CatalogueError([f"{path}: cannot read catalogue ({error.strerror or error})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CatalogueError([f"{path.name}: not UTF-8 text (byte {error.start})"]) from None
    try:
        raw = yaml.load(text, Loader=_CatalogueLoader)  # noqa: S506 - SafeLoader subclass
    except CatalogueError as error:
        raise CatalogueError([f"{path.name}: {p}" for p in error.problems]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogueError([f"{path.name}{where}: not valid YAML ({getattr(error, 'problem', error)})"]) from None
    return _build_catalogue(raw, path.name, str(path), hashlib.sha256(data).hexdigest())


def _build_catalogue(raw: Any, name: str, source: str, sha256: str = "") -> Catalogue:
    """Validate the parsed YAML; collect every problem before failing."""
    problems: list[str] = []

    def problem(line: int | None, message: str) -> None:
        problems.append(f"{name}:{line}: {message}" if line else f"{name}: {message}")

    if not isinstance(raw, dict):
        raise CatalogueError(
            [f"{name}: the catalogue must be a mapping with version, languages, default_threshold and intents"]
        )
    top_line = _line(raw)
    for key in sorted(
        set(raw)
        - {"version", "languages", "default_threshold", "intents", "unsupported_language_replies", "churn_risk"}
    ):
        problem(_line(key), f"unknown top-level key {key!r}")

    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        problem(_line(version, top_line), 'version must be a non-empty quoted string, e.g. "2026.11.1"')
        version = ""

    languages_raw = raw.get("languages")
    languages: tuple[str, ...] = ()
    if not isinstance(languages_raw, list) or not languages_raw:
        problem(_key_line(raw, "languages"), f"languages must be a non-empty list among {list(SUPPORTED_LANGUAGES)}")
    else:
        for lang in languages_raw:
            if lang not in SUPPORTED_LANGUAGES:
                problem(_line(lang), f"language {lang!r} is not supported (supported: {list(SUPPORTED_LANGUAGES)})")
        languages = tuple(dict.fromkeys(str(lang) for lang in languages_raw if lang in SUPPORTED_LANGUAGES))

    default_threshold = raw.get("default_threshold")
    if not _is_number(default_threshold) or not 0.0 <= float(default_threshold) <= 1.0:
        problem(
            _key_line(raw, "default_threshold"),
            f"default_threshold must be a number between 0 and 1, got {default_threshold!r}",
        )
        default_threshold = 0.5

    intents_raw = raw.get("intents")
    intents: dict[str, Intent] = {}
    if not isinstance(intents_raw, list) or not intents_raw:
        problem(_key_line(raw, "intents"), "intents must be a non-empty list")
        intents_raw = []

    seen_examples: dict[str, tuple[str, str, int | None]] = {}
    seen_ids: dict[str, int | None] = {}
    for index, entry in enumerate(intents_raw, start=1):
        intent_id = entry.get("id") if isinstance(entry, dict) else None
        duplicate = False
        if isinstance(intent_id, str):
            if intent_id in seen_ids:
                duplicate = True
                problem(
                    _line(intent_id, _line(entry)),
                    f"intent {intent_id!r}: duplicate intent id (first defined at line {seen_ids[intent_id]})",
                )
            else:
                seen_ids[intent_id] = _line(entry)
        intent = _build_intent(entry, index, languages, seen_examples, problem)  # still reports its problems
        if intent is not None and not duplicate:
            intents[intent.id] = intent

    unsupported_replies = _build_unsupported_language_replies(raw, languages, problem)
    churn_cues = _build_churn_cues(raw, languages, problem)

    if problems:
        raise CatalogueError(problems)
    return Catalogue(
        version=str(version),
        languages=languages,
        default_threshold=float(default_threshold),
        intents=MappingProxyType(intents),
        source=source,
        sha256=sha256,
        unsupported_language_replies=MappingProxyType(unsupported_replies),
        churn_cues=churn_cues,
    )


CHURN_KINDS = ("leaving", "loyalty", "disappointment")


def _build_churn_cues(raw: dict, languages: tuple[str, ...], problem: Callable[[int | None, str], None]) -> ChurnCues:
    """Optional churn_risk section: for each of CHURN_KINDS, language -> list of cues (see relais.classifier.signals)."""
    if "churn_risk" not in raw:
        return ChurnCues()
    section = raw["churn_risk"]
    line = _key_line(raw, "churn_risk")
    if not isinstance(section, dict):
        problem(line, "churn_risk must be a mapping of leaving, loyalty, disappointment -> {fr: [cues], en: [cues]}")
        return ChurnCues()
    for kind in section:
        if kind not in CHURN_KINDS:
            problem(_line(kind, line), f"churn_risk: unknown key {kind!r} (known: {', '.join(CHURN_KINDS)})")
    compiled: dict[str, dict[str, tuple]] = {}
    for kind in CHURN_KINDS:
        table = section.get(kind)
        compiled[kind] = {}
        if table is None:
            continue
        at = _key_line(section, kind)
        if not isinstance(table, dict):
            problem(at, f"churn_risk.{kind} must be a mapping of language -> list of cues")
            continue
        for lang, cues in table.items():
            if lang not in languages:
                problem(_line(lang, at), f"churn_risk.{kind}: language {lang!r} is not in languages {list(languages)}")
                continue
            if not isinstance(cues, list) or not cues:
                problem(_line(lang, at), f"churn_risk.{kind}.{lang} must be a non-empty list of cues")
                continue
            patterns = []
            for cue in cues:
                try:
                    if not isinstance(cue, str):
                        raise ValueError(f"cue {cue!r} is not text")
                    patterns.append(compile_cue(cue))
                except ValueError as error:
                    problem(_line(cue, at), f"churn_risk.{kind}.{lang}: {error}")
            compiled[kind][str(lang)] = tuple(patterns)
    if bool(compiled["loyalty"]) != bool(compiled["disappointment"]):
        problem(line, "churn_risk: loyalty and disappointment go together (a loyal customer who is disappointed)")
    return ChurnCues(
        leaving=MappingProxyType(compiled["leaving"]),
        loyalty=MappingProxyType(compiled["loyalty"]),
        disappointment=MappingProxyType(compiled["disappointment"]),
    )


_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
MAX_UNSUPPORTED_REPLY_CHARS = 400  # a short answer, not a page


def _build_unsupported_language_replies(
    raw: dict, languages: tuple[str, ...], problem: Callable[[int | None, str], None]
) -> dict[str, str]:
    """Optional: language code (not one of `languages`) -> a short text in that language."""
    if "unsupported_language_replies" not in raw:
        return {}
    section = raw["unsupported_language_replies"]
    line = _key_line(raw, "unsupported_language_replies")
    if not isinstance(section, dict):
        problem(line, 'unsupported_language_replies must be a mapping of language -> text, e.g. {es: "..."}')
        return {}
    replies: dict[str, str] = {}
    for lang, text in section.items():
        at = _line(lang, line)
        if not isinstance(lang, str) or not _LANGUAGE_CODE.match(lang):
            problem(at, f"unsupported_language_replies: {lang!r} is not a lowercase language code such as es or de")
        elif lang in languages:
            problem(at, f"unsupported_language_replies: {lang!r} is served (in languages): the bot answers it")
        elif not isinstance(text, str) or not text.strip():
            problem(at, f"unsupported_language_replies: the text for {lang!r} must be non-empty text, got {text!r}")
        elif len(" ".join(text.split())) > MAX_UNSUPPORTED_REPLY_CHARS:
            problem(
                at,
                f"unsupported_language_replies: the text for {lang!r} is longer than "
                f"{MAX_UNSUPPORTED_REPLY_CHARS} characters; keep it short",
            )
        else:
            replies[lang] = " ".join(text.split())
    return replies


_Report = Callable[[int | None, str], None]


def _build_intent(
    entry: Any,
    index: int,
    languages: tuple[str, ...],
    seen_examples: dict[str, tuple[str, str, int | None]],
    problem: _Report,
) -> Intent | None:
    """One intent, or None after reporting why it is unusable."""
    if not isinstance(entry, dict):
        problem(_line(entry), f"intent #{index}: must be a mapping with id, description, bot_allowed, ...")
        return None
    line = _line(entry)
    intent_id = entry.get("id")
    if not isinstance(intent_id, str) or not _INTENT_ID.match(intent_id):
        problem(_line(intent_id, line), f"intent #{index}: id must be snake_case text, got {intent_id!r}")
        return None
    label = f"intent {intent_id!r}"
    ok = True

    def bad(at: int | None, message: str) -> None:
        nonlocal ok
        ok = False
        problem(at or line, f"{label}: {message}")

    for key in sorted(set(entry) - _INTENT_KEYS):
        bad(_line(key), f"unknown key {key!r} (allowed: {', '.join(sorted(_INTENT_KEYS))})")
    for key in _REQUIRED_INTENT_KEYS:
        if key not in entry:
            bad(line, f"missing {key!r}")

    description = entry.get("description", "")
    if "description" in entry and (not isinstance(description, str) or not description.strip()):
        bad(_line(description), "description must be non-empty text")

    bot_allowed = entry.get("bot_allowed", False)
    if "bot_allowed" in entry and not isinstance(bot_allowed, bool):
        bad(_key_line(entry, "bot_allowed"), f"bot_allowed must be true or false, got {bot_allowed!r}")

    lookups = entry.get("lookups", [])
    if not isinstance(lookups, list):
        bad(_key_line(entry, "lookups"), "lookups must be a list (use [] for none)")
        lookups = []
    for lookup in lookups:
        if lookup not in KNOWN_LOOKUPS:
            bad(_line(lookup), f"unknown lookup {lookup!r} (known: {', '.join(sorted(KNOWN_LOOKUPS))})")

    skill = entry.get("skill", "")
    if "skill" in entry and skill not in KNOWN_SKILLS:
        bad(_line(skill), f"unknown skill {skill!r} (known: {', '.join(sorted(KNOWN_SKILLS))})")

    threshold = entry.get("threshold")
    if threshold is not None and (not _is_number(threshold) or not 0.0 <= float(threshold) <= 1.0):
        bad(_key_line(entry, "threshold"), f"threshold must be a number between 0 and 1, got {threshold!r}")

    limits = entry.get("limits")
    if "limits" in entry and not isinstance(limits, dict):
        bad(_key_line(entry, "limits"), "limits must be a mapping, e.g. {max_bot_turns: 2}")
    limits = limits if isinstance(limits, dict) else {}
    for key in limits:
        if key not in KNOWN_LIMITS:
            bad(_line(key), f"unknown limit {key!r} (known: {', '.join(sorted(KNOWN_LIMITS))})")
    max_bot_turns = limits.get("max_bot_turns")
    if "limits" in entry and "max_bot_turns" not in limits:
        bad(_key_line(entry, "limits"), "limits: missing 'max_bot_turns' (0 for an intent only people handle)")
    elif "max_bot_turns" in limits and (
        not _is_number(max_bot_turns) or int(max_bot_turns) != max_bot_turns or max_bot_turns < 0
    ):
        bad(
            _key_line(limits, "max_bot_turns"),
            f"limit 'max_bot_turns' must be a whole number >= 0, got {max_bot_turns!r}",
        )
        max_bot_turns = None
    turns = int(max_bot_turns) if _is_number(max_bot_turns) else 0

    tiers_raw = limits.get("tiers")
    tiers: frozenset[str] | None = None
    if "tiers" in limits:
        if (
            not isinstance(tiers_raw, list)
            or not tiers_raw
            or not all(isinstance(t, str) and t.strip() for t in tiers_raw)
        ):
            bad(
                _key_line(limits, "tiers"),
                f"tiers must be a non-empty list of tier names, e.g. [standard, gold] "
                f"(leave it out to serve every tier), got {tiers_raw!r}",
            )
        else:
            tiers = frozenset(str(t).strip().casefold() for t in tiers_raw)

    max_amount = limits.get("max_amount")
    if "max_amount" in limits and (not _is_number(max_amount) or not math.isfinite(max_amount) or max_amount <= 0):
        bad(
            _key_line(limits, "max_amount"),
            f"max_amount must be a positive number (currency units), got {max_amount!r}",
        )
        max_amount = None

    if bot_allowed is False and turns > 0:
        bad(_key_line(limits, "max_bot_turns"), "max_bot_turns is above 0 but bot_allowed is false")
    if bot_allowed is True and max_bot_turns == 0:
        bad(
            _key_line(limits, "max_bot_turns"), "bot_allowed is true but max_bot_turns is 0: the bot could never answer"
        )
    if bot_allowed is False:
        for key in ("tiers", "max_amount"):
            if key in limits:
                bad(_key_line(limits, key), f"{key} limits what the bot serves, but bot_allowed is false")

    escalation = entry.get("escalation")
    priority: Any = 0
    on_low_confidence: Any = "handoff"
    if "escalation" in entry and not isinstance(escalation, dict):
        bad(_key_line(entry, "escalation"), "escalation must be a mapping with priority and on_low_confidence")
    elif isinstance(escalation, dict):
        esc_line = _key_line(entry, "escalation")
        for key in escalation:
            if key not in KNOWN_ESCALATION:
                bad(_line(key), f"unknown escalation key {key!r} (known: {', '.join(sorted(KNOWN_ESCALATION))})")
        for key in sorted(KNOWN_ESCALATION - set(escalation)):
            bad(esc_line, f"escalation: missing {key!r}")
        priority = escalation.get("priority", 0)
        if "priority" in escalation and (
            not _is_number(priority) or int(priority) != priority or not 0 <= priority <= MAX_PRIORITY
        ):
            bad(
                _key_line(escalation, "priority"),
                f"priority must be a whole number from 0 to {MAX_PRIORITY}, got {priority!r}",
            )
            priority = 0
        on_low_confidence = escalation.get("on_low_confidence", "handoff")
        if "on_low_confidence" in escalation and on_low_confidence not in LOW_CONFIDENCE_ACTIONS:
            bad(
                _key_line(escalation, "on_low_confidence"),
                f"on_low_confidence must be one of {', '.join(sorted(LOW_CONFIDENCE_ACTIONS))}, "
                f"got {on_low_confidence!r}",
            )

    clarify = (
        _build_texts(entry.get("clarify"), "clarify", _key_line(entry, "clarify"), languages, bad)
        if "clarify" in entry
        else {}
    )
    answer = (
        _build_texts(entry.get("answer"), "answer", _key_line(entry, "answer"), languages, bad)
        if "answer" in entry
        else None
    )

    if bot_allowed is True and isinstance(lookups, list):
        answered = [x for x in lookups if x in BOT_ANSWERED_LOOKUPS]
        if not answered and answer is None:
            bad(
                _key_line(entry, "bot_allowed"),
                "bot_allowed is true but the bot has nothing to say: add an 'answer' (fr/en text) or a lookup "
                f"the bot answers ({', '.join(sorted(BOT_ANSWERED_LOOKUPS))})",
            )
    needs_judgement = entry.get("needs_judgement", False)
    if not isinstance(needs_judgement, bool):
        bad(_key_line(entry, "needs_judgement"), f"needs_judgement must be true or false, got {needs_judgement!r}")
    elif needs_judgement and bot_allowed is True:
        bad(
            _key_line(entry, "needs_judgement"),
            "needs_judgement sends every such message to a person, but bot_allowed is true: set it to false",
        )
    if bot_allowed is False and "answer" in entry:
        bad(_key_line(entry, "answer"), "answer is set but bot_allowed is false: the bot would never say it")

    examples = _build_examples(
        entry.get("examples"), _key_line(entry, "examples"), languages, intent_id, seen_examples, bad
    )

    if not ok:
        return None
    return Intent(
        id=intent_id,
        description=str(description),
        bot_allowed=bool(bot_allowed),
        lookups=tuple(str(x) for x in lookups),
        skill=str(skill),
        threshold=None if threshold is None else float(threshold),
        max_bot_turns=turns,
        tiers=tiers,
        max_amount=None if max_amount is None else float(max_amount),
        priority=int(priority),
        on_low_confidence=str(on_low_confidence),
        clarify=MappingProxyType(clarify),
        answer=None if answer is None else MappingProxyType(answer),
        examples=MappingProxyType(examples),
        line=line,
        needs_judgement=needs_judgement is True,
    )


def _build_texts(raw: Any, key: str, line: int | None, languages: tuple[str, ...], bad: _Report) -> dict[str, str]:
    """A text per language (clarify, answer): every catalogue language, nothing else."""
    if not isinstance(raw, dict):
        bad(_line(raw, line), f'{key} must be a mapping of language -> text, e.g. {{fr: "...", en: "..."}}')
        return {}
    texts: dict[str, str] = {}
    for lang in raw:
        if lang not in languages:
            bad(_line(lang), f"{key} text for language {lang!r}, which is not in languages {list(languages)}")
    for lang in languages:
        value = raw.get(lang)
        if lang not in raw:
            bad(_line(raw, line), f"missing {key} text for language {lang!r}")
        elif not isinstance(value, str) or not value.strip():
            bad(_line(value, _key_line(raw, lang)), f"{key} text for {lang!r} must be non-empty text, got {value!r}")
        else:
            texts[lang] = " ".join(str(value).split())
    return texts


def _build_examples(
    raw: Any,
    line: int | None,
    languages: tuple[str, ...],
    intent_id: str,
    seen: dict[str, tuple[str, str, int | None]],
    bad: _Report,
) -> dict[str, tuple[str, ...]]:
    """Examples per language; reports missing languages and duplicates across the whole file."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        bad(_line(raw, line), "examples must be a mapping of language -> list of phrases")
        return {}
    examples: dict[str, tuple[str, ...]] = {}
    for lang in raw:
        if lang not in languages:
            bad(_line(lang), f"examples for language {lang!r}, which is not in languages {list(languages)}")
    for lang in languages:
        texts = raw.get(lang)
        if not isinstance(texts, list) or not texts:
            bad(_line(raw, line), f"missing examples for language {lang!r}")
            continue
        kept: list[str] = []
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                bad(_line(text, _line(raw)), f"{lang} example must be non-empty text, got {text!r}")
                continue
            key = _example_key(text)
            if key in seen:
                other_intent, other_lang, other_line = seen[key]
                where = f"line {other_line}" if other_line else "earlier"
                bad(
                    _line(text),
                    f"duplicate example {str(text)!r} ({lang}); already at {where} "
                    f"in intent {other_intent!r} ({other_lang})",
                )
                continue
            seen[key] = (intent_id, lang, _line(text))
            kept.append(str(text))
        examples[lang] = tuple(kept)
    return examples
