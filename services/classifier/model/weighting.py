"""Member weights chosen on held-out rows: the weights of a family's members (ensemble.ENSEMBLES) fit the data it is
trained on (a catalogue, BANKING77, CLINC150) and, when the rows say their language, each language.

A fixed weighting is right for the data it was picked on: `minilm-onnx`'s members read the catalogue best with the
n-grams at 0.5 (MiniLM is English: the n-grams carry the French) and CLINC150 best with the regression at 0.6.
The family's weights are chosen where the temperature is, on rows the members were not trained on, among every
weighting in steps of 0.1, by log-loss (a proper score: it rewards the confidence the bot's thresholds read, not
only the best intent). A language with at least MIN_ROWS of those rows gets its own weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

STEPS = 10  # weights in tenths
MIN_ROWS = 100  # held-out rows a language needs to get weights of its own

Weights = dict[str, float]


def weightings(members: Sequence[str]) -> list[Weights]:
    """Every weighting of `members` in tenths that sums to 1."""
    found = []
    for parts in itertools.product(range(STEPS + 1), repeat=len(members) - 1):
        last = STEPS - sum(parts)
        if last >= 0:
            found.append({m: p / STEPS for m, p in zip(members, (*parts, last))})
    return found


def log_loss(probabilities: Mapping[str, np.ndarray], weights: Weights, y: np.ndarray) -> float:
    rows = np.arange(len(y))
    right = _weighted({m: p[rows, y] for m, p in probabilities.items()}, weights)
    return float(-np.log(np.clip(right, 1e-12, None)).mean())


def best(probabilities: Mapping[str, np.ndarray], y: np.ndarray, default: Weights) -> Weights:
    """The weighting with the lowest log-loss on these rows (`default` on a tie, and when there are none)."""
    if len(y) == 0:
        return dict(default)
    chosen, lowest = dict(default), log_loss(probabilities, default, y)
    for weights in weightings(list(default)):
        loss = log_loss(probabilities, weights, y)
        if loss < lowest - 1e-12:
            chosen, lowest = weights, loss
    return chosen


def choose(
    probabilities: Mapping[str, np.ndarray], y: np.ndarray, default: Weights, languages: Sequence[str] | None = None
) -> tuple[Weights, dict[str, Weights]]:
    """The weights for every row, and those of each language with MIN_ROWS rows or more (`languages`: each row's)."""
    overall = best(probabilities, y, default)
    by_language: dict[str, Weights] = {}
    if languages is not None:
        codes = np.array(list(languages), dtype=object)
        for language in sorted(set(languages)):
            rows = np.flatnonzero(codes == language)
            if language and len(rows) >= MIN_ROWS:
                by_language[language] = best({m: p[rows] for m, p in probabilities.items()}, y[rows], overall)
    return overall, by_language


def mix(
    probabilities: Mapping[str, np.ndarray],
    weights: Weights,
    by_language: Mapping[str, Weights],
    languages: Sequence[str | None] | None = None,
) -> np.ndarray:
    """The members' probabilities averaged, each row with its language's weights (else `weights`)."""
    total = _weighted(probabilities, weights)
    if not by_language or languages is None:
        return total
    codes = np.array(list(languages), dtype=object)
    for language, own in by_language.items():
        rows = np.flatnonzero(codes == language)
        if len(rows):
            total[rows] = _weighted({m: p[rows] for m, p in probabilities.items()}, own)
    return total


def _weighted(probabilities: Mapping[str, np.ndarray], weights: Weights) -> np.ndarray:
    total = np.zeros_like(next(iter(probabilities.values())), dtype=float)
    for member, weight in weights.items():
        total += weight * probabilities[member]
    return total
