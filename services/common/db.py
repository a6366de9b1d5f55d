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


async def connect(dsn: str, timeout: float = 60, **options) -> asyncpg.Pool:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await asyncpg.create_pool(dsn, min_size=1, max_size=options.pop("max_size", 10), **options)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("database not ready (%r), retrying", error)
            await asyncio.sleep(0.5)
