"""`relais redact --rescan`: the current redaction rules applied to what is already stored.

Texts written before a rule was added (a UK national number, a NIR) were redacted by the rules of the
day. The rescan reads every place the customer's words are kept and redacts them again:
  - `turns.text`, `kpi_verbatims.text`, `kpi_outcomes.survey_comment`;
  - the turns' texts inside the `ConversationContext` of `bot_conversations.context` and `tasks.context`;
  - an advisor's transfer note: `tasks.note` and the `transferred` step of `task_events.detail`;
  - `outbox` values, published or not, that carry a turn or a survey comment (relais.v1.Turn on the turns
    topics, relais.v1.HandoffEvent, relais.v1.Outcome).
Tables follow relais.common.retention.TABLES (what a purge erases); `conversations.callback_phone` is the
one number kept on purpose (relais.common.customer_contact). Bot and advisor replies and lookups are not
customer text and are left alone (a reply may give the company's own number). Records already on Kafka
stay until the topic's retention removes them.

Rows are read in primary-key order, a batch at a time, and each batch is written and committed on its
own; an update applies only if the row still holds what was read (a service writing meanwhile wins, and
what it writes is redacted by the same rules). Rules are idempotent, so a second run changes nothing.
"""

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
from google.protobuf.message import DecodeError

from relais.common import retention, topics
from relais.common.pb import conversation_pb2 as pb
from relais.common.redact import PLACEHOLDERS, configured_regions, redact_counts

BATCH_ROWS = 500


@dataclass(frozen=True)
class Column:
    """A stored text: plain text, a serialized protobuf (ConversationContext), or an outbox value read by topic."""

    name: str
    kind: str = "text"  # text | context | outbox


@dataclass(frozen=True)
class Place:
    table: str
    key: tuple[str, ...]  # primary key, the batches' order
    columns: tuple[Column, ...]
    where: str = ""  # rows that hold customer text


PLACES = (
    Place("turns", ("turn_id",), (Column("text"),)),
    Place("bot_conversations", ("conversation_id",), (Column("context", "context"),)),
    Place("tasks", ("task_id",), (Column("note"), Column("context", "context"))),
    Place("task_events", ("id",), (Column("detail"),), "kind = 'transferred'"),  # "to <queue>: <note>"
    Place("kpi_verbatims", ("turn_id",), (Column("text"),)),
    Place("kpi_outcomes", ("outcome_id",), (Column("survey_comment"),), "survey_comment <> ''"),
    Place(
        "outbox",
        ("consumer", "event_key", "seq"),
        (Column("value", "outbox"),),
        f"topic IN ('{topics.TURNS}', '{topics.CLASSIFIED_TURNS}', '{topics.HANDOFFS}', '{topics.OUTCOMES}')",
    ),
)
# In retention's list, not rescanned: the number to call back, kept on purpose until the transcript is purged.
NOT_RESCANNED = {"conversations": "callback_phone is the number the customer asked to be called back on"}


# ---------------------------------------------------------------------------------- the customer's words
def customer_texts(message) -> Iterator[tuple[object, str]]:
    """(message, field) of every customer-written text in a Turn, ConversationContext, HandoffEvent or Outcome."""
    if isinstance(message, pb.Turn):
        yield message, "text"
    elif isinstance(message, pb.ConversationContext):
        for turn in message.turns:
            yield turn, "text"
    elif isinstance(message, pb.HandoffEvent):
        which = message.WhichOneof("event")
        if which:
            yield from customer_texts(getattr(message, which))
    elif isinstance(message, pb.Outcome):
        yield message, "survey_comment"


OUTBOX_TYPES = {
    topics.TURNS: pb.Turn,
    topics.CLASSIFIED_TURNS: pb.Turn,
    topics.HANDOFFS: pb.HandoffEvent,
    topics.OUTCOMES: pb.Outcome,
}


class Redactor:
    """The rules applied to each kind of stored value; counts the placeholders it adds."""

    def __init__(self, regions: tuple[str, ...] | None = None):
        self.regions = regions or configured_regions()
        self.placeholders = dict.fromkeys(PLACEHOLDERS, 0)

    def text(self, value: str) -> str:
        redacted, counts = redact_counts(value, self.regions)
        if redacted != value:
            for kind, count in counts.items():
                self.placeholders[kind] += count
        return redacted

    def message(self, data: bytes, message_type) -> bytes | None:
        """The serialized message with its customer texts redacted; None when nothing changed (or not readable)."""
        try:
            message = message_type.FromString(data)
        except DecodeError:
            return None
        changed = False
        for holder, field in customer_texts(message):
            old = getattr(holder, field)
            new = self.text(old)
            if new != old:
                setattr(holder, field, new)
                changed = True
        return message.SerializeToString() if changed else None

    def value(self, column: Column, row) -> object | None:
        """The new value of a column of a row, None when unchanged."""
        old = row[column.name]
        if column.kind == "text":
            new = self.text(old) if old else old
            return new if new != old else None
        if column.kind == "context":
            return self.message(old, pb.ConversationContext) if old else None
        message_type = OUTBOX_TYPES.get(row["topic"])
        return self.message(old, message_type) if message_type and old else None


# --------------------------------------------------------------------------------------------- the scan
async def rescan(
    conn: asyncpg.Connection,
    *,
    dry_run: bool = False,
    batch_rows: int = BATCH_ROWS,
    regions: tuple[str, ...] | None = None,
) -> dict:
    """Applies the current rules to every stored text; rows changed per table (with `dry_run`, rows that would
    change), and placeholders added per kind."""
    redactor = Redactor(regions)
    report: dict = {"dry_run": dry_run, "regions": list(redactor.regions)}
    for place in PLACES:
        report[place.table] = await _rescan_place(conn, place, redactor, dry_run, batch_rows)
    report["placeholders"] = redactor.placeholders
    return report


async def _rescan_place(
    conn: asyncpg.Connection, place: Place, redactor: Redactor, dry_run: bool, batch_rows: int
) -> int:
    key = ", ".join(place.key)
    names = [c.name for c in place.columns] + (["topic"] if place.table == "outbox" else [])
    where = f"({place.where}) AND " if place.where else ""
    columns = ", ".join([key] + names)
    # Keyset pagination: each batch starts after the last key of the previous one.
    first = f"SELECT {columns} FROM {place.table} WHERE {where}true ORDER BY {key} LIMIT {int(batch_rows)}"
    following = (
        f"SELECT {columns} FROM {place.table} WHERE {where}({key}) >"
        f" ({', '.join(f'${i + 1}' for i in range(len(place.key)))}) ORDER BY {key} LIMIT {int(batch_rows)}"
    )
    changed, last = 0, None
    while True:
        rows = await (conn.fetch(first) if last is None else conn.fetch(following, *last))
        if not rows:
            return changed
        last = tuple(rows[-1][k] for k in place.key)
        updates = []
        for row in rows:
            new = {c.name: value for c in place.columns if (value := redactor.value(c, row)) is not None}
            if new:
                updates.append((row, new))
        changed += len(updates)
        if updates and not dry_run:
            async with conn.transaction():  # one batch, one short transaction
                for row, new in updates:
                    await _update(conn, place, row, new)
        if len(rows) < batch_rows:
            return changed


async def _update(conn: asyncpg.Connection, place: Place, row, new: dict) -> None:
    """Writes the redacted values only if the row still holds what was read."""
    sets = list(new)
    args = [new[c] for c in sets] + [row[k] for k in place.key] + [row[c] for c in sets]
    n, k = len(sets), len(place.key)
    assignments = ", ".join(f"{c} = ${i + 1}" for i, c in enumerate(sets))
    keys = " AND ".join(f"{c} = ${n + i + 1}" for i, c in enumerate(place.key))
    unchanged = " AND ".join(f"{c} = ${n + k + i + 1}" for i, c in enumerate(sets))
    await conn.execute(f"UPDATE {place.table} SET {assignments} WHERE {keys} AND {unchanged}", *args)


def rescanned_tables() -> set[str]:
    return {place.table for place in PLACES}


def check_coverage() -> list[str]:
    """Tables retention purges that the rescan neither covers nor names as kept on purpose (should be none)."""
    return sorted(set(retention.TABLES) - rescanned_tables() - set(NOT_RESCANNED))


def rescan_cli(args, endpoints: dict[str, str]) -> int:
    """Prints one JSON object: rows changed per table (would change, with --dry-run), placeholders added per kind."""
    if args.batch_rows < 1:
        print(f"relais redact: error: --batch-rows must be ≥ 1, got {args.batch_rows}", file=sys.stderr)
        return 2

    async def run() -> dict:
        conn = await asyncpg.connect(endpoints["DATABASE_URL"])
        try:
            return await rescan(conn, dry_run=args.dry_run, batch_rows=args.batch_rows)
        finally:
            await conn.close()

    print(json.dumps(asyncio.run(run())))
    return 0
