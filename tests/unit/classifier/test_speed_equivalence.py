"""The classifier's fast paths give what the plain ones give: the batch n-gram scorer against scikit-learn, a
turn's classification whatever the batch it comes in, and each shortcut of the sentiment and request rules
against the rule written out pattern by pattern."""

import csv
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.pipeline import ADVISOR, ANGRY
from relais.classifier import sentiment as S
from relais.classifier.catalogue import load_catalogue
from relais.classifier.domain import classify, classify_batch
from relais.classifier.model import BACKGROUND_EXAMPLES, normalise_text
from relais.classifier.model.ngram import _Block, _FastScorer, _word_ngrams
from relais.common.language import SUPPORTED_LANGUAGES, fold
from relais.common.redact import redact

EVALUATION_SET = Path(__file__).parent / "evaluation_set.csv"

EDGE_CASES = [
    "",
    " ",
    "!!!",
    "???",
    "?!",
    "a",
    "é",
    "x y",
    "CMD-000001",
    "zzzz qqqq",
    "agent",
    "HUMAIN !!",
    "qqn",
    "un conseiler svp",
    "_cannot do it",
    "I cannot pay, I can't",
    "you CANNOT be serious!!! NO WAY",
    "ΟΔΟΣ ÇA SUFFIT ß ǅ ÆØ",
    "ÉNERVÉ ÉNERVÉ",
    "1 200,50 € ou 30 quid, 2k€",
    "€5",
    "٣٤ euros",
    "mon IBAN [IBAN] et ma carte [CARD] SVP",
    "Passez-moi quelqu’un",
    "je ne veux pas parler à un robot",
    "pas besoin de parler à un conseiller",
    "ça fait 3 fois que j'appelle",
    "on hold for 45 minutes",
    "aidez moi svp",
    "no card no money",
    "The the the the",
    "x\u00a0y\u202fz\tw\nv",
]


def _corpus() -> list[str]:
    catalogue = load_catalogue()
    texts = [text for text, _, _ in catalogue.training_examples()]
    with EVALUATION_SET.open(encoding="utf-8") as f:
        texts += [row["text"] for row in csv.DictReader(f)]
    texts += [text for table in (ANGRY, ADVISOR, BACKGROUND_EXAMPLES) for lang in table for text in table[lang]]
    rng = random.Random(13)
    variants = []
    for text in texts:  # capitals, bursts, contractions, accents, shuffled words, amounts, halves
        variants.append(
            rng.choice(
                [
                    text.upper(),
                    text + " !!!",
                    text.replace("not", "n't").replace("can ", "cannot "),
                    "_cannot " + text + " ??!",
                    text.replace("e", "é").replace("a", "Å"),
                    " ".join(rng.sample(text.split(), len(text.split()))),
                    text + " 1 200,50 € ou 30 quid",
                    text[: len(text) // 2],
                    redact(text),
                ]
            )
        )
    return texts + variants + EDGE_CASES


CORPUS = _corpus()


# ----------------------------------------------------------------------------------------- intent model


def test_the_batch_scorer_gives_scikit_learns_probabilities(model):
    ngram = model._classifier.members["ngram"]  # the n-gram member of every family
    normalised = [normalise_text(t) for t in CORPUS]
    fast = ngram.proba(normalised, None)
    reference = ngram.pipeline.predict_proba(normalised)
    assert fast.shape == reference.shape == (len(CORPUS), len(model._classifier.classes))
    assert abs(fast - reference).max() < 1e-9


def test_a_text_scores_the_same_alone_or_in_a_batch(model):
    scorer = model._classifier.members["ngram"]._scorer
    normalised = [normalise_text(t) for t in CORPUS[:300]]
    together = scorer.proba(normalised)
    alone = np.vstack([scorer.proba([text]) for text in normalised])
    assert (together == alone).all()
    assert scorer.proba([]).shape == (0, together.shape[1])


def test_remembering_words_changes_no_score(model, monkeypatch):
    pipeline = model._classifier.members["ngram"].pipeline
    normalised = [normalise_text(t) for t in CORPUS]
    remembering = _FastScorer(pipeline).proba(normalised)
    monkeypatch.setattr(_Block, "WORD_CACHE_SIZE", 3)  # forgets all the time
    forgetting = _FastScorer(pipeline)
    assert (forgetting.proba(normalised) == remembering).all()
    assert all(len(block._words) <= 3 for block in forgetting._blocks)


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3)])
def test_word_ngrams_are_scikit_learns(ngram_range):
    vectorizer = TfidfVectorizer(
        analyzer="word", ngram_range=ngram_range, lowercase=False, token_pattern=r"(?u)\b\w+\b"
    )
    analyse = vectorizer.build_analyzer()
    tokens = re.compile(vectorizer.token_pattern).findall
    for text in map(normalise_text, CORPUS[:500] + EDGE_CASES):
        assert Counter(_word_ngrams(tokens(text), *ngram_range)) == Counter(analyse(text)), text


def test_a_differently_built_pipeline_is_still_scored_right():
    """A vectoriser that lowercases or drops stop words takes the plain analyser path."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    texts = [normalise_text(t) for t in CORPUS[:400]]
    labels = [i % 4 for i in range(len(texts))]
    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("words", TfidfVectorizer(ngram_range=(1, 2), stop_words=["le", "the"], sublinear_tf=False)),
                        (
                            "chars",
                            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, sublinear_tf=True),
                        ),
                    ],
                    transformer_weights={"words": 0.5, "chars": 3.0},
                ),
            ),
            ("classifier", LogisticRegression(max_iter=2000)),
        ]
    ).fit(texts, labels)
    scorer = _FastScorer(pipeline)
    assert not any(block._per_word or block._tokens for block in scorer._blocks)
    queries = [t.upper() for t in texts[:100]] + texts[100:200] + ["", "ÉTÉ Été été"]
    assert abs(scorer.proba(queries) - pipeline.predict_proba(queries)).max() < 1e-9


def test_predict_batch_is_predict_one_by_one_and_takes_folded_texts(model):
    texts = CORPUS[:150] + EDGE_CASES
    batch = model.predict_batch(iter(texts))
    assert batch == [model.predict(t) for t in texts]
    assert model.predict_batch(texts, folded=[fold(t) for t in texts]) == batch
    with pytest.raises(ValueError):
        model.predict_batch(texts, folded=[fold(t) for t in texts[1:]])


# ------------------------------------------------------------------------------------------- whole turn


def test_classify_batch_is_the_same_in_batches_of_1_7_and_200(model, catalogue):
    rng = random.Random(7)
    # Languages as intake sets them, and some unset (detected here) or not served.
    messages = [(text, rng.choice(["fr", "en", "fr", "en", "es", None])) for text in CORPUS[:300] + CORPUS[-200:]]
    by_size = {
        size: [
            result
            for start in range(0, len(messages), size)
            for result in classify_batch(messages[start : start + size], model, catalogue)
        ]
        for size in (1, 7, 200)
    }
    assert by_size[1] == by_size[7] == by_size[200]
    assert by_size[1][:20] == [classify(text, hint, model, catalogue) for text, hint in messages[:20]]
    results = by_size[200]
    assert any(r.asks_for_human for r in results) and any(r.sentiment.anger for r in results)
    assert any(r.amount for r in results) and any(r.intent for r in results) and any(r.out_of_scope for r in results)


# --------------------------------------------------------------------------- sentiment and requests, plainly


def _plain_tokens(text: str) -> list[str]:
    folded = re.sub(r"\bcannot\b", "can not", re.sub(r"n't\b", " not", fold(text)))
    return S._TOKEN.findall(folded.replace("'", " ").replace("-", " "))


def _plain_clauses(text: str) -> str:
    folded = re.sub(r"n't\b", " not", fold(text)).replace("'", " ").replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9.!?,;:]+", " ", folded).split())


def _plain_request_form(text: str) -> str:
    folded = _plain_clauses(text)
    for pattern, replacement in S._TYPOS:
        folded = pattern.sub(replacement, folded)
    return folded


def _plain_asks_for_human(text: str) -> bool:
    folded = _plain_request_form(text)
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in S._FILLER]
    if words and (" ".join(words) in S._PERSON_ALONE or all(w in S._PERSON_WORDS for w in words)):
        return True
    if any(pattern.search(folded) for pattern in S._BOT_REJECTION):
        return True
    for pattern in (*S._HUMAN_REQUEST, *S._MORE_REQUESTS):
        for match in pattern.finditer(folded):
            clause = re.split(r"[.!?;,]", folded[: match.start()])[-1] + match.group(0)
            if not S._DECLINED.search(clause):
                return True
    return False


def _plain_shouting(text: str) -> bool:
    text = S._PLACEHOLDER.sub(" ", text)
    shouted = [w for w in re.findall(r"[^\W\d_]{3,}", text) if w.isupper() and w not in S.NOT_SHOUTING]
    letters = [c for c in text if c.isalpha()]
    mostly_upper = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) >= 0.7
    return len(shouted) >= 2 or (mostly_upper and len(shouted) >= 1)


def test_one_folding_gives_the_tokens_and_the_clauses_folding_each_way_gave():
    for text in CORPUS:
        assert S._forms(text) == (_plain_tokens(text), _plain_clauses(text)), text
        assert S._forms(text, fold(text)) == S._forms(text)
        assert S._request_folded(text) == _plain_request_form(text), text


def test_joined_patterns_match_where_one_of_them_does():
    for text in CORPUS:
        clauses = _plain_clauses(text)
        for kind, patterns in S.IDIOMS.items():
            assert bool(S._IDIOMS_ANY[kind].search(clauses)) == any(p.search(clauses) for p in patterns), (kind, text)
        assert S.asks_for_human(text) == _plain_asks_for_human(text), text


def test_shortcuts_of_shouting_bursts_amounts_and_cues_change_nothing():
    for text in CORPUS + [t.upper() for t in CORPUS[:300]]:
        assert S._shouting(text) == _plain_shouting(text), text
        assert S._exclamation_burst(text) == (
            bool(re.search(r"!\s*!\s*!", text)) or len(re.findall(r"!\s*!", text)) >= 2
        )
        assert S._question_burst(text) == bool(re.search(r"\?\s*\?\s*\?|\?\s*!|!\s*\?", text))
        if not re.search(r"\d", text):
            assert S._AMOUNT.search(text) is None and S.extract_amount(text) is None
        tokens = S._tokens(text)
        for langs in [(lang,) for lang in SUPPORTED_LANGUAGES] + [SUPPORTED_LANGUAGES]:
            keys = (*langs, S._ANY_LANGUAGE)
            assert S._find_cues(tokens, [S._MERGED_LEXICONS[keys]]) == S._find_cues(
                tokens, [S._LEXICON[key] for key in keys]
            ), text


def test_analyse_message_is_sentiment_and_request_together():
    for text in CORPUS[::3]:
        for language in ("fr", "en", "de"):
            assert S.analyse_message(text, language) == (S.analyse_sentiment(text, language), S.asks_for_human(text))
            assert S.analyse_message(text, language, fold(text)) == S.analyse_message(text, language)


def test_the_public_sparse_product_gives_the_same_scores(model, monkeypatch):
    """Where scipy's kernel cannot be imported by name, csr_matrix @ dense is used: the same numbers."""
    import sys

    scorer = model._classifier.members["ngram"]._scorer
    normalised = [normalise_text(t) for t in CORPUS[:200]]
    direct = scorer.proba(normalised)
    monkeypatch.setitem(sys.modules, "scipy.sparse._sparsetools", None)  # makes the import fail
    assert (scorer.proba(normalised) == direct).all()
