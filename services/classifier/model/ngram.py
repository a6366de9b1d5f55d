"""The n-gram member (the ngram family, what the service runs): TF-IDF word 1-2 grams and character 2-5 grams,
a logistic regression, and a batch scorer that computes its probabilities without scikit-learn's per-call cost."""

from __future__ import annotations

import itertools
import re
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np

# Chosen by 5-fold cross-validation on the catalogue examples (see bench/classifier_quick.py):
# character n-grams generalise better than words on short, misspelt messages, so they weigh double.
DEFAULT_C = 10.0
CHAR_WEIGHT = 2.0


class _Block:
    """One vectoriser of the feature union: the columns of the known n-grams of a text, one per occurrence."""

    # Words whose character n-grams are remembered, as compact arrays (a tuple of Python ints cost ~1.5 kB a word, and
    # a surge of unique words grew the process by 240 MB); past that many the memory starts afresh (it only saves time).
    WORD_CACHE_SIZE = 20_000

    def __init__(self, vectorizer: Any, weight: float, offset: int):
        self.idf = np.asarray(vectorizer.idf_, dtype=float)
        self.weight = weight
        self.offset = offset
        self.sublinear = bool(vectorizer.sublinear_tf)
        self._analyse = vectorizer.build_analyzer()
        self._columns = {term: index + offset for term, index in vectorizer.vocabulary_.items()}
        # With nothing that rewrites the text first (as build_pipeline makes them), two shortcuts give the
        # analyser's very n-grams: char_wb ones never cross a space, so a text's are its words' one after the
        # other and each word's are looked up once and remembered; word ones are the tokens and their runs.
        plain = (
            vectorizer.input == "content"
            and not vectorizer.lowercase
            and vectorizer.strip_accents is None
            and vectorizer.preprocessor is None
        )
        self._per_word = plain and vectorizer.analyzer == "char_wb"
        self._tokens = (
            re.compile(vectorizer.token_pattern).findall
            if plain
            and vectorizer.analyzer == "word"
            and vectorizer.tokenizer is None
            and vectorizer.stop_words is None
            and re.compile(vectorizer.token_pattern).groups <= 1
            else None
        )
        self._ngram_range = vectorizer.ngram_range
        self._words: dict[str, array] = {}

    def add_columns(self, text: str, columns: list[int]) -> None:
        if self._per_word:
            words = self._words
            for word in text.split():
                known = words.get(word)
                if known is None:
                    if len(words) >= self.WORD_CACHE_SIZE:
                        words.clear()
                    known = words[word] = array("l", self._known(self._analyse(word)))
                columns.extend(known)
        elif self._tokens is not None:
            columns.extend(self._known(_word_ngrams(self._tokens(text), *self._ngram_range)))
        else:
            columns.extend(self._known(self._analyse(text)))

    def _known(self, terms: list[str]) -> list[int]:
        return [column for column in map(self._columns.get, terms) if column is not None]


def _word_ngrams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    """scikit-learn's word n-grams of a token list (VectorizerMixin._word_ngrams without stop words)."""
    if max_n == 1:
        return tokens
    terms = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n + 1, len(tokens) + 1)):
        if n == 2:
            terms += [first + " " + second for first, second in itertools.pairwise(tokens)]
        else:
            terms += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return terms


class _FastScorer:
    """The fitted pipeline's predict_proba for a batch of texts, without scikit-learn's per-call overhead.

    Same arithmetic (sublinear tf x idf, l2 per block, block weights, softmax of the linear scores): the
    batch's n-gram counts make one sparse matrix, then one sparse @ dense product and one softmax, at about
    15 µs a text instead of about 1.3 ms. A row goes through the same operations whatever else is in the
    batch, so a text scores the same alone or among 500. Tests check it against the pipeline.
    """

    def __init__(self, pipeline: Any):
        features = pipeline.named_steps["features"]
        classifier = pipeline.named_steps["classifier"]
        weights = features.transformer_weights or {}
        self._blocks: list[_Block] = []
        offset = 0
        for name, vectorizer in features.transformer_list:
            self._blocks.append(_Block(vectorizer, float(weights.get(name, 1.0)), offset))
            offset += len(vectorizer.vocabulary_)
        self._width = offset
        self._starts = np.array([block.offset for block in self._blocks])
        self._idf = np.concatenate([block.idf for block in self._blocks])
        self._weights = np.array([block.weight for block in self._blocks])
        self._sublinear = np.array([block.sublinear for block in self._blocks])
        self._coef = np.ascontiguousarray(classifier.coef_.T)  # one row per feature
        self._intercept = np.asarray(classifier.intercept_, dtype=float)

    def __call__(self, normalised: str) -> np.ndarray:
        return self.proba([normalised])[0]

    def proba(self, normalised: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per normalise_text()-ed text."""
        n = len(normalised)
        columns: list[int] = []
        lengths: list[int] = []
        for text in normalised:
            before = len(columns)
            for block in self._blocks:
                block.add_columns(text, columns)
            lengths.append(len(columns) - before)
        scores = np.zeros((n, len(self._intercept)))
        if columns:
            # One key per n-gram occurrence, row-major: sorted, they come grouped by text then by column (the
            # order scikit-learn sums in), and the length of a run of equal keys is a term frequency.
            keys = np.array(columns, dtype=np.int64)
            if n > 1:
                keys += np.repeat(np.arange(n, dtype=np.int64) * self._width, lengths)
            keys.sort()
            first = np.empty(len(keys), dtype=bool)
            first[0] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            values = np.diff(starts, append=len(keys)).astype(float)
            rows, cols = np.divmod(keys[starts], self._width)
            block_of = np.searchsorted(self._starts, cols, side="right") - 1
            if self._sublinear.all():
                np.log(values, out=values)
                values += 1.0
            elif self._sublinear.any():
                sublinear = self._sublinear[block_of]
                values[sublinear] = np.log(values[sublinear]) + 1.0
            values *= self._idf[cols]
            # l2 norm of each text's part in each block
            groups = rows * len(self._blocks) + block_of
            norms = np.sqrt(np.bincount(groups, weights=values * values, minlength=n * len(self._blocks)))
            values /= norms[groups]
            values *= self._weights[block_of]
            indptr = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
            _add_sparse_product(scores, indptr, cols.astype(np.int32), values, self._coef)
        scores += self._intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)


def _add_sparse_product(
    out: np.ndarray, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dense: np.ndarray
) -> None:
    """out += the CSR matrix (indptr, indices, values) @ dense, by the kernel scipy's csr_matrix @ dense runs (same
    sums in the same order): building a csr_matrix first checks it for ~25 µs, more than a small batch's product."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:  # a scipy that moved its kernel: the public way
        from scipy.sparse import csr_matrix

        out += csr_matrix((values, indices, indptr), shape=(out.shape[0], dense.shape[0])) @ dense
        return
    if not (out.flags.c_contiguous and dense.flags.c_contiguous and indptr.dtype == indices.dtype):
        raise ValueError("the product needs C-contiguous arrays and indices of one type")
    csr_matvecs(out.shape[0], dense.shape[0], dense.shape[1], indptr, indices, values, dense.ravel(), out.ravel())


def build_pipeline(seed: int = 0, c: float = DEFAULT_C) -> Any:
    """The untrained n-gram pipeline (inputs must already be normalise_text()-ed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    lowercase=False,
                    token_pattern=r"(?u)\b\w+\b",
                    sublinear_tf=True,
                ),
            ),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False, sublinear_tf=True)),
        ],
        transformer_weights={"words": 1.0, "chars": CHAR_WEIGHT},
    )
    classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    return Pipeline([("features", features), ("classifier", classifier)])


class _Ngram:
    """TF-IDF word and character n-grams, logistic regression."""

    def __init__(self, texts: list[str], y: np.ndarray, seed: int, c: float = DEFAULT_C):
        self.pipeline = build_pipeline(seed, c).fit(texts, y)
        self._scorer = _FastScorer(self.pipeline) if len(self.pipeline.classes_) > 2 else None

    def __getstate__(self) -> dict:
        return {"pipeline": self.pipeline}

    def __setstate__(self, state: dict) -> None:
        self.pipeline = state["pipeline"]
        self._scorer = _FastScorer(self.pipeline) if len(self.pipeline.classes_) > 2 else None

    def proba(self, texts: list[str], embed: Any) -> np.ndarray:
        if self._scorer is None:  # two classes: scikit-learn's binary formula, rare enough to go slow
            return self.pipeline.predict_proba(texts)
        return self._scorer.proba(texts)
