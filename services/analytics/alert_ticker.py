"""The alert ticker: every RELAIS_ALERT_SECONDS, judges the windows relais.analytics.alerts says are due, and
raises what it finds, each alert once (its kpi_alerts row and its event in one unit of work, keyed by its id)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from aiokafka import AIOKafkaProducer

from relais.analytics import alerts, kpis, store
from relais.common import bus, outbox
from relais.common.config import env

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class AlertTicker:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    windows: alerts.TouchedWindows  # touched by ingestion as outcomes are stored
    rules: kpis.AlertRules
    cost: kpis.CostModel
    policy: kpis.Policy

    async def run(self) -> None:
        self.windows.after_restart(now())
        while True:
            await asyncio.sleep(float(env("RELAIS_ALERT_SECONDS", "30")))
            await self.tick(time.monotonic())

    async def tick(self, clock: float) -> None:
        settled = self.windows.take_settled(clock)
        try:
            await self.judge(settled)
        except Exception:  # a failed pass is retried with the same windows
            log.exception("alert check failed")
            self.windows.retry(settled)

    async def judge(self, settled: list[datetime]) -> None:
        for start in self.windows.candidates(settled):
            if not self.windows.ready(start, now()):  # asked as each comes: ingestion may touch it meanwhile
                continue
            async with self.pool.acquire() as conn:
                rows = await store.kpi_rows(
                    conn,
                    *alerts.judged_range(start, self.windows.step),
                    window=self.windows.window,
                    cost=self.cost,
                    policy=self.policy,
                )
            for alert in alerts.raised_in(rows, self.rules, start):
                await self.publish(alert)

    async def publish(self, alert: kpis.Alert) -> None:
        async def apply(conn) -> list[bus.Record]:
            await conn.execute(
                "INSERT INTO kpi_alerts (alert_id, kind, window_start, detail) VALUES ($1, $2, $3, $4)",
                alert.alert_id,
                alert.kind,
                datetime.fromisoformat(alert.window_start),
                alert.detail,
            )
            log.warning("alert %s: %s", alert.alert_id, alert.detail)
            return [alerts.alert_record(alert, self.windows.window)]

        await outbox.process_once(self.pool, self.producer, "analytics-alerts", alert.alert_id, apply)
