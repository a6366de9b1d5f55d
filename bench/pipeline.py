"""`relais bench pipeline --json`: end-to-end turns per second and latency, intake -> classifier -> bot/routing.

Synthetic conversations (French and English, catalogue intents, some angry, some asking for an advisor, one
to three turns each) are published as CloudEvents on relais.contact-events.v1 at an offered rate; the latency
of a turn runs from just before its produce call to the moment this process reads the bot's reply or the
hand-off notice (`in_reply_to` = the turn id) on relais.replies.v1. A conversation's next turn is sent only
once its previous one was answered by the bot (never after a hand-off), so every turn expects one reply;
hand-offs are also timed to routing's "queued" reply (`handoff_queued_*`).

  --rate N      offer N turns/s for --seconds S (the first --warmup seconds are not counted)
  (no --rate)   find the saturation rate: ramp the offered rate by x1.5 from --start-rate while the achieved
                rate tracks it (>= 92 %) and the backlog does not grow, refine between the last rate that held
                and the first that did not, then hold the highest rate that held for --seconds

In the same run, the machine's ceiling: one aiokafka producer process and one consumer process moving records
of the pipeline's sizes through one topic hop, no processing (`ceiling_msgs_per_s`). A turn crosses four such
hops (contact-events, turns, classified-turns, replies) and writes several more records (outcome, hand-off,
queue reply) and PostgreSQL transactions; `ratio_to_ceiling` is turns_per_s / ceiling_msgs_per_s.

By default it runs against the stack `make up` started (.relais/endpoints.env); `--private` starts its own
broker, database and services on free ports and stops them afterwards. Measuring only: nothing here changes
how the services run.
"""

import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relais.common import bus, cloudevents, progress, topics
from relais.common.runtime import event_loop  # uvloop, as the services: the load generator costs little

SOURCE = "urn:relais:bench"
HOPS_PER_TURN = 4  # contact-events -> intake -> turns -> classifier -> classified-turns -> bot -> replies -> reader
SERVICE_GROUPS = ("intake", "classifier", "bot", "routing", "analytics")
TRACK_SHARE = 0.92  # a rate "holds" when the achieved rate is at least this share of the offered one ...
BACKLOG_GROWTH_S = 0.25  # ... and the backlog grew by less than this many seconds of offered traffic
STATS_TAG = "/* relais-bench */"  # on the bench's own SQL, so that pg_statements_per_turn leaves it out
PREPARED_CONVERSATIONS_MAX = 50000  # conversations built and serialised before a step (item 8: a cheap generator)

ANGRY = {
    "fr": [
        "C'est inadmissible, toujours pas de remboursement !!!",
        "VOUS ÊTES DES INCAPABLES, ça fait 3 semaines !!!",
        "J'en ai marre, c'est la troisième fois que j'appelle, c'est une honte",
        "Service nul, je vais porter plainte !!",
    ],
    "en": [
        "This is ridiculous, worst service ever!!!",
        "I AM FURIOUS, third time I write and nobody answers!!!",
        "You people are useless, I want my money back now",
        "Absolutely disgusting service, I'm done with you!!",
    ],
}
ADVISOR = {
    "fr": [
        "Je veux parler à un conseiller",
        "un conseiler svp",
        "Passez-moi un humain",
        "je voudrais parler à quelqu'un",
    ],
    "en": [
        "Can I talk to a real person?",
        "agent please",
        "I want to speak to a human",
        "put me through to an advisor",
    ],
}


# --------------------------------------------------------------------------------------------- pure parts


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; nan when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(latencies_ms: Sequence[float], prefix: str = "") -> dict:
    values = sorted(latencies_ms)
    out = {
        f"{prefix}{name}_ms": (round(percentile(values, q), 2) if values else None)
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
    }
    out[f"{prefix}mean_ms"] = round(statistics.fmean(values), 2) if values else None
    out[f"{prefix}max_ms"] = round(values[-1], 2) if values else None
    return out


@dataclass
class Step:
    """One fixed offered rate held for a while, and what came of it."""

    offered_per_s: float
    achieved_per_s: float = 0.0  # replies read per second during the counted window
    sent: int = 0
    answered: int = 0  # of the turns sent, answered by the end of the drain
    unanswered: int = 0
    backlog_start: int = 0  # turns sent and not yet answered, at the start / end of the counted window
    backlog_end: int = 0
    seconds: float = 0.0
    latency: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return holds(self.offered_per_s, self.achieved_per_s, self.backlog_start, self.backlog_end, self.unanswered)


def holds(offered: float, achieved: float, backlog_start: int, backlog_end: int, unanswered: int = 0) -> bool:
    """The pipeline keeps up with `offered`: achieved tracks it and the backlog does not build up."""
    grown = backlog_end - backlog_start
    return achieved >= TRACK_SHARE * offered and grown <= max(20, BACKLOG_GROWTH_S * offered) and unanswered == 0


async def find_saturation(
    run: Callable[[float], Awaitable[Step]],
    start: float = 100,
    factor: float = 1.5,
    max_rate: float = 20000,
    refinements: int = 2,
    min_rate: float = 5,
) -> tuple[Step | None, list[Step]]:
    """The highest offered rate that holds: ramp by `factor` until one does not, then bisect (geometrically)."""
    steps: list[Step] = []
    best: Step | None = None
    failed: Step | None = None
    rate = start
    while min_rate <= rate <= max_rate:
        step = await run(rate)
        steps.append(step)
        if step.holds:
            best = step
            if failed is not None:
                break  # we came down from a failing start
            rate *= factor
        else:
            failed = step
            if best is not None:
                break
            # Even the start rate is too much: come down to just under what it achieved (its capacity), or halve.
            below = 0.9 * step.achieved_per_s
            rate = below if min_rate <= below < rate / 1.2 else rate / 2
    if best is not None and failed is not None and failed.offered_per_s > best.offered_per_s:
        low, high = best.offered_per_s, failed.offered_per_s
        for _ in range(refinements):
            mid = math.sqrt(low * high)
            if high / low < 1.08:
                break
            step = await run(mid)
            steps.append(step)
            if step.holds:
                best, low = step, mid
            else:
                high = mid
    return best, steps


@dataclass
class Counters:
    """Cumulative counters read at the start and at the end of the counted window."""

    pg_statements: int | None = None  # sum of pg_stat_statements.calls (None: the extension is not loaded)
    pg_commits: int | None = None  # pg_stat_database.xact_commit of the database
    kafka_end_offsets: dict[str, int] = field(default_factory=dict)  # topic -> sum of its partitions' end offsets


def per_turn(before: Counters, after: Counters, turns: int) -> dict:
    """What the window cost per turn answered in it: statements, commits, records appended to relais topics."""

    def ratio(count: float | None) -> float | None:
        return round(count / turns, 2) if count is not None and turns > 0 else None

    def delta(a: int | None, b: int | None) -> int | None:
        return b - a if a is not None and b is not None else None

    by_topic = {topic: end - before.kafka_end_offsets.get(topic, 0) for topic, end in after.kafka_end_offsets.items()}
    by_topic = {topic: n for topic, n in sorted(by_topic.items()) if n > 0}
    return {
        "pg_statements_per_turn": ratio(delta(before.pg_statements, after.pg_statements)),
        "pg_commits_per_turn": ratio(delta(before.pg_commits, after.pg_commits)),
        "kafka_records_per_turn": ratio(sum(by_topic.values())) if after.kafka_end_offsets else None,
        "kafka_records_per_turn_by_topic": {topic: ratio(n) for topic, n in by_topic.items()},
    }


def cpu_ms_per_turn(
    cpu: dict[str, float], idle: dict[str, float], turns_per_s: float, apart: Sequence[str] = ("bench",)
) -> dict:
    """CPU ms per turn above idle, per process; the stack (without the load generator) and the total (with it)."""
    if not turns_per_s:
        return {"cpu_ms_per_turn": None, "cpu_ms_per_turn_stack": None, "cpu_ms_per_turn_total": None}
    each = {name: round(max(0.0, pct - idle.get(name, 0)) * 10 / turns_per_s, 2) for name, pct in cpu.items()}
    stack = sum(ms for name, ms in each.items() if name not in apart)
    return {
        "cpu_ms_per_turn": each,
        "cpu_ms_per_turn_stack": round(stack, 2),
        "cpu_ms_per_turn_total": round(sum(each.values()), 2),
    }


_REPLY_TYPE = re.compile(rb'"type"\s*:\s*"([^"\\]*)"')
_IN_REPLY_TO = re.compile(rb'"in_reply_to"\s*:\s*"([^"\\]*)"')


def reply_fields(value: bytes) -> tuple[str, str | None]:
    """(event type, data.in_reply_to) of a structured reply without decoding all of it. The event's own `type`
    comes before `data` (whose survey invitation has a `type` too); anything unusual is decoded in full."""
    kind, turn = _REPLY_TYPE.search(value), _IN_REPLY_TO.search(value)
    if (
        kind is None
        or (turn is not None and turn.start() < kind.start())
        or (turn is None and b'"in_reply_to"' in value)
    ):
        event = json.loads(value)
        return event.get("type", ""), (event.get("data") or {}).get("in_reply_to")
    return kind.group(1).decode(), (turn.group(1).decode() if turn else None)


@dataclass
class Conversation:
    conversation_id: str
    customer_id: str
    language: str  # what the texts are written in
    hint: str | None  # what the sender declares (None: intake detects)
    tier: str
    kind: str  # bot | person_intent | advisor | angry
    texts: list[str]
    next_turn: int = 0
    events: list[tuple[str, bytes]] = field(default_factory=list)  # (event id, serialised event) per turn, built ahead


class Traffic:
    """Synthetic conversations drawn from the catalogue's examples, reproducible from the seed."""

    def __init__(self, examples: Sequence[tuple[str, str, str]], bot_intents: set[str], run_id: str, seed: int = 0):
        self.rng = random.Random(seed)
        self.run_id = run_id
        self.count = 0
        self.bot: dict[str, list[str]] = {"fr": [], "en": []}
        self.person: dict[str, list[str]] = {"fr": [], "en": []}
        for text, intent, language in examples:
            if language in self.bot:
                (self.bot if intent in bot_intents else self.person)[language].append(text)

    def new(self) -> Conversation:
        rng = self.rng
        self.count += 1
        language = rng.choice(("fr", "en"))
        roll = rng.random()
        bot_texts = [rng.choice(self.bot[language]) for _ in range(rng.randint(1, 3))]
        if roll < 0.60:
            kind, texts = "bot", bot_texts
        elif roll < 0.75:
            kind, texts = "person_intent", [rng.choice(self.person[language])]
        elif roll < 0.88:
            kind, texts = "advisor", bot_texts[: rng.randint(0, 1)] + [rng.choice(ADVISOR[language])]
        else:
            kind, texts = "angry", bot_texts[: rng.randint(0, 1)] + [rng.choice(ANGRY[language])]
        n = self.count
        return Conversation(
            conversation_id=f"bench-{self.run_id}-{n}",
            customer_id=f"bench-{language}-{n % 997}",
            language=language,
            hint=language if rng.random() < 0.5 else None,
            tier=rng.choice(("standard", "standard", "standard", "gold", "vip")),
            kind=kind,
            texts=texts,
        )


# --------------------------------------------------------------------------------------------- probes


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime ticks) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def cpu_ticks(roots: dict[str, int], alone: Sequence[str] = ("bench",)) -> dict[str, int]:
    """CPU ticks used so far by each named process and all its descendants (only itself for the names in
    `alone`: the bench process is the parent of a private stack's services)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        total, todo = 0, [root]
        while todo:
            pid = todo.pop()
            if pid in table:
                total += table[pid][1]
                if name not in alone:
                    todo.extend(children.get(pid, ()))
        out[name] = total
    return out


def cpu_percent(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    return {name: round(100 * (after.get(name, 0) - before[name]) / hz / seconds, 1) for name in before}


def running_stack_pids(state_dir: Path) -> dict[str, int]:
    pids = {}
    for path in sorted((state_dir / "run").glob("*.pid")):
        try:
            pids[path.stem] = int(path.read_text().strip())
        except ValueError:
            pass
    for path in state_dir.glob("postgres/**/postmaster.pid"):
        try:
            pids["postgres"] = int(path.read_text().splitlines()[0])
        except (ValueError, IndexError):
            pass
    return pids


async def pg_counters(conn) -> dict:
    if conn is None:
        return {}
    out = {}
    try:
        out["xact_commit"] = await conn.fetchval(
            f"{STATS_TAG} SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        out["wal_sync"] = await conn.fetchval(f"{STATS_TAG} SELECT wal_sync FROM pg_stat_wal")
    except Exception:  # older PostgreSQL without pg_stat_wal.wal_sync: commits only
        pass
    try:
        settings = await conn.fetch(
            f"{STATS_TAG} SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"
        )
        out["settings"] = {r["name"]: r["setting"] for r in settings}
    except Exception:
        pass
    return out


_STATEMENTS = (
    f"{STATS_TAG} SELECT {{}} FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND query NOT LIKE '%relais-bench%'"
)


async def pg_statement_calls(conn) -> int | None:
    """Statements run so far in the database by everyone but the bench (pg_stat_statements, BEGIN and COMMIT
    included); None when the extension is not loaded (a stack started without it)."""
    if conn is None:
        return None
    try:
        return int(await conn.fetchval(_STATEMENTS.format("coalesce(sum(calls), 0)")))
    except Exception:
        return None


async def pg_top_statements(conn, turns: int, n: int = 30) -> list:
    """[calls per turn, µs of execution per turn, rows per turn, query] of the statements that took the database
    the most time since the last reset."""
    if conn is None or turns <= 0:
        return []
    try:
        rows = await conn.fetch(
            _STATEMENTS.format("calls, total_exec_time, rows, query") + f" ORDER BY total_exec_time DESC LIMIT {int(n)}"
        )
    except Exception:
        return []
    return [
        [
            round(r["calls"] / turns, 3),
            round(r["total_exec_time"] * 1000 / turns, 1),
            round(r["rows"] / turns, 2),
            " ".join(r["query"].split())[:120],
        ]
        for r in rows
    ]


async def kafka_end_offsets(reader) -> dict[str, int]:
    """topic -> sum of its partitions' end offsets, over the relais topics (not the ceiling's scratch topics)."""
    from aiokafka import TopicPartition

    names = [t for t in await reader.topics() if t.startswith("relais.") and not t.startswith("relais.bench-")]
    tps = [TopicPartition(t, p) for t in names for p in (reader.partitions_for_topic(t) or ())]
    ends = await reader.end_offsets(tps) if tps else {}
    out: dict[str, int] = {}
    for tp, end in ends.items():
        out[tp.topic] = out.get(tp.topic, 0) + end
    return out


async def consumer_lag(admin, reader, groups: Sequence[str]) -> dict[str, int]:
    """Records not yet committed by each service's consumer group, per group:topic."""
    from aiokafka import TopicPartition

    lag: dict[str, int] = {}
    for group in groups:
        try:
            committed = await admin.list_consumer_group_offsets(f"relais-{group}")
        except Exception:
            continue
        tps = [tp for tp in committed if tp.topic != "__consumer_offsets"]
        if not tps:
            continue
        ends = await reader.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        for tp in tps:
            key = f"{group}:{tp.topic}"
            lag[key] = lag.get(key, 0) + max(0, ends[tp] - max(committed[tp].offset, 0))
    return lag


def classifier_cost(model_path: Path | None, n: int = 600) -> dict:
    """Per message cost of the service's classification (single, as the service calls it) and of batched prediction."""
    from relais.classifier import artifact, domain
    from relais.classifier.catalogue import load_catalogue

    catalogue = load_catalogue()
    try:
        model = artifact.load_for(catalogue, model_path) if model_path else artifact.load_for(catalogue)
    except artifact.ArtifactError:
        with tempfile.TemporaryDirectory(prefix="relais-bench-model-") as scratch:
            model = artifact.train(catalogue, Path(scratch) / "intents.pkl")[0]
    examples = catalogue.training_examples()
    rng = random.Random(1)
    drawn = [rng.choice(examples) for _ in range(n)]
    texts = [text for text, _, _ in drawn]
    for text, _, language in drawn[:100]:  # warm-up: the language detector, the sentiment lexicons, caches
        domain.classify(text, None, model, catalogue)
        domain.classify(text, language, model, catalogue)
    start = time.perf_counter()
    for text, _, language in drawn:  # as the service: intake already set the turn's language
        domain.classify(text, language, model, catalogue)
    classify_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for text in texts:
        domain.classify(text, None, model, catalogue)
    detect_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for text in texts:
        model.predict(text)
    single_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    model.predict_batch(texts)
    batch_us = (time.perf_counter() - start) / n * 1e6
    return {
        "classify_single_us": round(classify_us, 1),
        "classify_detecting_language_us": round(detect_us, 1),
        "predict_single_us": round(single_us, 1),
        "predict_batch_us": round(batch_us, 1),
        "note": "classify = language + intent + sentiment, one message at a time with the language known, as the"
        " service calls it; predict = the intent model alone, one at a time or in one batch",
    }


async def serial_probes(dsn: str | None, n: int = 100) -> dict:
    """What one durable PostgreSQL commit costs a service that commits one record at a time, as the outbox does:
    a one-row insert into processed_events in its own transaction (WAL written, so the commit waits for its
    flush), under a consumer name of the bench's, deleted afterwards. The broker's side, one produce
    acknowledged at a time, is timed by measure_ceiling on its scratch topic (kafka_ack_*)."""
    out: dict[str, float | str] = {}
    if dsn:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        consumer = f"bench-probe-{uuid.uuid4().hex[:8]}"
        try:
            times = []
            for i in range(n):
                start = time.perf_counter()
                await conn.execute(
                    "INSERT INTO processed_events (consumer, event_key) VALUES ($1, $2)", consumer, str(i)
                )
                times.append((time.perf_counter() - start) * 1000)
            out |= summarise(times, "pg_commit_")
        except Exception as error:  # another schema: the probe is a diagnostic
            out["pg_commit_error"] = repr(error)
        finally:
            try:
                await conn.execute("DELETE FROM processed_events WHERE consumer = $1", consumer)
            finally:
                await conn.close()
    return {k: v for k, v in out.items() if not k.endswith(("mean_ms", "max_ms"))}


# --------------------------------------------------------------------------------------------- ceiling


def _ceiling_consumer(bootstrap: str, topic: str, n: int, pipe) -> None:
    """Child process: reads n records from every partition of `topic`, reports wall-clock first/last."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=500,
        )
        await consumer.start()
        try:
            partitions = None
            for _ in range(50):
                partitions = consumer.partitions_for_topic(topic)
                if partitions:
                    break
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
            if not partitions:
                raise RuntimeError(f"{topic}: no partitions known after 5 s")
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            pipe.send("ready")
            seen, first = 0, None
            deadline = time.monotonic() + 120
            while seen < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                got = sum(len(r) for r in batches.values())
                if got and first is None:
                    first = time.time()
                seen += got
            pipe.send((seen, first, time.time()))
        finally:
            await consumer.stop()

    asyncio.run(main())


async def measure_ceiling(bootstrap: str, sizes: Sequence[int], n: int, partitions: int = 6) -> dict:
    """One hop, no processing: a producer (this process, the services' producer settings) and a consumer
    (a child process) moving n records of the given sizes through a scratch topic."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"relais.bench-ceiling-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_ceiling_consumer, args=(bootstrap, topic, n, child), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    producer = bus.make_producer(bootstrap)
    await producer.start()
    try:
        if not await loop.run_in_executor(None, parent.poll, 60):
            raise RuntimeError("ceiling consumer did not start")
        parent.recv()
        rng = random.Random(2)
        payloads = [rng.randbytes(size) for size in sizes]
        keys = [f"bench-ceiling-{i}".encode() for i in range(1000)]
        start = time.time()
        futures = [await producer.send(topic, payloads[i % len(payloads)], key=keys[i % 1000]) for i in range(n)]
        for future in futures:
            await future
        produced = time.time()
        if not await loop.run_in_executor(None, parent.poll, 130):
            raise RuntimeError("ceiling consumer did not finish")
        seen, first, last = parent.recv()
        acks = []  # one record at a time, as a service's consume loop publishes (each awaited before the next)
        for i in range(100):
            begin = time.perf_counter()
            await bus.publish(producer, [bus.Record(topic, keys[i], payloads[i % len(payloads)])])
            acks.append((time.perf_counter() - begin) * 1000)
    finally:
        await producer.stop()
        process.join(10)
        try:
            await admin.delete_topics([topic])
        except Exception:
            pass
        await admin.close()
    return {
        "ceiling_msgs_per_s": round(seen / (last - start)) if seen else 0,
        "ceiling_produce_only_per_s": round(n / (produced - start)),
        **{k: v for k, v in summarise(acks, "kafka_ack_").items() if not k.endswith(("mean_ms", "max_ms"))},
        "ceiling_records": n,
        "ceiling_received": seen,
        "ceiling_record_bytes_mean": round(statistics.fmean(sizes)),
        "ceiling_definition": (
            "one hop: aiokafka producer (acks=all, idempotent, linger 2 ms, this process) -> "
            f"{partitions}-partition topic -> aiokafka consumer (read_committed, another process); "
            "records of the pipeline's sizes, no processing; msgs/s from first send to last read"
        ),
    }


# --------------------------------------------------------------------------------------------- the run


@dataclass
class Pending:
    sent_at: float
    step: int
    conversation: Conversation


class PipelineBench:
    def __init__(self, bootstrap: str, dsn: str | None, pids: dict[str, int], seed: int = 0):
        self.bootstrap, self.dsn, self.pids = bootstrap, dsn, pids
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench-{self.run_id}-".encode()
        from relais.classifier.catalogue import load_catalogue

        catalogue = load_catalogue()
        self.traffic = Traffic(
            catalogue.training_examples(), {i.id for i in catalogue if i.bot_allowed}, self.run_id, seed
        )
        self.pending: dict[str, Pending] = {}
        self.handed_off: dict[str, tuple[float, int]] = {}  # conversation -> (turn sent_at, step)
        self.ready: deque[Conversation] = deque()  # conversations whose next turn may go
        self.fresh: deque[Conversation] = deque()  # new conversations, their events already serialised
        self.headers = cloudevents.contact_message("c", "c", "t", source=SOURCE)[1]
        self.step_index = -1
        self.answered_at: dict[int, list[float]] = {}  # step -> reply read times
        self.latencies: dict[int, list[tuple[float, float]]] = {}  # step -> (sent_at, ms)
        self.queued: dict[int, list[float]] = {}
        self.reply_types: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.sizes: list[int] = []
        self.send_errors = 0
        self.handoffs = 0

    # -- plumbing

    async def start(self) -> None:
        import asyncpg
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        self.producer = bus.make_producer(self.bootstrap, linger_ms=1)
        await self.producer.start()
        self.reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await self.reader.start()
        tps = []
        for topic in (topics.REPLIES, topics.DEAD_LETTER):
            partitions = self.reader.partitions_for_topic(topic)
            if not partitions:
                await self.reader._client.force_metadata_update()
                partitions = self.reader.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in partitions]
        self.reader.assign(tps)
        await self.reader.seek_to_end(*tps)
        for tp in tps:
            await self.reader.position(tp)
        self.dead_letters = 0
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        # One plain connection (a pool's reset on release would be counted as a stack's statement).
        self.pool = await asyncpg.connect(self.dsn) if self.dsn else None
        if self.pool is not None and "postgres" not in self.pids:  # the postmaster: our backend's parent
            backend = await self.pool.fetchval(f"{STATS_TAG} SELECT pg_backend_pid()")
            parent = _proc_table().get(backend)
            if parent:
                self.pids["postgres"] = parent[0]
        self.reading = asyncio.create_task(self._read())

    async def stop(self) -> None:
        self.reading.cancel()
        await self.producer.stop()
        await self.reader.stop()
        await self.admin.close()
        if self.pool is not None:
            await self.pool.close()

    async def _read(self) -> None:
        prefix = self.prefix
        while True:
            batches = await self.reader.getmany(timeout_ms=100, max_records=2000)
            now = time.perf_counter()
            for tp, records in batches.items():
                if tp.topic == topics.DEAD_LETTER:
                    self.dead_letters += sum(1 for r in records if (r.key or b"").startswith(prefix))
                    continue
                for record in records:
                    if (record.key or b"").startswith(prefix):
                        self._reply(record.value, now)

    def _reply(self, value: bytes, now: float) -> None:
        kind, turn_id = reply_fields(value)  # lean: only a queue message of a handed-off turn is decoded in full
        self.reply_types[kind] = self.reply_types.get(kind, 0) + 1
        pending = self.pending.pop(turn_id, None) if turn_id else None
        if pending is not None:
            if len(self.sizes) < 5000:
                self.sizes.append(len(value))
            self.answered_at.setdefault(pending.step, []).append(now)
            self.latencies.setdefault(pending.step, []).append((pending.sent_at, (now - pending.sent_at) * 1000))
            conversation = pending.conversation
            if kind == cloudevents.REPLY_HANDOFF:
                self.handed_off[conversation.conversation_id] = (pending.sent_at, pending.step)
            elif conversation.next_turn < len(conversation.texts):
                self.ready.append(conversation)
        elif kind == cloudevents.REPLY_QUEUE and self.handed_off:
            event = json.loads(value)
            if (event.get("data") or {}).get("status") != "waiting":
                return
            handed = self.handed_off.pop(event.get("subject"), None)
            if handed is not None:
                self.queued.setdefault(handed[1], []).append((now - handed[0]) * 1000)

    def _send_failed(self, future) -> None:
        if future.cancelled() or future.exception() is not None:
            self.send_errors += 1

    def _new_conversation(self) -> Conversation:
        """A new conversation with every turn's CloudEvent serialised now (sent_at: now, a few seconds early)."""
        conversation = self.traffic.new()
        for text in conversation.texts:
            event_id = str(uuid.uuid4())
            value, _ = cloudevents.contact_message(
                conversation.conversation_id,
                conversation.customer_id,
                text,
                language=conversation.hint,
                tier=conversation.tier,
                event_id=event_id,
                source=SOURCE,
            )
            conversation.events.append((f"{SOURCE}#{event_id}", value))
        return conversation

    def prepare(self, turns: float) -> None:
        """Builds the new conversations a step of `turns` turns will start, before its CPU is counted."""
        wanted = min(PREPARED_CONVERSATIONS_MAX, int(turns / 1.5) + 50)
        while len(self.fresh) < wanted:
            self.fresh.append(self._new_conversation())

    async def _send_one(self) -> None:
        if self.ready:
            conversation = self.ready.popleft()
        else:
            conversation = self.fresh.popleft() if self.fresh else self._new_conversation()
            self.kinds[conversation.kind] = self.kinds.get(conversation.kind, 0) + 1
        turn_id, value = conversation.events[conversation.next_turn]
        conversation.next_turn += 1
        if len(self.sizes) < 5000:
            self.sizes.append(len(value))
        self.pending[turn_id] = Pending(time.perf_counter(), self.step_index, conversation)
        future = await self.producer.send(
            topics.CONTACT_EVENTS, value, key=conversation.conversation_id.encode(), headers=self.headers
        )
        future.add_done_callback(self._send_failed)

    async def counters(self, reset: bool = False) -> Counters:
        """Statements (reset first when asked: a full pg_stat_statements table would drop entries), commits,
        end offsets of the relais topics."""
        if reset and self.pool is not None:
            try:
                await self.pool.execute(f"{STATS_TAG} SELECT pg_stat_statements_reset()")
            except Exception:  # no extension or no right to reset: the difference still counts
                pass
        statements = await pg_statement_calls(self.pool)
        commits = (await pg_counters(self.pool)).get("xact_commit") if self.pool is not None else None
        try:
            ends = await kafka_end_offsets(self.reader)
        except Exception:  # a diagnostic: never fail the run on it
            ends = {}
        return Counters(statements, commits, ends)

    # -- one step

    async def step(self, rate: float, seconds: float, warmup: float, drain_limit: float = 60.0) -> Step:
        self.step_index += 1
        index = self.step_index
        self.prepare(rate * seconds)
        cpu_before = cpu_ticks(self.pids)
        pg_before = await pg_counters(self.pool)
        dead_before = self.dead_letters
        start = time.perf_counter()
        window_start, end = start + warmup, start + seconds
        sent = 0
        backlog_start = None
        counters_start = None
        lag_end: dict = {}
        tick = 0.005
        while True:
            now = time.perf_counter()
            if backlog_start is None and now >= window_start:
                backlog_start = self._backlog(index)
                counters_start = await self.counters(reset=True)
                window_start = time.perf_counter()  # the turns counted are those answered after this read
            if now >= end:
                break
            due = int((now - start) * rate) - sent
            for _ in range(due):
                await self._send_one()
            sent += max(0, due)
            await asyncio.sleep(tick)
        backlog_end = self._backlog(index)
        cpu_window = cpu_ticks(self.pids)
        end = time.perf_counter()
        counters_end = await self.counters()
        pg_window = await pg_counters(self.pool)
        try:
            lag_end = await consumer_lag(self.admin, self.reader, SERVICE_GROUPS)
        except Exception as error:  # lag is a diagnostic: never fail the run on it
            lag_end = {"error": repr(error)}
        answered_times = self.answered_at.get(index, [])
        in_window = sum(1 for t in answered_times if window_start <= t <= end)
        achieved = in_window / max(1e-9, end - window_start)
        costs = per_turn(counters_start or Counters(), counters_end, in_window)
        costs["pg_statements_top"] = await pg_top_statements(self.pool, in_window)
        # Drain: wait for the rest of this step's turns (bounded), then count the unanswered.
        drain_deadline = time.perf_counter() + min(drain_limit, max(10.0, 2 * backlog_end / max(achieved, 1.0)))
        while self._backlog(index) and time.perf_counter() < drain_deadline:
            await asyncio.sleep(0.05)
        unanswered = self._backlog(index)
        for turn_id in [t for t, p in self.pending.items() if p.step == index]:
            del self.pending[turn_id]
        counted = [ms for sent_at, ms in self.latencies.get(index, []) if sent_at >= window_start]
        elapsed = time.perf_counter() - start
        ticks = cpu_percent(cpu_before, cpu_window, seconds)
        extra = {
            "cpu_percent": ticks,
            "lag_at_end_of_window": lag_end,
            "dead_letters": self.dead_letters - dead_before,
            "drain_s": round(elapsed - seconds, 2),
            "queued_handoffs": len(self.queued.get(index, [])),
            **costs,
        }
        if pg_before and pg_window:
            extra["pg_commits_per_s"] = round(
                (pg_window.get("xact_commit", 0) - pg_before.get("xact_commit", 0)) / seconds
            )
            if "wal_sync" in pg_window:
                extra["pg_wal_syncs_per_s"] = round((pg_window["wal_sync"] - pg_before["wal_sync"]) / seconds)
        extra.update(summarise(self.queued.get(index, []), "handoff_queued_"))
        return Step(
            offered_per_s=round(rate, 1),
            achieved_per_s=round(achieved, 1),
            sent=sent,
            answered=len(answered_times),
            unanswered=unanswered,
            backlog_start=backlog_start or 0,
            backlog_end=backlog_end,
            seconds=seconds,
            latency=summarise(counted) | {"samples": len(counted)},
            extra=extra,
        )

    def _backlog(self, index: int) -> int:
        return sum(1 for p in self.pending.values() if p.step == index)


def step_summary(step: Step) -> dict:
    return {
        "offered_per_s": step.offered_per_s,
        "achieved_per_s": step.achieved_per_s,
        "holds": step.holds,
        "sent": step.sent,
        "unanswered": step.unanswered,
        "backlog_start": step.backlog_start,
        "backlog_end": step.backlog_end,
        **{k: step.latency.get(k) for k in ("p50_ms", "p95_ms", "p99_ms")},
        "cpu_percent": step.extra.get("cpu_percent"),
        "pg_commits_per_s": step.extra.get("pg_commits_per_s"),
        **{k: step.extra.get(k) for k in ("pg_statements_per_turn", "pg_commits_per_turn", "kafka_records_per_turn")},
        "lag_at_end_of_window": step.extra.get("lag_at_end_of_window"),
    }


async def run_pipeline(
    bootstrap: str,
    dsn: str | None,
    pids: dict[str, int],
    *,
    rate: float | None,
    seconds: float,
    warmup: float,
    start_rate: float,
    search_seconds: float,
    ceiling_records: int,
    model_path: Path | None,
    seed: int = 0,
) -> dict:
    if warmup >= seconds:
        warmup = seconds / 3
    load_before = os.getloadavg()
    started = time.perf_counter()
    bench = PipelineBench(bootstrap, dsn, pids | {"bench": os.getpid()}, seed)
    await bench.start()  # first: a stack that is not there fails before anything else is said or done

    async def step(what: str, offered: float, seconds: float, warmup: float) -> Step:
        with progress.stage(f"{what}: {offered:.0f} turns/s offered for {seconds:g} s"):
            done = await bench.step(offered, seconds, warmup)
        progress.say(f"{what}: {done.achieved_per_s} turns/s, {'holds' if done.holds else 'does not hold'}")
        return done

    try:
        pg_settings = (await pg_counters(bench.pool)).get("settings", {})
        idle_before = cpu_ticks(bench.pids)
        with progress.stage("the idle stack's CPU, 3 s"):
            await asyncio.sleep(3)  # the stack doing nothing: polling consumers, the broker, tickers
        idle = cpu_percent(idle_before, cpu_ticks(bench.pids), 3)
        await step("warm-up", min(50.0, rate or 50.0), 3.0, 1.0)  # connections, caches, the language detector
        steps: list[Step] = []
        if rate is not None:
            final = await step("measured", rate, seconds, warmup)
            mode = "fixed"
        else:
            best, steps = await find_saturation(
                lambda r: step("saturation search", r, search_seconds, min(warmup, search_seconds / 3)),
                start=start_rate,
            )
            final = await step("measured", best.offered_per_s if best else start_rate, seconds, warmup)
            mode = "saturation"
        sizes = bench.sizes[:5000] or [400]
    finally:
        await bench.stop()
    with progress.stage("the classifier's cost per message, in this process"):
        classifier = classifier_cost(model_path)
    with progress.stage(f"the Kafka ceiling: {ceiling_records} records through one topic"):
        ceiling = await measure_ceiling(bootstrap, sizes, ceiling_records)
    with progress.stage("serial probes"):
        probes = await serial_probes(dsn)
    load_after = os.getloadavg()
    result = {
        "mode": mode,
        "turns_per_s": final.achieved_per_s,
        "p50_ms": final.latency.get("p50_ms"),
        "p95_ms": final.latency.get("p95_ms"),
        "p99_ms": final.latency.get("p99_ms"),
        "offered_per_s": final.offered_per_s,
        "ceiling_msgs_per_s": ceiling["ceiling_msgs_per_s"],
        "ratio_to_ceiling": round(final.achieved_per_s / ceiling["ceiling_msgs_per_s"], 4)
        if ceiling["ceiling_msgs_per_s"]
        else None,
        "ratio_to_ceiling_per_hop": (
            round(final.achieved_per_s * HOPS_PER_TURN / ceiling["ceiling_msgs_per_s"], 4)
            if ceiling["ceiling_msgs_per_s"]
            else None
        ),
        "hops_per_turn": HOPS_PER_TURN,
        "holds": final.holds,
        "mean_ms": final.latency.get("mean_ms"),
        "max_ms": final.latency.get("max_ms"),
        "samples": final.latency.get("samples"),
        "sent": final.sent,
        "unanswered": final.unanswered,
        "backlog_start": final.backlog_start,
        "backlog_end": final.backlog_end,
        "seconds": seconds,
        "warmup_s": warmup,
        **{k: v for k, v in final.extra.items()},
        "cpu_idle_percent": idle,
        **cpu_ms_per_turn(final.extra["cpu_percent"], idle, final.achieved_per_s),
        "send_errors": bench.send_errors,
        "dead_letters_seen": bench.dead_letters,
        "reply_types": bench.reply_types,
        "conversation_kinds": bench.kinds,
        "search": [step_summary(s) for s in steps],
        "classifier": classifier,
        **{k: v for k, v in ceiling.items() if k != "ceiling_msgs_per_s"},
        "serial_probes": probes,
        "postgres": pg_settings,
        "machine": {
            "cores": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "measured": "contact event produced (acks=all) -> bot reply or hand-off notice read on relais.replies.v1",
    }
    return result


def bench_pipeline(args) -> dict:
    kwargs = dict(
        rate=args.rate,
        seconds=args.seconds,
        warmup=args.warmup,
        start_rate=args.start_rate,
        search_seconds=args.search_seconds,
        ceiling_records=args.ceiling_records,
        seed=args.seed,
    )
    if not args.private:
        from relais.cli import endpoints

        values = endpoints(args.endpoints)
        state = Path(args.endpoints).resolve().parent if args.endpoints else Path(".relais").resolve()
        return event_loop(
            run_pipeline(
                values["KAFKA_BOOTSTRAP_SERVERS"],
                values["DATABASE_URL"],
                running_stack_pids(state),
                model_path=None,
                **kwargs,
            )
        ) | {"stack": "running (make up)"}
    from infra.stack import Stack

    state = Path(tempfile.mkdtemp(prefix="relais-bench-pipeline-"))
    stack = Stack.with_free_ports(state, fast_db=args.fast_db, extra_env={"RELAIS_LOG_LEVEL": "WARNING"})
    broker, postgres = stack.broker, stack.postgres
    assert broker is not None and postgres is not None  # its own (not use_infra)
    postgres.statement_stats = True  # pg_statements_per_turn
    try:
        with progress.stage("starting a private stack (Kafka, PostgreSQL, the services)"):
            stack.start_infra()
            stack.start_services()
        pids = {name: p.pid for name, p in stack.processes.items()}
        if broker.pid:
            pids["kafka"] = broker.pid
        return event_loop(run_pipeline(stack.bootstrap, stack.dsn, pids, model_path=stack.model_path, **kwargs)) | {
            "stack": "private, PostgreSQL " + ("fsync off, synchronous_commit off" if args.fast_db else "fsync on")
        }
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def add_parser(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "pipeline", help="end-to-end turns/s and latency (p50/p95/p99) against the Kafka ceiling"
    )
    p.add_argument("--rate", type=float, help="offered turns per second (default: find the saturation rate)")
    p.add_argument("--seconds", type=float, default=20, help="how long the measured rate is held (default 20)")
    p.add_argument("--warmup", type=float, default=3, help="first seconds of a step not counted (default 3)")
    p.add_argument("--start-rate", type=float, default=100, help="saturation search: first offered rate (default 100)")
    p.add_argument("--search-seconds", type=float, default=6, help="saturation search: seconds per step (default 6)")
    p.add_argument("--ceiling-records", type=int, default=40000, help="records moved for the ceiling (default 40000)")
    p.add_argument("--private", action="store_true", help="start a private broker, database and services on free ports")
    p.add_argument(
        "--fast-db",
        action="store_true",
        help="with --private: PostgreSQL without fsync (what cheaper commits would give; not durable)",
    )
    p.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def pipeline_cli(args) -> int:
    result = bench_pipeline(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(
            f"{result['mode']}: {result['turns_per_s']} turns/s offered {result['offered_per_s']}/s, "
            f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms; ceiling "
            f"{result['ceiling_msgs_per_s']} msgs/s (ratio {result['ratio_to_ceiling']}); load {result['machine']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.pipeline ...`, the same as `relais bench pipeline ...`."""
    import argparse

    parser = argparse.ArgumentParser(prog="relais bench")
    add_parser(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(["pipeline", *(sys.argv[1:] if argv is None else argv)])
    with progress.reporting("relais bench pipeline"):
        return pipeline_cli(args)


if __name__ == "__main__":
    sys.exit(main())
