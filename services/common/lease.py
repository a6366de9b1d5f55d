"""Exactly one active process of a service: a lease held in PostgreSQL.

The lease is a session-level advisory lock (`pg_try_advisory_lock`) taken on one pooled connection, the one the
service makes its decisions on. PostgreSQL releases it when that session ends — a process killed, its socket
closed, the database restarted — and only then can another process take it. Since a decision is committed
through the very session that holds the lock, a process that lost the lease cannot commit one: its connection
is gone, and `connection()` takes the lock again only when nobody else holds it (else Fenced). Whoever holds
the lock names itself in its session's application_name, so a standby can tell callers where the active is.
"""

import asyncio
import logging
import zlib

import asyncpg

from relais.common.db import CONNECTION_LOST

log = logging.getLogger(__name__)

NAMESPACE = 0x72656C61  # 'rela': the first key of pg_try_advisory_lock(int, int), shared by relais' leases
HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2 AND l.granted"""


class Fenced(ConnectionError):
    """This process does not hold the lease (it never had it, or lost it to another process): it must not decide.
    A ConnectionError, so that the consume loop retries the record (it is never dead-lettered) until it stops."""


def lost(conn) -> bool:
    """The connection is closed, or asyncpg took it back when the server went away (its pool proxy then raises
    InterfaceError on every call, is_closed() included)."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


class Lease:
    """The lease `name` (e.g. "routing"): `try_acquire()` takes it when free; `connection()` is the connection that
    holds it, for a decision. `active` is the worker's view (leading or standby); `lost` is set when the lease
    went to another process while this one was active."""

    def __init__(self, pool: asyncpg.Pool, name: str, advertised: str):
        self.pool = pool
        self.name = name
        self.key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self.label = f"relais {name} active {advertised}"[:63]  # application_name holds 63 bytes
        self.conn = None
        self.active = False
        self.lost = asyncio.Event()

    def held(self) -> bool:
        return self.conn is not None and not lost(self.conn)

    async def try_acquire(self, timeout: float = 5) -> bool:
        """Takes the lock if nobody holds it; True when this process holds it now."""
        if self.held():
            return True
        await self.drop()
        conn = await self.pool.acquire(timeout=timeout)
        try:
            await conn.execute("SELECT set_config('application_name', $1, false)", self.label, timeout=timeout)
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", NAMESPACE, self.key, timeout=timeout)
        except BaseException:
            await _release(self.pool, conn)
            raise
        if not got:
            await _release(self.pool, conn)  # asyncpg's reset restores application_name
            return False
        self.conn = conn
        return True

    async def connection(self):
        """The connection holding the lease. When it was lost (a database restart), the lock is taken again on a new
        one if it is still free; if another process took it, this one is fenced: `lost` is set and Fenced raised."""
        if self.held():
            return self.conn
        if not self.active:
            raise Fenced(f"{self.name}: this process is the standby")
        if await self.try_acquire():
            log.warning("%s: the lease's connection was lost; lease taken again on a new connection", self.name)
            return self.conn
        self.active = False
        self.lost.set()
        raise Fenced(f"{self.name}: another process took the lease")

    async def holder(self) -> str:
        """Where the active process is (its advertised address), '' when nobody holds the lease."""
        label = await self.pool.fetchval(HOLDER, NAMESPACE, self.key, timeout=5)
        prefix = f"relais {self.name} active "
        return label[len(prefix) :] if label and label.startswith(prefix) else ""

    async def drop(self) -> None:
        """Gives the connection back to the pool: asyncpg's reset (pg_advisory_unlock_all) releases the lock with it."""
        conn, self.conn = self.conn, None
        if conn is not None:
            await _release(self.pool, conn)


async def _release(pool, conn) -> None:
    try:
        await pool.release(conn)
    except Exception as error:  # the server went away: asyncpg closed it instead, and the lock went with the session
        log.warning("a lease connection was not released cleanly (closed instead): %r", error)


async def wait_for_lease(lease: Lease, stop: asyncio.Event, on_holder, poll_seconds: float = 1.0) -> bool:
    """The standby's loop: tries the lease every `poll_seconds` until it gets it (True) or `stop` is set (False);
    `on_holder(address)` hears where the active process is whenever that changes."""
    known = None
    while not stop.is_set():
        try:
            if await lease.try_acquire():
                return True
            holder = await lease.holder()
            if holder != known:
                known = holder
                await on_holder(holder)
        except (*CONNECTION_LOST, asyncio.TimeoutError, asyncpg.PostgresError) as error:
            log.debug("lease %s not tried: %r", lease.name, error)  # the database is down: the watchdog says so
        try:
            await asyncio.wait_for(stop.wait(), poll_seconds)
        except asyncio.TimeoutError:
            pass
    return False
