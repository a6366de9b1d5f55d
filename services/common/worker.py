"""The plumbing shared by every service that consumes a topic: pool, producer, consumer, health.

A service supplies a `handle(record)` coroutine and, optionally, gRPC servicers; `run` wires
them to Kafka, Postgres and a gRPC server with health and reflection, reports SERVING once
everything is connected, and on stop finishes the record in hand, commits, and closes.

Health tells the truth: a watchdog checks the database (`SELECT 1`) and the broker every few seconds
(RELAIS_HEALTH_SECONDS, 2) and reports NOT_SERVING while either is unreachable, saying so once in the log.
A service with a lease (routing) runs as an active process and standbys (relais.common.lease): a standby
reports NOT_SERVING, refuses its gRPC calls with UNAVAILABLE, joins no consumer group and runs no background
job until it takes the lease; a process that loses the lease goes back to standby.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from relais.common import bus, db, unit_of_work
from relais.common.config import Settings, env, setting
from relais.common.grpcserver import GrpcServer, Register
from relais.common.lease import Lease, wait_for_lease
from relais.common.runtime import OUTAGES

log = logging.getLogger(__name__)


@dataclass
class Worker:
    settings: Settings
    producer: AIOKafkaProducer | None
    pool: asyncpg.Pool | None
    stop: asyncio.Event


@dataclass
class Service:
    # A poll's records as one unit of work (relais.common.unit_of_work): each decoded by `decode` (bus.BadInput:
    # dead-lettered alone), then handled together by `handle_batch`.
    decode: unit_of_work.Decode | None = None
    handle_batch: unit_of_work.BatchHandler | None = None
    # True: handle_batch opens the unit's transaction itself and stores its outbox rows (routing: on the connection
    # holding its lease, under its decision lock); the loop only sends the outputs and commits the offsets.
    own_transaction: bool = False
    topics: tuple[str, ...] = ()
    grpc_services: tuple[str, ...] = ()
    register: Register | None = None
    background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = ()
    close: Callable[[], Awaitable[None]] | None = None
    # One active process at a time (relais.common.lease): only the lease's holder consumes, runs `background`
    # and answers `grpc_services`; `on_active` runs each time this process takes the lease, before it consumes.
    lease: Lease | None = None
    on_active: Callable[[], Awaitable[None]] | None = None


Build = Callable[[Worker], Awaitable[Service]]

# A leased service's consumer: a dead active's partitions go to the new one after this session timeout (the broker's
# minimum), not the default 10 s.
LEASED_SESSION_TIMEOUT_MS = 6000


class Health:
    """SERVING only once started, while the database and the broker answer, and (with a lease) while active."""

    def __init__(self, server: GrpcServer, leased: bool):
        self.server = server
        self.started = False
        self.reachable = True
        self.active = not leased
        self.shown: bool | None = None

    async def update(self) -> None:
        serving = self.started and self.reachable and self.active
        if serving != self.shown:
            self.shown = serving
            await self.server.set_serving(serving)


async def run(
    settings: Settings, stop: asyncio.Event, build: Build, *, database: bool = True, kafka: bool = True
) -> None:
    pool = await db.connect(settings.database_url) if database else None
    producer = bus.make_producer(settings.kafka_bootstrap) if kafka else None
    if producer is not None:
        await producer.start()
    worker = Worker(settings, producer, pool, stop)
    service = await build(worker)
    server = GrpcServer(
        settings.grpc_addr, list(service.grpc_services), service.register, gated=service.lease is not None
    )
    await server.start()
    health = Health(server, leased=service.lease is not None)
    watchdog = asyncio.create_task(
        watch(health, settings.service, pool, producer, stop, setting("RELAIS_HEALTH_SECONDS", 2.0))
    )
    try:
        if service.lease is None:
            await _serve(settings, service, worker, health, server, stop)
        else:
            await _lead(settings, service, worker, health, server, stop)
    finally:
        watchdog.cancel()
        await server.stop(grace=2)
        if service.close is not None:
            await service.close()
        if service.lease is not None:
            await service.lease.drop()
        if producer is not None:
            await producer.stop()
        if pool is not None:
            await pool.close()


async def _serve(
    settings: Settings,
    service: Service,
    worker: Worker,
    health: Health,
    server: GrpcServer,
    stop: asyncio.Event,
    leased: bool = False,
) -> None:
    """Consumes and runs the background jobs until `stop` is set."""
    consumer = None
    revocations = unit_of_work.Revocations()
    tasks = [asyncio.create_task(job()) for job in service.background]
    try:
        overrides = dict(session_timeout_ms=LEASED_SESSION_TIMEOUT_MS, heartbeat_interval_ms=2000) if leased else {}
        if service.handle_batch is not None:
            consumer = bus.make_consumer(settings.kafka_bootstrap, settings.consumer_group, **overrides)
            consumer.subscribe(service.topics, listener=revocations)
            await consumer.start()
        health.started = True
        await health.update()
        log.info("%s serving on %s (port %d)", settings.service, settings.grpc_addr, server.port)
        if consumer is not None:
            assert service.decode is not None and service.handle_batch is not None  # a consumer has both
            await unit_of_work.consume_batches(
                settings.service,
                consumer,
                worker.producer,
                service.decode,
                service.handle_batch,
                stop,
                pool=None if service.own_transaction else worker.pool,
                one_at_a_time=env("RELAIS_BATCH", "on") == "off",
                revocations=revocations,
                group=settings.consumer_group,
            )
        else:
            await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if consumer is not None:
            await consumer.stop()


async def _lead(
    settings: Settings, service: Service, worker: Worker, health: Health, server: GrpcServer, stop: asyncio.Event
) -> None:
    """Standby until this process takes the lease, then active until it stops or loses the lease (standby again)."""
    lease, gate = service.lease, server.gate
    assert lease is not None and gate is not None  # run with a lease, on a gated server

    async def heard(holder: str) -> None:
        gate.close(f"standby: call {holder}" if holder else "standby: the active process is being replaced, try again")
        log.info("%s standby: the active process is %s", settings.service, holder or "(none yet)")

    while not stop.is_set():
        health.active = health.started = False  # SERVING again once consuming
        await health.update()
        gate.close("standby: taking over, try again")
        if not await wait_for_lease(lease, stop, heard):
            return
        lease.active, taken_at = True, time.monotonic()
        lease.lost.clear()
        log.warning("%s: took the lease, active on %s", settings.service, settings.grpc_addr)
        if service.on_active is not None:
            await service.on_active()
        health.active = True
        gate.open()
        leading = asyncio.Event()  # set when this process stops or loses the lease
        relay = asyncio.create_task(_first(leading, stop, lease.lost))
        why = "lost the lease"
        try:
            await _serve(settings, service, worker, health, server, leading, leased=True)
        except bus.TRANSIENT as error:  # the broker or the database went away as it took over: another may do better
            why = f"could not start consuming ({error!r}), gave the lease back"
            await asyncio.sleep(1)
        finally:
            relay.cancel()
            lease.active = False
        if not stop.is_set():
            log.warning("%s: %s after %.0f s active; standby now", settings.service, why, time.monotonic() - taken_at)
            gate.close("standby: the lease moved to another process")
            await lease.drop()


async def _first(target: asyncio.Event, *events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for w in waits:
            w.cancel()


async def watch(health: Health, service: str, pool, producer, stop: asyncio.Event, seconds: float) -> None:
    """Every `seconds`: can the database and the broker be reached? Health follows; an outage is logged once when it
    starts and once when it ends (the repeated errors meanwhile are thinned out by runtime.OUTAGES)."""
    down_since: dict[str, float] = {}
    while not stop.is_set():
        problems = {}
        if pool is not None:
            problems["database"] = await _database_problem(pool)
        if producer is not None:
            problems["kafka"] = await _broker_problem(producer)
        for name, problem in problems.items():
            if problem and name not in down_since:
                down_since[name] = time.monotonic()
                log.warning("%s unreachable (%s): %s reports NOT_SERVING until it is back", name, problem, service)
            elif not problem and name in down_since:
                log.warning(
                    "%s reachable again after %.0f s: %s serving",
                    name,
                    time.monotonic() - down_since.pop(name),
                    service,
                )
                OUTAGES.reset(name)
            elif not problem:  # a blip the watchdog did not see (a start-up error): over once its lines stopped
                OUTAGES.reset(name, quiet_for=seconds)
        health.reachable = not any(problems.values())
        await health.update()
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


async def _database_problem(pool: asyncpg.Pool, timeout: float = 3) -> str:
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        return ""
    except asyncio.TimeoutError:
        return f"no answer to SELECT 1 within {timeout:g} s"
    except Exception as error:  # whatever it is, the database does not answer
        return f"{type(error).__name__}: {error}"


async def _broker_problem(producer: AIOKafkaProducer, timeout: float = 3) -> str:
    """'' when a connection to at least one known broker is open or can be opened."""
    client = producer.client
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    try:
        async with asyncio.timeout(timeout):
            for node in nodes:
                if await client.ready(node):
                    return ""
    except asyncio.TimeoutError:
        return f"no connection within {timeout:g} s"
    return f"no broker of {len(nodes)} reachable" if nodes else "no broker known"
