"""A service that cannot finish (its broker or database gone) still stops after SIGTERM, within RELAIS_STOP_SECONDS."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STUCK = """
import asyncio
from relais.common import runtime
from relais.common.config import Settings

async def main(settings, stop):
    print("serving", flush=True)
    await stop.wait()
    await asyncio.Event().wait()  # a flush or commit to a broker that is gone: never returns

runtime.serve("bot", main)
"""
POLITE = STUCK.replace(
    "    await asyncio.Event().wait()  # a flush or commit to a broker that is gone: never returns\n", ""
)


def run_and_stop(script: str, tmp_path: Path) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "KAFKA_", "OTEL_"))}
    env |= {
        "RELAIS_STOP_SECONDS": "1",
        "OTEL_SDK_DISABLED": "true",
        "PYTHONPATH": str(ROOT),
        "RELAIS_PID_FILE": str(tmp_path / "bot.pid"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None  # stdout=PIPE
    assert process.stdout.readline().strip() == "serving"
    assert (tmp_path / "bot.pid").read_text() == str(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err, time.monotonic() - started


def test_a_service_stuck_while_stopping_exits_after_its_grace_and_says_so(tmp_path):
    code, err, took = run_and_stop(STUCK, tmp_path)
    assert code == 1 and "did not stop within 1 s (RELAIS_STOP_SECONDS" in err, err
    assert took < 10 and not (tmp_path / "bot.pid").exists()


def test_a_service_that_finishes_stops_cleanly(tmp_path):
    code, err, _ = run_and_stop(POLITE, tmp_path)
    assert code == 0 and "stopped cleanly" in err, err
