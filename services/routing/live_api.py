"""The LiveView gRPC API of routing's active process (docs/routing.md, "Live view"): the supervisors' wallboard.

A thin edge over live.py and store.py: each refresh reads, in one read-only snapshot of the database, who waits per
queue, the agents' states, and the task steps written since the last refresh (by primary key, so a second costs what
happened in it); the counts live in live.Counters. One refresh serves every watcher of that moment. Protected by the
service token (grpcserver.PROTECTED); the standby answers UNAVAILABLE (grpcserver.Gate), as for AgentDesk.
"""

import asyncio
import json
import logging
import os
import time

from relais.common.pb import live_pb2 as pb, live_pb2_grpc as pb_grpc
from relais.routing import live, rules, store

log = logging.getLogger(__name__)

HISTORY_SECONDS = live.SERVICE_LEVEL_MINUTES * live.BUCKET_SECONDS  # the longest window shown
FRESH_SECONDS = 0.5  # a snapshot this recent is served again rather than read again
HANDLE_SECONDS_TTL = 30.0  # the languages' recent handling times are read again after this long
BOT_RECOUNT_MINUTES = 2  # bot answers of the current and last minutes are counted again (analytics' ingestion lags)


def service_level_seconds() -> float:
    """The service level's target, as analytics counts it (RELAIS_SERVICE_LEVEL_SECONDS)."""
    return float(os.environ.get("RELAIS_SERVICE_LEVEL_SECONDS") or live.DEFAULT_SERVICE_LEVEL_SECONDS)


class LiveFeed:
    """Refreshes the live view from the database, at most every FRESH_SECONDS whoever asks."""

    def __init__(self, pool, routing_rules: rules.RoutingRules, target_seconds: float | None = None):
        self.pool, self.rules = pool, routing_rules
        self.counters = live.Counters(service_level_seconds() if target_seconds is None else target_seconds)
        self.cursor: int | None = None  # the last task_events.id counted
        self.read_at: float | None = None  # the database's clock at the last refresh
        self.bot_read_minute: int | None = None  # the minute of the last count of bot answers
        self.handle: dict[str, tuple[float, float | None]] = {}  # language -> (read at, recent handling seconds)
        self.last: live.LiveView | None = None
        self.last_at = 0.0
        self.lock = asyncio.Lock()

    async def snapshot(self) -> live.LiveView:
        async with self.lock:
            if self.last is None or time.monotonic() - self.last_at >= FRESH_SECONDS:
                self.last = await self._read()
                self.last_at = time.monotonic()
            return self.last

    async def _read(self) -> live.LiveView:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            now = await store.database_now(conn)
            if self.read_at is not None and now - self.read_at > HISTORY_SECONDS:
                # Nobody watched for long: the steps since are looked up, not read through.
                self.cursor = self.bot_read_minute = None
            self.read_at = now
            if self.cursor is None:
                self.cursor = await store.last_step_before(conn, now - HISTORY_SECONDS)
            last = await store.last_step(conn)
            kinds = sorted(live.COUNTED_KINDS)
            for r in await store.steps_per_minute(conn, self.cursor, last, kinds, self.counters.target):
                queue = live.queue_of(json.loads(r["required"]), r["stage"], self.rules)
                self.counters.add_counted(r["minute"], r["kind"], r["language"], queue, r["n"], r["within"])
            self.cursor = last
            waiting = live.waiting_by_queue(
                (
                    (r["language"], json.loads(r["required"]), r["stage"], r["n"], float(r["oldest"]))
                    for r in await store.waiting_groups(conn)
                ),
                self.rules,
            )
            agents = [live.AgentNow(r["state"], tuple(r["languages"])) for r in await store.agents_and_languages(conn)]
            await self._count_bot_answers(conn, now)
            languages = {w.language for w in waiting} | {lang for a in agents for lang in a.languages}
            handle = {lang: h for lang in languages if (h := await self._handle_seconds(conn, lang)) is not None}
        return live.view(
            now,
            waiting,
            self.counters.window(now),
            agents,
            handle,
            self.rules.default_handle_seconds,
            self.counters.target,
        )

    async def _count_bot_answers(self, conn, now: float) -> None:
        """Bot answers per minute: the 15 minutes at first, then again from BOT_RECOUNT_MINUTES before the last
        refresh (analytics stores an answer a moment after it was given; rarely minutes later)."""
        current = live.minute_of(now)
        since = current - live.COUNT_MINUTES + 1
        if self.bot_read_minute is not None:
            since = max(since, min(current, self.bot_read_minute) - BOT_RECOUNT_MINUTES)
        answers = await store.bot_answers_per_minute(conn, float(since * live.BUCKET_SECONDS))
        self.counters.set_bot_answers(answers, since)
        self.bot_read_minute = current

    async def _handle_seconds(self, conn, language: str) -> float | None:
        read_at, seconds = self.handle.get(language, (None, None))
        if read_at is None or time.monotonic() - read_at > HANDLE_SECONDS_TTL:
            seconds = await store.recent_handle(conn, language)
            self.handle[language] = (time.monotonic(), seconds)
        return seconds


def message(view: live.LiveView) -> pb.LiveSnapshot:
    snapshot = pb.LiveSnapshot(
        agents_by_state=view.agents_by_state,
        agents_by_language=view.agents_by_language,
        bot_answers_15m=view.bot_answers_15m,
        handoffs_15m=view.handoffs_15m,
        service_level_target_seconds=view.service_level_target_seconds,
    )
    snapshot.at.FromNanoseconds(int(view.at * 1e9))
    if view.service_level_30m is not None:
        snapshot.service_level_30m = view.service_level_30m
    for q in view.queues:
        row = snapshot.queues.add(
            language=q.language,
            queue=q.queue,
            waiting=q.waiting,
            oldest_wait_seconds=round(q.oldest_wait_seconds, 3),
            offered_15m=q.offered_15m,
            accepted_15m=q.accepted_15m,
            abandoned_15m=q.abandoned_15m,
            answered_within_target_30m=q.answered_within_target_30m,
            ended_30m=q.ended_30m,
            agents_signed_in=q.agents_signed_in,
        )
        if q.expected_wait_seconds is not None:
            row.expected_wait_seconds = round(q.expected_wait_seconds, 3)
        if q.service_level_30m is not None:
            row.service_level_30m = q.service_level_30m
    return snapshot


def watch_interval(request: pb.WatchRequest) -> float:
    asked = request.interval_seconds
    return 1.0 if not asked or asked <= 0 else min(1.0, max(0.2, asked))


class LiveView(pb_grpc.LiveViewServicer):
    def __init__(self, feed: LiveFeed):
        self.feed = feed

    async def GetSnapshot(self, request, context):
        return message(await self.feed.snapshot())

    async def Watch(self, request, context):
        interval = watch_interval(request)
        while True:
            started = time.monotonic()
            yield message(await self.feed.snapshot())
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
