"""Calibration: a temperature applied to the averaged probabilities, fitted so that a reported confidence
means the chance that the best intent is right; and the stratified hold-out it is fitted on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _temper(p: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return p
    logp = np.log(np.maximum(p, 1e-300)) / temperature
    logp -= logp.max(1, keepdims=True)
    exp = np.exp(logp)
    return exp / exp.sum(1, keepdims=True)


def stratified_holdout(labels: Sequence[str], share: float, seed: int) -> np.ndarray:
    """A boolean mask of about `share` of the rows of each label (at least one kept for training)."""
    label_array = np.asarray(labels)
    rng = np.random.RandomState(seed)
    held = np.zeros(len(label_array), dtype=bool)
    for label in sorted(set(label_array.tolist())):
        rows = np.flatnonzero(label_array == label)
        n = min(len(rows) - 1, int(round(share * len(rows))))
        if n > 0:
            held[rng.choice(rows, n, replace=False)] = True
    return held


def fit_temperature(raw: np.ndarray, best: np.ndarray, coverage: np.ndarray, right: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017) fitted by log-loss on what the model reports.

    `raw`: untempered probabilities, one row per held-out text; `best`: each row's best intent column;
    `coverage`: each text's share of known words (the reported confidence is probability x coverage);
    `right`: whether that best intent is the row's label.
    """
    from scipy.optimize import minimize_scalar

    def log_loss(log_t: float) -> float:
        p = np.clip(_temper(raw, float(np.exp(log_t)))[np.arange(len(raw)), best] * coverage, 1e-6, 1 - 1e-6)
        return -float(np.mean(np.where(right, np.log(p), np.log1p(-p))))

    return float(np.exp(minimize_scalar(log_loss, bounds=(-3, 3), method="bounded").x))
