"""`relais intents eval`: train a model family on any text,label CSV, evaluate it on another, print JSON.

    relais intents eval --train TRAIN.csv --test TEST.csv [--val VAL.csv] [--oos-label oos]
                        [--family ngram|minilm-onnx|minilm-student|minilm|minilm-ft|mpnet-ft|default|best]
                        [--student STUDENT.onnx] [--seed N] --json

The model is the service's IntentModel, trained and used the way the service does. With --oos-label,
rows of that label train the "none of the above" class, and a message is predicted out of scope when
that class wins or the best intent's confidence is under a cut-off. The temperature (calibration) and
the cut-off are chosen on --val; without --val, on a stratified 20 % of the training rows, after which
the model is retrained on all of them. The test rows are never used for any choice.

`minilm-student` reads a MiniLM distilled from mpnet-ft (relais.classifier.model.distil), which the service gets
from an offline step. Here it is distilled on the training rows first (torch, tens of minutes; kept under
.relais/students and reused for the same rows), unless --student names a file distilled on them already. It is
distilled once, on all the training rows: without --val, the slice that chooses the temperature and cut-off was
seen by the student.

Metrics (`y` = the test label, `ŷ` = the prediction, which is the oos label when predicted out of scope):
- accuracy: share of test rows with ŷ = y; an oos row is right iff predicted oos.
- in_scope_accuracy: the same over the rows whose label is not oos (predicting oos for one is wrong).
- oos_recall: share of oos rows predicted oos; oos_precision: share of oos predictions that are oos rows
  (null when nothing is predicted oos). Both null without --oos-label.
- macro_f1: F1 averaged over every label seen in the test labels or the predictions, oos included.
- ece: expected calibration error of the reported confidence, over all test rows: rows binned by
  confidence into 15 equal-width bins, ECE = sum over bins of (bin share) x |accuracy - mean confidence|,
  where a row is right iff the best-guess intent equals its label (never right for an oos row).
- train_seconds: wall time of training, calibration and cut-off choice.
- us_per_message_single: mean wall time of predict() over up to 500 test messages, one at a time.
- us_per_message_batch: mean wall time per message of predict_batch() over all test messages in
  batches of 1,000.
Extra keys: family, seed, temperature, weights (the members', chosen on the same rows as the temperature for
minilm-onnx: relais.classifier.model.weighting), oos_cutoff, counts of rows.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relais.classifier.model import (
    BEST_FAMILY,
    DEFAULT_FAMILY,
    FAMILIES,
    OUT_OF_SCOPE_LABEL,
    IntentModel,
    ModelUnavailable,
    stratified_holdout,
)
from relais.common import progress

ALIASES = {"default": DEFAULT_FAMILY, "best": BEST_FAMILY}
ECE_BINS = 15
SINGLE_SAMPLE = 500
BATCH = 1000
STUDENTS = Path(".relais/students")  # students distilled for an evaluation, by their training rows
HOLDOUT = 0.2  # share of the training rows that chooses the temperature and cut-off when there is no --val
NO_PREDICTION = "<none>"  # a message without a letter or digit gets no intent


class InputError(Exception):
    """A problem with the command's input files: reported on stderr, exit code 2."""


def read_csv(path: str | Path) -> tuple[list[str], list[str]]:
    """Texts and labels of a text,label CSV (other columns ignored); whitespace stripped, blank rows skipped."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file (expected a header line text,label)")
            columns = [h.strip().lower() for h in header]
            if "text" not in columns or "label" not in columns:
                raise InputError(f"{path}: needs columns text and label, found {', '.join(header) or 'none'}")
            text_at, label_at = columns.index("text"), columns.index("label")
            texts, labels = [], []
            for row in reader:
                if len(row) > max(text_at, label_at) and row[text_at].strip() and row[label_at].strip():
                    texts.append(row[text_at].strip())
                    labels.append(row[label_at].strip())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: cannot read as UTF-8 CSV ({error})") from None
    if not texts:
        raise InputError(f"{path}: no rows with both a text and a label")
    return texts, labels


def _for_training(labels: Sequence[str], oos_label: str | None) -> list[str]:
    return [OUT_OF_SCOPE_LABEL if oos_label is not None and label == oos_label else label for label in labels]


def _predicted_labels(model: IntentModel, texts: Sequence[str], oos_label: str | None) -> tuple[list[str], list]:
    predictions = model.predict_batch(texts)
    labels = [
        p.intent if p.intent is not None else (oos_label if oos_label is not None else NO_PREDICTION)
        for p in predictions
    ]
    return labels, predictions


def choose_cutoff(model: IntentModel, texts: Sequence[str], labels: Sequence[str], oos_label: str) -> float:
    """The confidence cut-off with the best accuracy on these rows, oos counted as one more label.

    That is the CLINC150 authors' criterion (Larson et al. 2019). The smallest of equally good cut-offs wins.
    """
    model.set_thresholds(0.0)
    predictions = model.predict_batch(texts)
    truth = np.array(list(labels), dtype=object)
    oos_row = truth == oos_label
    confidence = np.array([p.confidence for p in predictions])
    guess = np.array([p.intent if p.intent is not None else oos_label for p in predictions], dtype=object)
    candidates = np.unique(np.concatenate([[0.0], confidence + 1e-12]))
    best, best_score = 0.0, -1.0
    for cut in candidates:  # a few thousand candidates, vectorised each: fast enough
        predicted_oos = (guess == oos_label) | (confidence < cut)
        score = float(np.mean(np.where(predicted_oos, oos_row, guess == truth)))
        if score > best_score + 1e-12:
            best, best_score = float(cut), score
    return best


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of (bin share) x |accuracy - mean confidence| (Guo et al. 2017)."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.mean() * abs(right[rows].mean() - confidence[rows].mean())
    return float(total)


def metrics(truth: Sequence[str], predicted: Sequence[str], oos_label: str | None) -> dict[str, Any]:
    """accuracy, in_scope_accuracy, oos_recall, oos_precision and macro_f1 as defined in the module doc."""
    from sklearn.metrics import f1_score

    y, p = np.array(list(truth), dtype=object), np.array(list(predicted), dtype=object)
    in_scope = y != oos_label if oos_label is not None else np.ones(len(y), dtype=bool)
    result: dict[str, Any] = {
        "accuracy": float(np.mean(y == p)),
        "macro_f1": float(f1_score(y.astype(str), p.astype(str), average="macro", zero_division=0)),
        "in_scope_accuracy": float(np.mean(y[in_scope] == p[in_scope])) if in_scope.any() else None,
        "oos_recall": None,
        "oos_precision": None,
    }
    if oos_label is not None:
        predicted_oos = p == oos_label
        result["oos_recall"] = float(np.mean(predicted_oos[~in_scope])) if (~in_scope).any() else None
        result["oos_precision"] = float(np.mean(~in_scope[predicted_oos])) if predicted_oos.any() else None
    return result


def _rows(rows: tuple[list[str], list[str]], mask: np.ndarray) -> tuple[list[str], list[str]]:
    return [t for t, m in zip(rows[0], mask) if m], [y for y, m in zip(rows[1], mask) if m]


def train_model(
    train: tuple[list[str], list[str]],
    val: tuple[list[str], list[str]] | None = None,
    oos_label: str | None = None,
    family: str = DEFAULT_FAMILY,
    seed: int = 0,
    student: Path | None = None,
) -> IntentModel:
    """Train on `train`; temperature and out-of-scope cut-off chosen on `val`, else on 20 % of train."""
    family = ALIASES.get(family, family)
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r} (known: {', '.join(FAMILIES)}, default, best)")
    texts, labels = train[0], _for_training(train[1], oos_label)
    if len(set(labels)) < 2:
        raise InputError("the training file needs at least two labels")
    if family == "minilm-student" and student is None:
        from relais.classifier.model.distil import cached_student

        student = cached_student(texts, labels, STUDENTS, seed)
    if val is not None:
        with progress.stage(f"training {family} on {len(texts)} rows, calibrated on {len(val[0])} --val rows"):
            model = IntentModel.fit(
                texts,
                labels,
                family=family,
                seed=seed,
                calibration=(val[0], _for_training(val[1], oos_label)),
                student=student,
            )
        select, cut_on = val, model
    else:  # temperature and cut-off from a held-out slice, then the same on all training rows
        held = stratified_holdout(labels, HOLDOUT, seed)
        select = _rows(train, held)
        with progress.stage(f"training {family} on {int((~held).sum())} rows, calibrated on {int(held.sum())}"):
            part = IntentModel.fit(
                *_rows((texts, labels), ~held),
                family=family,
                seed=seed,
                calibration=(select[0], _for_training(select[1], oos_label)),
                student=student,
            )
        with progress.stage(f"training {family} again on all {len(texts)} rows"):
            model = IntentModel.fit(
                texts,
                labels,
                family=family,
                seed=seed,
                temperature=part.metadata["temperature"],
                weights=part.metadata["weights"],
                student=student,
            )
        cut_on = part  # the model that never saw the slice
    if oos_label is not None:
        with progress.stage(f"choosing the out-of-scope cut-off on {len(select[0])} rows"):
            model.set_thresholds(choose_cutoff(cut_on, *select, oos_label))
    else:
        model.set_thresholds(0.0)
    # A cut-off chosen on a handful of oos rows is unreliable (CLINC150's train has 100): prefer --val.
    model.metadata["cutoff_oos_rows"] = sum(y == oos_label for y in select[1]) if oos_label is not None else None
    return model


def measure(model: IntentModel, test: tuple[list[str], list[str]], oos_label: str | None = None) -> dict[str, Any]:
    """Metrics, calibration error and speed of a trained model on labelled test rows."""
    started = time.perf_counter()
    predicted, predictions = [], []
    with progress.stage(f"predicting {len(test[0])} test rows in batches of {BATCH}", len(test[0])) as stage:
        for start in range(0, len(test[0]), BATCH):
            chunk_labels, chunk = _predicted_labels(model, test[0][start : start + BATCH], oos_label)
            predicted += chunk_labels
            predictions += chunk
            stage.advance(len(chunk))
    batch_us = (time.perf_counter() - started) / len(test[0]) * 1e6
    sample = test[0][:SINGLE_SAMPLE]
    started = time.perf_counter()
    with progress.stage(f"predicting {len(sample)} test rows one at a time", len(sample)) as stage:
        for text in sample:
            model.predict(text)
            stage.advance()
    single_us = (time.perf_counter() - started) / len(sample) * 1e6
    confidence = np.array([p.confidence for p in predictions])
    right = np.array([p.best_guess == label for p, label in zip(predictions, test[1])])
    cutoff = max(model.thresholds.values(), default=0.0)
    return metrics(test[1], predicted, oos_label) | {
        "ece": expected_calibration_error(confidence, right),
        "us_per_message_single": round(single_us, 1),
        "us_per_message_batch": round(batch_us, 1),
        "family": model.family,
        "seed": model.seed,
        "temperature": round(model.metadata["temperature"], 4),
        "weights": model.metadata.get("weights"),
        "oos_cutoff": round(cutoff, 4) if oos_label is not None else None,
        "test_rows": len(test[0]),
    }


def evaluate(
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    val: tuple[list[str], list[str]] | None = None,
    oos_label: str | None = None,
    family: str = DEFAULT_FAMILY,
    seed: int = 0,
    student: Path | None = None,
) -> dict[str, Any]:
    """train_model() then measure(): the JSON object of `relais intents eval` (train_seconds includes distilling
    a student when minilm-student distils one)."""
    started = time.perf_counter()
    model = train_model(train, val, oos_label, family, seed, student)
    train_seconds = time.perf_counter() - started
    result = measure(model, test, oos_label)
    keys = ["accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "oos_precision", "ece"]
    return (
        {k: result.pop(k) for k in keys}
        | {"train_seconds": round(train_seconds, 3)}
        | result
        | {
            "cutoff_chosen_on": ("val" if val is not None else f"{HOLDOUT:.0%} of train") if oos_label else None,
            "cutoff_oos_rows": model.metadata["cutoff_oos_rows"],
            "train_rows": len(train[0]),
            "val_rows": len(val[0]) if val is not None else 0,
            "labels": len(set(train[1]) - {oos_label}),
        }
    )


def eval_cli(args: Any) -> int:
    """The command: 0 on success, 2 with a message on stderr when an input is unusable."""
    try:
        train = read_csv(args.train)
        test = read_csv(args.test)
        val = read_csv(args.val) if args.val else None
        student = Path(args.student) if getattr(args, "student", None) else None
        if student is not None and not student.is_file():
            raise InputError(f"--student {student}: no such file")
        result = evaluate(train, test, val, args.oos_label, args.family or DEFAULT_FAMILY, args.seed, student)
    except (InputError, ModelUnavailable) as error:
        print(f"relais intents eval: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0
