"""lookup: a demo of the enterprise systems relais queries synchronously (opening hours, order
status, account balance), served over gRPC from seed data in PostgreSQL. An enterprise replaces
it with its own implementation of relais.v1.EnterpriseLookup."""

import functools
from pathlib import Path

import grpc

from relais.common import db, worker
from relais.common.db import CONNECTION_LOST
from relais.common.pb import lookup_pb2 as pb, lookup_pb2_grpc as pb_grpc
from relais.common.runtime import serve

MAIN_SITE = "customer-service"


def unavailable_when_database_lost(method):
    """UNAVAILABLE, the status clients retry (the bot does), instead of UNKNOWN for a lost database connection."""

    @functools.wraps(method)
    async def guarded(self, request, context):
        try:
            return await method(self, request, context)
        except CONNECTION_LOST as error:  # a restart: the first query on each pooled connection fails once
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"database unavailable: {type(error).__name__}")

    return guarded


class EnterpriseLookup(pb_grpc.EnterpriseLookupServicer):
    def __init__(self, pool):
        self.pool = pool

    @unavailable_when_database_lost
    async def GetOpeningHours(self, request, context):
        site = request.site or MAIN_SITE
        rows = await self.pool.fetch(
            "SELECT weekday, opens, closes FROM demo_opening_hours WHERE site = $1 ORDER BY weekday", site
        )
        if not rows:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown site {site!r}")
        return pb.OpeningHoursReply(site=site, days=[pb.DayHours(**dict(r)) for r in rows])

    @unavailable_when_database_lost
    async def GetOrderStatus(self, request, context):
        if not request.order_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order_id is required")
        row = await self.pool.fetchrow(
            "SELECT order_id, customer_id, status, carrier, expected_delivery FROM demo_orders WHERE upper(order_id) = upper($1)",
            request.order_id,
        )
        # An order of another customer is "not found": never confirm it exists.
        if row is None or (request.customer_id and row["customer_id"] != request.customer_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no order {request.order_id!r} for this customer")
        return pb.OrderStatusReply(
            order_id=row["order_id"],
            status=row["status"],
            carrier=row["carrier"],
            expected_delivery=row["expected_delivery"].isoformat() if row["expected_delivery"] else "",
        )

    @unavailable_when_database_lost
    async def GetAccountBalance(self, request, context):
        row = await self.pool.fetchrow(
            "SELECT account_masked, balance_cents, currency, as_of FROM demo_accounts WHERE customer_id = $1",
            request.customer_id,
        )
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no account for customer {request.customer_id!r}")
        return pb.AccountBalanceReply(
            account_masked=row["account_masked"],
            balance_cents=row["balance_cents"],
            currency=row["currency"],
            as_of=row["as_of"].isoformat(),
        )


async def _session_untouched(connection) -> None:
    """A lookup's connection goes back to the pool as it came: one read-only statement, outside any transaction, no
    session setting, cursor, LISTEN or advisory lock. asyncpg's default reset (a statement of four, a round trip
    on every release) would cost more than the lookup's own query."""


async def build(w: worker.Worker) -> worker.Service:
    assert w.pool is not None  # lookup runs with a database
    await w.pool.execute((Path(__file__).parent / "seed.sql").read_text())
    # Its own pool for the lookups, without the reset (the worker's keeps its health checks).
    pool = await db.connect(w.settings.database_url, reset=_session_untouched)
    servicer = EnterpriseLookup(pool)
    return worker.Service(
        grpc_services=(pb.DESCRIPTOR.services_by_name["EnterpriseLookup"].full_name,),
        register=lambda server: pb_grpc.add_EnterpriseLookupServicer_to_server(servicer, server),
        close=pool.close,
    )


def main() -> None:
    serve("lookup", lambda settings, stop: worker.run(settings, stop, build, kafka=False))


if __name__ == "__main__":
    main()
