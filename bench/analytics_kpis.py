"""How long analytics takes to answer, as its store grows: GetKpis' reads and formulas over N days of
generated traffic (bench/traffic.py), on a private PostgreSQL. Figures, not assertions.

    python bench/analytics_kpis.py [--days 30] [--scale 10]

`--scale` multiplies the generator's default day (about 70 contacts, 330 outcomes) — scale 10 is about
700 contacts a day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from bench import traffic
from infra.ports import free_port
from infra.postgres.migrate import migrate
from infra.postgres.server import PostgresServer
from relais.analytics import ingest, kpis, store
from relais.common import progress, topics
from relais.common.pb import conversation_pb2 as pb

COLUMNS = (
    "outcome_id",
    "conversation_id",
    "customer_id",
    "kind",
    "intent",
    "language",
    "channel",
    "reason",
    "agent_id",
    "disposition",
    "resolved",
    "survey_scale",
    "survey_score",
    "survey_comment",
    "at",
)


def rows_of(generated: traffic.Traffic) -> list[tuple]:
    """The kpi_outcomes rows analytics would store for the generated outcomes (its own ingestion)."""
    return [
        ingest.outcome_fact(pb.Outcome.FromString(r.value)).values
        for r in generated.records
        if r.topic == topics.OUTCOMES
    ]


async def timed(label: str, call, repeat: int = 3) -> dict:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = await call()
        best = min(best, time.perf_counter() - started)
    return {"query": label, "best_ms": round(best * 1000, 1), "rows": len(result)}


async def run(dsn: str, days: int, scale: int) -> dict:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    day = traffic.Day()
    day = replace(
        day,
        **{
            k: getattr(day, k) * scale
            for k in (
                "contained",
                "false_contained",
                "late_return",
                "other_intent_return",
                "bot_unresolved",
                "answered_resolved",
                "answered_unresolved",
                "abandoned",
                "agents",
            )
        },
    )
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    generated = traffic.generate([day] * days, start=start)
    outcomes = rows_of(generated)
    await conn.copy_records_to_table("kpi_outcomes", records=outcomes, columns=COLUMNS)
    await conn.execute("ANALYZE")
    end = generated.end
    cost, policy = kpis.CostModel(), kpis.Policy()
    figures = [
        await timed(
            "day windows, whole range", lambda: store.kpi_rows(conn, start, end, window="day", cost=cost, policy=policy)
        ),
        await timed(
            "whole range by intent",
            lambda: store.kpi_rows(conn, start, end, dimension="intent", cost=cost, policy=policy),
        ),
        await timed(
            "last day by hour",
            lambda: store.kpi_rows(conn, end - timedelta(days=1), end, window="hour", cost=cost, policy=policy),
        ),
        await timed(
            "alert check (two days)",
            lambda: store.kpi_rows(conn, end - timedelta(days=2), end, window="day", cost=cost, policy=policy),
        ),
    ]
    contacts = await conn.fetchval("SELECT count(*) FROM kpi_contacts")
    await conn.close()
    return {"days": days, "contacts": contacts, "outcomes": len(outcomes), "timings": figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PostgresServer(Path(tmp) / "pg", port=free_port(), fast=True) as server:
        with progress.stage(f"{args.days} days of traffic into PostgreSQL, then the KPI queries"):
            result = asyncio.run(run(server.dsn, args.days, args.scale))
    print(json.dumps(result))
    for t in result["timings"]:
        print(f"  {t['query']:<28} {t['best_ms']:>9.1f} ms  ({t['rows']} rows)")
    return 0


if __name__ == "__main__":
    with progress.reporting("bench/analytics_kpis.py"):
        sys.exit(main())
