"""Process each event once, publish its outputs at least once (transactional outbox in Postgres).

In one database transaction: record the event as processed, apply its state changes, store its
outgoing records. Then publish them and mark them published. A redelivered event finds itself
already processed and only re-publishes what was not yet acknowledged, so no state change is
applied twice and no output is lost between the database commit and the broker.
"""

import json
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from relais.common.bus import Record, current_batch, publish

Apply = Callable[[asyncpg.Connection], Awaitable[list[Record]]]


async def process_once(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: str, event_key: str, apply: Apply
) -> bool:
    """Runs `apply` once per (consumer, event_key); returns False for a duplicate.

    Inside a batch of the consume loop (relais.common.bus.Batch) it runs in the batch's transaction, and
    the batch publishes the records after its commit and marks them published.
    """
    batch = current_batch()
    if batch is not None and batch.conn is not None:
        first_time, pending = await _apply_once(batch.conn, consumer, event_key, apply)
        if pending:
            await publish(producer, pending)
            batch.marks.append((consumer, event_key))
        return first_time
    async with pool.acquire() as conn:
        async with conn.transaction():
            first_time, pending = await _apply_once(conn, consumer, event_key, apply)
        if pending:
            await publish(producer, pending)
            await conn.execute(
                "UPDATE outbox SET published = true WHERE consumer = $1 AND event_key = $2",
                consumer,
                event_key,
            )
    return first_time


async def _apply_once(conn, consumer: str, event_key: str, apply: Apply) -> tuple[bool, list[Record]]:
    """Records the event, applies it and stores its outputs, the first time; returns the outputs to publish
    (for a duplicate: those not acknowledged yet)."""
    first_time = bool(await conn.fetchval(
        "INSERT INTO processed_events (consumer, event_key) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_key,
    ))
    if first_time:
        records = await apply(conn)
        if records:
            await conn.executemany(
                "INSERT INTO outbox (consumer, event_key, seq, topic, key, value, headers)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(consumer, event_key, i, r.topic, r.key, r.value, _headers_json(r.headers)) for i, r in enumerate(records)],
            )
        return True, records
    pending = await conn.fetch(
        "SELECT seq, topic, key, value, headers FROM outbox"
        " WHERE consumer = $1 AND event_key = $2 AND NOT published ORDER BY seq",
        consumer,
        event_key,
    )
    return False, [Record(r["topic"], r["key"], r["value"], _headers(r["headers"])) for r in pending]


def _headers_json(headers: list[tuple[str, bytes]]) -> str:
    return json.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers])


def _headers(stored: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in json.loads(stored)]
