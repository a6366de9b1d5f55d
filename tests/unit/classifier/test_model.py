"""The intent model itself: families, calibration, reproducibility, the artifact file.

The families that need the MiniLM weights or torch (the `embeddings` extra, `make bench-install`) are checked
with the real weights by tests/heavy/test_model_families.py, which `make bench` runs; here the minilm family's
ensemble (n-grams, a logistic regression over six layers, nearest neighbours) runs on a numpy stand-in encoder.
"""

import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import sklearn

from relais.classifier.model import (
    ARTIFACT_FORMAT,
    DEFAULT_FAMILY,
    OUT_OF_SCOPE_LABEL,
    IntentModel,
    catalogue_sha256,
    encoder,
    ensemble,
    ngram,
    persistence,
)

# A small bilingual set: three intents, both languages, a few "none of the above" rows.
TOY = [
    ("where is my parcel", "order_status"),
    ("has my order shipped", "order_status"),
    ("track my delivery please", "order_status"),
    ("when will my order arrive", "order_status"),
    ("où est mon colis", "order_status"),
    ("ma commande est-elle partie", "order_status"),
    ("suivre ma livraison", "order_status"),
    ("quand arrive ma commande", "order_status"),
    ("my card was stolen", "lost_card"),
    ("i lost my credit card", "lost_card"),
    ("someone took my card", "lost_card"),
    ("block my lost card", "lost_card"),
    ("on m'a volé ma carte", "lost_card"),
    ("j'ai perdu ma carte bancaire", "lost_card"),
    ("bloquez ma carte perdue", "lost_card"),
    ("ma carte a disparu", "lost_card"),
    ("what time do you open", "opening_hours"),
    ("are you open on sunday", "opening_hours"),
    ("opening hours of the shop", "opening_hours"),
    ("when do you close tonight", "opening_hours"),
    ("à quelle heure ouvrez-vous", "opening_hours"),
    ("êtes-vous ouverts le dimanche", "opening_hours"),
    ("horaires du magasin", "opening_hours"),
    ("vous fermez à quelle heure", "opening_hours"),
    ("tell me a joke", OUT_OF_SCOPE_LABEL),
    ("what is the weather", OUT_OF_SCOPE_LABEL),
    ("raconte une blague", OUT_OF_SCOPE_LABEL),
    ("quel temps fait-il", OUT_OF_SCOPE_LABEL),
]
QUERIES = ["my parcel has not arrived", "j'ai perdu ma carte", "open on saturday?", "chante une chanson", ""]


def fit(family: str, seed: int = 0, holdout: float = 0.25) -> IntentModel:
    texts, labels = zip(*TOY)
    return IntentModel.fit(texts, labels, family=family, seed=seed, thresholds=0.3, holdout=holdout)


class HashedTrigramEncoder:
    """Stands in for all-MiniLM-L6-v2 (no weights here): each layer's "pooled output" is a fixed random
    projection of the text's hashed character trigrams, so similar wordings get similar vectors."""

    def __init__(self, buckets: int = 512):
        shape = (encoder._LAYERS, buckets, encoder._WIDTH)
        self.buckets, self.projection = buckets, np.random.RandomState(0).standard_normal(shape).astype(np.float32)

    def encode(self, texts) -> np.ndarray:
        counts = np.zeros((len(texts), self.buckets), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text} "
            for i in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                counts[row, int.from_bytes(digest, "little") % self.buckets] += 1
        return np.einsum("tb,lbw->tlw", counts, self.projection) + np.float32(1e-3)


@pytest.fixture(scope="module")
def stand_in_encoder():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "pretrained_encoder", HashedTrigramEncoder)
        yield


# What needs neither torch nor the MiniLM weights (the minilm family through the stand-in above).
LIGHT_FAMILIES = ("ngram", "minilm")


@pytest.fixture(scope="module")
def fitted(stand_in_encoder):
    """Each light family trained twice with the same seed."""
    return {family: (fit(family), fit(family)) for family in LIGHT_FAMILIES}


def assert_trains_predicts_and_is_reproducible(family: str, model: IntentModel, again: IntentModel) -> None:
    """What every family must do: the toy intents learnt, the same model for the same seed, a batch predicted
    as one message at a time, an empty text out of scope, calibrated on the held-out quarter."""
    assert model.family == family and set(model.classes) == {"order_status", "lost_card", "opening_hours"}
    assert (model.probabilities(QUERIES) == again.probabilities(QUERIES)).all()
    predictions = model.predict_batch(QUERIES)
    one_by_one = [model.predict(q) for q in QUERIES]
    # The MiniLM encoder pads a batch to its longest text, so float32 BLAS rounding differs in the last bits.
    assert [(p.intent, p.out_of_scope, [c for c, _ in p.ranked]) for p in predictions] == [
        (p.intent, p.out_of_scope, [c for c, _ in p.ranked]) for p in one_by_one
    ]
    assert np.allclose([p.confidence for p in predictions], [p.confidence for p in one_by_one], rtol=1e-4, atol=1e-9)
    assert [p.best_guess for p in predictions[:3]] == ["order_status", "lost_card", "opening_hours"]
    assert predictions[-1].out_of_scope and predictions[-1].confidence == 0.0
    assert all(0 <= p.confidence <= 1 for p in predictions)
    assert model.metadata["temperature"] != 1.0  # calibrated on the held-out quarter


@pytest.mark.parametrize("family", LIGHT_FAMILIES)
def test_every_light_family_trains_predicts_and_is_reproducible(family, fitted):
    assert_trains_predicts_and_is_reproducible(family, *fitted[family])


def test_the_minilm_family_reads_the_encoder(fitted, stand_in_encoder):
    model = fitted["minilm"][0]
    assert set(model._classifier.members) == {"ngram", "embedding_lr", "embedding_knn"}
    assert not np.allclose(model.probabilities(QUERIES), fitted["ngram"][0].probabilities(QUERIES))


def test_another_seed_is_still_a_valid_model():
    assert fit("ngram", seed=1).predict("where is my parcel").best_guess == "order_status"


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown model family 'bert'"):
        fit("bert")


def test_calibration_fits_a_temperature_that_lowers_the_log_loss():
    model = fit("ngram")
    texts = ["where's my order", "card stolen", "shop hours", "ou est ma commande", "carte volée", "horaires"]
    labels = ["order_status", "lost_card", "opening_hours"] * 2

    def log_loss() -> float:
        p = np.array([model.predict(t).confidence for t in texts])
        right = np.array([model.predict(t).best_guess == y for t, y in zip(texts, labels)])
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return float(-np.mean(np.where(right, np.log(p), np.log1p(-p))))

    model._classifier.temperature = 1.0
    before = log_loss()
    temperature = model.calibrate(texts, labels)
    assert temperature != 1.0 and log_loss() < before


def test_save_and_load_give_identical_predictions_and_metadata(tmp_path, catalogue, model):
    path = tmp_path / "intents.pkl"
    model.save(path)
    loaded = IntentModel.load(path)
    texts = ["Où en est ma commande CMD-123456 ?", "what time do you close", "tell me a joke", ""]
    assert loaded.predict_batch(texts) == model.predict_batch(texts)
    assert (loaded.probabilities(texts) == model.probabilities(texts)).all()
    assert (loaded.classes, loaded.catalogue_version, dict(loaded.thresholds)) == (
        model.classes,
        model.catalogue_version,
        dict(model.thresholds),
    )
    meta = loaded.metadata
    assert meta["catalogue_version"] == catalogue.version
    file_sha256 = hashlib.sha256(Path(catalogue.source).read_bytes()).hexdigest()
    assert meta["catalogue_sha256"] == catalogue_sha256(catalogue) == file_sha256
    assert (meta["family"], meta["seed"], meta["format"]) == (DEFAULT_FAMILY, 0, ARTIFACT_FORMAT)
    assert meta["sklearn"] == sklearn.__version__ and meta["python"] and meta["trained_at"]


def _rewrite_metadata(path, **changes):
    envelope = pickle.loads(path.read_bytes())
    envelope["metadata"] |= changes
    path.write_bytes(pickle.dumps(envelope))


def test_load_refuses_another_format_or_scikit_learn(tmp_path):
    path = tmp_path / "m.pkl"
    fit("ngram").save(path)
    _rewrite_metadata(path, format=ARTIFACT_FORMAT + 1)
    with pytest.raises(ValueError, match=f"artifact format {ARTIFACT_FORMAT + 1}"):
        IntentModel.load(path)
    _rewrite_metadata(path, format=ARTIFACT_FORMAT, sklearn="0.24.2")
    with pytest.raises(ValueError, match="scikit-learn 0.24.2"):
        IntentModel.load(path)
    major, minor = sklearn.__version__.split(".")[:2]
    _rewrite_metadata(path, sklearn=f"{major}.{minor}.99")  # another patch release is fine
    assert IntentModel.load(path).predict("where is my parcel").best_guess == "order_status"


# Where an artifact written while the model was one module (relais.classifier.model) and mpnet.py held its member
# names each pickled class.
CLASSES_PICKLED_BEFORE_THE_PACKAGE = [
    ("relais.classifier.model", name)
    for name in ("IntentModel", "Classifier", "_Ngram", "_EmbeddingLR", "_EmbeddingKNN", "_FineTuned")
] + [("relais.classifier.mpnet", "MpnetTuned")]


@pytest.mark.parametrize(("module", "name"), CLASSES_PICKLED_BEFORE_THE_PACKAGE)
def test_the_classes_older_artifacts_name_are_found(module, name):
    found = persistence._ModelUnpickler(io.BytesIO(b"")).find_class(module, name)
    assert found.__name__ == name and found.__module__.startswith("relais.classifier.model.")


def test_an_artifact_naming_the_old_module_loads_with_the_same_predictions(tmp_path):
    model = fit("ngram")
    with pytest.MonkeyPatch.context() as patch:  # pickled as the one-module model.py named them
        for cls in (IntentModel, ensemble.Classifier, ngram._Ngram):
            patch.setattr(cls, "__module__", "relais.classifier.model")
        model.save(tmp_path / "old.pkl")
    assert b"relais.classifier.model.ngram" not in pickle.loads((tmp_path / "old.pkl").read_bytes())["model"]
    loaded = IntentModel.load(tmp_path / "old.pkl")
    assert type(loaded._classifier.members["ngram"]) is ngram._Ngram
    assert (loaded.probabilities(QUERIES) == model.probabilities(QUERIES)).all()


def test_load_refuses_a_foreign_pickle_without_running_it(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"metadata": {"format": ARTIFACT_FORMAT}, "model": Exploit()}))
    with pytest.raises(ValueError, match="not an intent model artifact"):
        IntentModel.load(path)
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "old.pkl").write_bytes(pickle.dumps({"metadata": {"format": 0}, "model": None}))
    with pytest.raises(ValueError, match="artifact format 0"):
        IntentModel.load(tmp_path / "old.pkl")
