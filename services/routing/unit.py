"""Routing's unit of work: one decision at a time, on the connection that holds the lease, in one transaction whose
outgoing records go through the outbox (relais.common.unit_of_work); after the commit, the agents hear first (the
decision's latency), then the records are sent and marked. What a transaction produced is its `Effects`."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from relais.common import bus, metrics
from relais.common.lease import Lease
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.common.unit_of_work import UnitOfWork, mark_published
from relais.routing import rules
from relais.routing.memory import Memory
from relais.routing.records import KAFKA

log = logging.getLogger(__name__)


@dataclass
class QueueNotice:
    """A customer to tell their place in the queue: the task, the reply's id, the conversation."""

    task_id: str
    reply_id: str
    context: pb.ConversationContext


@dataclass
class Effects:
    """What a transaction produced: records for the outbox, offers and desk events to push after commit, and the
    assists to draft after those pushes (agent, task, context, kind)."""

    records: list[bus.Record] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    pushes: list[tuple[str, desk.DeskEvent]] = field(default_factory=list)
    assists: list[tuple[str, str, pb.ConversationContext, str]] = field(default_factory=list)
    waiting: list[QueueNotice] = field(default_factory=list)  # customers queued now, to be told their place
    offer_results: list[str] = field(default_factory=list)  # accepted, rejected, timeout: counted once committed
    # What this transaction read and none of its steps changes (who is signed in, recent handling times): read once.
    reads: dict = field(default_factory=dict)

    def clear(self) -> None:
        for part in (self.records, self.offers, self.pushes, self.assists, self.waiting, self.offer_results):
            part.clear()
        self.reads.clear()


@dataclass
class Tx:
    """What a handler works with: the transaction's connection, what it produced, routing's memory and rules."""

    conn: asyncpg.Connection
    fx: Effects
    memory: Memory
    rules: rules.RoutingRules


class Decisions:
    """The unit of work of routing's decisions. `deliver(fx)` pushes a committed transaction's effects to the agents."""

    def __init__(
        self,
        pool,
        producer,
        memory: Memory,
        routing_rules: rules.RoutingRules,
        deliver: Callable[[Effects], Awaitable[None]],
        lease: Lease | None = None,
    ):
        self.pool, self.producer, self.memory, self.rules = pool, producer, memory, routing_rules
        self.deliver = deliver
        # With a lease (an active and a standby process), the decision connection is the one holding it: a process that
        # lost the lease has no connection to decide on (relais.common.lease).
        self.lease = lease
        self.lock = asyncio.Lock()  # one decision at a time
        # The connection the decisions use, one at a time under the lock: kept, not taken from the pool and reset each time.
        self.conn = None

    @asynccontextmanager
    async def decision(self):
        """The lock and the decision connection; after a failure, memory is dropped and the connection checked."""
        async with self.lock:
            conn = await self._decision_conn()
            try:
                yield conn
            except BaseException:
                self.memory.forget()  # it may hold what was rolled back
                await self._drop_conn()
                raise

    async def change(self, key: str, consumer: str, apply: Callable[[Tx], Awaitable[None]]) -> Effects:
        """One transaction: Kafka events (consumer KAFKA) are applied once per key; agents' calls and ticks (DESK) always."""
        fx = Effects()
        marks: list[str] = []  # the unit's keys to mark published once sent
        async with self.decision() as conn:
            unit = UnitOfWork(consumer, conn, marks=marks)  # relais.common's, as every service's
            async with conn.transaction():
                if consumer != KAFKA or await unit.first_time([key]):
                    fx.clear()
                    await apply(Tx(conn, fx, self.memory, self.rules))
                    unit.emit(key, list(fx.records))
                await unit.store()
        # Committed: the agents hear first (the decision's latency), then the records go out and are marked sent
        # (a redelivered event re-sends what was not acknowledged).
        await self.deliver(fx)
        _count(fx)
        if unit.outputs:
            await bus.publish(self.producer, unit.outputs)
            async with self.pool.acquire() as marking:
                await mark_published(marking, consumer, marks)
        return fx

    async def batch(self, unit: UnitOfWork, apply: Callable[[Tx], Awaitable[None]]) -> None:
        """A poll's records in one transaction on the decision connection, under the worker's unit (which sends the
        records after the commit); the agents hear first."""
        fx = Effects()
        async with self.decision() as conn:
            unit.conn = conn
            async with conn.transaction():
                await apply(Tx(conn, fx, self.memory, self.rules))
                await unit.store()
        await self.deliver(fx)
        _count(fx)

    async def _decision_conn(self):
        if self.lease is not None:
            conn = await self.lease.connection()  # Fenced when another process holds the lease
            if conn is not self.conn:  # taken again after a lost connection: what memory holds may be stale
                self.memory.forget(signed_in=True)
            self.conn = conn
            return conn
        if self.conn is not None and _lost(self.conn):
            await self._drop_conn()
        if self.conn is None:
            self.conn = await self.pool.acquire()
        return self.conn

    async def _drop_conn(self) -> None:
        """After a failure, a connection still sound (not lost, its transaction rolled back) is kept: giving back the
        lease's would release the lease. Otherwise it goes back to the pool (which resets or replaces it) and the next
        change takes another (with a lease: takes the lease again, if nobody else did meanwhile)."""
        conn = self.conn
        if conn is None:
            return
        if self.lease is not None:
            if not _lost(conn) and not conn.is_in_transaction():
                return
            self.conn = None
            await self.lease.drop()
            return
        self.conn = None
        try:
            await self.pool.release(conn)
        except Exception:
            log.warning("decision connection not released cleanly", exc_info=True)

    async def close(self) -> None:
        async with self.lock:
            if self.lease is not None:
                self.conn = None  # the worker gives the lease back
            else:
                await self._drop_conn()

    async def take_over(self) -> None:
        """This process just took the lease: what it remembers from an earlier active period is stale. Agents count as
        disconnected from now (they have reconnect_seconds to subscribe here); the agents' index is read again."""
        async with self.lock:
            self.conn = None
            self.memory.forget(signed_in=True)
            self.memory.disconnected.clear()


def _count(fx: Effects) -> None:
    for result in fx.offer_results:
        metrics.OFFERS.add(1, result)


def _lost(conn) -> bool:
    """The kept connection is closed, or asyncpg took it back when the server went away (a database restart): it
    then detaches the pool's proxy, on which every call, is_closed() included, raises InterfaceError."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True
