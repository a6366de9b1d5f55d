"""Operations without surprises, on a private stack run as `make up` runs it (`python -m infra.stack --state-dir`):
a service process started by hand is seen by status and stopped by down, what an earlier run left is reported at
start, a failed up stops what it started with one line, reset empties the topics and the database but keeps the
models. One scenario, as the stack's starts dominate its time (about a minute)."""

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.kafka.broker import LIBS_DIR
from infra.ports import free_port, port_in_use
from infra.stack import Stack
from relais.common import bus, topics
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc
from relais.demo import send_message

ROOT = Path(__file__).resolve().parents[2]


def stack_command(state: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "infra.stack", "--state-dir", str(state), *args],
        cwd=ROOT,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status(state: Path) -> dict[str, str]:
    done = stack_command(state, "status")
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line.split(None, 1)[1] for line in done.stdout.splitlines()}


def endpoints(state: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (state / "endpoints.env").read_text().splitlines() if "=" in line)


def private_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    (state / "models").mkdir(parents=True)
    tmp_path.chmod(0o755)  # PostgreSQL's user keeps its data in the state directory, as under .relais/
    return state


async def leave_state(env: dict[str, str], conversation_id: str) -> None:
    """An agent signed in (German only) and a French customer asking for a person: a task nobody can take waits."""
    async with grpc.aio.insecure_channel(env["ROUTING_GRPC_ADDR"]) as channel:
        await desk_grpc.AgentDeskStub(channel).SignIn(
            desk.SignInRequest(agent_id=f"agent-{conversation_id}", languages=["de"], skills=["general"]),
            metadata=[("authorization", f"Bearer {env['RELAIS_SERVICE_TOKEN']}")],
        )
    producer = bus.make_producer(env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await send_message(producer, conversation_id, {"id": "cust-ops"}, "Bonjour, je veux parler à un conseiller")
    finally:
        await producer.stop()
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        async with asyncio.timeout(60):
            while not await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE conversation_id = $1 AND status = 'queued'", conversation_id
            ):
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topics.CONTACT_EVENTS, p) for p in range(6)]
        assert sum((await consumer.end_offsets(partitions)).values()) >= 1  # what reset is to empty
    finally:
        await consumer.stop()


async def emptied(state: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Starts the reset stack's broker and database only: the rows left in its tables, the records in its topics."""
    stack = Stack.for_state_dir(state)
    await asyncio.to_thread(stack.start_infra)
    try:
        conn = await asyncpg.connect(stack.dsn)
        try:
            rows = {
                table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("tasks", "agents", "conversations", "turns", "outbox", "kpi_outcomes")
            }
        finally:
            await conn.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
        await consumer.start()
        try:  # the topics are created again at start, empty
            partitions = [TopicPartition(spec.name, p) for spec in topics.ALL for p in range(spec.partitions)]
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        records = {spec.name: sum(ends[tp] for tp in partitions if tp.topic == spec.name) for spec in topics.ALL}
        return rows, records
    finally:
        await asyncio.to_thread(stack.stop)


async def test_a_hand_started_process_is_seen_and_stopped_up_reports_what_is_left_and_stops_what_it_started_on_failure_reset_empties(
    tmp_path,
):
    state = private_state(tmp_path)
    (state / "models" / "kept.bin").write_bytes(b"weights")

    first = stack_command(state, "up")
    assert first.returncode == 0, first.stderr
    assert "found the state of an earlier run" not in first.stdout
    env = endpoints(state)

    # A second bot started by hand as docs/operations.md ("A second process") says: status sees it, down stops it.
    port = free_port()
    bot_env = (
        {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
        | env
        | {"BOT_GRPC_ADDR": f"127.0.0.1:{port}"}
    )
    log = open(tmp_path / "bot-by-hand.log", "wb")
    by_hand = subprocess.Popen(
        [sys.executable, "-m", "relais.bot"], env=bot_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        pid_file = state / "run" / f"bot-{port}.pid"
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text() == str(by_hand.pid)):
            assert by_hand.poll() is None and time.monotonic() < deadline, (tmp_path / "bot-by-hand.log").read_text()
            time.sleep(0.1)
        assert status(state)[f"bot-{port}"] == f"running (pid {by_hand.pid})"

        conversation_id = f"ops-{uuid.uuid4().hex[:8]}"
        await leave_state(env, conversation_id)

        refused = subprocess.run(
            [sys.executable, "-m", "relais.cli", "reset", "--state-dir", str(state)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "the stack is running" in refused.stderr
        assert f"bot-{port}" in refused.stderr and "make down" in refused.stderr

        down = stack_command(state, "down")
        assert down.returncode == 0, down.stderr
        assert by_hand.wait(timeout=10) == 0  # SIGTERM: it finished cleanly
        assert not pid_file.exists()
        assert set(status(state).values()) == {"stopped"}
        assert not port_in_use(int(env["ROUTING_GRPC_ADDR"].rsplit(":", 1)[1])) and not port_in_use(port)
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
        log.close()

    # Started again on the same state, with a routing rules file that does not load: it says what it found, read
    # from the database it is about to use, then routing refuses to start and up stops everything it had started.
    broken_rules = tmp_path / "rules.yaml"
    broken_rules.write_text("rules: [{when: {intent: no_such_intent}, require: {skill: billing}}]\n")
    second = stack_command(state, "up", env={"RELAIS_ROUTING_RULES": str(broken_rules)})
    found = [line for line in second.stdout.splitlines() if line.startswith("found the state of an earlier run")]
    assert len(found) == 1, second.stdout
    assert re.search(r"\b1 task waiting \(queued or offered\)", found[0]) and re.search(
        r"\b1 agent signed in", found[0]
    )
    assert "make reset" in second.stdout and "starting services" in second.stdout
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("make up failed: routing exited with 2") and "stopped what it had started" in last, last
    assert "no_such_intent" in second.stderr  # routing's one line, above
    assert set(status(state).values()) == {"stopped"}
    assert not [name for name, port in Stack.for_state_dir(state).ports.items() if port_in_use(port)]

    reset = subprocess.run(
        [sys.executable, "-m", "relais.cli", "reset", "--state-dir", str(state)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0 and reset.stdout.startswith("emptied "), reset.stderr
    assert (state / "models" / "kept.bin").read_bytes() == b"weights" and (state / "models" / "intents.pkl").exists()
    assert (LIBS_DIR / ".complete").exists()  # the downloaded broker
    rows, records = await emptied(state)
    assert rows == dict.fromkeys(rows, 0) and records == dict.fromkeys(records, 0)
