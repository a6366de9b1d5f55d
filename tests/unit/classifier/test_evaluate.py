"""`relais intents eval`: metrics on small synthetic CSVs, and clear errors on bad input."""

import csv
import json

import numpy as np
import pytest

from relais.classifier.evaluate import choose_cutoff, expected_calibration_error, metrics, read_csv
from relais.classifier.model import DEFAULT_FAMILY, OUT_OF_SCOPE_LABEL, IntentModel
from relais.cli import main as relais

KEYS = {
    "accuracy",
    "macro_f1",
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "train_seconds",
    "us_per_message_single",
    "us_per_message_batch",
    "ece",
}
# Perfectly separable: every label has its own words, in both languages.
TOPICS = {
    "order_status": ["parcel", "delivery", "colis", "livraison", "shipment", "tracking"],
    "lost_card": ["stolen card", "lost card", "carte volée", "carte perdue", "card missing", "carte disparue"],
    "opening_hours": ["opening hours", "open sunday", "horaires", "ouvert dimanche", "closing time", "fermeture"],
}
OOS = [
    "weather forecast",
    "tell a joke",
    "météo demain",
    "une blague",
    "football score",
    "recette de cuisine",
    "capital of peru",
    "poème sur la mer",
]


def rows(n: int, offset: int = 0, oos: bool = False) -> list[tuple[str, str]]:
    out = []
    for label, words in TOPICS.items():
        for i in range(n):
            out.append((f"{words[(i + offset) % len(words)]} please {words[(i + offset + 1) % len(words)]}", label))
    if oos:
        out += [(f"{OOS[(i + offset) % len(OOS)]} {OOS[(i + offset + 3) % len(OOS)]}", "oos") for i in range(n)]
    return out


def write(path, data, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(data)
    return str(path)


def run(capsys, *argv) -> tuple[int, dict | None, str]:
    code = relais(["intents", "eval", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def test_a_separable_set_is_learnt_perfectly(tmp_path, capsys):
    code, result, _ = run(
        capsys,
        "--train",
        write(tmp_path / "train.csv", rows(12)),
        "--test",
        write(tmp_path / "test.csv", rows(4, offset=2)),
        "--json",
    )
    assert code == 0 and result is not None and KEYS <= set(result)
    assert result["accuracy"] == result["macro_f1"] == result["in_scope_accuracy"] == 1.0
    assert result["oos_recall"] is None and result["oos_precision"] is None
    assert 0 <= result["ece"] < 0.5 and result["train_seconds"] > 0
    assert 0 < result["us_per_message_batch"] and 0 < result["us_per_message_single"] < 5000
    assert result["family"] == DEFAULT_FAMILY and result["test_rows"] == 12


@pytest.mark.parametrize("with_val", [False, True])
def test_out_of_scope_rows_train_and_are_measured(tmp_path, capsys, with_val):
    argv = [
        "--train",
        write(tmp_path / "train.csv", rows(12, oos=True)),
        "--test",
        write(tmp_path / "test.csv", rows(4, offset=5, oos=True)),
        "--oos-label",
        "oos",
        "--json",
    ]
    if with_val:
        argv += ["--val", write(tmp_path / "val.csv", rows(4, offset=3, oos=True))]
    code, result, _ = run(capsys, *argv)
    assert code == 0 and result is not None and KEYS <= set(result)
    assert result["in_scope_accuracy"] == 1.0 and result["oos_recall"] == 1.0 and result["oos_precision"] == 1.0
    assert result["accuracy"] == 1.0 and result["cutoff_chosen_on"] == ("val" if with_val else "20% of train")


def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys):
    good = write(tmp_path / "good.csv", rows(4))
    (tmp_path / "empty.csv").write_text("")
    cases = {
        str(tmp_path / "missing.csv"): "no such file",
        write(tmp_path / "columns.csv", [("a", "b")], header=("utterance", "intent")): "needs columns text and label",
        str(tmp_path / "empty.csv"): "empty file",
        write(tmp_path / "header_only.csv", []): "no rows",
    }
    for path, message in cases.items():
        for argv in (["--train", path, "--test", good], ["--train", good, "--test", path]):
            code, _, err = run(capsys, *argv, "--json")
            assert code == 2 and message in err and path in err, (argv, err)
    code, _, err = run(capsys, "--train", good, "--test", good, "--family", "bert")
    assert code == 2 and "unknown family 'bert'" in err


def test_csv_fields_are_stripped_and_may_hold_newlines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('label,text,extra\n card ,"\nmy card\nwas stolen  ",x\nfee,,y\n', encoding="utf-8")
    assert read_csv(path) == (["my card\nwas stolen"], ["card"])


def test_metric_definitions():
    truth = ["a", "a", "b", "oos", "oos", "b"]
    predicted = ["a", "oos", "b", "oos", "a", "b"]
    m = metrics(truth, predicted, "oos")
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["in_scope_accuracy"] == pytest.approx(3 / 4)  # "a" predicted oos is wrong
    assert m["oos_recall"] == pytest.approx(1 / 2) and m["oos_precision"] == pytest.approx(1 / 2)
    f1 = {"a": 2 * 0.5 * 0.5 / 1.0, "b": 1.0, "oos": 0.5}
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert metrics(["a", "b"], ["a", "a"], None)["oos_recall"] is None
    assert metrics(["a", "oos"], ["a", "a"], "oos")["oos_precision"] is None  # nothing predicted oos


def test_expected_calibration_error():
    confidence = np.array([0.9, 0.9, 0.9, 0.9, 0.2, 0.2])
    right = np.array([True, True, True, False, False, False])
    # bins: 4 rows at 0.9 with accuracy 0.75, 2 rows at 0.2 with accuracy 0
    assert expected_calibration_error(confidence, right) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.2)
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([True, False])) == 0.0


def test_the_cutoff_maximises_accuracy_on_the_selection_rows():
    texts, labels = zip(*rows(12, oos=True))
    model = IntentModel.fit(texts, [OUT_OF_SCOPE_LABEL if y == "oos" else y for y in labels], holdout=0)
    select = ["parcel please colis", "stolen card please lost card", "something unrelated entirely"]
    cut = choose_cutoff(model, select, ["order_status", "lost_card", "oos"], "oos")
    model.set_thresholds(cut)
    assert [p.intent for p in model.predict_batch(select)] == ["order_status", "lost_card", None]
