"""The intent model families on public benchmarks: one JSON line per run, then a compact table.

    python bench/intents_public.py                      # ngram and minilm, both datasets, with crossfit
    python bench/intents_public.py --families ngram minilm minilm-ft --cv
    python bench/intents_public.py --families mpnet-ft --datasets banking77 --uncalibrated   # one training

- banking77: a stratified holdout of the official train split: 40 rows per label (half the rows of a
  label with fewer than 80), 3,016 rows, seed 0, like the official test split (40 per label). With
  --cv, 5-fold stratified cross-validation over the whole train split as well.
- clinc150: train -> val, out-of-scope label `oos`; the temperature and the out-of-scope cut-off are
  chosen on 20 % of train (what `relais intents eval` does without --val). Unless --no-crossfit, also the
  --val protocol measured honestly: the model trained once, calibrated and cut on one half of val,
  measured on the other half, and the other way round (the two halves pooled).

Metrics are those of `relais intents eval` (relais.classifier.evaluate). Data: ../shared/data beside the
repository, or $RELAIS_SHARED_DATA. The official test splits are not used (kept for acceptance).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relais.classifier.evaluate import evaluate, expected_calibration_error, metrics, read_csv, train_model
from relais.classifier.model import DEFAULT_FAMILY, FAMILIES
from relais.common import progress

DATA = Path(os.environ.get("RELAIS_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
FILES = ("banking77/train.csv", "clinc150/train.csv", "clinc150/val.csv")
COLUMNS = (
    "accuracy",
    "macro_f1",
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "ece",
    "train_seconds",
    "us_per_message_single",
    "us_per_message_batch",
)


def banking77_holdout(
    rows: tuple[list[str], list[str]], per_label: int = 40, seed: int = 0
) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    labels = np.array(rows[1])
    rng = np.random.RandomState(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(rows[1])):
        index = np.flatnonzero(labels == label)
        test[rng.choice(index, min(per_label, len(index) // 2), replace=False)] = True
    pick = lambda mask: ([t for t, m in zip(rows[0], mask) if m], [y for y, m in zip(rows[1], mask) if m])
    return pick(~test), pick(test)


def banking77_cv(rows, family: str, folds: int = 5, calibrated: bool = True) -> dict:
    """Pooled predictions of 5-fold stratified CV (each fold's model calibrated on 20 % of its train).

    Not `calibrated`: one training per fold instead of two, temperature 1, no ECE. Accuracy and macro F1 are the
    same (the temperature never changes the best intent when there is no out-of-scope cut-off), at half the cost:
    what makes 5-fold affordable for minilm-ft on two cores."""
    from sklearn.model_selection import StratifiedKFold

    from relais.classifier.model import IntentModel

    truth, predicted, confidence, right, seconds = [], [], [], [], 0.0
    for fold, (train_rows, test_rows) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=0).split(rows[0], rows[1])
    ):
        started = time.perf_counter()
        fold_train = ([rows[0][i] for i in train_rows], [rows[1][i] for i in train_rows])
        model = (
            train_model(fold_train, family=family)
            if calibrated
            else IntentModel.fit(*fold_train, family=family, temperature=1.0)
        )
        seconds += time.perf_counter() - started
        test = [rows[0][i] for i in test_rows]
        predictions = model.predict_batch(test)
        truth += [rows[1][i] for i in test_rows]
        predicted += [p.intent or "<none>" for p in predictions]
        confidence += [p.confidence for p in predictions]
        right += [p.best_guess == rows[1][i] for p, i in zip(predictions, test_rows)]
        progress.say(f"fold {fold + 1}/{folds}: accuracy {np.mean(right[-len(test_rows) :]):.4f}")
    return metrics(truth, predicted, None) | {
        "ece": expected_calibration_error(np.array(confidence), np.array(right)) if calibrated else None,
        "train_seconds": round(seconds / folds, 3),
        "family": family,
        "calibrated": calibrated,
    }


def uncalibrated(train, test, family: str) -> dict:
    """evaluate() with one training instead of two (temperature 1, so no ECE): the same accuracy and macro F1."""
    from relais.classifier.evaluate import measure
    from relais.classifier.model import IntentModel

    started = time.perf_counter()
    model = IntentModel.fit(*train, family=family, temperature=1.0)
    seconds = time.perf_counter() - started
    result = measure(model, test, None)
    return result | {"ece": None, "train_seconds": round(seconds, 3), "family": family, "calibrated": False}


def clinc_crossfit(train, val, family: str) -> dict:
    """The --val protocol without touching a test set: calibrate and cut on one half of val, measure the other."""
    from relais.classifier.evaluate import _for_training, choose_cutoff
    from relais.classifier.model import IntentModel

    started = time.perf_counter()
    model = IntentModel.fit(train[0], _for_training(train[1], "oos"), family=family, holdout=0)
    seconds = time.perf_counter() - started
    halves = np.random.RandomState(0).permutation(len(val[0])) % 2 == 0
    truth, predicted, confidence, right, cutoffs = [], [], [], [], []
    for select in (halves, ~halves):
        pick = lambda mask: ([t for t, m in zip(val[0], mask) if m], [y for y, m in zip(val[1], mask) if m])
        chosen, measured = pick(select), pick(~select)
        model.set_thresholds(0.0)
        model.choose_weights(chosen[0], _for_training(chosen[1], "oos"))  # as evaluate does on --val
        model.calibrate(chosen[0], _for_training(chosen[1], "oos"))
        cutoffs.append(choose_cutoff(model, *chosen, "oos"))
        model.set_thresholds(cutoffs[-1])
        predictions = model.predict_batch(measured[0])
        truth += measured[1]
        predicted += [p.intent or "oos" for p in predictions]
        confidence += [p.confidence for p in predictions]
        right += [p.best_guess == y for p, y in zip(predictions, measured[1])]
    return metrics(truth, predicted, "oos") | {
        "ece": expected_calibration_error(np.array(confidence), np.array(right)),
        "train_seconds": round(seconds, 3),
        "family": family,
        "oos_cutoffs": [round(c, 4) for c in cutoffs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # minilm-ft and mpnet-ft are opt-in: fine-tunes, 20 minutes to hours per dataset on two cores.
    parser.add_argument("--families", nargs="+", default=[DEFAULT_FAMILY, "minilm"], choices=FAMILIES)
    parser.add_argument("--datasets", nargs="+", default=["banking77", "clinc150"], choices=["banking77", "clinc150"])
    parser.add_argument("--cv", action="store_true", help="also 5-fold CV on BANKING77 (5 more trainings)")
    parser.add_argument("--cv-only", action="store_true", help="BANKING77 5-fold CV without the holdout run")
    parser.add_argument(
        "--uncalibrated",
        dest="calibrated",
        action="store_false",
        help="one training per BANKING77 run, not two (accuracy and macro F1 only, half the time)",
    )
    parser.add_argument(
        "--no-crossfit",
        dest="crossfit",
        action="store_false",
        help="skip CLINC150 val with the --val protocol (cut-off on one half, measured on the other)",
    )
    args = parser.parse_args()
    missing = [f for f in FILES if not (DATA / f).is_file()]
    if missing:
        print(
            f"bench/intents_public.py: missing {', '.join(missing)} under {DATA} "
            "(set RELAIS_SHARED_DATA to the folder holding banking77/ and clinc150/)",
            file=sys.stderr,
        )
        return 2

    runs = []
    for family in args.families:
        jobs = []
        if "banking77" in args.datasets:
            rows = read_csv(DATA / "banking77/train.csv")
            if not args.cv_only:
                jobs.append(
                    (
                        "banking77-holdout",
                        lambda: (
                            evaluate(*banking77_holdout(rows), family=family)
                            if args.calibrated
                            else uncalibrated(*banking77_holdout(rows), family=family)
                        ),
                    )
                )
            if args.cv or args.cv_only:
                jobs.append(("banking77-5fold", lambda: banking77_cv(rows, family, calibrated=args.calibrated)))
        if "clinc150" in args.datasets:
            train, val = read_csv(DATA / "clinc150/train.csv"), read_csv(DATA / "clinc150/val.csv")
            jobs.append(("clinc150-val", lambda: evaluate(train, val, oos_label="oos", family=family)))
            if args.crossfit:
                jobs.append(("clinc150-val-crossfit", lambda: clinc_crossfit(train, val, family)))
        for name, job in jobs:
            with progress.stage(f"{name}, {family}"):
                result = {"dataset": name} | job()
            print(json.dumps(result), flush=True)
            runs.append(result)

    print_table(runs, COLUMNS)
    return 0


def print_table(runs: list[dict], columns: Sequence[str], family_width: int = 10) -> None:
    """The runs side by side, a row each: shares to 4 decimals, seconds and µs to 1, '-' where a run has none."""
    header = " ".join(f"{c.replace('us_per_message_', 'µs ')[:9]:>9}" for c in columns)
    print(f"\n{'dataset':22} {'family':{family_width}} " + header)
    for r in runs:
        cells = [r.get(c) for c in columns]
        print(
            f"{r['dataset']:22} {r['family']:{family_width}} "
            + " ".join(
                f"{'-':>9}" if v is None else f"{v:9.4f}" if isinstance(v, float) and v <= 1 else f"{v:9.1f}"
                for v in cells
            )
        )


if __name__ == "__main__":
    with progress.reporting("bench/intents_public.py"):
        sys.exit(main())
