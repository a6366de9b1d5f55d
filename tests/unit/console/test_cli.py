"""Every `relais` subcommand and the stack's commands, on bad input and without a stack: one line on standard error,
no traceback, a non-zero exit (2 for usage errors and bad settings, 1 for a stack that is not there)."""

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from infra.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
CLOSED = f"127.0.0.1:{free_port()}"  # nothing listens there: no stack


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, module: str = "relais.cli"
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "KAFKA_")) and k != "DATABASE_URL"}
    base |= {
        "KAFKA_BOOTSTRAP_SERVERS": CLOSED,
        "DATABASE_URL": f"postgresql://relais:relais@{CLOSED}/relais",
        "ROUTING_GRPC_ADDR": CLOSED,
        "ANALYTICS_GRPC_ADDR": CLOSED,
        "LOOKUP_GRPC_ADDR": CLOSED,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line(done: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert done.returncode == code, (done.returncode, done.stderr)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


USAGE = [  # (arguments, extra environment, fragments of the one line)
    ([], {}, ["relais: error:", "command"]),
    (["nope"], {}, ["invalid choice: 'nope'"]),
    (["demo", "--wait", "-1"], {}, ["relais demo: error:", "--wait must be ≥ 0"]),
    (["demo", "--endpoints", "/no/such/endpoints.env"], {}, ["--endpoints /no/such/endpoints.env: no such file"]),
    (["chat"], {}, ["relais chat: error:", "--conversation"]),
    (["chat", "--conversation", "c1", "--wait", "-1"], {}, ["relais chat: error:", "--wait must be ≥ 0"]),
    (["chat", "--conversation", "c1", "--channel", "fax"], {}, ["invalid choice: 'fax'"]),
    (["topics", "--bogus"], {}, ["unrecognized arguments: --bogus"]),
    (
        ["topics"],
        {"KAFKA_BOOTSTRAP_SERVERS": "kafka:port"},
        ["KAFKA_BOOTSTRAP_SERVERS: expected host:port", "'kafka:port'"],
    ),
    (["desk"], {}, ["relais desk: error:", "--agent"]),
    (["desk", "--agent", "a1", "--capacity", "chat:x"], {}, ["chat:x"]),
    (["bench"], {}, ["relais bench: error:"]),
    (["bench", "routing", "--tasks", "-1"], {}, ["relais bench routing: error: --tasks must be ≥ 0"]),
    (["bench", "routing", "--agents", "many"], {}, ["invalid int value: 'many'"]),
    (["bench", "pipeline", "--rate", "0"], {}, ["relais bench pipeline: error: --rate must be > 0"]),
    (["staffing", "--calls-per-hour", "-5", "--aht-seconds", "300"], {}, ["--calls-per-hour"]),
    (["staffing", "--aht-seconds", "300"], {}, ["relais staffing: error:", "--calls-per-hour"]),
    (["redact", "--bogus"], {}, ["unrecognized arguments: --bogus"]),
    (["purge", "--days", "-1"], {}, ["--days must be 0 or more"]),
    (["purge", "--days", "abc"], {}, ["invalid float value: 'abc'"]),
    (
        ["purge"],
        {"RELAIS_RETENTION_DAYS": "ninety"},
        ["RELAIS_RETENTION_DAYS: expected a number of days, got 'ninety'"],
    ),
    (["purge"], {"DATABASE_URL": "mysql://db/relais"}, ["DATABASE_URL: expected postgresql://"]),
    (["report", "--to", "yesterday"], {}, ["relais report: error: --to: expected an RFC 3339 time", "'yesterday'"]),
    (["report", "--days", "0"], {}, ["--days must be > 0"]),
    (["report", "--window", "week"], {}, ["invalid choice: 'week'"]),
    (["report", "--out", "/no/such/dir/report.html"], {}, ["--out /no/such/dir/report.html: no such directory"]),
    (["report"], {"ANALYTICS_GRPC_ADDR": "analytics"}, ["ANALYTICS_GRPC_ADDR: expected host:port"]),
    (["intents"], {}, ["relais intents: error:"]),
    (
        ["intents", "train", "--catalogue", "/no/such/catalogue.yaml"],
        {},
        ["--catalogue /no/such/catalogue.yaml: no such file"],
    ),
    (["intents", "eval", "--train", "/no/such/train.csv", "--test", "/no/such/test.csv"], {}, ["/no/such/train.csv"]),
    (
        ["reset", "--state-dir", "/no/such/state"],
        {},
        ["relais reset: error: --state-dir /no/such/state: no such directory"],
    ),
]


@pytest.mark.parametrize("args, env, fragments", USAGE, ids=[" ".join(case[0]) or "(none)" for case in USAGE])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, env, fragments):
    assert_one_line(run(*args, cwd=tmp_path, env=env), 2, *fragments)


NO_STACK = [
    (["demo"], ["relais demo: cannot reach Kafka at " + CLOSED, "make up"]),
    (["demo", "--no-advisor"], ["relais demo: cannot reach Kafka at " + CLOSED]),
    (["topics"], ["relais topics: cannot reach Kafka at " + CLOSED]),
    (["chat", "--conversation", "c1"], ["relais chat: cannot reach Kafka at " + CLOSED]),
    (["desk", "--agent", "a1"], ["UNAVAILABLE", "make up"]),
    (["bench", "pipeline", "--seconds", "1"], ["relais bench pipeline: cannot reach Kafka at " + CLOSED]),
    (["purge"], ["relais purge: cannot reach the database at " + CLOSED]),
    (["purge", "--dry-run"], ["relais purge: cannot reach the database"]),
    (["redact", "--rescan", "--dry-run"], ["relais redact: cannot reach the database at " + CLOSED]),
    (["report"], ["relais report: error: the Analytics API at " + CLOSED, "UNAVAILABLE", "make up"]),
]


@pytest.mark.parametrize("args, fragments", NO_STACK, ids=[" ".join(case[0]) for case in NO_STACK])
def test_without_a_stack_one_line_and_exit_1(tmp_path, args, fragments):
    assert_one_line(run(*args, cwd=tmp_path), 1, *fragments)


def test_version_is_the_package_version(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"relais {metadata.version('relais')}"


def test_the_commands_that_need_no_stack_still_work(tmp_path):
    done = run("staffing", "--calls-per-hour", "120", "--aht-seconds", "300", "--json", cwd=tmp_path)
    assert done.returncode == 0 and '"agents"' in done.stdout, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "relais.cli", "redact"],
        input="write to jo@example.com\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "write to [EMAIL]", done.stderr


def test_reset_of_an_empty_state_directory_says_there_was_nothing(tmp_path):
    done = run("reset", "--state-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0 and "nothing to empty" in done.stdout, done.stderr


# --- the stack's commands (the Makefile's up, down, status, reset) ---


def test_stack_up_with_a_bad_setting_starts_nothing_and_names_it(tmp_path):
    done = run(
        "--state-dir",
        str(tmp_path / "state"),
        "up",
        cwd=ROOT,
        module="infra.stack",
        env={"RELAIS_RETENTION_DAYS": "abc"},
    )
    assert_one_line(done, 2, "RELAIS_RETENTION_DAYS: expected a number of days, got 'abc'")
    assert not (tmp_path / "state" / "kafka").exists() and not (tmp_path / "state" / "postgres").exists()


def test_stack_status_down_and_reset_without_a_stack(tmp_path):
    state = str(tmp_path / "state")
    status = run("--state-dir", state, "status", cwd=ROOT, module="infra.stack")
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()} == dict.fromkeys(
        ("kafka", "postgres", "lookup", "intake", "classifier", "bot", "routing", "analytics"), "stopped"
    )
    down = run("--state-dir", state, "down", cwd=ROOT, module="infra.stack")
    assert down.returncode == 0 and down.stdout.strip() == "relais stopped" and "Traceback" not in down.stderr
    reset = run("--state-dir", state, "reset", cwd=ROOT, module="infra.stack")
    assert reset.returncode == 0 and "nothing to empty" in reset.stdout


def test_stack_unknown_command_is_one_line(tmp_path):
    done = run("--state-dir", str(tmp_path), "upp", cwd=ROOT, module="infra.stack")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "invalid choice: 'upp'" in done.stderr
