"""The intent model artifact: versioned, reproducible, refused when it does not match."""

import pickle

import pytest

from relais.classifier import artifact
from relais.classifier.catalogue import load_catalogue
from relais.cli import main as relais

CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "intents.pkl"
    assert relais(["intents", "train", "--out", str(path), "--seed", "0"]) == 0
    return path


def test_train_writes_an_artifact_the_service_loads(trained):
    model = artifact.load_for(CATALOGUE, trained)
    _, metadata = artifact.load(trained)
    assert (metadata["catalogue_version"], metadata["catalogue_sha256"]) == (CATALOGUE.version, CATALOGUE.sha256)
    assert metadata["format"] == artifact.FORMAT and metadata["seed"] == 0
    assert model.predict("Où en est ma commande CMD-123456 ?").intent == "order_status"


def test_training_is_reproducible(trained, tmp_path):
    again = tmp_path / "again.pkl"
    artifact.train(CATALOGUE, again, seed=0)
    texts = ["ma carte a été volée", "what time do you close", "bonjour"]
    first, second = artifact.load_for(CATALOGUE, trained), artifact.load_for(CATALOGUE, again)
    assert [first.predict(t).ranked for t in texts] == [second.predict(t).ranked for t in texts]


def test_a_model_of_another_catalogue_is_refused(trained, tmp_path):
    edited = tmp_path / "catalogue.yaml"
    edited.write_bytes(CATALOGUE_BYTES() + b"\n# a business edit\n")
    with pytest.raises(artifact.ArtifactError, match="retrain"):
        artifact.load_for(load_catalogue(edited), trained)


def test_a_missing_or_foreign_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(artifact.ArtifactError, match="no intent model at"):
        artifact.load_for(CATALOGUE, tmp_path / "missing.pkl")
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps({"metadata": {"format": 0}, "model": None}))
    with pytest.raises(artifact.ArtifactError, match="artifact format 0"):
        artifact.load_for(CATALOGUE, old)


def test_a_broken_catalogue_is_reported_by_train(tmp_path, capsys):
    bad = tmp_path / "catalogue.yaml"
    bad.write_text(CATALOGUE_BYTES().decode().replace("lookups: [order_status]", "lookups: [weather]", 1))
    assert relais(["intents", "train", "--catalogue", str(bad), "--out", str(tmp_path / "m.pkl")]) == 2
    assert "unknown lookup 'weather'" in capsys.readouterr().err


def CATALOGUE_BYTES() -> bytes:
    from relais.classifier.catalogue import DEFAULT_CATALOGUE_PATH

    return DEFAULT_CATALOGUE_PATH.read_bytes()
