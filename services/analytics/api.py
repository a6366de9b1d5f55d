"""The Analytics gRPC API: KPIs, irritants, staffing and the alerts raised, for any window, computed when asked
from the rows relais.analytics.store reads (the formulas: kpis, irritants, staffing)."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone
from typing import overload

import grpc
from google.protobuf import json_format

from relais.analytics import irritants, kpis, staffing, store
from relais.common.pb import analytics_pb2, analytics_pb2_grpc


def now() -> datetime:
    return datetime.now(timezone.utc)


@overload
def _bound(ts, default: datetime) -> datetime: ...
@overload
def _bound(ts, default: None = None) -> datetime | None: ...
def _bound(ts, default: datetime | None = None) -> datetime | None:
    """A request's range bound; an unset one is `default`."""
    return ts.ToDatetime(tzinfo=timezone.utc) if ts.seconds or ts.nanos else default


class Analytics(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(
        self, pool, cost: kpis.CostModel, policy: kpis.Policy, staffing_minutes: float = 15.0, alert_window: str = "day"
    ):
        self.pool, self.cost, self.policy, self.staffing_minutes = pool, cost, policy, staffing_minutes
        self.alert_window = alert_window

    async def ListAlerts(self, request, context):
        """The alerts raised on relais.alerts.v1, from what was stored when raising them: nothing is recomputed,
        so a window still filling, never judged, has none."""
        async with self.pool.acquire() as conn:
            raised = await store.alerts(conn, _bound(getattr(request, "from")), _bound(request.to, now()))
        reply = analytics_pb2.AlertsReply(window=self.alert_window)
        for alert in raised:
            item = reply.alerts.add(
                alert_id=alert["alert_id"],
                kind=alert["kind"],
                detail=alert["detail"],
                window_start=alert["window_start"].isoformat(),
            )
            item.raised_at.FromDatetime(alert["raised_at"])
        return reply

    async def GetKpis(self, request, context):
        end = _bound(request.to, now())
        start = _bound(getattr(request, "from"))
        async with self.pool.acquire() as conn:
            inputs = await store.kpi_inputs(conn, start, end, self.policy, agents=request.dimension == kpis.AGENT)
        try:
            rows = store.rows_of(
                inputs,
                start,
                end,
                window=request.window,
                dimension=request.dimension,
                cost=self.cost,
                policy=self.policy,
            )
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        started, uses = inputs.started, inputs.uses
        reply = analytics_pb2.KpiReply(
            currency=self.cost.currency,
            service_level_seconds=self.policy.service_level_seconds,
            recontact_days=self.policy.recontact_days,
        )
        reply.total.CopyFrom(_counts(started))
        for dimension, target in (("intent", reply.by_intent), ("language", reply.by_language)):
            for value in {getattr(c, dimension) or "unknown" for c in started}:
                target[value].CopyFrom(_counts([c for c in started if (getattr(c, dimension) or "unknown") == value]))
        counted = {name: sum(u.use == name for u in uses) for name in ("used", "edited", "ignored")}
        answered = sum(counted.values())
        reply.suggestions.CopyFrom(
            analytics_pb2.SuggestionCounts(
                **counted, acceptance_rate=(counted["used"] + counted["edited"]) / answered if answered else 0.0
            )
        )
        for row in rows:
            json_format.ParseDict(row.to_dict(), reply.rows.add())
        return reply

    async def GetIrritants(self, request, context):
        end = _bound(request.to, now())
        start = _bound(getattr(request, "from"), end - timedelta(days=7))
        async with self.pool.acquire() as conn:
            current = await store.verbatims(conn, start, end)
            previous = await store.verbatims(conn, start - (end - start), start)
        found = await asyncio.to_thread(
            irritants.find_irritants,
            [v.text for v in current],
            [v.text for v in previous],
            contacts=[v.conversation_id for v in current],
            previous_contacts=[v.conversation_id for v in previous],
            max_topics=request.max_topics or 8,
        )
        reply = analytics_pb2.IrritantsReply(
            verbatims=len(current),
            previous_verbatims=len(previous),
            contacts=len({v.conversation_id for v in current}),
            previous_contacts=len({v.conversation_id for v in previous}),
        )
        for topic in found:
            reply.irritants.add(
                label=topic.label,
                size=topic.size,
                previous_size=topic.previous_size,
                examples=topic.examples,
                terms=topic.terms,
                languages=topic.languages,
                **({"trend": topic.trend} if topic.trend is not None else {}),
            )
        return reply

    async def GetStaffing(self, request, context):
        end = _bound(request.to, now())
        start = _bound(getattr(request, "from"), end - timedelta(days=1))
        # Arrivals are read over staffing intervals (15 minutes, as workforce planning does), so a surge shows.
        minutes = min(self.staffing_minutes, max((end - start).total_seconds() / 60, 1 / 60))
        async with self.pool.acquire() as conn:
            busiest = await store.busiest_interval(conn, start, end, minutes)
            handled = [
                s
                for c in await store.contacts(conn, start - timedelta(days=1), end)
                if (s := kpis.handling_seconds(c)) is not None
            ]
        reply = analytics_pb2.StaffingReply()
        if busiest is None:
            reply.basis = f"no hand-off between {start.isoformat()} and {end.isoformat()}"
            return reply
        slot, arrivals = busiest
        count = arrivals * 60 / minutes  # per hour
        aht = kpis.mean(handled) or self.cost.baseline_aht_seconds
        reply.calls_per_hour, reply.aht_seconds = count, aht
        reply.basis = (
            f"busiest {minutes:.3g}-minute interval from {slot.isoformat()}: {arrivals} hand-offs, so {count:g}"
            " an hour; handling time "
            + (f"mean of {len(handled)} closed contacts" if handled else "from the cost model (none closed)")
        )
        target_level = request.target_level or 0.8
        target_seconds = request.target_seconds or 20.0
        concurrency = request.concurrency or 1.0
        try:
            plan = staffing.required_agents(count, aht, target_level, target_seconds, concurrency=concurrency)
            reply.recommended.CopyFrom(_plan(plan))
            if request.peak_multiplier:
                reply.peak.CopyFrom(
                    _plan(
                        staffing.required_agents(
                            count * request.peak_multiplier, aht, target_level, target_seconds, concurrency=concurrency
                        )
                    )
                )
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        low = max(1, plan.agents - 5)
        for point in staffing.staffing_curve(
            count, aht, target_seconds, range(low, plan.agents + 6), concurrency=concurrency
        ):
            reply.curve.append(_plan(point))
        return reply


def _plan(plan: staffing.Staffing) -> analytics_pb2.StaffingPlan:
    asa = plan.asa_seconds if math.isfinite(plan.asa_seconds) else 0.0
    return analytics_pb2.StaffingPlan(
        agents=plan.agents, service_level=plan.service_level, occupancy=plan.occupancy, asa_seconds=asa
    )


def _counts(contacts: list[kpis.Contact]) -> analytics_pb2.KpiCounts:
    return analytics_pb2.KpiCounts(
        contacts=len(contacts),
        bot_resolved=sum(c.contained for c in contacts),
        handed_off=sum(c.handed_off for c in contacts),
    )
