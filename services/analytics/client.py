"""`relais report`: reads the Analytics gRPC API and writes the self-contained HTML report."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc

from relais.analytics import kpis
from relais.analytics.report import write_report
from relais.common import grpcserver
from relais.common.pb import analytics_pb2 as api, analytics_pb2_grpc


def _plan(plan: api.StaffingPlan) -> dict:
    return {
        "agents": plan.agents,
        "service_level": plan.service_level,
        "occupancy": plan.occupancy,
        "asa_seconds": plan.asa_seconds,
    }


def _irritant(topic: api.Irritant) -> dict:
    return {
        "label": topic.label,
        "size": topic.size,
        "previous_size": topic.previous_size,
        "trend": topic.trend if topic.HasField("trend") else None,
        "examples": list(topic.examples),
    }


def _set_fields(message) -> dict:
    """The fields that are set, as Python values (unset optional figures stay None in the dataclass)."""
    return {
        f.name: dict(v) if f.message_type and f.message_type.GetOptions().map_entry else v
        for f, v in message.ListFields()
    }


def row_from_proto(message: api.Kpis) -> kpis.KpiRow:
    doc = _set_fields(message)
    doc.pop("bot", None), doc.pop("human", None), doc.pop("agent", None)
    agent = kpis.AgentFigures(**_set_fields(message.agent)) if message.HasField("agent") else None
    return kpis.KpiRow(
        bot=kpis.Side(**_set_fields(message.bot)), human=kpis.Side(**_set_fields(message.human)), agent=agent, **doc
    )


def _agent(row: kpis.KpiRow) -> dict:
    figures = row.agent or kpis.AgentFigures()
    return {
        "agent_id": row.dimension_value,
        "contacts": row.contacts,
        "aht_seconds": row.human.handling_seconds,
        "fcr": row.fcr,
        "csat": row.human.csat,
        "transfers": figures.transfers,
        "suggestions_answered": figures.suggestions_answered,
        "suggestion_acceptance": figures.suggestion_acceptance_rate,
    }


def _side(side: kpis.Side, row: kpis.KpiRow, human: bool) -> dict:
    figures = {
        "contacts": side.contacts,
        "fcr": side.fcr,
        "csat": side.csat,
        "nps": side.nps,
        "aht_seconds": side.handling_seconds,
        "cost_per_contact": side.cost_per_contact,
    }
    if human:
        figures |= {
            "asa_seconds": row.asa_seconds,
            "service_level": row.service_level,
            "abandonment": row.abandonment_rate,
            "occupancy": row.occupancy,
            "contacts_per_agent_hour": row.contacts_per_agent_hour,
        }
    else:
        figures |= {"containment": row.containment_rate, "false_containment": row.false_containment_rate}
    return figures


async def collect(
    address: str,
    start: datetime,
    end: datetime,
    window: str = "day",
    peak_multiplier: float = 3.0,
    target_level: float = 0.8,
    target_seconds: float = 20.0,
    *,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """The report's data (relais.analytics.report's shape) for [start, end); `token`: RELAIS_SERVICE_TOKEN,
    `env`: where RELAIS_TLS_CA is read (docs/security.md, "TLS")."""
    async with grpcserver.channel(address, token, env=env, trace=False) as channel:
        stub = analytics_pb2_grpc.AnalyticsStub(channel)
        span = {"to": _ts(end), **{"from": _ts(start)}}
        total = await stub.GetKpis(api.KpiRequest(**span))
        series = await stub.GetKpis(api.KpiRequest(window=window, **span))
        agents = await stub.GetKpis(api.KpiRequest(dimension=kpis.AGENT, **span))
        found = await stub.GetIrritants(api.IrritantsRequest(**span))
        plan = await stub.GetStaffing(
            api.StaffingRequest(
                target_level=target_level, target_seconds=target_seconds, peak_multiplier=peak_multiplier, **span
            )
        )
        # The alerts analytics raised and published, never recomputed here: a day still going has none.
        raised = await stub.ListAlerts(api.AlertsRequest(**span))
    rows = [row_from_proto(r) for r in series.rows]
    overall = row_from_proto(total.rows[0]) if total.rows else kpis.KpiRow()
    return {
        "title": "relais — contact-center report",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "window": window,
        "totals": {
            "bot": _side(overall.bot, overall, False),
            "human": _side(overall.human, overall, True),
            "saving": {
                "all_human_cost": overall.all_human_cost,
                "actual_cost": overall.total_cost,
                "saving": overall.saving,
            },
        },
        "series": [
            {
                "window_start": r.window_start,
                "bot": {
                    "contacts": r.bot.contacts,
                    "containment": r.containment_rate,
                    "csat": r.bot.csat,
                    "fcr": r.bot.fcr,
                },
                "human": {
                    "contacts": r.human.contacts,
                    "csat": r.human.csat,
                    "fcr": r.human.fcr,
                    "service_level": r.service_level,
                },
            }
            for r in rows
        ],
        "agents": [_agent(row_from_proto(r)) for r in agents.rows],
        "irritants": [_irritant(i) for i in found.irritants],
        "irritant_contacts": found.contacts,
        "staffing": {
            "calls_per_hour": plan.calls_per_hour,
            "aht_seconds": plan.aht_seconds,
            "target_level": target_level,
            "target_seconds": target_seconds,
            "basis": plan.basis,
            "recommended": _plan(plan.recommended),
            "peak_multiplier": peak_multiplier,
            "peak": _plan(plan.peak) if plan.HasField("peak") else None,
            "curve": [_plan(p) for p in plan.curve],
        }
        if plan.calls_per_hour
        else {},
        "alert_window": raised.window,
        "alerts": [
            {
                "kind": a.kind,
                "window_start": a.window_start,
                "detail": a.detail,
                "raised_at": a.raised_at.ToDatetime(tzinfo=timezone.utc).isoformat(timespec="seconds"),
            }
            for a in raised.alerts
        ],
    }


def _ts(at: datetime):
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def add_parser(commands) -> None:
    report = commands.add_parser("report", help="write the self-contained HTML analytics report")
    report.add_argument("--out", default="relais-report.html", help="HTML file to write (default relais-report.html)")
    report.add_argument("--days", type=float, default=7, help="how far back from --to (default 7)")
    report.add_argument("--to", help="end of the range, RFC 3339 (default now)")
    report.add_argument("--window", choices=sorted(kpis.WINDOWS), default="day")
    report.add_argument("--peak-multiplier", type=float, default=3.0, help="staffing for a peak (default 3)")
    report.add_argument("--endpoints")


def report_cli(args, endpoints: dict[str, str]) -> int:
    end = datetime.fromisoformat(args.to.replace("Z", "+00:00")) if args.to else datetime.now(timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    start = end - timedelta(days=args.days)
    try:
        data = asyncio.run(
            collect(
                endpoints["ANALYTICS_GRPC_ADDR"],
                start,
                end,
                args.window,
                args.peak_multiplier,
                token=endpoints.get("RELAIS_SERVICE_TOKEN"),
                env=endpoints,
            )
        )
    except grpc.RpcError as error:
        print(
            f"relais report: error: the Analytics API at {endpoints['ANALYTICS_GRPC_ADDR']} answered "
            f"{error.code().name}: {error.details()} — is the stack up (make up)?",
            file=sys.stderr,
        )
        return 1
    path = write_report(data, Path(args.out))
    print(
        f"wrote {path} ({data['totals']['bot']['contacts'] + data['totals']['human']['contacts']} contacts, "
        f"{len(data['series'])} {args.window}s, {len(data['irritants'])} irritants)"
    )
    return 0
