"""`relais bench pipeline --private` runs end to end on its own stack and prints the documented keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = (
    "turns_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "offered_per_s",
    "ceiling_msgs_per_s",
    "ratio_to_ceiling",
    "pg_statements_per_turn",
    "pg_commits_per_turn",
    "kafka_records_per_turn",
    "cpu_ms_per_turn",
    "cpu_ms_per_turn_stack",
    "cpu_ms_per_turn_total",
)


@pytest.mark.timeout(300)  # a private Kafka + PostgreSQL + six services: ~10 s on a quiet machine, more under load
def test_pipeline_bench_prints_the_keys():
    relais = Path(sys.executable).with_name("relais")
    command = (
        [str(relais)]
        if relais.exists()
        else [sys.executable, "-c", "import sys; from relais.cli import main; sys.exit(main())"]
    )
    run = subprocess.run(
        [
            *command,
            "bench",
            "pipeline",
            "--private",
            "--rate",
            "20",
            "--seconds",
            "4",
            "--warmup",
            "1",
            "--ceiling-records",
            "2000",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert key in result, key
    assert result["offered_per_s"] == 20
    assert result["turns_per_s"] > 0 and result["samples"] > 0
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert result["ceiling_msgs_per_s"] > 0 and 0 < result["ratio_to_ceiling"] < 1
    assert result["reply_types"].get("relais.reply.bot.v1") and result["reply_types"].get("relais.reply.handoff.v1")
    assert result["send_errors"] == 0
    # Counted on the private database and broker: every turn runs SQL, commits, and crosses at least the four
    # hops' topics (contact-events, turns, classified-turns, replies).
    assert result["pg_statements_per_turn"] > result["pg_commits_per_turn"] > 0
    assert result["kafka_records_per_turn"] > 3
    assert result["kafka_records_per_turn_by_topic"]["relais.turns.v1"] > 0.5
    assert any("INSERT INTO turns" in query for *_, query in result["pg_statements_top"])
    assert "bench" in result["cpu_ms_per_turn"] and "intake" in result["cpu_ms_per_turn"]
    assert result["cpu_ms_per_turn_total"] >= result["cpu_ms_per_turn_stack"]
