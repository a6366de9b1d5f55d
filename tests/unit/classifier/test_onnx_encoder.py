"""MiniLM in ONNX Runtime (relais.classifier.model.onnx_encoder) with the real weights `make install` fetches: the
graph written with onnx's helper API computes what the numpy encoder computes, int8 stays close, a message's
encoding does not depend on its batch, the file is built once, and the minilm-onnx family that reads it trains,
predicts and is saved without its ONNX Runtime session."""

import pickle

import numpy as np
import pytest

from relais.classifier.model import IntentModel, ModelUnavailable, ensemble, onnx_encoder, pretrained_encoder
from tests.unit.classifier.test_model import QUERIES, assert_trains_predicts_and_is_reproducible, fit

SENTENCES = [
    "Where is my card?",
    "Où est ma carte ?",
    "Je voudrais bloquer ma carte bancaire, on me l'a volée hier soir dans le métro.",
    "I was charged twice for the same order and nobody answers my emails!!",
    "Bonjour, à quelle heure ouvre le magasin de Lyon samedi ?",
    "can i change the delivery address of order CMD-000123",
    "ok",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each text's pooled vector, layer by layer: (texts, layers)."""
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def numpy_pooled():
    return pretrained_encoder().encode(SENTENCES)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both graphs built into a private folder (not the shared cache)."""
    folder = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELAIS_ONNX_DIR", str(folder))
        yield {q: onnx_encoder.build(q) for q in (False, True)}


def test_the_fp32_graph_computes_the_numpy_encoder(built, numpy_pooled):
    pooled = onnx_encoder.OnnxEncoder(built[False]).encode(SENTENCES)
    assert pooled.shape == numpy_pooled.shape == (len(SENTENCES), 6, 384)
    assert _cosines(pooled, numpy_pooled).min() >= 0.9999


def test_the_int8_graph_stays_close(built, numpy_pooled):
    cosines = _cosines(onnx_encoder.OnnxEncoder(built[True]).encode(SENTENCES), numpy_pooled)
    assert cosines.min() >= 0.98 and cosines.mean() >= 0.99, cosines.round(4)
    assert built[True].stat().st_size < built[False].stat().st_size / 3  # the weights are int8


def test_a_message_encodes_the_same_alone_or_in_any_batch(built):
    encoder = onnx_encoder.OnnxEncoder(built[True])
    texts = SENTENCES * 3 + [s.upper() for s in SENTENCES]
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    assert (together == alone).all()
    assert (encoder.encode(texts[::-1])[::-1] == together).all()
    assert encoder.encode([]).shape == (0, 6, 384)


def test_the_file_is_named_by_the_weights_and_built_once(built, monkeypatch):
    monkeypatch.setenv("RELAIS_ONNX_DIR", str(built[True].parent))
    path = onnx_encoder.encoder_path()
    assert path == built[True] and onnx_encoder.MINILM_SHA256[:16] in path.name
    assert f"g{onnx_encoder.GRAPH_VERSION}" in path.name
    modified = path.stat().st_mtime_ns
    assert onnx_encoder.ensure_built() == path and path.stat().st_mtime_ns == modified


@pytest.fixture(scope="module")
def fitted():
    return fit("minilm-onnx"), fit("minilm-onnx")


def test_the_minilm_onnx_family_trains_predicts_and_is_reproducible(fitted):
    assert_trains_predicts_and_is_reproducible("minilm-onnx", *fitted)
    assert fitted[0].metadata["encoder"] == onnx_encoder.encoder_path().name


def test_the_family_predicts_a_text_the_same_alone_or_in_a_batch(fitted):
    model, texts = fitted[0], QUERIES + SENTENCES + [s.lower() for s in SENTENCES]
    assert model.predict_batch(texts) == [model.predict(t) for t in texts]


def test_the_saved_model_holds_no_session_and_predicts_the_same(fitted, tmp_path):
    model = fitted[0]
    assert b"onnxruntime" not in pickle.dumps(model)
    model.save(tmp_path / "model.pkl")
    assert (IntentModel.load(tmp_path / "model.pkl").probabilities(QUERIES) == model.probabilities(QUERIES)).all()


def test_a_model_trained_on_another_encoder_file_asks_to_retrain(fitted, monkeypatch):
    model = pickle.loads(pickle.dumps(fitted[0]))
    monkeypatch.setattr(ensemble, "encoder_path", lambda: onnx_encoder.onnx_dir() / "another.onnx")
    with pytest.raises(ModelUnavailable, match="retrain with `relais intents train`"):
        model.predict("where is my parcel")
