"""The classifier's pure logic: use-case catalogue, language, intent, sentiment, human requests.

No Kafka and no I/O apart from reading the catalogue file. French and English.

    catalogue = load_catalogue()
    model = IntentModel.train(catalogue, seed=0)
    result = classify("Où en est ma commande CMD-123456 ?", None, model, catalogue)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from relais.common.language import SUPPORTED_LANGUAGES, detect_language, fold, supported_language

__all__ = [
    "DEFAULT_CATALOGUE_PATH", "HUMAN_INTENT", "KNOWN_LOOKUPS", "KNOWN_SKILLS", "SUPPORTED_LANGUAGES",
    "Catalogue", "CatalogueError", "Classification", "Intent", "IntentModel", "Prediction", "Sentiment",
    "analyse_sentiment", "asks_for_human", "classify", "detect_language", "load_catalogue", "normalise_text",
]

KNOWN_LOOKUPS = frozenset({"opening_hours", "order_status", "account_balance"})
KNOWN_SKILLS = frozenset({"general", "orders", "billing", "cards", "retention", "complaints"})
KNOWN_LIMITS = frozenset({"max_bot_turns"})
HUMAN_INTENT = "speak_to_advisor"
DEFAULT_CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")


def normalise_text(text: str) -> str:
    """What the intent model sees: folded, digits masked (CMD-123456 -> cmd-000000), spaces collapsed."""
    return " ".join(re.sub(r"\d", "0", fold(text)).split())


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------

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
    limits: Mapping[str, int] = field(hash=False)
    examples: Mapping[str, tuple[str, ...]] = field(hash=False)
    line: int | None = field(default=None, compare=False)

    @property
    def max_bot_turns(self) -> int:
        """How many bot replies are allowed before handing over (0 when not set)."""
        return self.limits.get("max_bot_turns", 0)


@dataclass(frozen=True)
class Catalogue:
    """The validated use-case catalogue."""

    version: str
    languages: tuple[str, ...]
    default_threshold: float
    intents: Mapping[str, Intent] = field(hash=False)
    source: str = "<memory>"

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

    def __iter__(self) -> Iterator[Intent]:
        return iter(self.intents.values())

    def __len__(self) -> int:
        return len(self.intents)

    def training_examples(self) -> list[tuple[str, str, str]]:
        """(text, intent id, language) for every example, in file order."""
        return [(text, intent.id, lang)
                for intent in self.intents.values()
                for lang, texts in intent.examples.items()
                for text in texts]


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
            raise CatalogueError([f"line {line}: key {key!r} appears twice in the same block "
                                  f"(first at line {first_seen[key]})"])
        first_seen[key] = line
        data[key] = loader.construct_object(value_node)


_CatalogueLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_CatalogueLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)

_INTENT_KEYS = frozenset({"id", "description", "bot_allowed", "lookups", "skill", "threshold", "limits", "examples"})
_REQUIRED_INTENT_KEYS = ("id", "description", "bot_allowed", "lookups", "skill", "examples")
_INTENT_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def _line(value: Any, fallback: int | None = None) -> int | None:
    return getattr(value, "line", None) or fallback


def _key_line(mapping: Any, key: str) -> int | None:
    """The line of `key` in a parsed mapping, else the mapping's own line."""
    for candidate in mapping:
        if candidate == key:
            return _line(candidate, _line(mapping))
    return _line(mapping)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _example_key(text: str) -> str:
    """Two examples are duplicates when they differ only by case or spacing."""
    return " ".join(text.casefold().split())


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read and validate the catalogue (default: catalogue.yaml beside this module)."""
    path = Path(path) if path is not None else DEFAULT_CATALOGUE_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogueError([f"{path}: cannot read catalogue ({error.strerror or error})"]) from None
    try:
        raw = yaml.load(text, Loader=_CatalogueLoader)  # noqa: S506 - SafeLoader subclass
    except CatalogueError as error:
        raise CatalogueError([f"{path.name}: {p}" for p in error.problems]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogueError([f"{path.name}{where}: not valid YAML ({getattr(error, 'problem', error)})"]) from None
    return _build_catalogue(raw, path.name, str(path))


def _build_catalogue(raw: Any, name: str, source: str) -> Catalogue:
    """Validate the parsed YAML; collect every problem before failing."""
    problems: list[str] = []

    def problem(line: int | None, message: str) -> None:
        problems.append(f"{name}:{line}: {message}" if line else f"{name}: {message}")

    if not isinstance(raw, dict):
        raise CatalogueError([f"{name}: the catalogue must be a mapping with version, languages, "
                              "default_threshold and intents"])
    top_line = _line(raw)
    for key in sorted(set(raw) - {"version", "languages", "default_threshold", "intents"}):
        problem(_line(key), f"unknown top-level key {key!r}")

    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        problem(_line(version, top_line), "version must be a non-empty quoted string, e.g. \"2026.11.1\"")
        version = ""

    languages_raw = raw.get("languages")
    languages: tuple[str, ...] = ()
    if not isinstance(languages_raw, list) or not languages_raw:
        problem(_key_line(raw, "languages"),
                f"languages must be a non-empty list among {list(SUPPORTED_LANGUAGES)}")
    else:
        for lang in languages_raw:
            if lang not in SUPPORTED_LANGUAGES:
                problem(_line(lang), f"language {lang!r} is not supported (supported: {list(SUPPORTED_LANGUAGES)})")
        languages = tuple(dict.fromkeys(str(lang) for lang in languages_raw if lang in SUPPORTED_LANGUAGES))

    default_threshold = raw.get("default_threshold")
    if not _is_number(default_threshold) or not 0.0 <= float(default_threshold) <= 1.0:
        problem(_key_line(raw, "default_threshold"),
                f"default_threshold must be a number between 0 and 1, got {default_threshold!r}")
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
        duplicate = isinstance(intent_id, str) and intent_id in seen_ids
        if duplicate:
            problem(_line(intent_id, _line(entry)),
                    f"intent {intent_id!r}: duplicate intent id (first defined at line {seen_ids[intent_id]})")
        elif isinstance(intent_id, str):
            seen_ids[intent_id] = _line(entry)
        intent = _build_intent(entry, index, languages, seen_examples, problem)  # still reports its problems
        if intent is not None and not duplicate:
            intents[intent.id] = intent

    if problems:
        raise CatalogueError(problems)
    return Catalogue(version=str(version), languages=languages, default_threshold=float(default_threshold),
                     intents=MappingProxyType(intents), source=source)


_Report = Callable[[int | None, str], None]


def _build_intent(entry: Any, index: int, languages: tuple[str, ...],
                  seen_examples: dict[str, tuple[str, str, int | None]], problem: _Report) -> Intent | None:
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

    limits = entry.get("limits") or {}
    if not isinstance(limits, dict):
        bad(_key_line(entry, "limits"), "limits must be a mapping, e.g. {max_bot_turns: 2}")
        limits = {}
    for key, value in limits.items():
        if key not in KNOWN_LIMITS:
            bad(_line(key), f"unknown limit {key!r} (known: {', '.join(sorted(KNOWN_LIMITS))})")
        elif not _is_number(value) or int(value) != value or value < 0:
            bad(_line(key), f"limit {key!r} must be a whole number >= 0, got {value!r}")

    if bot_allowed is False and isinstance(limits.get("max_bot_turns"), int) and limits["max_bot_turns"] > 0:
        bad(_key_line(limits, "max_bot_turns"), "max_bot_turns is above 0 but bot_allowed is false")

    examples = _build_examples(entry.get("examples"), _key_line(entry, "examples"), languages, intent_id,
                               seen_examples, bad)

    if not ok:
        return None
    return Intent(
        id=intent_id, description=str(description), bot_allowed=bool(bot_allowed),
        lookups=tuple(str(x) for x in lookups), skill=str(skill),
        threshold=None if threshold is None else float(threshold),
        limits=MappingProxyType({str(k): int(v) for k, v in limits.items()}),
        examples=MappingProxyType(examples), line=line,
    )


def _build_examples(raw: Any, line: int | None, languages: tuple[str, ...], intent_id: str,
                    seen: dict[str, tuple[str, str, int | None]], bad: _Report) -> dict[str, tuple[str, ...]]:
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
                bad(_line(text), f"duplicate example {str(text)!r} ({lang}); already at {where} "
                                 f"in intent {other_intent!r} ({other_lang})")
                continue
            seen[key] = (intent_id, lang, _line(text))
            kept.append(str(text))
        examples[lang] = tuple(kept)
    return examples


# --------------------------------------------------------------------------------------------
# Intent model
# --------------------------------------------------------------------------------------------

# Chosen by 5-fold cross-validation on the catalogue examples (see bench/classifier_quick.py):
# character n-grams generalise better than words on short, misspelt messages, so they weigh double.
DEFAULT_C = 10.0
CHAR_WEIGHT = 2.0

# "None of the above": things people also type into a contact-centre chat. Trained as one extra
# class so that a message about something else loses to it rather than to the nearest intent
# ("combien font..." is not account_balance). Never reported as an intent.
OUT_OF_SCOPE_LABEL = "__out_of_scope__"
BACKGROUND_EXAMPLES: dict[str, tuple[str, ...]] = {
    "fr": (
        "Comment vas-tu aujourd'hui ?", "Tu t'appelles comment ?", "Quelle heure est-il à New York ?",
        "Je cherche un billet de train pour Marseille", "Peux-tu me réserver une table au restaurant ce soir ?",
        "Quel est le meilleur forfait téléphone en ce moment ?", "Comment installer Python sur mon ordinateur ?",
        "Mon vol pour Madrid est-il à l'heure ?", "Quels sont les symptômes de la grippe ?",
        "Chante-moi une chanson", "Écris un poème sur la mer", "Qui va gagner les élections ?",
        "Combien d'habitants y a-t-il au Canada ?", "Combien de kilomètres entre Paris et Lyon ?",
        "Quel est mon signe astrologique si je suis né en mars ?", "Donne-moi les numéros gagnants du loto",
        "Tu peux m'aider pour mes devoirs ?", "Quelle est la hauteur de la tour Eiffel ?",
        "Tu préfères les chats ou les chiens ?", "Mon chien ne mange plus, que faire ?",
        "Je veux apprendre à jouer de la guitare", "C'est quoi la différence entre un virus et une bactérie ?",
        "Où peut-on voir des aurores boréales ?", "Quel âge a le président ?",
        "Je m'ennuie, parle-moi de quelque chose", "Est-ce que tu rêves la nuit ?",
        "Quel est le cours du bitcoin aujourd'hui ?", "Comment changer une roue de voiture ?",
        "Je voudrais réserver un hôtel à Nice", "Appelle un taxi pour moi",
        "Quand a eu lieu la Révolution française ?", "Pourquoi le ciel est bleu ?",
        "J'ai besoin d'un plombier", "Mets de la musique", "Comment perdre du poids rapidement ?",
        "Quelle est la meilleure voiture électrique ?", "Aide-moi à écrire ma lettre de motivation",
        "Tu es marié ?", "Salut ça va", "Quelle est la vitesse de la lumière ?",
        "Combien coûte un billet d'avion pour Rome ?", "Combien de langues parles-tu ?",
        "Combien de temps faut-il pour aller sur la Lune ?",
    ),
    "en": (
        "How are you today?", "What's your name?", "What time is it in Tokyo?",
        "I need a train ticket to Brighton", "Can you book me a table for two tonight?",
        "Which phone plan is the cheapest right now?", "How do I install Python on my laptop?",
        "Is my flight to Madrid on time?", "What are the symptoms of flu?",
        "Sing me a song", "Write a poem about the sea", "Who will win the next election?",
        "How many people live in Canada?", "How far is London from Edinburgh?",
        "What's my star sign if I was born in March?", "Give me the winning lottery numbers",
        "Can you help with my homework?", "How tall is the Eiffel Tower?",
        "Do you prefer cats or dogs?", "My dog won't eat, what should I do?",
        "I want to learn to play the guitar", "What's the difference between a virus and bacteria?",
        "Where can I see the northern lights?", "How old is the king?",
        "I'm bored, chat with me about anything", "Do you dream at night?",
        "What's the bitcoin price today?", "How do I change a car tyre?",
        "I'd like to book a hotel in Nice", "Call me a taxi",
        "When did World War Two end?", "Why is the sky blue?",
        "I need a plumber", "Play some music", "How can I lose weight fast?",
        "What's the best electric car?", "Help me write a cover letter",
        "Are you married?", "hey whats up", "What is the speed of light?",
        "How much is a plane ticket to Rome?", "How many languages do you speak?",
        "How long does it take to get to the moon?",
    ),
}


@dataclass(frozen=True)
class Prediction:
    """Model output. `intent` is None when out of scope; `ranked` keeps the best guesses anyway.

    `confidence` and the numbers in `ranked` are probabilities times the share of known words.
    """

    intent: str | None
    confidence: float
    out_of_scope: bool
    ranked: list[tuple[str, float]] = field(hash=False)

    @property
    def best_guess(self) -> str | None:
        """The most probable catalogue intent, in scope or not."""
        return self.ranked[0][0] if self.ranked else None


_WORD = re.compile(r"[a-z]{2,}")


def _words(normalised: str) -> list[str]:
    """Words of two letters or more (numbers and lone letters such as the "j" of "j'ai" left out)."""
    return _WORD.findall(normalised)


class _FastScorer:
    """The fitted pipeline's predict_proba for one text, without scikit-learn's per-call overhead.

    Same arithmetic (sublinear tf x idf, l2 per block, block weights, softmax of the linear scores)
    at about 50 µs instead of about 1.3 ms; tests check it against the pipeline.
    """

    def __init__(self, pipeline: Any):
        features = pipeline.named_steps["features"]
        classifier = pipeline.named_steps["classifier"]
        weights = features.transformer_weights or {}
        self._blocks = []
        offset = 0
        for name, vectorizer in features.transformer_list:
            self._blocks.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_,
                                 float(weights.get(name, 1.0)), offset, vectorizer.sublinear_tf))
            offset += len(vectorizer.vocabulary_)
        self._coef = np.ascontiguousarray(classifier.coef_.T)  # one row per feature
        self._intercept = np.asarray(classifier.intercept_, dtype=float)

    def __call__(self, normalised: str) -> np.ndarray:
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for analyse, vocabulary, idf, weight, offset, sublinear in self._blocks:
            counts = Counter(analyse(normalised))
            known = [(vocabulary[term], n) for term, n in counts.items() if term in vocabulary]
            if not known:
                continue
            index = np.fromiter((j for j, _ in known), dtype=np.intp, count=len(known))
            value = np.fromiter((n for _, n in known), dtype=float, count=len(known))
            if sublinear:
                value = 1.0 + np.log(value)
            value *= idf[index]
            value *= weight / np.sqrt(value @ value)
            indices.append(index + offset)
            values.append(value)
        scores = self._intercept.copy()
        if indices:
            scores += np.concatenate(values) @ self._coef[np.concatenate(indices)]
        scores -= scores.max()
        exp = np.exp(scores)
        return exp / exp.sum()


class IntentModel:
    """TF-IDF (word 1-2 grams + character 2-5 grams) and logistic regression over both languages.

    The confidence of an intent is its probability times the share of the message's words seen in
    training: the vectoriser silently drops unknown words, so "combien font douze fois sept ?" would
    otherwise look like "combien ?" and score high for account_balance. Out of scope when the
    "none of the above" class beats the best intent or the best intent's confidence is under its
    threshold (the intent's own, else the catalogue's default_threshold).
    """

    def __init__(self, pipeline: Any, thresholds: Mapping[str, float], catalogue_version: str, seed: int,
                 vocabulary: frozenset[str]):
        self._pipeline = pipeline
        self._scorer = _FastScorer(pipeline) if len(pipeline.classes_) > 2 else None
        self.vocabulary = vocabulary
        columns = [str(c) for c in pipeline.classes_]
        self._intent_columns = np.array([i for i, c in enumerate(columns) if c != OUT_OF_SCOPE_LABEL])
        self._background_column = columns.index(OUT_OF_SCOPE_LABEL) if OUT_OF_SCOPE_LABEL in columns else None
        self.classes: tuple[str, ...] = tuple(columns[i] for i in self._intent_columns)
        self.thresholds = MappingProxyType(dict(thresholds))
        self._threshold_array = np.array([thresholds[c] for c in self.classes])
        self.catalogue_version = catalogue_version
        self.seed = seed

    @staticmethod
    def build_pipeline(seed: int = 0, c: float = DEFAULT_C) -> Any:
        """The untrained scikit-learn pipeline (inputs must already be normalise_text()-ed)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        features = FeatureUnion([
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False,
                                      token_pattern=r"(?u)\b\w+\b", sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False,
                                      sublinear_tf=True)),
        ], transformer_weights={"words": 1.0, "chars": CHAR_WEIGHT})
        classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        return Pipeline([("features", features), ("classifier", classifier)])

    @staticmethod
    def training_set(catalogue: Catalogue, background: bool = True) -> tuple[list[str], list[str]]:
        """Normalised texts and labels: the catalogue examples plus the "none of the above" ones."""
        pairs = [(text, intent) for text, intent, _ in catalogue.training_examples()]
        if background:
            pairs += [(text, OUT_OF_SCOPE_LABEL) for lang in catalogue.languages
                      for text in BACKGROUND_EXAMPLES.get(lang, ())]
        return [normalise_text(text) for text, _ in pairs], [label for _, label in pairs]

    @classmethod
    def train(cls, catalogue: Catalogue, seed: int = 0, c: float = DEFAULT_C) -> IntentModel:
        """Fit on every example of every language of the catalogue."""
        texts, labels = cls.training_set(catalogue)
        pipeline = cls.build_pipeline(seed, c).fit(texts, labels)
        thresholds = {intent.id: catalogue.threshold_for(intent.id) for intent in catalogue}
        vocabulary = frozenset(word for text in texts for word in _words(text))
        return cls(pipeline, thresholds, catalogue.version, seed, vocabulary)

    def coverage(self, text: str) -> float:
        """Share of the message's words seen in training (1.0 when it has no words, e.g. only a number)."""
        words = _words(normalise_text(text))
        return sum(w in self.vocabulary for w in words) / len(words) if words else 1.0

    def _all_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        normalised = [normalise_text(t) for t in texts]
        if self._scorer is None:  # two classes: scikit-learn's binary formula, rare enough to go slow
            return self._pipeline.predict_proba(normalised)
        return np.vstack([self._scorer(text) for text in normalised])

    def pipeline_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """All class probabilities straight from scikit-learn (reference for the fast path)."""
        return self._pipeline.predict_proba([normalise_text(t) for t in texts])

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Raw model probabilities of the intents, one row per text, columns in `classes` order.

        A row sums to less than 1 by the probability of "none of the above".
        """
        return self._all_probabilities(texts)[:, self._intent_columns]

    def predict(self, text: str, top_k: int = 3) -> Prediction:
        """Best intent for one message, or out of scope."""
        return self.predict_batch([text], top_k)[0]

    def predict_batch(self, texts: Sequence[str], top_k: int = 3) -> list[Prediction]:
        """predict() for many messages (same results as one by one)."""
        texts = list(texts)
        results: list[Prediction] = [Prediction(intent=None, confidence=0.0, out_of_scope=True, ranked=[])
                                     for _ in texts]
        usable = [i for i, t in enumerate(texts) if any(c.isalnum() for c in t)]
        if not usable:
            return results
        everything = self._all_probabilities([texts[i] for i in usable])
        raw = everything[:, self._intent_columns]
        coverage = np.array([self.coverage(texts[i]) for i in usable])
        probs = raw * coverage[:, None]
        order = np.argsort(-raw, axis=1, kind="stable")[:, :max(top_k, 1)]
        best = order[:, 0]
        confidence = probs[np.arange(len(usable)), best]
        out_of_scope = confidence < self._threshold_array[best]
        if self._background_column is not None:
            out_of_scope |= everything[:, self._background_column] > raw[np.arange(len(usable)), best]
        for row, i in enumerate(usable):
            ranked = [(self.classes[j], round(float(probs[row, j]), 6)) for j in order[row]]
            results[i] = Prediction(intent=None if out_of_scope[row] else self.classes[best[row]],
                                    confidence=float(confidence[row]), out_of_scope=bool(out_of_scope[row]),
                                    ranked=ranked)
        return results


# --------------------------------------------------------------------------------------------
# Sentiment: lexicon + rules
# --------------------------------------------------------------------------------------------
# Phrases are written naturally; they go through the same folding as messages (accents, case,
# apostrophes, "n't" -> " not"). The longest phrase wins where phrases overlap. A cue preceded in
# the same clause (up to 3 words back) by a negation is flipped, unless the cue itself contains one
# (or "plus": "je n'ai plus un sou" is distress, not its negation).

ANGER = {
    "fr": [
        "scandale", "scandaleux", "scandaleuse", "inadmissible", "inacceptable", "c'est honteux", "honteux",
        "une honte", "quelle honte", "ras-le-bol", "ras le bol", "j'en ai marre", "j'en ai ras le bol",
        "marre", "en colère", "furieux", "furieuse", "énervé", "énervée", "exaspéré", "exaspérée",
        "exaspérant", "insupportable", "n'importe quoi", "foutage de gueule", "vous vous moquez",
        "se moquer du monde", "vous foutez", "lamentable", "pitoyable", "minable",
        "incompétents", "incompétent", "incapables", "nuls", "bande d'incapables", "c'est une arnaque",
        "arnaqueurs", "escrocs", "voleurs", "dégoûté", "dégoûtée", "écœuré", "écœurée", "révoltant",
        "c'est une blague", "outré", "outrée", "intolérable",
    ],
    "en": [
        "furious", "ridiculous", "unacceptable", "worst service", "the worst", "disgusting", "disgrace",
        "disgraceful", "outrageous", "outraged", "pathetic", "useless", "incompetent", "is a scam", "scammers",
        "rip off", "ripoff", "rip-off", "thieves", "fed up", "sick of", "sick and tired", "angry", "livid",
        "fuming", "pissed off", "shameful", "shame on you", "how dare", "absurd", "appalling",
        "terrible service", "is a joke", "a total joke", "such a joke", "never again", "infuriating",
        "not acceptable", "beyond a joke", "taking the piss",
    ],
}

# Swearing is matched whatever the message's language ("c'est quoi ce bordel, wtf").
SWEARING = {
    "fr": ["putain", "merde", "bordel", "connard", "connards", "connasse", "enculé", "enculés", "salaud",
           "salauds", "salopard", "foutre", "bande de cons", "vous êtes nuls", "fait chier", "chier"],
    "en": ["fuck", "fucking", "fucked", "shit", "shitty", "bullshit", "crap", "damn", "bloody hell",
           "idiots", "morons", "bastards", "wtf", "asshole", "assholes"],
}

DISTRESS = {
    "fr": [
        "désespéré", "désespérée", "désespoir", "je ne sais plus quoi faire", "je sais plus quoi faire",
        "je ne sais pas quoi faire", "je sais pas quoi faire", "panique", "paniqué", "paniquée", "je panique",
        "très peur", "tellement peur", "vraiment peur", "terrifié", "terrifiée", "angoissé", "angoissée",
        "angoisse", "au secours", "sans argent", "n'ai plus d'argent", "j'ai plus d'argent", "plus un sou",
        "plus un centime", "pas un centime", "pas un sou", "ai plus rien", "à la rue", "bloqué à l'étranger",
        "bloquée à l'étranger", "coincé à l'étranger", "coincée à l'étranger", "détresse", "en pleurs",
        "je pleure", "je vous en supplie", "je vous supplie", "aidez-moi je vous en prie", "de quoi manger",
        "nourrir mes enfants",
    ],
    "en": [
        "scared", "terrified", "frightened", "so afraid", "really afraid", "desperate", "desperately",
        "panic", "panicking", "panicked", "don't know what to do", "dont know what to do",
        "no money", "no cash", "not a penny", "without money", "can't buy food", "can't feed",
        "stranded", "stuck abroad", "i beg you", "begging you", "worried sick", "anxious", "distressed",
        "crying", "in tears", "helpless", "lost everything", "nothing left", "no food",
    ],
}

URGENCY = {
    "fr": [
        "urgent", "urgente", "urgence", "en urgence", "immédiatement", "tout de suite", "de suite",
        "au plus vite", "au plus tôt", "dès que possible", "le plus vite possible",
        "le plus rapidement possible", "sans attendre", "aujourd'hui même", "c'est pressé", "pressé",
        "asap",
    ],
    "en": [
        "urgent", "urgently", "emergency", "immediately", "right now", "right away", "asap",
        "as soon as possible", "straight away", "at once", "time sensitive", "time-sensitive",
        "without delay", "hurry",
    ],
}

NEGATIVE = {
    "fr": ["problème", "souci", "retard", "en retard", "déçu", "déçue", "déception", "mécontent", "mécontente",
           "insatisfait", "insatisfaite", "erreur", "bloqué", "bloquée", "toujours pas", "jamais reçu",
           "cassé", "cassée", "abîmé", "abîmée", "endommagé", "nul", "nulle", "mauvais", "mauvaise",
           "agacé", "agacée", "pénible", "galère", "inquiet", "inquiète", "perdu", "volé", "pas normal",
           "arnaque", "catastrophique", "catastrophe", "honte", "peur"],
    "en": ["problem", "issue", "late", "delayed", "disappointed", "disappointing", "unhappy", "dissatisfied",
           "broken", "damaged", "wrong", "error", "still not", "still no", "never arrived", "annoyed",
           "annoying", "frustrated", "frustrating", "bad", "poor", "terrible", "awful", "horrible",
           "worried", "lost", "stolen", "scam", "not happy", "afraid"],
}

# Phrases that look like cues but are not: matched first and worth nothing.
NEUTRAL = {
    "fr": ["nulle part", "à l'aide de", "j'ai bien peur", "match nul", "pas mal de"],
    "en": ["i'm afraid", "i am afraid", "no matter", "no problem with", "damn good"],
}

POSITIVE = {
    "fr": ["merci", "parfait", "parfaitement", "génial", "excellent", "top", "content", "contente",
           "satisfait", "satisfaite", "ravi", "ravie", "bravo", "formidable", "efficace", "rapide",
           "sympa", "agréable", "bien", "impeccable"],
    "en": ["thanks", "thank you", "thank", "great", "perfect", "excellent", "happy", "satisfied", "awesome",
           "love", "good", "wonderful", "appreciate", "appreciated", "helpful", "brilliant", "amazing",
           "fantastic", "lovely", "cheers"],
}

NEGATORS = frozenset({
    # English ("n't" is rewritten to " not" before matching)
    "not", "no", "never", "without", "nothing", "nobody", "neither", "nor", "hardly",
    "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "cant", "wont", "havent",
    # French ("n'" becomes the word "n")
    "ne", "n", "pas", "jamais", "aucun", "aucune", "sans", "rien", "ni", "guere",
})
INTENSIFIERS = frozenset({"tres", "vraiment", "tellement", "trop", "super", "completement", "totalement", "absolument",
                          "very", "really", "so", "extremely", "totally", "absolutely", "completely", "utterly"})
CLAUSE_BREAKS = frozenset({".", "!", "?", ";", ",", ":", "but", "mais", "however", "cependant"})
NOT_SHOUTING = frozenset({"CMD", "SVP", "STP", "PIN", "RIB", "IBAN", "SMS", "TVA", "SAV", "EUR", "USD", "GBP",
                          "ATM", "PDF", "URL", "FAQ", "CB", "OK", "UK", "USA", "DPD", "UPS", "DHL", "ASAP",
                          "SEPA", "BIC", "CVV", "RGPD", "GDPR", "CEO", "TV", "PC", "SNCF", "RATP", "PS"})

WEIGHTS = {"anger": -2.0, "swearing": -2.0, "distress": -1.5, "negative": -1.0, "positive": 1.0, "urgency": -0.3,
           "neutral": 0.0}
NEGATED_BAD_WEIGHT = 0.5      # "pas de problème", "not angry": mildly positive
SHOUTING_WEIGHT = -1.0
EXCLAMATION_WEIGHT = -0.5
SCORE_SCALE = 3.0             # score = tanh(total / SCORE_SCALE)


@dataclass(frozen=True)
class Sentiment:
    """Overall tone in -1..1 and the three flags routing cares about."""

    score: float
    anger: bool
    distress: bool
    urgency: bool


@dataclass(frozen=True)
class _Cue:
    tokens: tuple[str, ...]
    kind: str
    self_negated: bool


_TOKEN = re.compile(r"[a-z0-9]+|[.!?;,:]")


def _tokens(text: str) -> list[str]:
    """Folded words and clause punctuation: "Je n'en peux PLUS !" -> [je, n, en, peux, plus, !]."""
    folded = fold(text)
    folded = re.sub(r"n't\b", " not", folded)
    folded = re.sub(r"\bcannot\b", "can not", folded)
    return _TOKEN.findall(folded.replace("'", " ").replace("-", " "))


_ANY_LANGUAGE = "*"  # lexicon key of the cues matched in every language


def _compile_lexicon() -> dict[str, dict[str, list[_Cue]]]:
    """Per language: first token -> cues starting with it, longest first."""
    lexicon: dict[str, dict[str, list[_Cue]]] = {}
    for kind, table in (("anger", ANGER), ("swearing", SWEARING), ("distress", DISTRESS),
                        ("urgency", URGENCY), ("negative", NEGATIVE), ("positive", POSITIVE),
                        ("neutral", NEUTRAL)):
        for lang, phrases in table.items():
            index = lexicon.setdefault(_ANY_LANGUAGE if kind == "swearing" else lang, {})
            for phrase in phrases:
                tokens = tuple(_tokens(phrase))
                cue = _Cue(tokens, kind, any(t in NEGATORS or t == "plus" for t in tokens))
                bucket = index.setdefault(tokens[0], [])
                if all(c.tokens != tokens for c in bucket):
                    bucket.append(cue)
    for index in lexicon.values():
        for bucket in index.values():
            bucket.sort(key=lambda c: -len(c.tokens))
    return lexicon


_LEXICON = _compile_lexicon()


def _find_cues(tokens: list[str], lexicons: list[dict[str, list[_Cue]]]) -> list[tuple[int, _Cue]]:
    """Non-overlapping cues, longest match first, scanning left to right."""
    found: list[tuple[int, _Cue]] = []
    i = 0
    while i < len(tokens):
        match = None
        for lexicon in lexicons:
            for cue in lexicon.get(tokens[i], ()):
                if tuple(tokens[i:i + len(cue.tokens)]) == cue.tokens and (
                        match is None or len(cue.tokens) > len(match.tokens)):
                    match = cue
                    break
        if match:
            found.append((i, match))
            i += len(match.tokens)
        else:
            i += 1
    return found


def _is_negated(tokens: list[str], start: int, window: int = 3) -> bool:
    """A negation within `window` words before `start`, in the same clause."""
    for token in reversed(tokens[max(0, start - window):start]):
        if token in CLAUSE_BREAKS:
            return False
        if token in NEGATORS:
            return True
    return False


def _is_intensified(tokens: list[str], start: int) -> bool:
    return start > 0 and tokens[start - 1] in INTENSIFIERS


def _shouting(text: str) -> bool:
    """Two or more words in capitals (acronyms aside), or a message mostly in capitals."""
    words = re.findall(r"[^\W\d_]{3,}", text)
    shouted = [w for w in words if w.isupper() and w not in NOT_SHOUTING]
    letters = [c for c in text if c.isalpha()]
    mostly_upper = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) >= 0.7
    return len(shouted) >= 2 or (mostly_upper and len(shouted) >= 1)


def _exclamation_burst(text: str) -> bool:
    """Three "!" in a row, or "!!" twice."""
    return bool(re.search(r"!\s*!\s*!", text)) or len(re.findall(r"!\s*!", text)) >= 2


def analyse_sentiment(text: str, language: str) -> Sentiment:
    """Score and anger/distress/urgency flags from lexicons, negation, capitals and "!!!"."""
    tokens = _tokens(text)
    langs = [language] if language in SUPPORTED_LANGUAGES else list(SUPPORTED_LANGUAGES)
    cues = _find_cues(tokens, [_LEXICON[lang] for lang in (*langs, _ANY_LANGUAGE)])

    total = 0.0
    flags = {"anger": False, "distress": False, "urgency": False}
    for start, cue in cues:
        weight = WEIGHTS[cue.kind] * (1.5 if _is_intensified(tokens, start) else 1.0)
        negated = not cue.self_negated and _is_negated(tokens, start)
        if negated:  # "pas content" turns negative, "pas de problème" mildly positive, "not urgent" neutral
            total += {"positive": -1.0, "urgency": 0.0, "neutral": 0.0}.get(cue.kind, NEGATED_BAD_WEIGHT)
            continue
        total += weight
        kind = "anger" if cue.kind == "swearing" else cue.kind
        if kind in flags:
            flags[kind] = True

    if _shouting(text):
        flags["anger"] = True
        total += SHOUTING_WEIGHT
    if _exclamation_burst(text) and total <= 0:
        flags["anger"] = True
        total += EXCLAMATION_WEIGHT

    score = round(math.tanh(total / SCORE_SCALE), 4)
    return Sentiment(score=score, anger=flags["anger"], distress=flags["distress"], urgency=flags["urgency"])


# --------------------------------------------------------------------------------------------
# Explicit request for a person
# --------------------------------------------------------------------------------------------
# Matched on folded text (no accents, lower case, apostrophes and hyphens as spaces), so
# "Passez-moi quelqu'un" is "passez moi quelqu un". Mentions of an advisor that are not a request
# ("mon conseiller m'a dit...", "my advisor said...") must not match: every pattern needs a request
# verb, a "not a robot" rejection, or a message that is nothing but the noun ("conseiller svp").

_FR_DET = (r"(?:(?:un|une|le|la|l|des|les|votre|vos|ton|un de vos|une de vos)\s+)*"
           r"(?:(?:vrai|vraie|vrais|vraies|autre)\s+)?")
_FR_PERSON = (r"(?:conseill(?:er|ere|e)s?|humains?|etres? humains?|(?:une|la|vraie|des)\s+personnes?"
              r"|personnes? (?:reelle|physique|humaine)s?|agents?|operat(?:eur|rice)s?|interlocut(?:eur|rice)s?"
              r"|quelqu un|responsable|superieur|employes?|collaborat(?:eur|rice)s?)\b")
_EN_DET = r"(?:(?:a|an|the|some|any|one of your|one of the|your)\s+)*(?:(?:real|live|actual|human|proper)\s+)?"
_EN_PERSON_STRICT = (r"(?:advis[oe]rs?|agents?|humans?|human beings?|persons?|representatives?|reps?|operators?"
                     r"|manager|supervisor|customer service(?: agent| advis[oe]r)?|member of (?:staff|your team)"
                     r"|consultant)\b")
_EN_PERSON = r"(?:someone|somebody|some one|anyone|anybody|people|staff|" + _EN_PERSON_STRICT[3:]
_BOT = r"(?:robot|bot|chatbot|ia|repondeur|serveur vocal|automate)s?\b"

# A request verb followed by a person: negated requests ("I don't need an agent") are skipped.
_HUMAN_REQUEST = [re.compile(p) for p in (
    # French
    rf"\b(?:parler|discuter|echanger|causer|communiquer)\s+(?:a|avec|au|aux)\s+{_FR_DET}{_FR_PERSON}",
    rf"\b(?:passez|passe|passer|transferez|transfere|transferer|redirigez|rediriger|orientez|basculez)"
    rf"(?:\s+moi)?\s+(?:(?:a|au|vers|sur)\s+)?{_FR_DET}{_FR_PERSON}",
    rf"\ben relation avec\s+{_FR_DET}{_FR_PERSON}",
    rf"\b(?:veux|voudrais|voudrai|souhaite|souhaiterais|aimerais|desire|exige|prefere|faut|besoin d)"
    rf"\s+(?:(?:parler|avoir|joindre|contacter|voir|echanger|discuter)\s+(?:a\s+|avec\s+|au\s+)?)?"
    rf"{_FR_DET}{_FR_PERSON}",
    rf"\betre rappelee?s? par\s+{_FR_DET}{_FR_PERSON}",
    rf"\betre (?:transferee?|redirigee?|mise? en relation|orientee?)s?\s+(?:a|au|avec|vers)\s+{_FR_DET}{_FR_PERSON}",
    rf"\b(?:peux|puis|pourrais|pourrait|pourriez|pouvez|possible d|moyen d)\s+(?:je\s+|on\s+)?"
    rf"(?:avoir|joindre|contacter|voir)\s+{_FR_DET}{_FR_PERSON}",
    rf"\b(?:y a t il|est ce qu il y a)\s+{_FR_DET}{_FR_PERSON}",
    r"\b(?:un|une|des)\s+(?:vrai\s+|vraie\s+)?"
    r"(?:humain|etre humain|vraie personne|personne reelle|personne physique)\b",
    # English
    rf"\b(?:speak|talk|chat)\s+(?:to|with)\s+{_EN_DET}{_EN_PERSON}",
    rf"\b(?:connect|put|transfer|pass|patch|redirect|forward|route|escalate)\s+me\s+(?:through\s+|over\s+)?"
    rf"(?:to|with)\s+{_EN_DET}{_EN_PERSON}",
    r"\bput me through\b",
    rf"\b(?:be|get|being)\s+(?:transferred|connected|put through|passed|redirected|escalated)\s+(?:to|with)\s+"
    rf"{_EN_DET}{_EN_PERSON}",
    rf"\b(?:want|need|like|get|give|prefer|request|demand)\s+(?:me\s+)?(?:to\s+(?:speak|talk)\s+(?:to|with)\s+)?"
    rf"{_EN_DET}{_EN_PERSON_STRICT}",
    r"\b(?:a|an)\s+(?:real|live|actual|human)\s+(?:person|human|being|agent|advis[oe]r)\b",
    rf"\b(?:is there|are there)\s+{_EN_DET}{_EN_PERSON}",
)]

# Rejecting the bot is a request for a person: "je ne veux pas parler à un robot", "not a bot".
_BOT_REJECTION = [re.compile(p) for p in (
    rf"\b(?:pas|plus|jamais)\s+(?:(?:parler|discuter|echanger|affaire)\s+(?:a|avec|au)\s+)?"
    rf"(?:(?:un|une|le|la|ce|cette|votre|a)\s+)?{_BOT}",
    rf"\b(?:marre|assez)\s+(?:du|de ce|de cette|de votre|de la|de parler a un|de parler a une)\s+{_BOT}",
    rf"\b(?:arretez|stop|stoppez)\s+(?:(?:le|ce|votre)\s+)?{_BOT}",
    rf"\b(?:not|no|never|dont)\s+(?:(?:want|wish|like|going)\s+to\s+)?(?:(?:talk|speak|chat)(?:ing)?\s+(?:to|with)\s+)?"
    rf"(?:(?:a|an|the|this|your|some)\s+)?{_BOT}",
    rf"\b(?:stop|enough|done with|hate|sick of|fed up with)\s+"
    rf"(?:(?:the|this|your|talking to a|talking to the)\s+)?{_BOT}",
)]

# "I don't need to speak to an agent", "pas besoin de parler à un conseiller".
_DECLINED = re.compile(
    r"\b(?:pas besoin|pas la peine|inutile|pas envie|veux pas|voulais pas|not need|no need|not want|dont want"
    r"|dont need|not necessary|never wanted|without)\b[^.!?,;]*$")

_FILLER = frozenset({
    "svp", "stp", "s", "il", "vous", "te", "plait", "plais", "merci", "bonjour", "bonsoir", "allo", "oui",
    "maintenant", "vite", "un", "une", "le", "la", "vrai", "vraie", "please", "pls", "plz", "now", "hi", "hello",
    "a", "an", "the", "real", "live", "actual", "yes", "thanks", "thank", "you", "asap", "just", "only",
    "seulement", "juste", "directement", "immediatement", "to", "want", "je", "veux", "i",
})
_PERSON_ALONE = frozenset({
    "conseiller", "conseillere", "humain", "etre humain", "operateur", "operatrice", "agent", "interlocuteur",
    "advisor", "adviser", "human", "human being", "person", "representative", "rep", "operator", "someone",
    "somebody", "customer service", "quelqu un", "personne humaine", "agent humain", "live agent",
})


def _request_folded(text: str) -> str:
    folded = re.sub(r"n't\b", " not", fold(text)).replace("'", " ").replace("-", " ")
    folded = re.sub(r"[^a-z0-9.!?,;:]+", " ", folded)  # keep clause punctuation only
    return " ".join(folded.split())


def asks_for_human(text: str) -> bool:
    """True when the message explicitly asks for a person (advisor, agent, human), FR or EN."""
    folded = _request_folded(text)
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in _FILLER]
    if words and " ".join(words) in _PERSON_ALONE:
        return True
    if any(pattern.search(folded) for pattern in _BOT_REJECTION):
        return True
    for pattern in _HUMAN_REQUEST:
        for match in pattern.finditer(folded):
            clause = re.split(r"[.!?;,]", folded[:match.start()])[-1] + match.group(0)
            if not _DECLINED.search(clause):
                return True
    return False


# --------------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Classification:
    """What the classifier attaches to a turn."""

    language: str
    intent: str | None
    confidence: float
    out_of_scope: bool
    sentiment: Sentiment
    asks_for_human: bool
    best_guess: str | None
    ranked: list[tuple[str, float]] = field(hash=False)


def classify(text: str, language_hint: str | None, model: IntentModel, catalogue: Catalogue) -> Classification:
    """Language, intent, sentiment and human request for one customer message."""
    if model.catalogue_version != catalogue.version or set(model.classes) != set(catalogue.intents):
        raise ValueError(f"model trained on catalogue {model.catalogue_version!r} does not match "
                         f"catalogue {catalogue.version!r}; retrain it")
    language = detect_language(text, language_hint)
    sentiment = analyse_sentiment(text, language)
    prediction = model.predict(text)
    human = asks_for_human(text)
    if human and HUMAN_INTENT in catalogue:
        return Classification(language=language, intent=HUMAN_INTENT, confidence=1.0, out_of_scope=False,
                              sentiment=sentiment, asks_for_human=True, best_guess=HUMAN_INTENT,
                              ranked=prediction.ranked)
    return Classification(language=language, intent=prediction.intent, confidence=prediction.confidence,
                          out_of_scope=prediction.out_of_scope, sentiment=sentiment, asks_for_human=human,
                          best_guess=prediction.best_guess, ranked=prediction.ranked)
