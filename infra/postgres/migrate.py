"""Apply infra/postgres/migrations/NNNN_name.sql files in order, each exactly once.

Usage: python -m infra.postgres.migrate postgresql://relais:relais@127.0.0.1:5432/relais
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FILE_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")
# Arbitrary constant: every migrating process takes the same advisory lock.
LOCK_KEY = 0x7265_6C61_6973  # "relais"


def migration_files(migrations_dir: Path = MIGRATIONS_DIR) -> list[Path]:
    """NNNN_name.sql files sorted by number; a duplicate number is an error."""
    files = sorted(p for p in migrations_dir.glob("*.sql") if FILE_NAME.match(p.name))
    numbers = [p.name[:4] for p in files]
    duplicates = {n for n in numbers if numbers.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate migration numbers in {migrations_dir}: {sorted(duplicates)}")
    return files


async def migrate(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions (file stems) applied now."""
    files = migration_files(migrations_dir)
    conn = await asyncpg.connect(dsn)
    try:
        # Serialises concurrent callers (e.g. several services starting at once).
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations("
                "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for path in files:
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations(version) VALUES ($1)", path.stem)
                applied.append(path.stem)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    applied = asyncio.run(migrate(argv[0]))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
