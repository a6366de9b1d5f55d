"""Candidate served families without torch at serving time, side by side with the served ngram and minilm-onnx.

    python bench/intents_student.py --build          # offline, once: the static embeddings (model2vec, torch:
                                                     # make bench-install), into .relais/models/students/
    python bench/intents_student.py --check          # the ONNX encoders against numpy MiniLM, and their speed
    python bench/intents_student.py --tune           # member weights chosen on a slice of BANKING77's train part
    python bench/intents_student.py [--families ngram minilm-onnx static-mpnet ...] [--datasets banking77 clinc150]

Families: ngram and minilm-onnx are the product's (relais.classifier.model; minilm-onnx runs all-MiniLM-L6-v2 in
ONNX Runtime int8, relais.classifier.model.onnx_encoder). The research families here are plugged into IntentModel
so that relais.classifier.evaluate trains, calibrates, cuts and measures them as it does the others:
- static-mpnet: ngram + a logistic regression on static token embeddings that model2vec distils locally from the
  pinned all-mpnet-base-v2 (each vocabulary token through the model once, PCA to 256 dims, SIF weights). Serving:
  the tokenizer, a row lookup per token and a mean, in numpy.
- minilm-onnx-tuned: minilm-onnx's members weighted as --tune chose on BANKING77.
- minilm-onnx-static: both readers with the n-grams.

Protocol (bench/intents_public.py's): BANKING77, the stratified 40-per-label holdout of the train file, through
evaluate() (temperature from 20 % of the train part, then retrained on all of it); CLINC150, train -> val by
crossfit (trained on train, temperature and out-of-scope cut-off chosen on one half of val, measured on the other,
both ways). Speed: evaluate()'s us_per_message_batch / _single on the BANKING77 holdout (3,016 messages). RSS: a
fresh process loads the pickled BANKING77 model and classifies those messages (peak resident set). Retraining:
evaluate()'s train_seconds and IntentModel.train on the catalogue. The official test splits are never read.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.intents_public import DATA, banking77_cv, banking77_holdout, clinc_crossfit, print_table
from relais.classifier.evaluate import measure, read_csv, train_model
from relais.classifier.model import IntentModel, normalise_text
from relais.classifier.model.calibration import _temper, stratified_holdout
from relais.classifier.model.encoder import layer_features
from relais.classifier.model.ensemble import _EmbeddingLR
from relais.classifier.model.neighbours import _EmbeddingKNN
from relais.classifier.model.ngram import _Ngram
from relais.classifier.model.onnx_encoder import OnnxEncoder, build as build_onnx, ensure_built, onnx_encoder
from relais.classifier.weights import MPNET
from relais.common import progress

STUDENT_DIR = Path(os.environ.get("RELAIS_STUDENT_DIR") or ".relais/models/students")
STATIC_DIR = STUDENT_DIR / "static-mpnet"
ONNX_FP32 = STUDENT_DIR / "minilm-l6-fp32.onnx"  # the product's graph unquantised, for --check only
PRODUCT_FAMILIES = ("ngram", "minilm-onnx")

# member -> weight, chosen by --tune on a stratified 20 % of BANKING77's train part (never its holdout).
STUDENTS: dict[str, dict[str, float]] = {
    "static-mpnet": {"ngram": 0.55, "static_lr": 0.45},
    "minilm-onnx-tuned": {"ngram": 0.1, "embedding_lr": 0.3, "embedding_knn": 0.6},
    "minilm-onnx-static": {"ngram": 0.05, "embedding_lr": 0.3, "embedding_knn": 0.55, "static_lr": 0.1},
}


# ------------------------------------------------------------------------------------------------ the encoders


@functools.lru_cache(maxsize=1)
def static_model() -> Any:
    from model2vec import StaticModel

    return StaticModel.from_pretrained(str(STATIC_DIR))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class _Batch:
    """A batch's encodings, computed once for all members (the interface of encoder._Embeddings, plus static())."""

    def __init__(self, texts: list[str]):
        self._texts = texts

    @functools.cached_property
    def _pooled(self) -> np.ndarray:
        return onnx_encoder().encode(self._texts) if self._texts else np.zeros((0, 6, 384), dtype=np.float32)

    def __call__(self) -> np.ndarray:
        return _unit(self._pooled[:, -1])

    def layers(self) -> np.ndarray:
        return layer_features(self._pooled)

    @functools.cached_property
    def static(self) -> np.ndarray:
        return _unit(np.asarray(static_model().encode(self._texts, use_multiprocessing=False), dtype=np.float32))


class _StaticLR:
    """Logistic regression on the static sentence vector (unit length; C as the frozen-encoder member's)."""

    def __init__(self, features: np.ndarray, y: np.ndarray, seed: int, c: float = 10.0):
        from sklearn.linear_model import LogisticRegression

        self.classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        self.classifier.fit(features, y)

    def proba(self, texts: list[str], batch: _Batch) -> np.ndarray:
        return self.classifier.predict_proba(batch.static)


class Student:
    """A bench family: the members STUDENTS names, averaged, then a temperature (relais' Classifier's contract)."""

    def __init__(self, family: str, texts: list[str], labels: Sequence[str], seed: int = 0):
        self.family = family
        self.classes = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[label] for label in labels])
        self.weights = dict(STUDENTS[family])
        self.temperature = 1.0
        self.members = fit_members(list(self.weights), texts, y, len(self.classes), seed)

    def raw_proba(self, texts: list[str]) -> np.ndarray:
        batch = _Batch(texts)
        total = np.zeros((len(texts), len(self.classes)))
        for name, weight in self.weights.items():
            total += weight * self.members[name].proba(texts, batch)
        return total

    def proba(self, texts: list[str]) -> np.ndarray:
        return _temper(self.raw_proba(texts), self.temperature)


def fit_members(names: Sequence[str], texts: list[str], y: np.ndarray, n_classes: int, seed: int) -> dict[str, Any]:
    batch = _Batch(texts)
    members: dict[str, Any] = {}
    if "ngram" in names:
        members["ngram"] = _Ngram(texts, y, seed)
    if "embedding_lr" in names:
        with progress.stage(f"encoding {len(texts)} texts with MiniLM (ONNX Runtime)"):
            features = batch.layers()
        with progress.stage("fitting the regression over the six layers"):
            members["embedding_lr"] = _EmbeddingLR(features, y, seed)
    if "embedding_knn" in names:
        members["embedding_knn"] = _EmbeddingKNN(batch(), y, n_classes)
    if "static_lr" in names:
        with progress.stage("fitting the regression over the static embeddings"):
            members["static_lr"] = _StaticLR(batch.static, y, seed)
    return members


def install() -> None:
    """Let IntentModel and relais.classifier.evaluate build the STUDENTS families (in this process only)."""
    import relais.classifier.evaluate as evaluation
    import relais.classifier.model.intent_model as intent_model
    from relais.classifier.model.ensemble import Classifier

    def classifier(family: str, texts: list[str], labels: Sequence[str], seed: int = 0) -> Any:
        return Student(family, texts, labels, seed) if family in STUDENTS else Classifier(family, texts, labels, seed)

    intent_model.Classifier = classifier  # type: ignore[misc, assignment]
    evaluation.FAMILIES = (*evaluation.FAMILIES, *STUDENTS)  # type: ignore[assignment]


# ------------------------------------------------------------------------------------ building the encoders


def build() -> None:
    """Offline (torch): distil the static model from all-mpnet-base-v2."""
    STUDENT_DIR.mkdir(parents=True, exist_ok=True)
    if not (STATIC_DIR / "model.safetensors").is_file():
        from model2vec.distill import distill

        with progress.stage(f"distilling static embeddings from {MPNET.folder()}"):
            started = time.perf_counter()
            distill(model_name=str(MPNET.folder().resolve()), pca_dims=256).save_pretrained(str(STATIC_DIR))
            progress.say(f"distilled in {time.perf_counter() - started:.0f} s")
    check_encoders()


def check_encoders() -> None:
    """The ONNX encoders (the product's int8 file, its graph in fp32) against relais' numpy MiniLM, and the encoders'
    speed on BANKING77 messages."""
    from relais.classifier.model.encoder import pretrained_encoder

    texts = read_csv(DATA / "banking77/train.csv")[0][:1000]
    reference = pretrained_encoder().encode(texts[:200])
    if not ONNX_FP32.is_file():
        build_onnx(quantised=False, path=ONNX_FP32)
    for path in (ONNX_FP32, ensure_built()):
        encoder = OnnxEncoder(path)
        pooled = encoder.encode(texts[:200])
        cosine = np.sum(_unit(pooled) * _unit(reference), -1)  # (texts, layers)
        started = time.perf_counter()
        encoder.encode(texts)
        batch_us = (time.perf_counter() - started) / len(texts) * 1e6
        started = time.perf_counter()
        for text in texts[:200]:
            encoder.encode([text])
        single_us = (time.perf_counter() - started) / 200 * 1e6
        progress.say(
            f"{path.name}: cosine to numpy MiniLM min {cosine.min():.4f} mean {cosine.mean():.5f}; "
            f"{batch_us:.0f} µs a message batched, {single_us:.0f} µs one at a time (encoder only)"
        )
    if (STATIC_DIR / "model.safetensors").is_file():
        started = time.perf_counter()
        static_model().encode(texts, use_multiprocessing=False)
        progress.say(f"static-mpnet: {(time.perf_counter() - started) / len(texts) * 1e6:.1f} µs a message batched")


# ----------------------------------------------------------------------------------------------- measuring


def tune() -> None:
    """Member weights chosen on a stratified 20 % of BANKING77's train part (the holdout stays untouched)."""
    train, _ = banking77_holdout(read_csv(DATA / "banking77/train.csv"))
    texts = [normalise_text(t) for t in train[0]]
    held = stratified_holdout(train[1], 0.2, 0)
    classes = sorted(set(train[1]))
    y = np.array([classes.index(label) for label in train[1]])
    names = ["ngram", "embedding_lr", "embedding_knn", "static_lr"]
    fit_texts = [t for t, h in zip(texts, held) if not h]
    members = fit_members(names, fit_texts, y[~held], len(classes), 0)
    check = [t for t, h in zip(texts, held) if h]
    batch = _Batch(check)
    probas = {name: member.proba(check, batch) for name, member in members.items()}
    for name, p in probas.items():
        progress.say(f"{name} alone: {np.mean(p.argmax(1) == y[held]):.4f}")
    for family, members_of in (
        ("static-mpnet", ["ngram", "static_lr"]),
        ("minilm-onnx-tuned", ["ngram", "embedding_lr", "embedding_knn"]),
        ("minilm-onnx-static", names),
    ):
        best: tuple[float, dict[str, float] | None] = (0.0, None)
        for weights in _simplex(len(members_of)):
            total = sum(w * probas[m] for w, m in zip(weights, members_of))
            score = float(np.mean(total.argmax(1) == y[held]))
            if score > best[0] + 1e-9:
                best = (score, dict(zip(members_of, np.round(weights, 2).tolist())))
        print(json.dumps({"tune": family, "accuracy_on_slice": best[0], "weights": best[1]}), flush=True)


def _simplex(n: int, steps: int = 20) -> list[tuple[float, ...]]:
    """Every n weights in steps of 1/steps that sum to 1."""
    heads = [c for c in itertools.product(range(steps + 1), repeat=n - 1) if sum(c) <= steps]
    return [tuple(x / steps for x in (*c, steps - sum(c))) for c in heads]


def rss_probe(model_path: str, texts_path: str) -> None:
    """In a fresh process: load the model, classify the messages in batches then one at a time, print peak RSS."""
    install()
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    texts = json.loads(Path(texts_path).read_text())
    for start in range(0, len(texts), 1000):
        model.predict_batch(texts[start : start + 1000])
    for text in texts[:500]:
        model.predict(text)
    # VmHWM, not ru_maxrss: Linux carries the parent's peak over fork and exec into ru_maxrss.
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    print(json.dumps({"rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1)}))


def peak_rss(model: IntentModel, texts: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        model_path, texts_path = Path(tmp) / "model.pkl", Path(tmp) / "texts.json"
        model_path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        texts_path.write_text(json.dumps(texts))
        out = subprocess.run(
            [sys.executable, "-m", "bench.intents_student", "--rss-probe", str(model_path), str(texts_path)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"]


def catalogue_model(family: str) -> tuple[IntentModel, float]:
    """The model `relais intents train` would write for the catalogue, and the seconds it took."""
    from relais.classifier.catalogue import load_catalogue

    catalogue = load_catalogue()
    started = time.perf_counter()
    model = IntentModel.train(catalogue, family=family)
    return model, round(time.perf_counter() - started, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    families = [*PRODUCT_FAMILIES, *STUDENTS]
    parser.add_argument("--families", nargs="+", default=families, choices=families)
    parser.add_argument("--datasets", nargs="+", default=["banking77", "clinc150"], choices=["banking77", "clinc150"])
    parser.add_argument("--build", action="store_true", help="distil the static embeddings (offline, torch)")
    parser.add_argument("--check", action="store_true", help="the encoders against numpy MiniLM, and their speed")
    parser.add_argument("--cv", action="store_true", help="also BANKING77 5-fold cross-validation")
    parser.add_argument("--tune", action="store_true", help="choose member weights on a slice of BANKING77 train")
    parser.add_argument("--rss-probe", nargs=2, metavar=("MODEL", "TEXTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(*args.rss_probe)
        return 0
    install()
    if args.build:
        build()
        return 0
    if args.check:
        check_encoders()
        return 0
    if args.tune:
        tune()
        return 0
    runs = []
    for family in args.families:
        if "banking77" in args.datasets:
            train, test = banking77_holdout(read_csv(DATA / "banking77/train.csv"))
            with progress.stage(f"banking77-holdout, {family}"):
                started = time.perf_counter()
                model = train_model(train, family=family)
                seconds = time.perf_counter() - started
                result = {"dataset": "banking77-holdout"} | measure(model, test) | {"train_seconds": round(seconds, 1)}
            with progress.stage(f"peak RSS of a process classifying with the {family} model"):
                result["rss_mb"] = peak_rss(model, test[0])
            with progress.stage(f"training {family} on the catalogue"):
                catalogue, result["catalogue_train_seconds"] = catalogue_model(family)
            with progress.stage(f"peak RSS of a process classifying with the {family} catalogue model"):
                result["catalogue_rss_mb"] = peak_rss(catalogue, test[0])
            print(json.dumps(result), flush=True)
            runs.append(result)
        if "banking77" in args.datasets and args.cv:
            with progress.stage(f"banking77-5fold, {family}"):
                result = {"dataset": "banking77-5fold"} | banking77_cv(read_csv(DATA / "banking77/train.csv"), family)
            print(json.dumps(result), flush=True)
            runs.append(result)
        if "clinc150" in args.datasets:
            train, val = read_csv(DATA / "clinc150/train.csv"), read_csv(DATA / "clinc150/val.csv")
            with progress.stage(f"clinc150-val-crossfit, {family}"):
                result = {"dataset": "clinc150-val-crossfit"} | clinc_crossfit(train, val, family)
            print(json.dumps(result), flush=True)
            runs.append(result)
    columns: tuple[str, ...] = ("accuracy", "in_scope_accuracy", "oos_recall", "oos_precision", "train_seconds")
    columns += (
        "us_per_message_single",
        "us_per_message_batch",
        "rss_mb",
        "catalogue_train_seconds",
        "catalogue_rss_mb",
    )
    print_table(runs, columns, family_width=19)
    return 0


if __name__ == "__main__":
    # Run as bench.intents_student, not __main__, so that pickled models name their classes by an importable module.
    from bench import intents_student

    with progress.reporting("bench/intents_student.py"), contextlib.suppress(KeyboardInterrupt):
        sys.exit(intents_student.main())
