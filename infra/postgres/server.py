"""Run a local PostgreSQL server from the distribution's binaries (no Docker).

The cluster lives in <state_dir>/data and listens on 127.0.0.1 only, with
trust authentication: for development and tests, never for production.
See infra/postgres/README.md.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from infra.ports import free_port, port_in_use

log = logging.getLogger(__name__)

USER = DATABASE = PASSWORD = "relais"
# Unix socket paths are limited to ~107 bytes, including "/.s.PGSQL.<port>".
MAX_SOCKET_DIR_LEN = 80
FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
# Opt-in (benchmarks): per-statement counts in pg_stat_statements, readable and resettable by the role.
STATEMENT_STATS_OPTIONS = "-c shared_preload_libraries=pg_stat_statements"


def find_bin_dir() -> Path:
    """Directory with initdb/pg_ctl/psql: $PG_BIN, else the newest Debian install, else pg_config."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for candidate in reversed(debian):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip())
        if out.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries not found; "
        "install Debian's postgresql package: apt-get install -y postgresql "
        "(or set PG_BIN to the directory holding initdb and pg_ctl)"
    )


class PostgresServer:
    """One PostgreSQL cluster in state_dir, with role and database 'relais'."""

    def __init__(self, state_dir: Path, port: int = 0, fast: bool = False, statement_stats: bool = False) -> None:
        self.fast = fast
        self.statement_stats = statement_stats
        # initdb and postgres refuse to run as root: use the postgres OS user then.
        self._as_root = os.geteuid() == 0
        self.state_dir = self._usable_state_dir(Path(state_dir).resolve())
        meta = self._read_meta()
        # Same port as last time, so saved DSNs keep working after a restart.
        self.port = port or meta.get("port") or free_port()

    @functools.cached_property
    def bin_dir(self) -> Path:
        # Looked up on first use, so a server object for an external database needs no binaries.
        return find_bin_dir()

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "postgres.log"

    def start(self, timeout: float = 60) -> str:
        """Initialise (first time), start, create role/database 'relais'; return the DSN."""
        if self._running():
            return self.dsn
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is taken")
        self._prepare_state_dir()
        self._write_meta()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

        # pg_ctl hands -o to a shell, hence the quoting.
        options = f"-h 127.0.0.1 -p {self.port} -k {shlex.quote(str(self._socket_dir()))}"
        if self.fast:
            options += " " + FAST_OPTIONS
        if self.statement_stats:
            options += " " + STATEMENT_STATS_OPTIONS
        self._run(
            [
                self._bin("pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                options,
            ],
            what="pg_ctl start",
        )
        deadline = time.monotonic() + timeout
        while not self._isready():
            if time.monotonic() > deadline:
                self._fail(f"PostgreSQL not ready within {timeout:.0f}s")
            time.sleep(0.1)
        self._create_role_and_database()
        if self.statement_stats:
            self._enable_statement_stats()
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        """mode "immediate" stops like a crash (no checkpoint; start() recovers from the WAL): fault tests."""
        if self._running():
            self._run([self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"], what="pg_ctl stop")

    def __enter__(self) -> "PostgresServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------

    def _usable_state_dir(self, wanted: Path) -> Path:
        """wanted, or a stable /tmp fallback if the postgres user cannot reach it.

        Creates nothing: a server that is never started leaves no trace.
        """
        if not self._as_root:
            return wanted
        # wanted itself gets chowned on start; what matters is the path up to it.
        existing = wanted.parent
        while not existing.exists():
            existing = existing.parent
        # `test -x` as postgres fails unless every directory on the path is traversable.
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(existing)], cwd="/")
        if probe.returncode == 0:
            return wanted
        fallback = self._fallback_dir(wanted)
        log.warning(
            "postgres user cannot reach %s (a parent directory is not traversable); using %s instead", wanted, fallback
        )
        return fallback

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.state_dir, "postgres", "postgres")

    @staticmethod
    def _fallback_dir(wanted: Path) -> Path:
        # Deterministic, so a restart with the same state_dir finds its data again.
        digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"relais-postgres-{digest}"

    def _socket_dir(self) -> Path:
        sock = self.state_dir / "run"
        if len(str(sock)) > MAX_SOCKET_DIR_LEN:
            sock = self._fallback_dir(self.state_dir) / "run"
        sock.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(sock.parent, "postgres", "postgres")
            shutil.chown(sock, "postgres", "postgres")
        return sock

    def _initdb(self) -> None:
        base = [self._bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        if self.fast:
            base.append("--no-sync")  # tests only: skip fsync of the fresh cluster
        try:
            self._run([*base, "--locale=C.UTF-8"], what="initdb")
        except RuntimeError:
            # Some systems lack C.UTF-8; plain C sorts bytewise, which is fine here.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._run([*base, "--locale=C"], what="initdb")

    def _create_role_and_database(self) -> None:
        self._psql(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{USER}') THEN "
            f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'; "
            "END IF; END $$;"
        )
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists.strip() != "1":
            self._psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")

    def _enable_statement_stats(self) -> None:
        self._psql(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
            f"GRANT pg_read_all_stats TO {USER}; "
            f"GRANT EXECUTE ON FUNCTION pg_stat_statements_reset(oid, oid, bigint) TO {USER}",
            database=DATABASE,
        )

    def _psql(self, sql: str, database: str = "postgres") -> str:
        # Over TCP as superuser 'postgres' (trust auth); root may run psql directly.
        return self._run(
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            what="psql",
            as_postgres=False,
        )

    def _isready(self) -> bool:
        cmd = [self._bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(cmd).returncode == 0

    def _running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        cmd = [self._bin("pg_ctl"), "status", "-D", str(self.data_dir)]
        return subprocess.run(self._wrap(cmd), capture_output=True, cwd=self.state_dir).returncode == 0

    def _run(self, cmd: list[str], what: str, as_postgres: bool = True) -> str:
        if as_postgres:
            cmd = self._wrap(cmd)
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.state_dir)
        if result.returncode != 0:
            self._fail(f"{what} failed (rc={result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def _wrap(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_root else cmd

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _read_meta(self) -> dict:
        path = self.state_dir / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_meta(self) -> None:
        meta = {"port": self.port, "bin_dir": str(self.bin_dir)}
        (self.state_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    def _fail(self, message: str) -> NoReturn:
        tail = ""
        if self.log_file.exists():
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{message}\nlast lines of {self.log_file}:\n{tail}")
