"""The minilm-student family's plumbing (relais.classifier.model.student), without torch: the student file here is
the pretrained MiniLM's int8 graph (a student before any distillation, the same kind of file `relais intents distil`
writes). The family trains and predicts on the file it is given, remembers the file's content, refuses another, and
says what to run when there is none; `relais intents eval --student` reads it; training says when the student learnt
another catalogue."""

import json
import pickle
import shutil

import pytest

from relais import cli
from relais.classifier.artifact import student_note
from relais.classifier.catalogue import load_catalogue
from relais.classifier.model import IntentModel, ModelUnavailable, onnx_encoder, student
from tests.unit.classifier.test_model import QUERIES, TOY, assert_trains_predicts_and_is_reproducible, fit


@pytest.fixture(scope="module")
def student_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("student") / "student-int8.onnx"
    shutil.copyfile(onnx_encoder.ensure_built(), path)
    return path


@pytest.fixture(scope="module")
def fitted(student_file):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELAIS_STUDENT_ENCODER", str(student_file))
        return fit("minilm-student"), fit("minilm-student")


def test_the_family_trains_on_the_student_it_is_given_and_remembers_its_content(fitted, student_file):
    assert_trains_predicts_and_is_reproducible("minilm-student", *fitted)
    model = fitted[0]
    assert model.metadata["encoder"] == str(student_file)
    assert model.metadata["encoder_sha256"] == student.fingerprint(student_file)
    assert model.predict_batch(QUERIES) == [model.predict(q) for q in QUERIES]
    assert b"onnxruntime" not in pickle.dumps(model)


def test_without_a_student_it_says_what_writes_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAIS_STUDENT_ENCODER", str(tmp_path / "none.onnx"))
    with pytest.raises(ModelUnavailable, match="relais intents distil"):
        fit("minilm-student")


def test_a_model_whose_student_file_changed_asks_to_retrain(fitted, student_file, tmp_path):
    model = pickle.loads(pickle.dumps(fitted[0]))
    other = tmp_path / "student-int8.onnx"
    other.write_bytes(onnx_encoder.build(False, tmp_path / "fp32.onnx").read_bytes())  # another student
    model._classifier.encoder_file = str(other)
    with pytest.raises(ModelUnavailable, match="retrain with `relais intents train --family minilm-student`"):
        model.predict("where is my parcel")
    saved = tmp_path / "model.pkl"
    fitted[0].save(saved)
    assert (IntentModel.load(saved).probabilities(QUERIES) == fitted[0].probabilities(QUERIES)).all()


def test_eval_reads_the_student_named_and_refuses_a_missing_one(student_file, tmp_path, capsys):
    rows = tmp_path / "toy.csv"
    rows.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in TOY), encoding="utf-8")
    args = ["intents", "eval", "--train", str(rows), "--test", str(rows), "--family", "minilm-student", "--json"]
    assert cli.main([*args, "--student", str(student_file)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["family"] == "minilm-student" and result["accuracy"] >= 0.8
    assert cli.main([*args, "--student", str(tmp_path / "missing.onnx")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such file")


def test_training_says_when_the_student_learnt_another_catalogue(student_file, tmp_path, monkeypatch):
    catalogue = load_catalogue()
    path = tmp_path / "student-int8.onnx"
    shutil.copyfile(student_file, path)
    monkeypatch.setenv("RELAIS_STUDENT_ENCODER", str(path))
    assert student_note(catalogue, "minilm-student") is None  # no record of what it learnt
    record = path.with_suffix(".json")
    record.write_text(json.dumps({"catalogue_version": "2025.1", "catalogue_sha256": "0" * 64}), encoding="utf-8")
    note = student_note(catalogue, "minilm-student")
    assert note is not None and "'2025.1'" in note and "relais intents distil" in note
    assert student_note(catalogue, "ngram") is None
    record.write_text(json.dumps({"catalogue_sha256": catalogue.sha256}), encoding="utf-8")
    assert student_note(catalogue, "minilm-student") is None


def test_an_interrupted_distillation_starts_again_after_its_teacher(tmp_path, monkeypatch):
    from relais.classifier.model import distil

    trained, students = [], []

    def teacher(texts, labels, seed=0):
        trained.append(len(texts))
        return {"teacher of": len(texts)}

    def fine_tune(texts, labels, seed=0, copies=1, teacher=None):
        students.append(teacher)
        if len(students) == 1:
            raise KeyboardInterrupt  # stopped during the student's fine-tuning
        return {"weights": teacher}, "head"

    monkeypatch.setattr(distil, "train_teacher", teacher)
    monkeypatch.setattr(distil, "student_and_head", fine_tune)
    monkeypatch.setattr(distil, "build", lambda quantised, out, weights: out.write_bytes(pickle.dumps(weights)))
    texts, labels = ["where is my parcel", "what time do you open"], ["order_status", "opening_hours"]
    with pytest.raises(KeyboardInterrupt):
        distil.cached_student(texts, labels, tmp_path)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["teacher"]
    path = distil.cached_student(texts, labels, tmp_path)
    assert trained == [2] and students == [{"teacher of": 2}] * 2, "the kept teacher taught the second attempt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "the teacher is dropped once the student is written"
    assert distil.cached_student(texts, labels, tmp_path) == path and len(students) == 2
    assert distil.cached_student(texts, ["opening_hours", "order_status"], tmp_path) != path, "other rows, other file"
