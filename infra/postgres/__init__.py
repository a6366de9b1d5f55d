"""PostgreSQL server run from the Debian binaries, plus schema migrations."""

from infra.postgres.server import PostgresServer

__all__ = ["PostgresServer"]
