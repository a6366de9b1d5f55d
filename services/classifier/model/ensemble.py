"""The families: which members each averages, with what weights, and the Classifier that trains them and
averages their probabilities under one temperature."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relais.classifier.model import weighting
from relais.classifier.model.calibration import _temper
from relais.classifier.model.encoder import _Embeddings
from relais.classifier.model.errors import ModelUnavailable
from relais.classifier.model.finetune import _FineTuned
from relais.classifier.model.mpnet_tuned import MpnetTuned
from relais.classifier.model.neighbours import _EmbeddingKNN, rows_times
from relais.classifier.model.ngram import _Ngram
from relais.classifier.model.onnx_encoder import encoder_path, onnx_encoder
from relais.classifier.model.student import fingerprint, student_encoder, student_path

FAMILIES = ("ngram", "minilm-onnx", "minilm-student", "minilm", "minilm-ft", "mpnet-ft")
DEFAULT_FAMILY = "ngram"
BEST_FAMILY = "mpnet-ft"
# MiniLM run by ONNX Runtime in int8, not numpy: the pretrained one (onnx_encoder) or a distilled student (student)
ONNX_FAMILIES = frozenset({"minilm-onnx", "minilm-student"})
# Weights of the averaged probabilities, per family (member -> weight). Picked on a BANKING77 holdout and
# CLINC150 cross-validation (bench/intents_public.py); the exact values matter little (+-0.1 point). The families of
# CHOSEN_WEIGHTS start from them and choose their own on held-out rows when trained (model.weighting).
ENSEMBLES: dict[str, dict[str, float]] = {
    "ngram": {"ngram": 1.0},
    "minilm": {"ngram": 0.2, "embedding_lr": 0.6, "embedding_knn": 0.2},
    # minilm's members, MiniLM in ONNX Runtime int8. Weights from a 5-fold cross-validation of the catalogue's
    # examples (0.859 against 0.838 with minilm's, French 0.823 against 0.779): MiniLM is English, the n-grams
    # read French as well as English.
    "minilm-onnx": {"ngram": 0.5, "embedding_lr": 0.3, "embedding_knn": 0.2},
    # minilm's members and weights over a student distilled from mpnet-ft (model.distil): no member needs the
    # student's own head, so a catalogue edited after the distillation retrains in seconds.
    "minilm-student": {"ngram": 0.2, "embedding_lr": 0.6, "embedding_knn": 0.2},
    "minilm-ft": {"ngram": 0.1, "embedding_lr": 0.2, "embedding_knn": 0.1, "fine_tuned": 0.6},
    # Weights from two folds of a BANKING77 5-fold cross-validation, on a plateau (+-0.1 point around it).
    "mpnet-ft": {"ngram": 0.2, "embedding_lr": 0.1, "embedding_knn": 0.1, "fine_tuned": 0.2, "mpnet_tuned": 0.4},
}


# Not minilm-student: its student learnt every training row (the held-out slice too), so the slice would favour the
# student's members; its weights stay fixed.
CHOSEN_WEIGHTS = frozenset({"minilm-onnx"})


class _EmbeddingLR:
    """Logistic regression on the frozen encoder's six layers (layer_features; C chosen on BANKING77 and
    CLINC150 development splits)."""

    def __init__(self, features: np.ndarray, y: np.ndarray, seed: int, c: float = 10.0):
        from sklearn.linear_model import LogisticRegression

        self.classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        self.classifier.fit(features, y)

    def proba(self, texts: list[str], embed: _Embeddings) -> np.ndarray:
        model = self.classifier
        if model.coef_.shape[0] == 1:  # two classes: scikit-learn's binary formula
            return model.predict_proba(embed.layers())
        # predict_proba's softmax of the decision function, its product the same for a text alone or in a batch
        logits = rows_times(embed.layers().astype(model.coef_.dtype, copy=False), model.coef_.T) + model.intercept_
        logits -= logits.max(1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(1, keepdims=True)


class Classifier:
    """A family's members and their weights: averaged probabilities, then a temperature (calibration).

    Texts must be normalise_text()-ed; `y` are indices into `classes`.
    """

    def __init__(
        self, family: str, texts: list[str], labels: Sequence[str], seed: int = 0, student: Path | None = None
    ):
        if family not in ENSEMBLES:
            raise ValueError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
        self.family = family
        self.classes = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[label] for label in labels])
        self.weights = dict(ENSEMBLES[family])
        self.language_weights: dict[str, dict[str, float]] = {}  # a language's own weights (model.weighting)
        self.temperature = 1.0
        self.members: dict[str, Any] = {}
        # the encoder file the members were trained on (its name carries the weights' sha256 and graph version;
        # a student's path, with its content's sha256)
        self.encoder_file: str | None = None
        self.encoder_sha256: str | None = None
        if family == "minilm-student":
            path = student or student_path()
            self.encoder_file, self.encoder_sha256 = str(path), fingerprint(path)
        elif family in ONNX_FAMILIES:
            self.encoder_file = encoder_path().name
        if "ngram" in self.weights:
            self.members["ngram"] = _Ngram(texts, y, seed)
        if "embedding_lr" in self.weights or "embedding_knn" in self.weights:
            embedded = _Embeddings(texts, self._encoder())
            self.members["embedding_lr"] = _EmbeddingLR(embedded.layers(), y, seed)
            self.members["embedding_knn"] = _EmbeddingKNN(embedded(), y, len(self.classes))
        if "fine_tuned" in self.weights:
            self.members["fine_tuned"] = _FineTuned(texts, y, len(self.classes), seed)
        if "mpnet_tuned" in self.weights:
            self.members["mpnet_tuned"] = MpnetTuned(texts, y, len(self.classes), seed)

    def member_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Each member's probabilities (the encoder run once for all of them)."""
        embed = _Embeddings(texts, self._encoder())
        return {name: self.members[name].proba(texts, embed) for name in self.weights}

    def raw_proba(self, texts: list[str], languages: Sequence[str | None] | None = None) -> np.ndarray:
        """The weighted average of the members' probabilities, before the temperature; `languages`, each text's,
        for the weights of a language that has its own."""
        by_language = getattr(self, "language_weights", {})  # {} in an artifact from before
        return weighting.mix(self.member_proba(texts), self.weights, by_language, languages)

    def proba(self, texts: list[str], languages: Sequence[str | None] | None = None) -> np.ndarray:
        return _temper(self.raw_proba(texts, languages), self.temperature)

    def choose_weights(self, texts: list[str], labels: Sequence[str], languages: Sequence[str] | None = None) -> None:
        """The members' weights, overall and per language, chosen on held-out labelled texts (model.weighting);
        labels the model does not know are skipped."""
        index = {c: i for i, c in enumerate(self.classes)}
        rows = [i for i, label in enumerate(labels) if label in index]
        if len(self.weights) < 2 or not rows:
            return
        probabilities = self.member_proba([texts[i] for i in rows])
        y = np.array([index[labels[i]] for i in rows])
        self.weights, self.language_weights = weighting.choose(
            probabilities, y, ENSEMBLES[self.family], None if languages is None else [languages[i] for i in rows]
        )

    def _encoder(self) -> Any:
        """What gives the frozen MiniLM encoder: ONNX Runtime for the ONNX families (the very file they were
        trained on), else None (numpy, encoder.pretrained_encoder)."""
        if self.family not in ONNX_FAMILIES:
            return None
        if self.family == "minilm-student":
            # refused here, before any text, when the file is not the student
            encoder = student_encoder(Path(self.encoder_file or ""), self.encoder_sha256 or "")
            return lambda: encoder
        if self.encoder_file != encoder_path().name:
            raise ModelUnavailable(
                f"this {self.family} model was trained on the encoder {self.encoder_file}, this relais builds "
                f"{encoder_path().name}: retrain with `relais intents train`"
            )
        return onnx_encoder
