"""The offline step of the `minilm-student` family (torch: `make bench-install`): a MiniLM distilled from the
`mpnet-ft` ensemble, written as an int8 ONNX file that serves without torch (model.student).

1. The teacher: the mpnet-ft family trained on the labelled texts.
2. Its probabilities on the texts and on perturbed copies of them (a word or two dropped, two neighbours swapped):
   what it believes near the examples, not only on them.
3. The student: MiniLM and a cosine head fine-tuned on texts and copies, half cross-entropy to the labels, half KL
   divergence to the teacher at temperature 2 (finetune._fine_tune with `soft`); its weights written by
   onnx_encoder.build. The head is not kept: the family reads the student through members retrained in seconds.

Measured on two cores shared with another distillation: 56 minutes for the catalogue's 1,544 rows; BANKING77's
6,987 rows took over an hour for the teacher alone (docs/classifier.md, "Towards the accurate model without torch (measured)").
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relais.classifier.model.ensemble import Classifier
from relais.classifier.model.finetune import _fine_tune
from relais.classifier.model.onnx_encoder import build
from relais.classifier.model.text import normalise_text
from relais.common import progress

COPIES = 1  # perturbed copies of each text the teacher labels for the student


def perturbed(text: str, rng: np.random.RandomState) -> str:
    """A copy with about 15 % of its words dropped (at least one of five or more) and two neighbours swapped."""
    words = text.split()
    if len(words) >= 5:
        n = max(1, int(round(0.15 * len(words))))
        drop = set(rng.choice(len(words), n, replace=False).tolist())
        words = [w for i, w in enumerate(words) if i not in drop]
    if len(words) >= 3:
        i = rng.randint(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def student_and_head(
    texts: Sequence[str],
    labels: Sequence[str],
    seed: int = 0,
    copies: int = COPIES,
    teacher: Classifier | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The distilled MiniLM's weights (numpy, MiniLM's names and shapes) and the cosine head fine-tuned with them (the
    family does not keep the head; the benchmark reads it). `teacher`: mpnet-ft trained on these rows already (the
    longest step), else trained here."""
    texts = [normalise_text(t) for t in texts]
    if teacher is None:
        teacher = train_teacher(texts, labels, seed)
    index = {c: i for i, c in enumerate(teacher.classes)}
    y = np.array([index[label] for label in labels])
    rng = np.random.RandomState(seed)
    augmented = texts + [perturbed(t, rng) for _ in range(copies) for t in texts]
    with progress.stage(f"the teacher's probabilities on {len(augmented)} texts (with perturbed copies)"):
        soft = teacher.raw_proba(augmented)
    with progress.stage(f"the student: MiniLM fine-tuned on {len(augmented)} labels and the teacher's probabilities"):
        return _fine_tune(augmented, np.tile(y, copies + 1), len(teacher.classes), seed, soft=soft)


def train_teacher(texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> Classifier:
    texts = [normalise_text(t) for t in texts]
    with progress.stage(f"the teacher: mpnet-ft on {len(texts)} rows"):
        return Classifier("mpnet-ft", texts, labels, seed)


def distil(texts: Sequence[str], labels: Sequence[str], out: Path, seed: int = 0, copies: int = COPIES) -> Path:
    """Distils a student on the labelled texts and writes it, int8, at `out`."""
    return build(True, out, student_and_head(texts, labels, seed, copies)[0])


def cached_student(texts: Sequence[str], labels: Sequence[str], folder: Path, seed: int = 0) -> Path:
    """A student distilled on exactly these rows (and seed), distilled once: named by their sha256 in `folder`. The
    teacher is kept beside it until the student is written, so an interrupted distillation starts again after it."""
    rows = json.dumps([list(texts), list(labels), seed, COPIES], ensure_ascii=False).encode()
    digest = hashlib.sha256(rows).hexdigest()[:16]
    path = folder / f"student-{digest}-int8.onnx"
    if path.is_file():
        progress.say(f"reusing the student distilled on these {len(texts)} rows: {path}")
        return path
    kept = folder / f"teacher-{digest}.pkl"
    if kept.is_file():
        progress.say(f"reusing the teacher trained on these {len(texts)} rows: {kept}")
        teacher = pickle.loads(kept.read_bytes())  # our own cache, written below
    else:
        teacher = train_teacher(texts, labels, seed)
        folder.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(pickle.dumps(teacher))
    build(True, path, student_and_head(texts, labels, seed, teacher=teacher)[0])
    kept.unlink()
    return path
