"""The local PostgreSQL launcher and the migration runner."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from infra.postgres.migrate import migrate, migration_files
from infra.postgres.server import PostgresServer


async def test_session_database_is_migrated(postgres_dsn):
    conn = await asyncpg.connect(postgres_dsn)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert "0001_init" in versions
        assert await conn.fetchval("SELECT to_regclass('relais_meta')") == "relais_meta"
        # Already applied by the fixture: nothing left to do.
        assert await migrate(postgres_dsn) == []
    finally:
        await conn.close()


async def test_migrate_once_each_in_order_and_concurrently_safe(postgres_dsn, tmp_path):
    """Fresh database, custom migration folder: each file runs once, in number order."""
    admin = await asyncpg.connect(postgres_dsn)
    db = "migrate_" + os.urandom(4).hex()
    await admin.execute(f"CREATE DATABASE {db}")
    dsn = postgres_dsn.rsplit("/", 1)[0] + "/" + db
    (tmp_path / "0002_add.sql").write_text("INSERT INTO t VALUES (2);")
    (tmp_path / "0001_make.sql").write_text("CREATE TABLE t(n int); INSERT INTO t VALUES (1);")
    (tmp_path / "notes.txt").write_text("not a migration")
    try:
        # Concurrent callers: the advisory lock lets exactly one apply each file.
        results = await asyncio.gather(*(migrate(dsn, tmp_path) for _ in range(4)))
        assert sorted(results) == [[], [], [], ["0001_make", "0002_add"]]
        assert await migrate(dsn, tmp_path) == []

        conn = await asyncpg.connect(dsn)
        try:
            assert [r["n"] for r in await conn.fetch("SELECT n FROM t ORDER BY n")] == [1, 2]
        finally:
            await conn.close()

        # A failing migration rolls back completely and is not recorded.
        (tmp_path / "0003_bad.sql").write_text("INSERT INTO t VALUES (3); SELECT 1/0;")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(dsn, tmp_path)
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM t") == 2
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '0003_bad'") == 0
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE {db} WITH (FORCE)")
        await admin.close()


async def _count_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM relais_meta")
    finally:
        await conn.close()


def test_restart_keeps_data_and_port():
    """A second server object on the same state dir reuses port and data."""
    if os.environ.get("RELAIS_TEST_DATABASE_URL"):
        pytest.skip("uses an external database; this test needs its own server")
    state_dir = Path(tempfile.mkdtemp(prefix="relais-test-pg-restart-"))
    server = PostgresServer(state_dir, fast=True)
    try:
        dsn = server.start()
        applied = asyncio.run(migrate(dsn))
        assert applied[0] == "0001_init"
        assert applied == [p.stem for p in migration_files()]

        async def write():
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("INSERT INTO relais_meta VALUES ('k', 'v')")
            finally:
                await conn.close()

        asyncio.run(write())
        server.stop()

        again = PostgresServer(state_dir, fast=True)
        assert again.start() == dsn
        server = again
        assert asyncio.run(_count_rows(dsn)) == 1
        assert asyncio.run(migrate(dsn)) == []
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
