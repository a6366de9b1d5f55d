"""Session-wide infrastructure for tests: one Kafka broker and one PostgreSQL server.

By default both run locally without Docker (infra/kafka, infra/postgres).
RELAIS_TEST_KAFKA_BOOTSTRAP / RELAIS_TEST_DATABASE_URL point at servers that are
already running instead (nothing is started or stopped then). With a Docker
engine and RELAIS_TEST_USE_TESTCONTAINERS=1, testcontainers are used.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

KAFKA_IMAGE = os.environ.get("RELAIS_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:8.1.0")
POSTGRES_IMAGE = os.environ.get("RELAIS_TEST_POSTGRES_IMAGE", "postgres:15")


def _use_testcontainers() -> bool:
    has_docker = bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()
    return has_docker and os.environ.get("RELAIS_TEST_USE_TESTCONTAINERS") == "1"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A started KafkaBroker, or None when an external/containerised broker is used."""
    if os.environ.get("RELAIS_TEST_KAFKA_BOOTSTRAP"):
        yield None
        return
    if _use_testcontainers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield SimpleNamespace(bootstrap=container.get_bootstrap_server())  # what kafka_bootstrap reads
        return
    from infra.kafka.broker import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> str:
    return os.environ.get("RELAIS_TEST_KAFKA_BOOTSTRAP") or kafka_broker.bootstrap


@pytest.fixture(scope="session")
def postgres_server():
    """A started PostgresServer(fast=True), or None when an external database is used."""
    if os.environ.get("RELAIS_TEST_DATABASE_URL"):
        yield None
        return
    if _use_testcontainers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(
            POSTGRES_IMAGE, username="relais", password="relais", dbname="relais", driver=None
        ) as container:
            yield SimpleNamespace(dsn=container.get_connection_url())  # what postgres_dsn reads
        return
    from infra.postgres.server import PostgresServer

    # Directly under /tmp: pytest's own temp root is mode 0700, which the
    # postgres OS user (used when running as root) cannot traverse.
    state_dir = Path(tempfile.mkdtemp(prefix="relais-test-pg-"))
    server = PostgresServer(state_dir, fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server) -> str:
    """DSN of a database with all migrations applied."""
    from infra.postgres.migrate import migrate

    dsn = os.environ.get("RELAIS_TEST_DATABASE_URL") or postgres_server.dsn
    asyncio.run(migrate(dsn))
    return dsn
