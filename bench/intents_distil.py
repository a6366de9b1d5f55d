"""Distillation, measured (figures only; nothing served changes): does a MiniLM fine-tuned on the mpnet-ft
ensemble's probabilities read BANKING77 better than one fine-tuned on the labels alone?

Protocol: BANKING77's 40-per-label holdout of its train file (bench/intents_public.py), accuracy of each
reader's best intent on the holdout (no out-of-scope label, so no cut-off or temperature changes it).
1. The teacher: the mpnet-ft family trained on the train part (cached in .relais/distil/teacher.pkl).
2. Its probabilities on the train texts and on one perturbed copy of each (a word or two dropped, two
   neighbouring words swapped): what it believes near the examples, not only on them.
3. The student: MiniLM and a cosine head fine-tuned on texts + copies, half cross-entropy to the labels, half KL
   to the teacher at temperature 2 (finetune._fine_tune with `soft`): relais.classifier.model.distil's recipe, the
   minilm-student family's encoder, here with its head kept to read each member on its own.
Then, side by side: the teacher; minilm-ft (its own members, from the teacher); minilm-ft with the student in
place of its fine-tuned member (two encoders); and one encoder only: n-grams + a regression over the student's
six layers + its neighbours + its head (what ONNX int8 would serve at minilm-onnx's speed).

Needs torch (`make bench-install`). About an hour on two cores: `nice python bench/intents_distil.py`.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import numpy as np

from bench.intents_public import DATA, banking77_holdout
from relais.classifier.evaluate import read_csv
from relais.classifier.model.distil import student_and_head
from relais.classifier.model.encoder import Encoder, _Embeddings, _pretrained, _unit, layer_features
from relais.classifier.model.ensemble import ENSEMBLES, Classifier, _EmbeddingLR
from relais.classifier.model.finetune import FINE_TUNE
from relais.classifier.model.neighbours import _EmbeddingKNN, head_and_neighbours
from relais.classifier.model.text import normalise_text
from relais.common import progress

CACHE = Path(".relais/distil")
T = TypeVar("T")


def cached(name: str, build: Callable[[], T]) -> T:
    path = CACHE / name
    if path.is_file():
        return cast(T, pickle.loads(path.read_bytes()))
    value = build()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    return round(float((proba.argmax(1) == y).mean()), 4)


def main() -> int:
    train, test = banking77_holdout(read_csv(DATA / "banking77/train.csv"))
    texts = [normalise_text(t) for t in train[0]]
    test_texts = [normalise_text(t) for t in test[0]]
    with progress.stage(f"teacher: mpnet-ft on {len(texts)} rows"):
        teacher: Classifier = cached("teacher.pkl", lambda: Classifier("mpnet-ft", texts, train[1], 0))
    index = {c: i for i, c in enumerate(teacher.classes)}
    y = np.array([index[label] for label in train[1]])
    y_test = np.array([index[label] for label in test[1]])
    student_weights, student_head = cached(
        "student.pkl", lambda: student_and_head(texts, train[1], 0, copies=1, teacher=teacher)
    )
    with progress.stage(f"the teacher's members on {len(test_texts)} holdout rows"):
        frozen = _Embeddings(test_texts)  # the frozen MiniLM run once for every member that reads it
        members = cached(
            "teacher_test.pkl",
            lambda: {name: m.proba(test_texts, frozen) for name, m in teacher.members.items()},
        )
    tokenizer_json = _pretrained()[1]
    student = Encoder(student_weights, tokenizer_json)
    with progress.stage("the student's layers on the train and holdout texts"):
        pooled_train = student.encode(texts)
        pooled_test = student.encode(test_texts)
    vectors_train, vectors_test = _unit(pooled_train[:, -1]), _unit(pooled_test[:, -1])
    student_knn = _EmbeddingKNN(vectors_train, y, len(teacher.classes))
    student_member = head_and_neighbours(vectors_test, student_head, FINE_TUNE["scale"], student_knn, 0.5)
    with progress.stage("a regression over the student's six layers"):
        student_lr = _EmbeddingLR(layer_features(pooled_train), y, 0).classifier.predict_proba(
            layer_features(pooled_test)
        )
    student_vote = student_knn.vote(vectors_test)

    def mix(weights: dict[str, float], readers: dict[str, np.ndarray]) -> np.ndarray:
        return np.sum([w * readers[name] for name, w in weights.items()], axis=0)

    results = {
        "teacher mpnet-ft": accuracy(mix(teacher.weights, members), y_test),
        "minilm-ft (labels only)": accuracy(mix(ENSEMBLES["minilm-ft"], members), y_test),
        "fine-tuned member alone (labels only)": accuracy(members["fine_tuned"], y_test),
        "student alone (head + neighbours)": accuracy(student_member, y_test),
        "minilm-ft with the student": accuracy(
            mix(ENSEMBLES["minilm-ft"], members | {"fine_tuned": student_member}), y_test
        ),
    }
    one_encoder = {"ngram": members["ngram"], "lr": student_lr, "knn": student_vote, "head": student_member}
    for weights in (
        {"ngram": 0.1, "lr": 0.3, "head": 0.6},
        {"ngram": 0.2, "lr": 0.6, "knn": 0.2},
        FIXED,
        {"ngram": 0.15, "lr": 0.35, "head": 0.5},
    ):
        results["one encoder " + json.dumps(weights)] = accuracy(mix(weights, one_encoder), y_test)
    with progress.stage("the student written to ONNX int8 (onnx_encoder), read as minilm-onnx serves its encoder"):
        served = served_student(student_weights, texts, test_texts)
    served_knn = _EmbeddingKNN(_unit(served["train"][:, -1]), y, len(teacher.classes))
    served_readers = {
        "ngram": members["ngram"],
        "lr": _EmbeddingLR(layer_features(served["train"]), y, 0).classifier.predict_proba(
            layer_features(served["test"])
        ),
        "knn": served_knn.vote(_unit(served["test"][:, -1])),
        "head": head_and_neighbours(_unit(served["test"][:, -1]), student_head, FINE_TUNE["scale"], served_knn, 0.5),
    }
    results["one encoder, ONNX int8 " + json.dumps(FIXED)] = accuracy(mix(FIXED, served_readers), y_test)
    results["student alone, ONNX int8"] = accuracy(served_readers["head"], y_test)
    for name, value in results.items():
        print(f"{value:.4f}  {name}", flush=True)
    json.dump(results, sys.stdout)
    print()
    return 0


FIXED = {"ngram": 0.1, "lr": 0.2, "knn": 0.1, "head": 0.6}  # minilm-ft's weights, fixed before any measurement


def served_student(weights: dict, texts: list[str], test_texts: list[str]) -> dict[str, np.ndarray]:
    """The student's pooled layers on the train and holdout texts, run as the product runs MiniLM: its ONNX graph
    written by onnx_encoder, int8, in ONNX Runtime."""
    from relais.classifier.model.onnx_encoder import OnnxEncoder, build_graph

    path = CACHE / "student-int8.onnx"
    if not path.is_file():
        path.write_bytes(build_graph(weights, quantised=True).SerializeToString())
    encoder = OnnxEncoder(path)
    return {"train": encoder.encode(texts), "test": encoder.encode(test_texts)}


if __name__ == "__main__":
    with progress.reporting("bench/intents_distil.py"):
        code = main()
    sys.exit(code)
