"""Progress of long-running commands: lines on standard error, rate-limited, standard output left to the result."""

import io
import json
import subprocess
import sys
import time
from pathlib import Path

from relais.cli import main as relais
from relais.common import progress
from tests.unit.classifier.test_evaluate import rows, write

REPOSITORY = Path(__file__).resolve().parents[3]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stage_counts_at_most_once_every_few_seconds_and_says_when_it_is_done():
    clock, out = FakeClock(), io.StringIO()
    with progress.reporting("relais test", out, every=5.0, heartbeat=0, clock=clock):
        with progress.stage("predicting 1280 rows", 1280) as stage:
            for _ in range(1280):  # 1/64 s an item (exact in binary): 20 s in all
                clock.now += 1 / 64
                stage.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "relais test: predicting 1280 rows"
    assert lines[-1] == "relais test: predicting 1280 rows: done in 20.0 s"
    assert lines[1:-1] == [  # one every 5 s of 20 s, never one per item
        "relais test: predicting 1280 rows: 25 % (320/1280), about 15.0 s left",
        "relais test: predicting 1280 rows: 50 % (640/1280), about 10.0 s left",
        "relais test: predicting 1280 rows: 75 % (960/1280), about 5.0 s left",
        "relais test: predicting 1280 rows: 100 % (1280/1280)",
    ]


def test_track_counts_the_items_it_yields():
    clock, out = FakeClock(), io.StringIO()
    seen = []
    with progress.reporting("p", out, every=1.0, heartbeat=0, clock=clock):
        for item in progress.track(["a", "b", "c"], "three letters"):
            clock.now += 1.0
            seen.append(item)
    assert seen == ["a", "b", "c"]
    assert out.getvalue().splitlines() == [
        "p: three letters",
        "p: three letters: 33 % (1/3), about 2.0 s left",
        "p: three letters: 67 % (2/3), about 1.0 s left",
        "p: three letters: 100 % (3/3)",
        "p: three letters: done in 3.0 s",
    ]


def test_a_long_stage_without_counts_says_it_is_still_running():
    out = io.StringIO()
    with progress.reporting("p", out, heartbeat=0.05):
        with progress.stage("fine-tuning"):
            deadline = time.monotonic() + 10
            while "still running" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)  # polls for the line, proves no absence
    assert "p: fine-tuning: still running, " in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("p: fine-tuning: done in ")


def test_outside_a_command_stages_say_nothing(capsys):
    with progress.stage("library code", 10) as stage:
        stage.advance(10)
    progress.say("nobody listens")
    assert capsys.readouterr() == ("", "")


def test_intents_eval_json_keeps_stdout_to_one_object_and_reports_on_stderr(tmp_path, capsys):
    train, test = write(tmp_path / "train.csv", rows(12)), write(tmp_path / "test.csv", rows(4, offset=2))
    assert relais(["intents", "eval", "--train", train, "--test", test, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["family"] == "ngram" and out.count("\n") == 1
    lines = err.splitlines()
    assert lines and all(line.startswith("relais intents eval: ") for line in lines)
    assert "relais intents eval: training ngram on 30 rows, calibrated on 6" in lines
    assert "relais intents eval: training ngram again on all 36 rows" in lines
    assert "relais intents eval: predicting 12 test rows in batches of 1000" in lines
    assert any(
        line.startswith("relais intents eval: predicting 12 test rows one at a time: done in ") for line in lines
    )


def test_intents_train_prints_its_result_on_stdout_and_its_progress_on_stderr(tmp_path, capsys):
    assert relais(["intents", "train", "--out", str(tmp_path / "m.pkl")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["family"] == "ngram" and out.count("\n") == 1
    lines = err.splitlines()
    assert lines[0].startswith("relais intents train: training ngram on catalogue ")
    assert lines[-1].startswith(lines[0] + ": done in ")


def test_a_bench_script_keeps_stdout_for_its_json(tmp_path):
    done = subprocess.run(
        [sys.executable, "bench/redact_speed.py", "--rounds", "1"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout)["bench"] == "redact_speed"
    assert done.stderr.splitlines()[0] == "bench/redact_speed.py: timing redaction (1 rounds over 4 sets of messages)"
    assert done.stderr.splitlines()[-1].startswith("bench/redact_speed.py: timing redaction (1 rounds")
