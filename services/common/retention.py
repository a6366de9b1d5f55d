"""Retention: the transcripts of closed conversations are purged after a configurable period.

A conversation is **closed** at a cut-off (now − `RELAIS_RETENTION_DAYS`, default 90) when
  - its last activity is before the cut-off: the latest of intake's conversation update and turns
    received, the bot's last update, every timestamp of its tasks (created, queued, offered, assigned,
    closed, last queue update) and when analytics stored its verbatims and outcomes; and
  - it has no open task (`queued`, `offered` or `assigned`): a customer waiting for or talking to a
    person is never purged, however old the conversation is.
A conversation purged once is purged again only if it was active since (`retention_purged`).

Purging a closed conversation removes its **transcript**, what the customer and the bot wrote, and
keeps everything the KPIs, deduplication and the agents' history are computed from:
  - `turns.text` becomes '' (the row, its order and its timestamps stay);
  - the `ConversationContext` of `bot_conversations.context` and of `tasks.context` (closed or
    abandoned tasks only) loses its turns' texts, its bot replies and its lookups' requests and
    results; intents, sentiment, reasons and timestamps stay; a task's transfer `note` and the number
    to call back (`tasks.callback_phone`, `conversations.callback_phone`) become '';
  - `kpi_verbatims` rows are deleted; `kpi_outcomes.survey_comment` becomes '' (scores stay:
    KPIs come from `kpi_outcomes`, which holds no other text);
  - `outbox` records of the conversation already published before the cut-off are deleted.
All in one transaction. `relais purge [--days N] [--dry-run]` runs it by hand; intake runs it every
`RELAIS_RETENTION_CHECK_SECONDS` (default 3600). `RELAIS_RETENTION_DAYS=0` turns the periodic purge off.
"""

import asyncio
import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone

import asyncpg

from relais.common.pb import conversation_pb2 as pb

log = logging.getLogger(__name__)

DEFAULT_DAYS = 90.0
DEFAULT_CHECK_SECONDS = 3600.0
OPEN_TASK_STATUSES = ("queued", "offered", "assigned")
LOCK_KEY = 0x72656C6169730006  # one purge at a time across intake instances and `relais purge`

TABLES = ("turns", "bot_conversations", "tasks", "kpi_verbatims", "kpi_outcomes", "outbox", "conversations")

# Per conversation: its last activity, whether a task is open, when it was last purged.
CANDIDATES = """
WITH activity (conversation_id, at) AS (
    SELECT conversation_id, updated_at FROM conversations
    UNION ALL SELECT conversation_id, max(received_at) FROM turns GROUP BY conversation_id
    UNION ALL SELECT conversation_id, updated_at FROM bot_conversations
    UNION ALL SELECT conversation_id, greatest(created_at, queued_at, offered_at, assigned_at, closed_at, last_update_at)
              FROM tasks
    UNION ALL SELECT conversation_id, max(stored_at) FROM kpi_verbatims GROUP BY conversation_id
    UNION ALL SELECT conversation_id, max(stored_at) FROM kpi_outcomes GROUP BY conversation_id
)
SELECT a.conversation_id, max(a.at) AS last_activity,
       EXISTS (SELECT 1 FROM tasks t WHERE t.conversation_id = a.conversation_id
               AND t.status = ANY($2::text[])) AS open_task,
       p.purged_at
FROM activity a LEFT JOIN retention_purged p USING (conversation_id)
GROUP BY a.conversation_id, p.purged_at
HAVING max(a.at) < $1 AND (p.purged_at IS NULL OR p.purged_at < max(a.at))
"""


def is_closed(last_activity: datetime | None, open_task: bool, older_than: datetime) -> bool:
    """The retention rule: no activity since the cut-off, and no task waiting for or held by a person."""
    return last_activity is not None and last_activity < older_than and not open_task


def needs_purge(
    last_activity: datetime | None, open_task: bool, purged_at: datetime | None, older_than: datetime
) -> bool:
    """Closed, and not already purged since its last activity."""
    if last_activity is None or not is_closed(last_activity, open_task, older_than):
        return False
    return purged_at is None or purged_at < last_activity


def scrub_context(data: bytes) -> bytes:
    """A `ConversationContext` without its transcript: turn texts, bot replies, lookups' requests and results."""
    context = pb.ConversationContext.FromString(data)
    for turn in context.turns:
        turn.text = ""
    for attempt in context.bot_attempts:
        attempt.reply_text = ""
    for lookup in context.lookups:
        lookup.request.clear()
        lookup.result.clear()
    return context.SerializeToString()


async def purge(pool_or_conn, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Purges the transcripts of conversations closed at `older_than`; rows purged per table.

    One transaction; with `dry_run` it is rolled back, so the counts are what a purge would do now.
    `closed_conversations` counts the conversations purged.
    """
    if hasattr(pool_or_conn, "acquire"):
        async with pool_or_conn.acquire() as acquired:
            return await purge(acquired, older_than, dry_run=dry_run)
    conn: asyncpg.Connection = pool_or_conn
    if older_than.tzinfo is None:
        older_than = older_than.replace(tzinfo=timezone.utc)
    transaction = conn.transaction()
    await transaction.start()
    try:
        counts = await _purge(conn, older_than)
    except BaseException:
        await transaction.rollback()
        raise
    if dry_run:
        await transaction.rollback()
    else:
        await transaction.commit()
    return counts


async def _purge(conn: asyncpg.Connection, older_than: datetime) -> dict[str, int]:
    counts = dict.fromkeys(TABLES, 0) | {"closed_conversations": 0}
    await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
    rows = await conn.fetch(CANDIDATES, older_than, list(OPEN_TASK_STATUSES))
    ids = [
        r["conversation_id"]
        for r in rows
        if needs_purge(r["last_activity"], r["open_task"], r["purged_at"], older_than)
    ]
    if not ids:
        return counts
    counts["closed_conversations"] = len(ids)

    counts["turns"] = _count(
        await conn.execute("UPDATE turns SET text = '' WHERE conversation_id = ANY($1::text[]) AND text <> ''", ids)
    )

    bot = await conn.fetch(
        "SELECT conversation_id, context FROM bot_conversations WHERE conversation_id = ANY($1::text[]) FOR UPDATE", ids
    )
    scrubbed = [(r["conversation_id"], new) for r in bot if (new := scrub_context(r["context"])) != r["context"]]
    await conn.executemany("UPDATE bot_conversations SET context = $2 WHERE conversation_id = $1", scrubbed)
    counts["bot_conversations"] = len(scrubbed)

    tasks = await conn.fetch(
        "SELECT task_id, context, note FROM tasks WHERE conversation_id = ANY($1::text[])"
        " AND NOT status = ANY($2::text[]) FOR UPDATE",
        ids,
        list(OPEN_TASK_STATUSES),
    )
    scrubbed = [(r["task_id"], new) for r in tasks if (new := scrub_context(r["context"])) != r["context"] or r["note"]]
    await conn.executemany("UPDATE tasks SET context = $2, note = '' WHERE task_id = $1", scrubbed)
    phones = {
        r["task_id"]
        for r in await conn.fetch(
            "UPDATE tasks SET callback_phone = '' WHERE conversation_id = ANY($1::text[]) AND NOT status = ANY($2::text[])"
            " AND callback_phone <> '' RETURNING task_id",
            ids,
            list(OPEN_TASK_STATUSES),
        )
    }
    counts["tasks"] = len({task_id for task_id, _ in scrubbed} | phones)
    # The number to call back (relais.common.customer_contact) goes with the transcript.
    counts["conversations"] = _count(
        await conn.execute(
            "UPDATE conversations SET callback_phone = '' WHERE conversation_id = ANY($1::text[]) AND callback_phone <> ''",
            ids,
        )
    )

    counts["kpi_verbatims"] = _count(
        await conn.execute("DELETE FROM kpi_verbatims WHERE conversation_id = ANY($1::text[])", ids)
    )
    counts["kpi_outcomes"] = _count(
        await conn.execute(
            "UPDATE kpi_outcomes SET survey_comment = '' WHERE conversation_id = ANY($1::text[]) AND survey_comment <> ''",
            ids,
        )
    )
    counts["outbox"] = _count(
        await conn.execute(
            "DELETE FROM outbox WHERE published AND created_at < $2 AND key = ANY($1::bytea[])",
            [i.encode() for i in ids],
            older_than,
        )
    )

    await conn.executemany(
        "INSERT INTO retention_purged (conversation_id) VALUES ($1)"
        " ON CONFLICT (conversation_id) DO UPDATE SET purged_at = now()",
        [(i,) for i in ids],
    )
    return counts


def _count(status: str) -> int:
    """The row count of an asyncpg command status ("UPDATE 3", "DELETE 0")."""
    return int(status.rsplit(" ", 1)[-1])


def retention_days() -> float:
    return float(os.environ.get("RELAIS_RETENTION_DAYS", "").strip() or DEFAULT_DAYS)


def check_seconds() -> float:
    return float(os.environ.get("RELAIS_RETENTION_CHECK_SECONDS", "").strip() or DEFAULT_CHECK_SECONDS)


def cutoff(days: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) - timedelta(days=days)


async def run_periodically(pool: asyncpg.Pool) -> None:
    """Intake's background job: a purge now, then every RELAIS_RETENTION_CHECK_SECONDS."""
    days, every = retention_days(), check_seconds()
    if days <= 0:
        log.info("retention: RELAIS_RETENTION_DAYS=%g, transcripts are kept", days)
        return
    while True:
        try:
            counts = await purge(pool, cutoff(days))
            if counts["closed_conversations"]:
                log.info(
                    "retention: purged the transcripts of conversations closed for %g days: %s",
                    days,
                    json.dumps(counts),
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be away; the next check tries again
            log.exception("retention: purge failed")
        await asyncio.sleep(every)


def add_parser(subparsers) -> None:
    command = subparsers.add_parser(
        "purge", help="purge the transcripts of conversations closed for RELAIS_RETENTION_DAYS (default 90)"
    )
    command.add_argument("--days", type=float, help="retention period in days (default $RELAIS_RETENTION_DAYS or 90)")
    command.add_argument("--dry-run", action="store_true", help="count what would be purged, change nothing")
    command.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")


def purge_cli(args, endpoints: dict[str, str]) -> int:
    days = args.days if args.days is not None else retention_days()
    if days < 0:
        print("relais purge: error: --days must be 0 or more", file=sys.stderr)
        return 2

    async def run() -> dict[str, int]:
        conn = await asyncpg.connect(endpoints["DATABASE_URL"])
        try:
            return await purge(conn, cutoff(days), dry_run=args.dry_run)
        finally:
            await conn.close()

    counts = asyncio.run(run())
    print(json.dumps({"days": days, "dry_run": bool(args.dry_run)} | counts))
    return 0
