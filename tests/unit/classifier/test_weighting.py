"""Member weights chosen on held-out rows (relais.classifier.model.weighting): the weighting with the lowest
log-loss among tenths, per language where a language has rows enough, and each row mixed with its language's."""

import numpy as np
import pytest

from relais.classifier.model import ENSEMBLES, IntentModel, weighting
from tests.unit.classifier.test_model import TOY

DEFAULT = {"ngram": 0.5, "embedding_lr": 0.3, "embedding_knn": 0.2}


def test_every_weighting_in_tenths_sums_to_one():
    found = weighting.weightings(list(DEFAULT))
    assert len(found) == 66  # C(12, 2)
    assert all(abs(sum(w.values()) - 1) < 1e-9 and set(w) == set(DEFAULT) for w in found)
    assert {"ngram": 1.0, "embedding_lr": 0.0, "embedding_knn": 0.0} in found


def reader(y: np.ndarray, right: np.ndarray, classes: int = 3) -> np.ndarray:
    """Probabilities that give 0.8 to the label on the rows where `right`, 0.8 to another class elsewhere."""
    p = np.full((len(y), classes), 0.2 / (classes - 1))
    p[np.arange(len(y)), np.where(right, y, (y + 1) % classes)] = 0.8
    return p


def test_the_member_right_on_the_held_out_rows_gets_the_weight_and_each_language_its_own():
    rng = np.random.RandomState(0)
    y = rng.randint(3, size=300)
    languages = ["en"] * 150 + ["fr"] * 120 + ["de"] * 30
    english = np.array([g == "en" for g in languages])
    probabilities = {
        "ngram": reader(y, ~english),  # reads French (and German) right, English wrong
        "embedding_lr": reader(y, english),  # the other way round
        "embedding_knn": reader(y, np.zeros(300, bool)),  # always wrong
    }
    overall, by_language = weighting.choose(probabilities, y, DEFAULT, languages)
    assert overall["embedding_knn"] == 0 and overall["ngram"] > 0 and overall["embedding_lr"] > 0
    assert set(by_language) == {"en", "fr"}, "German has fewer than MIN_ROWS rows: the overall weights"
    assert by_language["en"]["embedding_lr"] == 1.0 and by_language["fr"]["ngram"] == 1.0
    mixed = weighting.mix(probabilities, overall, by_language, languages)
    assert np.allclose(mixed.sum(1), 1)
    assert (mixed.argmax(1)[:270] == y[:270]).all(), "English and French rows read by their own weights"
    assert np.allclose(mixed[270:], weighting.mix(probabilities, overall, {})[270:])
    assert np.allclose(
        weighting.mix(probabilities, overall, by_language, None), weighting.mix(probabilities, overall, {})
    )


def test_without_rows_or_a_better_weighting_the_default_stays():
    y = np.array([0, 1, 2])
    same = reader(y, np.ones(3, bool))
    assert weighting.best({m: same for m in DEFAULT}, y, DEFAULT) == DEFAULT, "a tie keeps the default"
    assert weighting.choose({m: same[:0] for m in DEFAULT}, y[:0], DEFAULT) == (DEFAULT, {})


@pytest.mark.parametrize("family", ["ngram", "minilm-onnx"])
def test_a_family_trained_with_languages_records_its_weights(family, monkeypatch):
    monkeypatch.setattr(weighting, "MIN_ROWS", 1)  # the toy rows: a handful a language
    texts, labels = [t for t, _ in TOY] * 3, [y for _, y in TOY] * 3
    languages = ["en" if i % 2 else "fr" for i in range(len(texts))]
    model = IntentModel.fit(texts, labels, family=family, languages=languages)
    weights = model.metadata["weights"]
    assert set(weights["all"]) == set(ENSEMBLES[family]) and abs(sum(weights["all"].values()) - 1) < 1e-9
    if family == "ngram":
        assert weights == {"all": {"ngram": 1.0}, "by_language": {}}, "one member: nothing to choose"
    else:
        assert set(weights["by_language"]) == {"en", "fr"}
    again = IntentModel.fit(texts, labels, family=family, temperature=model.metadata["temperature"], weights=weights)
    assert again.metadata["weights"] == weights
    queries = texts[:6]
    assert again.predict_batch(queries, languages=languages[:6]) == model.predict_batch(
        queries, languages=languages[:6]
    )
    assert model.predict_batch(queries, languages=languages[:6]) == [
        model.predict(q, language=g) for q, g in zip(queries, languages[:6])
    ]
