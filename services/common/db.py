"""PostgreSQL connection pool, waiting for the database when it is not up yet."""

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

# The database unreachable or gone away (a restart): shutting down, crashed, or a pooled connection it closed
# under asyncpg ("cannot switch to state ...; another operation is in progress"). Trying again later may work.
CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)


# Each statement planned for its own arguments. The services' statements take a batch's arrays (`unnest`,
# `= ANY`), and the generic plan PostgreSQL settles on after five runs is costed on the table as it was then:
# made on a young, small table, it kept scanning the whole table once it was large (8-12 ms a call at 1,000 turns/s
# until autovacuum's first analyze). Planning each time costs nothing measurable next to a batch.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def connect(dsn: str, timeout: float = 60, **options) -> asyncpg.Pool:
    deadline = asyncio.get_running_loop().time() + timeout
    options["server_settings"] = SERVER_SETTINGS | options.get("server_settings", {})
    while True:
        try:
            return await asyncpg.create_pool(dsn, min_size=1, max_size=options.pop("max_size", 10), **options)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("database not ready (%r), retrying", error)
            await asyncio.sleep(0.5)
