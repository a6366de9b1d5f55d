"""CPU per turn of the bot's batch handler and of the lookup service it calls, printed as JSON; nothing asserted.

    python bench/bot_cost.py                                  # this tree
    python bench/bot_cost.py --before /tmp/relais-before      # and another tree (a `git worktree`), side by side

Turns like `relais bench pipeline`'s: its synthetic conversations (bench.pipeline.Traffic, drawn from
the catalogue's examples), classified by the real intent model, a conversation's next turn sent only once its
previous one was answered and not handed off, one trace per conversation sampled at the default 10 %. Each batch
goes through what the bot does with a poll on a real PostgreSQL: decode, `first_time`, `handle_batch` (its gRPC
lookups to a real lookup service, a subprocess), the outbox insert, the commit. The Kafka consumer and producer
are left out (shared plumbing, not the bot's).

Bot: time.process_time of the process that runs the handler (its gRPC threads included) per turn. Lookup: the
lookup process's CPU time (every thread's, from /proc) per turn. Each tree runs in a fresh process, alternately,
`--rounds` times; the medians are printed. With `--before`, the first round of each tree also keeps every output
(reply, outcome, hand-off: topic, key, headers, value) and every stored context, without the clock readings and
the run's tag, and `outputs_identical` says whether the two trees behaved the same.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import pickle
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import cast

HERE = Path(__file__).resolve().parent.parent
SENT_AT = 1_790_000_000  # the turns' times: fixed, so that two runs' outputs compare
TOKEN = "bench-bot-cost"
SAMPLED_SHARE = 0.1  # relais.common.telemetry.DEFAULT_SAMPLE_RATIO


def use_tree(root: Path) -> None:
    """`relais` imported from root/services (the installed package points at one tree only)."""
    if "relais" in sys.modules:
        raise RuntimeError("relais already imported")
    spec = importlib.util.spec_from_file_location(
        "relais", root / "services" / "__init__.py", submodule_search_locations=[str(root / "services")]
    )
    assert spec is not None and spec.loader is not None  # a file location always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["relais"] = module
    spec.loader.exec_module(module)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` so far (schedstat: nanoseconds, finer than /proc/<pid>/stat's ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            pass
    return total / 1e9


# ------------------------------------------------------------------------------------------- the turns


def prepare(conversations: int, seed: int) -> list[dict]:
    """Conversations of the pipeline bench's mix, each turn classified (in this tree, once for every run)."""
    from bench.pipeline import Traffic
    from relais.classifier import artifact
    from relais.classifier.catalogue import load_catalogue
    from relais.classifier.domain import classify_batch, to_classification_proto

    catalogue = load_catalogue()
    model = artifact.load_for(catalogue)
    traffic = Traffic(catalogue.training_examples(), {i.id for i in catalogue if i.bot_allowed}, "x", seed)
    rng = random.Random(seed)
    drawn = [traffic.new() for _ in range(conversations)]
    texts = [(text, c.hint) for c in drawn for text in c.texts]
    results = classify_batch(texts, model, catalogue)
    out, at = [], 0
    for c in drawn:
        turns = []
        for text in c.texts:
            result = results[at]
            at += 1
            turns.append(
                {
                    "text": text,
                    "language": result.language,
                    "classification": to_classification_proto(result, catalogue).SerializeToString(),
                }
            )
        out.append(
            {
                "customer": c.customer_id,
                "tier": c.tier,
                "kind": c.kind,
                "turns": turns,
                "sampled": rng.random() < SAMPLED_SHARE,
            }
        )
    return out


# ------------------------------------------------------------------------------------------- one run


def timeless(message):
    """`message` without the bot's own clock readings (an outcome's time, a hand-off's)."""
    if message.DESCRIPTOR.name == "Outcome":
        message.ClearField("at")
    elif message.DESCRIPTOR.name == "HandoffEvent":
        if message.HasField("handoff"):
            message.handoff.ClearField("handed_off_at")
    else:  # ConversationContext
        message.ClearField("handed_off_at")
    return message


def serve_lookup(root: Path) -> None:
    use_tree(root)
    from relais.lookup.service import main

    main()


async def run_child(args) -> dict:
    from aiokafka import ConsumerRecord
    from google.protobuf.json_format import MessageToDict

    from relais.bot.service import build
    from relais.common import config, telemetry, topics, worker
    from relais.common.db import connect
    from relais.common.pb import conversation_pb2 as pb
    from relais.common.unit_of_work import Item, UnitOfWork

    telemetry.setup("bot")
    conversations = pickle.loads(Path(args.turns_file).read_bytes())
    tag = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)

    lookup = subprocess.Popen(
        [sys.executable, __file__, "--serve-lookup", "--root", args.root],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pool = await connect(os.environ["DATABASE_URL"], max_size=2)
    try:
        # The bot's build reads neither settings nor a producer (the loop sends its outputs).
        service = await build(worker.Worker(cast(config.Settings, None), None, pool, asyncio.Event()))
        decode, handle_batch, close = service.decode, service.handle_batch, service.close
        assert decode is not None and handle_batch is not None and close is not None
        await wait_for_lookup()

        offset = n_turns = 0

        def record_of(conversation_id: str, c: dict, i: int, trace_id: int) -> ConsumerRecord:
            nonlocal offset, n_turns
            n_turns += 1
            spec = c["turns"][i]
            turn = pb.Turn(
                turn_id=f"urn:relais:bench#{conversation_id}-{i}",
                conversation_id=conversation_id,
                seq=i + 1,
                channel=pb.CHANNEL_CHAT,
                language=spec["language"],
                text=spec["text"],
            )
            turn.customer.id, turn.customer.tier, turn.customer.language = c["customer"], c["tier"], spec["language"]
            turn.sent_at.FromSeconds(SENT_AT + n_turns)
            turn.received_at.FromSeconds(SENT_AT + n_turns)
            turn.classification.ParseFromString(spec["classification"])
            flags = "01" if c["sampled"] else "00"
            traceparent = f"00-{trace_id:032x}-{rng.getrandbits(64) or 1:016x}-{flags}".encode()
            offset += 1
            value = turn.SerializeToString()
            return ConsumerRecord(
                topics.CLASSIFIED_TURNS,
                0,
                offset,
                0,
                0,
                conversation_id.encode(),
                value,
                None,
                0,
                len(value),
                [("traceparent", traceparent)],
            )

        # Every record built before the clock starts: a conversation's next turn is sent once the previous one was
        # answered, unless it was handed off.
        queue = []
        for n, c in enumerate(conversations):
            conversation_id, trace_id = f"bench-{tag}-{n}", rng.getrandbits(128) or 1
            queue.append(
                {
                    "id": conversation_id,
                    "next": 0,
                    "records": [record_of(conversation_id, c, i, trace_id) for i in range(len(c["turns"]))],
                }
            )

        async def one_batch(entries) -> list:
            items = [Item(r, decode(r)) for r in (e["records"][e["next"]] for e in entries)]
            async with pool.acquire() as conn, conn.transaction():
                unit = UnitOfWork("bot", conn)
                await handle_batch(items, unit)
                await unit.store()
            if dump is not None:
                dump.extend(normal(key, seq, r) for key, seq, r in sorted(unit.stored, key=lambda s: s[:2]))
            handed = {r.key for r in unit.outputs if r.topic == topics.HANDOFFS}
            again = []
            for e in entries:
                e["next"] += 1
                if e["next"] < len(e["records"]) and e["id"].encode() not in handed:
                    again.append(e)
            return again

        async def run(entries, batch: int) -> int:
            """Every turn of `entries`, `batch` at a time; a conversation's next turn goes back to the queue's end."""
            turns, waiting = 0, list(entries)
            while waiting:
                head, waiting = waiting[:batch], waiting[batch:]
                waiting += await one_batch(head)
                turns += len(head)
            return turns

        dump: list[str] | None = [] if args.dump else None

        def normal(event_key: str, seq: int, record) -> str:
            """An output without what differs from run to run (times, the run's tag, a sampled turn's new span)."""
            headers = [(k, v.decode()) for k, v in record.headers]
            headers = [
                (k, v[:36] + "-" + v[-2:] if k == "traceparent" and v.endswith("-01") else v) for k, v in headers
            ]
            if record.topic == topics.REPLIES:
                value = json.loads(record.value)
                value.pop("time")
            else:
                message = (pb.Outcome if record.topic == topics.OUTCOMES else pb.HandoffEvent).FromString(record.value)
                value = MessageToDict(timeless(message))
            return json.dumps(
                [event_key, seq, record.topic, record.key.decode(), headers, value], sort_keys=True, ensure_ascii=False
            ).replace(tag, "TAG")

        warm = max(20, len(queue) // 10)
        await run(queue[:warm], args.batch)
        counted = queue[warm:]
        lookup_before, cpu_before, wall = cpu_seconds(lookup.pid), time.process_time(), time.perf_counter()
        turns = await run(counted, args.batch)
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall
        lookup_cpu = cpu_seconds(lookup.pid) - lookup_before
        await close()
        if dump is not None:
            rows = await pool.fetch(
                "SELECT context FROM bot_conversations WHERE conversation_id LIKE $1 ORDER BY conversation_id",
                f"bench-{tag}-%",
            )
            dump += [
                json.dumps(
                    MessageToDict(timeless(pb.ConversationContext.FromString(r["context"]))),
                    sort_keys=True,
                    ensure_ascii=False,
                ).replace(tag, "TAG")
                for r in rows
            ]
            Path(args.dump).write_text("\n".join(dump) + "\n")
        return {
            "turns": turns,
            "bot_us_per_turn": round(cpu / turns * 1e6, 1),
            "lookup_us_per_turn": round(lookup_cpu / turns * 1e6, 1),
            "wall_s": round(wall, 2),
        }
    finally:
        lookup.terminate()
        try:
            lookup.wait(10)
        except subprocess.TimeoutExpired:
            lookup.kill()
        await pool.close()


async def wait_for_lookup(timeout: float = 30) -> None:
    import grpc

    from relais.common.config import grpc_addr
    from relais.common.pb import lookup_pb2
    from relais.common.pb.lookup_pb2_grpc import EnterpriseLookupStub

    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(grpc_addr("lookup")) as channel:
        stub = EnterpriseLookupStub(channel)
        while True:
            try:
                await stub.GetOpeningHours(
                    lookup_pb2.OpeningHoursRequest(), timeout=1, metadata=[("authorization", f"Bearer {TOKEN}")]
                )
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


# ------------------------------------------------------------------------------------------- the driver


def child_env(dsn: str, run_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=dsn,
        LOOKUP_GRPC_ADDR=f"127.0.0.1:{free_port()}",
        RELAIS_SERVICE_TOKEN=TOKEN,
        RELAIS_LOG_LEVEL="WARNING",
        RELAIS_RUN_DIR=str(run_dir),
        PYTHONHASHSEED="0",
    )
    return env


def one_run(root: Path, dsn: str, turns_file: Path, args, run_dir: Path, dump: Path | None = None) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--root",
        str(root),
        "--turns-file",
        str(turns_file),
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
    ] + (["--dump", str(dump)] if dump else [])
    done = subprocess.run(command, env=child_env(dsn, run_dir), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"run in {root} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another tree of the repository (e.g. a git worktree) to compare")
    parser.add_argument("--conversations", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32, help="turns per unit of work")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dsn", help="an existing database with the migrations applied (default: a throwaway server)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-lookup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(HERE), help=argparse.SUPPRESS)
    parser.add_argument("--turns-file", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.prepare:
        use_tree(Path(args.root))
        Path(args.turns_file).write_bytes(pickle.dumps(prepare(args.conversations, args.seed)))
        return 0

    if args.serve_lookup:
        serve_lookup(Path(args.root))
        return 0
    if args.child:
        use_tree(Path(args.root))
        from relais.common.runtime import event_loop

        result = {}

        async def child():
            result.update(await run_child(args))

        event_loop(child())
        print(json.dumps(result))
        return 0

    use_tree(HERE)
    from infra.postgres.migrate import migrate
    from infra.postgres.server import PostgresServer

    state = Path(tempfile.mkdtemp(prefix="relais-bot-cost-"))
    pg_state = None if args.dsn else Path(tempfile.mkdtemp(prefix="relais-bot-cost-pg-"))
    server = None
    try:
        if pg_state is None:
            dsn = args.dsn
        else:
            server = PostgresServer(pg_state)
            dsn = server.start()
        asyncio.run(migrate(dsn))
        turns_file = state / "turns.pickle"
        # Classified once, by the tree compared against when there is one (the same turns for both).
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--prepare",
                "--root",
                str(args.before or HERE),
                "--turns-file",
                str(turns_file),
                "--conversations",
                str(args.conversations),
                "--seed",
                str(args.seed),
            ],
            check=True,
            cwd=HERE,
        )
        (state / "run").mkdir()
        trees = {"before": args.before.resolve(), "after": HERE} if args.before else {"after": HERE}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            for name, root in trees.items():
                # The first round also keeps every output, to compare the trees' behaviour.
                dump = state / f"{name}.outputs" if round_ == 0 else None
                runs[name].append(one_run(root, dsn, turns_file, args, state / "run", dump))
        report = {"conversations": args.conversations, "batch": args.batch, "rounds": args.rounds}
        if args.before:
            before, after = ((state / f"{name}.outputs").read_text().splitlines() for name in ("before", "after"))
            differ = [(b, a) for b, a in zip(before, after) if b != a]
            report["outputs_compared"] = max(len(before), len(after))
            report["outputs_identical"] = len(before) == len(after) and not differ
            if differ:
                report["first_difference"] = {"before": differ[0][0], "after": differ[0][1]}
        for name, results in runs.items():
            report[name] = {
                "turns": results[0]["turns"],
                "bot_us_per_turn": statistics.median(r["bot_us_per_turn"] for r in results),
                "lookup_us_per_turn": statistics.median(r["lookup_us_per_turn"] for r in results),
                "bot_runs": [r["bot_us_per_turn"] for r in results],
                "lookup_runs": [r["lookup_us_per_turn"] for r in results],
            }
        print(json.dumps(report, indent=2))
    finally:
        if server is not None:
            server.stop()
        if pg_state is not None:
            shutil.rmtree(pg_state, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
