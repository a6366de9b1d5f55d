"""analytics: the truth about bot and people, side by side.

Stores every fact once, at its event time: outcomes of turns and conversations (surveys included),
agents' state changes and answers to suggestions, and customers' messages redacted with their
sentiment. KPIs (relais.analytics.kpis), irritants and staffing are computed from these rows when
asked, through the gRPC Analytics API, for any window and dimension; replaying the log into an empty
store gives the same numbers. A ticker raises alerts on relais.alerts.v1: over-automation
(containment up while bot CSAT or FCR down) and service level under target, once per window each.

Ingestion (ingest), when alerts are judged (alerts, pure) and the ticker that judges them (alert_ticker), the
reads (store) and the gRPC API (api) each have their module; this one wires them to the shared runtime.
"""

from __future__ import annotations

import time

from relais.analytics import alerts, api, ingest, kpis
from relais.analytics.alert_ticker import AlertTicker
from relais.common import topics, worker
from relais.common.config import env
from relais.common.pb import analytics_pb2, analytics_pb2_grpc
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork


async def build(w: worker.Worker) -> worker.Service:
    cost = kpis.CostModel.load(env("RELAIS_COST_MODEL", "") or None)
    policy = kpis.Policy(
        recontact_days=float(env("RELAIS_RECONTACT_DAYS", "7")),
        service_level_seconds=float(env("RELAIS_SERVICE_LEVEL_SECONDS", "20")),
    )
    rules = kpis.AlertRules(service_level_target=float(env("RELAIS_SERVICE_LEVEL_TARGET", "0.8")))
    windows = alerts.TouchedWindows(env("RELAIS_ALERT_WINDOW", "day"), float(env("RELAIS_ALERT_SETTLE_SECONDS", "30")))
    ticker = AlertTicker(w.pool, w.producer, windows, rules, cost, policy)

    async def handle_batch(items: list[Item], unit: UnitOfWork) -> None:
        new_outcomes = await ingest.store_facts(items, unit)
        touched = time.monotonic()
        for at in new_outcomes:
            windows.touch(at, touched)

    servicer = api.Analytics(w.pool, cost, policy, float(env("RELAIS_STAFFING_INTERVAL_MINUTES", "15")), windows.window)
    return worker.Service(
        decode=ingest.decode,
        handle_batch=handle_batch,
        topics=(topics.OUTCOMES, topics.AGENT_EVENTS, topics.CLASSIFIED_TURNS),
        grpc_services=(analytics_pb2.DESCRIPTOR.services_by_name["Analytics"].full_name,),
        register=lambda server: analytics_pb2_grpc.add_AnalyticsServicer_to_server(servicer, server),
        background=(ticker.run,),
    )


def main() -> None:
    serve("analytics", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
