"""The plumbing shared by every service that consumes a topic: pool, producer, consumer, health.

A service supplies a `handle(record)` coroutine and, optionally, gRPC servicers; `run` wires
them to Kafka, Postgres and a gRPC server with health and reflection, reports SERVING once
everything is connected, and on stop finishes the record in hand, commits, and closes.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from relais.common import bus, db
from relais.common.config import Settings, env
from relais.common.grpcserver import GrpcServer, Register

log = logging.getLogger(__name__)


@dataclass
class Worker:
    settings: Settings
    producer: AIOKafkaProducer | None
    pool: asyncpg.Pool | None
    stop: asyncio.Event


@dataclass
class Service:
    handle: bus.Handler | None = None  # None: a gRPC-only service
    topics: tuple[str, ...] = ()
    grpc_services: tuple[str, ...] = ()
    register: Register | None = None
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    close: Callable[[], Awaitable[None]] | None = None
    # Records handled in batches (one transaction, one acknowledgement wait, one offset commit; see
    # relais.common.bus.Batch). Only for handlers whose every effect goes through the outbox or bus.publish.
    batched: bool = False


Build = Callable[[Worker], Awaitable[Service]]


async def run(settings: Settings, stop: asyncio.Event, build: Build, *, database: bool = True, kafka: bool = True) -> None:
    pool = await db.connect(settings.database_url) if database else None
    producer = bus.make_producer(settings.kafka_bootstrap) if kafka else None
    if producer is not None:
        await producer.start()
    worker = Worker(settings, producer, pool, stop)
    service = await build(worker)
    server = GrpcServer(settings.grpc_addr, list(service.grpc_services), service.register)
    await server.start()
    consumer = None
    tasks = [asyncio.create_task(job()) for job in service.background]
    try:
        if service.handle is not None:
            consumer = bus.make_consumer(settings.kafka_bootstrap, settings.consumer_group, *service.topics)
            await consumer.start()
        await server.set_serving(True)
        log.info("%s serving on %s (port %d)", settings.service, settings.grpc_addr, server.port)
        if consumer is not None:
            await bus.consume(settings.service, consumer, producer, service.handle, stop, pool=pool,
                              batched=service.batched and env("RELAIS_BATCH", "on") != "off",
                              batch_ms=float(env("RELAIS_BATCH_MS", "20")))
        else:
            await stop.wait()
    finally:
        await server.stop(grace=2)
        for task in tasks:
            task.cancel()
        if consumer is not None:
            await consumer.stop()
        if service.close is not None:
            await service.close()
        if producer is not None:
            await producer.stop()
        if pool is not None:
            await pool.close()
