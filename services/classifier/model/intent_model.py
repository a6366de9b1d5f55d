"""IntentModel, what the service and the tools use: trained from the catalogue (or any labelled texts),
calibrated, saved and loaded as one file, and a Prediction per message with an explicit out-of-scope outcome."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from relais.classifier.catalogue import Catalogue
from relais.classifier.model.calibration import _temper, fit_temperature, stratified_holdout
from relais.classifier.model.ensemble import CHOSEN_WEIGHTS, DEFAULT_FAMILY, Classifier
from relais.classifier.model.ngram import DEFAULT_C, build_pipeline
from relais.classifier.model.out_of_scope import BACKGROUND_EXAMPLES, OUT_OF_SCOPE_LABEL
from relais.classifier.model.persistence import ARTIFACT_FORMAT, catalogue_sha256, load_model, save_model
from relais.classifier.model.text import _normalise_folded, _words, normalise_text
from relais.common.language import fold


@dataclass(frozen=True)
class Prediction:
    """Model output. `intent` is None when out of scope; `ranked` keeps the best guesses anyway.

    `confidence` and the numbers in `ranked` are calibrated probabilities times the share of known words.
    """

    intent: str | None
    confidence: float
    out_of_scope: bool
    ranked: list[tuple[str, float]] = field(hash=False)

    @property
    def best_guess(self) -> str | None:
        """The most probable catalogue intent, in scope or not."""
        return self.ranked[0][0] if self.ranked else None


class IntentModel:
    """The catalogue's intents (plus a "none of the above" class) over both languages; see FAMILIES.

    Probabilities are calibrated by temperature scaling on held-out examples. The confidence of an
    intent is its probability times the share of the message's words seen in training: the
    vectoriser silently drops unknown words, so "combien font douze fois sept ?" would otherwise look
    like "combien ?" and score high for account_balance. Out of scope when the "none of the above"
    class beats the best intent or the best intent's confidence is under its threshold (the intent's
    own, else the catalogue's default_threshold).
    """

    def __init__(
        self,
        classifier: Classifier,
        thresholds: Mapping[str, float] | float,
        catalogue_version: str,
        seed: int,
        vocabulary: frozenset[str],
        metadata: Mapping[str, Any] | None = None,
    ):
        self._classifier = classifier
        columns = list(classifier.classes)
        self._intent_columns = np.array([i for i, c in enumerate(columns) if c != OUT_OF_SCOPE_LABEL])
        self._background_column = columns.index(OUT_OF_SCOPE_LABEL) if OUT_OF_SCOPE_LABEL in columns else None
        self.classes: tuple[str, ...] = tuple(columns[i] for i in self._intent_columns)
        self.set_thresholds(thresholds)
        self.catalogue_version = catalogue_version
        self.seed = seed
        self.family = classifier.family
        self.vocabulary = vocabulary
        self.metadata: dict[str, Any] = dict(metadata or {})

    def set_thresholds(self, thresholds: Mapping[str, float] | float) -> None:
        """Per-intent minimum confidences, or one number for every intent."""
        if not isinstance(thresholds, Mapping):
            thresholds = {c: float(thresholds) for c in self.classes}
        self.thresholds = MappingProxyType(dict(thresholds))
        self._threshold_array = np.array([thresholds[c] for c in self.classes])

    # Picklable as a whole (artifact.py pickles the object): the read-only mapping travels as a dict.
    def __getstate__(self) -> dict:
        return self.__dict__ | {"thresholds": dict(self.thresholds)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state | {"thresholds": MappingProxyType(state["thresholds"])})

    @staticmethod
    def build_pipeline(seed: int = 0, c: float = DEFAULT_C) -> Any:
        """The untrained n-gram pipeline (inputs must already be normalise_text()-ed)."""
        return build_pipeline(seed, c)

    @staticmethod
    def training_set(catalogue: Catalogue, background: bool = True) -> tuple[list[str], list[str]]:
        """Normalised texts and labels: the catalogue examples plus the "none of the above" ones."""
        texts, labels, _ = IntentModel.training_rows(catalogue, background)
        return texts, labels

    @staticmethod
    def training_rows(catalogue: Catalogue, background: bool = True) -> tuple[list[str], list[str], list[str]]:
        """training_set() with each example's language."""
        rows = list(catalogue.training_examples())
        if background:
            rows += [
                (text, OUT_OF_SCOPE_LABEL, lang)
                for lang in catalogue.languages
                for text in BACKGROUND_EXAMPLES.get(lang, ())
            ]
        return [normalise_text(text) for text, _, _ in rows], [label for _, label, _ in rows], [r[2] for r in rows]

    @classmethod
    def train(cls, catalogue: Catalogue, seed: int = 0, family: str = DEFAULT_FAMILY) -> IntentModel:
        """Fit on every example of every language of the catalogue (calibrated on a held-out fifth first)."""
        texts, labels, languages = cls.training_rows(catalogue)
        model = cls.fit(
            texts,
            labels,
            languages=languages,
            family=family,
            seed=seed,
            thresholds={intent.id: catalogue.threshold_for(intent.id) for intent in catalogue},
            catalogue_version=catalogue.version,
        )
        model.metadata |= {"catalogue_version": catalogue.version, "catalogue_sha256": catalogue_sha256(catalogue)}
        return model

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        family: str = DEFAULT_FAMILY,
        seed: int = 0,
        thresholds: Mapping[str, float] | float = 0.0,
        catalogue_version: str = "",
        calibration: tuple[Sequence[str], Sequence[str]] | None = None,
        holdout: float = 0.2,
        temperature: float | None = None,
        weights: Mapping[str, Any] | None = None,
        student: Path | None = None,
        languages: Sequence[str] | None = None,
    ) -> IntentModel:
        """Train on labelled texts (OUT_OF_SCOPE_LABEL marks "none of the above" examples), then calibrate.

        The temperature is `temperature` when given, else fitted on `calibration` (texts, labels) when
        given, else on a stratified `holdout` share of the training rows, after which the model is
        refitted on all of them. A family of CHOSEN_WEIGHTS chooses its members' weights first, on the same rows
        (per language on the training rows when `languages` gives each one's), or takes `weights` (another
        model's metadata["weights"]) with `temperature`. `student`: the minilm-student family's encoder file
        (default: student_path()).
        """
        texts, labels = [normalise_text(t) for t in texts], list(labels)
        if temperature is not None:
            model = cls._build(family, texts, labels, seed, thresholds, catalogue_version, student)
            if weights:
                model._set_weights(weights)
            model._classifier.temperature = model.metadata["temperature"] = float(temperature)
            return model
        held = stratified_holdout(labels, holdout, seed) if calibration is None and holdout > 0 else None
        if held is not None and held.any():
            part = cls._build(
                family,
                [t for t, h in zip(texts, held) if not h],
                [label for label, h in zip(labels, held) if not h],
                seed,
                thresholds,
                catalogue_version,
                student,
            )
            slice_texts = [t for t, h in zip(texts, held) if h]
            slice_labels = [label for label, h in zip(labels, held) if h]
            slice_languages = None if languages is None else [g for g, h in zip(languages, held) if h]
            part.choose_weights(slice_texts, slice_labels, slice_languages)
            temperature = part.calibrate(slice_texts, slice_labels, slice_languages)
            model = cls._build(family, texts, labels, seed, thresholds, catalogue_version, student)
            model._set_weights(part.metadata["weights"])
            model._classifier.temperature = temperature
        else:
            model = cls._build(family, texts, labels, seed, thresholds, catalogue_version, student)
            if calibration is not None:
                model.choose_weights(*calibration)
                model.calibrate(*calibration)
        model.metadata["temperature"] = model._classifier.temperature
        return model

    def choose_weights(
        self, texts: Sequence[str], labels: Sequence[str], languages: Sequence[str] | None = None
    ) -> None:
        """Its members' weights chosen on held-out labelled texts, for a family of CHOSEN_WEIGHTS (model.weighting);
        recorded in metadata["weights"]."""
        if self.family in CHOSEN_WEIGHTS:
            self._classifier.choose_weights([normalise_text(t) for t in texts], list(labels), languages)
        self.metadata["weights"] = self._weights()

    def _weights(self) -> dict[str, Any]:
        return {"all": dict(self._classifier.weights), "by_language": dict(self._classifier.language_weights)}

    def _set_weights(self, weights: Mapping[str, Any]) -> None:
        self._classifier.weights = dict(weights["all"])
        self._classifier.language_weights = {lang: dict(w) for lang, w in weights["by_language"].items()}
        self.metadata["weights"] = self._weights()

    @classmethod
    def _build(
        cls,
        family: str,
        texts: list[str],
        labels: list[str],
        seed: int,
        thresholds: Mapping[str, float] | float,
        catalogue_version: str,
        student: Path | None = None,
    ) -> IntentModel:
        import sklearn

        classifier = Classifier(family, texts, labels, seed, student)
        intents = [c for c in classifier.classes if c != OUT_OF_SCOPE_LABEL]
        if isinstance(thresholds, Mapping):
            thresholds = {c: float(thresholds.get(c, 0.0)) for c in intents}
        vocabulary = frozenset(word for text in texts for word in _words(text))
        metadata = {
            "format": ARTIFACT_FORMAT,
            "family": family,
            "encoder": classifier.encoder_file,
            "encoder_sha256": classifier.encoder_sha256,
            "seed": seed,
            "catalogue_version": catalogue_version,
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sklearn": sklearn.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "classes": len(intents),
            "training_examples": len(texts),
            "weights": {"all": dict(classifier.weights), "by_language": {}},
        }
        return cls(classifier, thresholds, catalogue_version, seed, vocabulary, metadata)

    def calibrate(self, texts: Sequence[str], labels: Sequence[str], languages: Sequence[str] | None = None) -> float:
        """Fit the temperature on held-out labelled texts so that `confidence` means P(best intent is right).

        Temperature scaling (Guo et al. 2017) fitted, by log-loss, on what the model reports: the best
        intent's tempered probability times its word coverage, against whether that intent is the label
        (a "none of the above" or unknown label makes every intent wrong). Returns the temperature.
        """
        rows = [i for i, t in enumerate(texts) if any(c.isalnum() for c in t)]
        if not rows:
            return self._classifier.temperature
        raw = self._classifier.raw_proba(
            [normalise_text(texts[i]) for i in rows], None if languages is None else [languages[i] for i in rows]
        )
        coverage = np.array([self.coverage(texts[i]) for i in rows])
        best = self._intent_columns[raw[:, self._intent_columns].argmax(1)]  # tempering keeps the order
        right = np.array([self._classifier.classes[b] == labels[i] for b, i in zip(best, rows)])
        self._classifier.temperature = fit_temperature(raw, best, coverage, right)
        return self._classifier.temperature

    # --------------------------------------------------------------------------------- artifact

    def save(self, path: Path | str) -> None:
        """Write the model and its metadata (format, family, seed, catalogue, versions) to one file."""
        save_model(self, path)

    @classmethod
    def load(cls, path: Path | str) -> IntentModel:
        """Read an artifact; ValueError when it has another format or was written by another scikit-learn.

        The envelope is read as plain data and checked first; the model inside is a pickle, which runs code
        from the file: load only artifacts this deployment wrote itself.
        """
        return load_model(path, cls)

    # ------------------------------------------------------------------------------- prediction

    def coverage(self, text: str) -> float:
        """Share of the message's words seen in training (1.0 when it has no words, e.g. only a number)."""
        return self._coverage(normalise_text(text))

    def _coverage(self, normalised: str) -> float:
        words = _words(normalised)
        return sum(w in self.vocabulary for w in words) / len(words) if words else 1.0

    def _all_probabilities(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> np.ndarray:
        return self._classifier.proba([normalise_text(t) for t in texts], languages)

    def pipeline_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """The ngram family's probabilities straight from scikit-learn (reference for the fast path)."""
        ngram = self._classifier.members["ngram"]
        return _temper(ngram.pipeline.predict_proba([normalise_text(t) for t in texts]), self._classifier.temperature)

    def probabilities(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> np.ndarray:
        """Calibrated probabilities of the intents, one row per text, columns in `classes` order.

        A row sums to less than 1 by the probability of "none of the above".
        """
        return self._all_probabilities(texts, languages)[:, self._intent_columns]

    def predict(self, text: str, top_k: int = 3, language: str | None = None) -> Prediction:
        """Best intent for one message, or out of scope."""
        return self.predict_batch([text], top_k, languages=[language])[0]

    def predict_batch(
        self,
        texts: Sequence[str],
        top_k: int = 3,
        *,
        folded: Sequence[str] | None = None,
        languages: Sequence[str | None] | None = None,
    ) -> list[Prediction]:
        """predict() for many messages (same results as one by one). `folded`: the texts already through
        relais.common.language.fold, when the caller has them (saves folding them again). `languages`: each
        message's, for a model with weights of its own for a language (without: the weights of every language)."""
        texts = list(texts)
        folded = [fold(t) for t in texts] if folded is None else list(folded)
        if len(folded) != len(texts) or (languages is not None and len(languages) != len(texts)):
            raise ValueError(f"{len(texts)} texts but {len(folded)} folded texts or languages")
        readable = [any(c.isalnum() for c in t) for t in texts]
        found = iter(
            self._predict_readable(
                [_normalise_folded(f) for f, r in zip(folded, readable) if r],
                top_k,
                None if languages is None else [g for g, r in zip(languages, readable) if r],
            )
        )
        return [
            next(found) if r else Prediction(intent=None, confidence=0.0, out_of_scope=True, ranked=[])
            for r in readable
        ]

    def _predict_readable(
        self, normalised: list[str], top_k: int, languages: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Predictions of normalise_text()-ed texts (the model and the coverage read the same)."""
        if not normalised:
            return []
        everything = self._classifier.proba(normalised, languages)
        raw = everything[:, self._intent_columns]
        coverage = np.array([self._coverage(text) for text in normalised])
        probs = raw * coverage[:, None]
        order = np.argsort(-raw, axis=1, kind="stable")[:, : max(top_k, 1)]
        rows = np.arange(len(normalised))
        best = order[:, 0]
        confidence = probs[rows, best]
        out_of_scope = confidence < self._threshold_array[best]
        if self._background_column is not None:
            out_of_scope |= everything[:, self._background_column] > raw[rows, best]
        classes = self.classes
        top = probs[rows[:, None], order]
        return [
            Prediction(
                intent=None if outside else classes[columns[0]],
                confidence=confident,
                out_of_scope=outside,
                ranked=[(classes[j], round(p, 6)) for j, p in zip(columns, chances)],
            )
            for columns, chances, confident, outside in zip(
                order.tolist(), top.tolist(), confidence.tolist(), out_of_scope.tolist()
            )
        ]
