"""Nearest neighbours by cosine among the training texts: a member of its own over the frozen encoder, and half
of each fine-tuned member (mixed with its cosine head)."""

from __future__ import annotations

import numpy as np

from relais.classifier.model.encoder import _Embeddings, one_blas_thread

BLOCK_ROWS = 8
# Up to this many rows the vote reads every class at once (BANKING77's 77 classes: 55 µs for one message against
# 958 µs class by class); beyond, class by class (30 µs a message in batches of 1,000, against 84).
FEW_ROWS = 16


def rows_times(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w, in products of exactly BLOCK_ROWS rows (the last block padded with zeros), so that a row's result is
    the same alone or in any batch: BLAS sums in another order for one row (gemv) or another block shape."""
    if not len(x):
        return np.zeros((0, w.shape[1]), dtype=np.result_type(x, w))
    padded = np.zeros((-(-len(x) // BLOCK_ROWS) * BLOCK_ROWS, x.shape[1]), dtype=x.dtype)
    padded[: len(x)] = x
    with one_blas_thread():
        return np.vstack([padded[i : i + BLOCK_ROWS] @ w for i in range(0, len(padded), BLOCK_ROWS)])[: len(x)]


class _EmbeddingKNN:
    """Nearest neighbours by cosine: per class, the mean similarity of its 2 closest examples, softmax at 0.05.

    Catches near-paraphrases of training examples that a linear boundary misses (+0.4 point on BANKING77).
    """

    K, TEMPERATURE = 2, 0.05

    def __init__(self, vectors: np.ndarray, y: np.ndarray, n_classes: int):
        order = np.argsort(y, kind="stable")  # grouped by class: a class's examples are one slice
        self.vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        self.bounds = np.searchsorted(y[order], np.arange(n_classes + 1))

    def proba(self, texts: list[str], embed: _Embeddings) -> np.ndarray:
        return self.vote(embed())

    def vote(self, vectors: np.ndarray) -> np.ndarray:
        similarity = rows_times(vectors, self.vectors.T)
        scores = np.full((similarity.shape[0], len(self.bounds) - 1), -1.0)
        sizes = np.diff(self.bounds)
        present = np.flatnonzero(sizes)
        if self.K == 2 and len(similarity) <= FEW_ROWS and len(present):
            scores[:, present] = top_two_means(similarity, self.bounds[present], sizes[present])
        else:  # one class at a time stays in cache: faster for many rows, the same values
            for c in present:
                start, end = self.bounds[c], self.bounds[c + 1]
                k = min(self.K, end - start)
                scores[:, c] = np.partition(similarity[:, start:end], end - start - k, axis=1)[:, -k:].mean(1)
        scores = np.exp((scores - scores.max(1, keepdims=True)) / self.TEMPERATURE)
        return scores / scores.sum(1, keepdims=True)


def top_two_means(similarity: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per row and per slice of columns (consecutive, starting at `starts`, none empty, the last to the end): the mean
    of its two largest values (the value itself in a slice of one), every slice at once: what `vote` computes class by
    class, to the bit."""
    first = np.maximum.reduceat(similarity, starts, axis=1)
    at_first = similarity == np.repeat(first, sizes, axis=1)
    ties = np.add.reduceat(at_first, starts, axis=1) >= 2  # the largest twice: it is also the second
    second = np.maximum.reduceat(np.where(at_first, -np.inf, similarity), starts, axis=1).astype(similarity.dtype)
    second = np.where(ties | (sizes == 1), first, second)
    return (first + second) / 2


def head_and_neighbours(
    vectors: np.ndarray, head: np.ndarray, scale: float, neighbours: _EmbeddingKNN, head_share: float
) -> np.ndarray:
    """A fine-tuned member's probabilities: its cosine head's softmax and its neighbours' vote, mixed."""
    logits = scale * vectors @ head.T
    logits -= logits.max(1, keepdims=True)
    exp = np.exp(logits)
    return head_share * exp / exp.sum(1, keepdims=True) + (1 - head_share) * neighbours.vote(vectors)
