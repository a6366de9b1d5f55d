"""Starts and stops the local relais stack: Kafka, PostgreSQL and every service, as processes.

    python -m infra.stack up      # start in the background, return once all are healthy
    python -m infra.stack down    # stop everything `up` started
    python -m infra.stack run     # up, replay the demo, wait for Ctrl-C, down
    python -m infra.stack status  # every process of the state directory, those started by hand included
    python -m infra.stack reset   # empty the queues and the database of a stopped stack (keeps jars, models)

State (data, logs, pids, endpoints.env) lives in .relais/ at the repository root, or in --state-dir DIR
(before the command; on free ports, kept in DIR/ports.json). Test fixtures use the `Stack` class with their
own state directory and free ports.
"""

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.kafka.broker import LIBS_DIR, KafkaBroker
from infra.ports import free_port, port_in_use
from infra.postgres.migrate import migrate
from infra.postgres.server import PostgresServer
from relais.common.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "RELAIS_SERVICE_TOKEN"
STATE = ROOT / ".relais"
# Start order: lookup before the bot that calls it; routing before the bot hands off.
SERVICES = ("lookup", "intake", "classifier", "bot", "routing", "analytics")
# Routing's second process, standby until the active one dies (docs/operations.md, "Routing: active and standby").
STANDBY = "routing-standby"
INFRA = ("kafka", "kafka_controller", "postgres")  # in a Stack's ports, not processes of ours
# The HTTP edge (relais.gateway: Connect JSON, /events, the web pages), started once the gRPC services serve.
GATEWAY = "gateway"


class Stack:
    def __init__(
        self,
        state_dir: Path = STATE,
        ports: dict[str, int] | None = None,
        *,
        fast_db: bool = False,
        extra_env: dict[str, str] | None = None,
    ):
        self.state_dir = state_dir
        self.ports = dict(DEFAULT_PORTS if ports is None else ports)
        # Ours, or None when the stack runs on a broker and database started elsewhere (use_infra).
        self.broker: KafkaBroker | None = KafkaBroker(
            state_dir / "kafka", port=self.ports["kafka"], controller_port=self.ports["kafka_controller"]
        )
        self.postgres: PostgresServer | None = PostgresServer(
            state_dir / "postgres", port=self.ports["postgres"], fast=fast_db
        )
        self.extra_env = extra_env or {}
        # The service token of the Lookup and Analytics APIs (docs/security.md, "Service token"): given, kept from the last
        # `make up`, or a new one; passed to the services and written into endpoints.env for the clients.
        self.service_token = (
            self.extra_env.get(TOKEN)
            or os.environ.get(TOKEN, "").strip()
            or self._saved_endpoints().get(TOKEN)
            or secrets.token_urlsafe(32)
        )
        self.bootstrap = self.broker.bootstrap
        self.dsn = self.postgres.dsn
        self.processes: dict[str, subprocess.Popen] = {}
        # Each process's /metrics port (RELAIS_METRICS_ADDR): make up's fixed ones, or free ones (metrics_port).
        self.fixed_ports = ports is None
        self.metrics_ports: dict[str, int] = {}
        for name in self.ports:
            if name not in INFRA:
                self.metrics_port(name)
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        (state_dir / "run").mkdir(parents=True, exist_ok=True)

    @classmethod
    def with_free_ports(cls, state_dir: Path, **kwargs) -> "Stack":
        return cls(state_dir, {name: free_port() for name in DEFAULT_PORTS}, **kwargs)

    @classmethod
    def for_state_dir(cls, state_dir: Path = STATE) -> "Stack":
        """The stack of `make up` (.relais/, fixed ports) or of another state directory, on the free ports
        chosen the first time and kept in its ports.json."""
        if Path(state_dir).resolve() == STATE.resolve():
            return cls(STATE)
        saved = Path(state_dir) / "ports.json"
        ports = {name: free_port() for name in DEFAULT_PORTS} | (
            json.loads(saved.read_text()) if saved.exists() else {}
        )
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(ports))
        return cls(Path(state_dir), ports)

    # --- infrastructure ---

    def start_infra(self) -> None:
        assert self.broker is not None and self.postgres is not None, "the stack's own infrastructure (not use_infra)"
        self.bootstrap = self.broker.start()
        self._write_pid("kafka", self.broker.pid)
        self.dsn = self.postgres.start()
        asyncio.run(prepare(self.bootstrap, self.dsn))

    def use_infra(self, bootstrap: str, dsn: str) -> None:
        """Runs the services against a broker and database started elsewhere (test fixtures)."""
        self.bootstrap, self.dsn = bootstrap, dsn
        self.broker = self.postgres = None

    def metrics_port(self, name: str) -> int:
        """Process `name`'s /metrics port, the same for the life of this Stack (a restarted process keeps its URL):
        config.DEFAULT_METRICS_PORTS on make up's fixed ports, a free one otherwise (and for a process it does not name)."""
        if name not in self.metrics_ports:
            fixed = DEFAULT_METRICS_PORTS.get(name) if self.fixed_ports else None
            self.metrics_ports[name] = fixed or free_port()
        return self.metrics_ports[name]

    def metrics_on(self) -> bool:
        """False with RELAIS_METRICS_ADDR=off (given, or in the environment): no process serves /metrics."""
        value = self.extra_env.get("RELAIS_METRICS_ADDR") or os.environ.get("RELAIS_METRICS_ADDR", "")
        return value.strip().lower() != "off"

    def endpoints(self) -> dict[str, str]:
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.dsn}
        env |= {f"{name.upper()}_GRPC_ADDR": f"127.0.0.1:{self.ports[name]}" for name in SERVICES}
        if STANDBY in self.ports:  # routing's other process: ROUTING_GRPC_ADDR is the one active at start
            env["ROUTING_STANDBY_GRPC_ADDR"] = f"127.0.0.1:{self.ports[STANDBY]}"
        if GATEWAY in self.ports:
            env["RELAIS_HTTP_URL"] = f"{'https' if self._tls_cert() else 'http'}://127.0.0.1:{self.ports[GATEWAY]}"
        if self.metrics_on():  # e.g. INTAKE_METRICS_URL, ROUTING_STANDBY_METRICS_URL
            env |= {
                f"{name.upper().replace('-', '_')}_METRICS_URL": f"http://127.0.0.1:{port}/metrics"
                for name, port in self.metrics_ports.items()
            }
        env[TOKEN] = self.service_token
        # A service process started by hand with these settings writes its pid file there (`make status`/`down`).
        env["RELAIS_RUN_DIR"] = str((self.state_dir / "run").resolve())
        ca = (self.extra_env.get("RELAIS_TLS_CA") or os.environ.get("RELAIS_TLS_CA", "")).strip()
        if ca:  # the services serve TLS: clients need the CA
            env["RELAIS_TLS_CA"] = ca
        return env

    def write_endpoints(self) -> Path:
        path = self.state_dir / "endpoints.env"
        path.touch(mode=0o600)
        path.chmod(0o600)  # it holds the service token
        path.write_text("".join(f"{k}={v}\n" for k, v in self.endpoints().items()))
        return path

    def _saved_endpoints(self) -> dict[str, str]:
        path = self.state_dir / "endpoints.env"
        if not path.exists():
            return {}
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)

    # --- services ---

    @property
    def model_path(self) -> Path:
        return self.state_dir / "models" / "intents.pkl"

    def ensure_model(self) -> None:
        """Trains the intent model artifact when it is missing or was trained on another catalogue."""
        from relais.classifier import artifact
        from relais.classifier.catalogue import load_catalogue

        catalogue = load_catalogue()
        try:
            artifact.load_for(catalogue, self.model_path)
        except artifact.ArtifactError:
            artifact.train(catalogue, self.model_path)

    def service_env(self, name: str) -> dict[str, str]:
        env = os.environ | self.endpoints() | {"RELAIS_INTENT_MODEL": str(self.model_path)} | self.extra_env
        env["OTEL_SERVICE_NAME"] = f"relais-{name}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_service(self, name: str, service: str | None = None, more_env: dict | None = None) -> subprocess.Popen:
        """Starts process `name` of `service` (by default the service of that name), on port ports[name]."""
        service = service or name
        env = self.service_env(service) | {
            f"{service.upper()}_GRPC_ADDR": f"127.0.0.1:{self.ports[name]}",
            "RELAIS_METRICS_ADDR": f"127.0.0.1:{self.metrics_port(name)}" if self.metrics_on() else "off",
            "RELAIS_PID_FILE": str((self.state_dir / "run" / f"{name}.pid").resolve()),
        }
        env |= more_env or {}
        log = open(self.state_dir / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"relais.{service}"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        self._write_pid(name, process.pid)
        return process

    def start_instance(self, service: str, name: str, port: int | None = None, timeout: float = 90) -> subprocess.Popen:
        """One more process of `service` (scale-out): same environment, so the same consumer group, whose
        partitions the processes share; its own gRPC port (a free one by default), log and pid file under `name`.
        Returns once it is healthy; stop_service(name) stops it, stop() too."""
        self.ports[name] = port or free_port()
        process = self.start_service(name, service)
        self.wait_healthy([name], timeout)
        return process

    def start_services(self, names=SERVICES, timeout: float = 90) -> None:
        taken = [f"{name} ({self.ports[name]})" for name in names if port_in_use(self.ports[name])]
        if self.metrics_on():
            taken += [
                f"{name} metrics ({self.metrics_port(name)})" for name in names if port_in_use(self.metrics_port(name))
            ]
        if taken:
            raise RuntimeError(f"ports already in use: {', '.join(taken)} — another relais stack? `make down` first")
        if "classifier" in names:
            self.ensure_model()
        for name in names:
            self.start_service(name)
        self.wait_healthy(names, timeout)
        dead = [name for name in names if self.processes[name].poll() is not None]
        if dead:  # a health answer came from someone else's process on our port
            raise RuntimeError(f"{', '.join(dead)} exited:\n" + "\n".join(self.log_tail(n) for n in dead))

    def start_standby(self, name: str = STANDBY, timeout: float = 90) -> subprocess.Popen:
        """Routing's standby process, on ports[name] (a free one if unset), pid file run/<name>.pid; start it once
        the active one serves. Returns once it answers health (NOT_SERVING until it takes over)."""
        self.ports.setdefault(name, free_port())
        process = self.start_service(name, "routing")
        self.wait_healthy([name], timeout, answering=True)
        return process

    def start_gateway(self, timeout: float = 60) -> subprocess.Popen:
        """The HTTP edge on ports[GATEWAY] (a free one if unset); start it once the gRPC services serve. Returns once
        its /healthz answers (RELAIS_HTTP_URL in endpoints())."""
        import ssl
        import urllib.request

        self.ports.setdefault(GATEWAY, free_port())
        if port_in_use(self.ports[GATEWAY]):
            raise RuntimeError(f"port {self.ports[GATEWAY]} (gateway) already in use — another relais stack?")
        process = self.start_service(GATEWAY, more_env={"RELAIS_HTTP_ADDR": f"127.0.0.1:{self.ports[GATEWAY]}"})
        settings = os.environ | self.extra_env
        context = None
        if self._tls_cert():  # the gateway serves HTTPS: trust the services' CA, show the client certificate if any
            context = ssl.create_default_context(cafile=settings.get("RELAIS_TLS_CA") or None)
            if settings.get("RELAIS_TLS_CLIENT_CERT"):
                context.load_cert_chain(settings["RELAIS_TLS_CLIENT_CERT"], settings.get("RELAIS_TLS_CLIENT_KEY"))
        url = f"{self.endpoints()['RELAIS_HTTP_URL']}/healthz"
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited with {process.returncode}:\n{self.log_tail(GATEWAY)}")
            try:
                with urllib.request.urlopen(url, timeout=1, context=context) as answer:
                    if answer.status == 200:
                        return process
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway not healthy after {timeout:.0f}s:\n{self.log_tail(GATEWAY)}")
            time.sleep(0.2)

    def _tls_cert(self) -> bool:
        return bool((self.extra_env.get("RELAIS_TLS_CERT") or os.environ.get("RELAIS_TLS_CERT", "")).strip())

    def wait_healthy(self, names=SERVICES, timeout: float = 90, answering: bool = False) -> None:
        """Waits until each process reports SERVING (`answering`: answers health at all, a standby)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from relais.common.grpcserver import sync_channel

        deadline = time.monotonic() + timeout
        for name in names:  # TLS when the services have it (RELAIS_TLS_CA); health checks need no token
            with sync_channel(f"127.0.0.1:{self.ports[name]}", os.environ | self.extra_env) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    for waited in names:  # any of them that died fails the start at once, not in its turn
                        process = self.processes.get(waited)
                        if process is not None and process.poll() is not None:
                            raise RuntimeError(f"{waited} exited with {process.returncode}:\n{self.log_tail(waited)}")
                    try:
                        status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        if status == health_pb2.HealthCheckResponse.SERVING or (
                            answering and status == health_pb2.HealthCheckResponse.NOT_SERVING
                        ):
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not healthy after {timeout:.0f}s:\n{self.log_tail(name)}")
                    time.sleep(0.2)

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        process = self.processes.pop(name, None)
        pid = process.pid if process else self._read_pid(name)
        if pid is None:
            return None
        _signal(pid, sig)
        code = _wait(process, pid, timeout)
        if code is None:
            _signal(pid, signal.SIGKILL)
            code = _wait(process, pid, 5)
        (self.state_dir / "run" / f"{name}.pid").unlink(missing_ok=True)
        return code

    def stop_services(self, names, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stops these processes together (each finishes the record in hand: ~2 s), SIGKILL after `timeout`."""
        pids = [(name, self.processes[name].pid if name in self.processes else self._read_pid(name)) for name in names]
        for _, pid in pids:
            if pid:
                _signal(pid, sig)
        deadline = time.monotonic() + timeout
        for name, pid in pids:
            if pid:
                self.stop_service(name, sig, max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        extra = {path.stem for path in (self.state_dir / "run").glob("*.pid")} | set(self.processes)
        # Instances (a standby, processes started by hand) first, so a standby does not take over; lookup last,
        # as the bot calls it while it finishes its records.
        self.stop_services(sorted(extra - {*SERVICES, "kafka"}))
        self.stop_services([name for name in reversed(SERVICES) if name != "lookup"])
        self.stop_services(["lookup"])
        for path in (self.state_dir / "run").glob("*.pid"):  # left by processes killed (SIGKILL) since
            if path.stem != "kafka" and not self._read_pid(path.stem):
                path.unlink(missing_ok=True)
        if self.postgres is None or self.broker is None:  # both None together: use_infra
            return
        self.postgres.stop()
        pid = self.broker.pid or self._read_pid("kafka")
        if self.broker.pid:
            self.broker.stop()
        elif pid:
            _signal(pid, signal.SIGTERM)
            if _wait(None, pid, 30) is None:
                _signal(pid, signal.SIGKILL)
        (self.state_dir / "run" / "kafka.pid").unlink(missing_ok=True)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def _write_pid(self, name: str, pid: int | None) -> None:
        if pid:
            (self.state_dir / "run" / f"{name}.pid").write_text(str(pid))

    def _read_pid(self, name: str) -> int | None:
        """The pid in run/<name>.pid if that process is alive and ours (a pid reused since is not)."""
        path = self.state_dir / "run" / f"{name}.pid"
        try:
            pid = int(path.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc: trust the pid file
        return pid if b"relais" in command or b"kafka" in command else None

    def pid_names(self) -> list[str]:
        """Every process with a pid file: kafka, the services, then the others (standby, started by hand)."""
        files = {path.stem for path in (self.state_dir / "run").glob("*.pid")}
        return ["kafka", *SERVICES, GATEWAY, *sorted(files - {"kafka", *SERVICES, GATEWAY})]

    def postgres_running(self) -> bool:
        if self.postgres is None:
            return False
        try:
            return self.postgres._running()
        except RuntimeError:  # no PostgreSQL binaries here: it cannot be running from them
            return False

    def running(self) -> list[str]:
        """What of this state directory runs now, by name (postgres included)."""
        names = [name for name in self.pid_names() if self._read_pid(name)]
        return (["postgres"] if self.postgres_running() else []) + names

    def status(self) -> list[tuple[str, int | None]]:
        """(name, pid or None when stopped) for kafka, postgres, each service and each other process found."""
        rows = [(name, self._read_pid(name)) for name in self.pid_names()]
        postgres = ("postgres", self._postgres_pid() if self.postgres_running() else None)
        return rows[:1] + [postgres] + [row for row in rows[1:] if row[1] or row[0] in SERVICES]

    def _postgres_pid(self) -> int | None:
        if self.postgres is None:
            return None
        try:
            return int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # --- what an earlier run left ---

    def has_data(self) -> bool:
        return (self.postgres is not None and (self.postgres.data_dir / "PG_VERSION").exists()) or (
            self.broker is not None and (self.broker.state_dir / "data").exists()
        )

    def reset(self) -> list[Path]:
        """Empties a stopped stack's queues and state: Kafka's data directory (every topic, offsets included)
        and PostgreSQL's cluster (tasks, agents, conversations, turns, KPIs, outbox...); the next start creates
        them afresh. Keeps the Kafka jars, the models, certificates, endpoints.env and logs.
        Raises StackRunning naming what runs."""
        running = self.running()
        if running:
            raise StackRunning(running)
        assert self.broker is not None and self.postgres is not None, "the stack's own infrastructure (not use_infra)"
        removed = []
        for path in (self.broker.state_dir / "data", self.postgres.data_dir):
            if path.exists():
                shutil.rmtree(path)
                removed.append(path)
        for path in (self.state_dir / "run").glob("*.pid"):  # stale: nothing of ours runs
            path.unlink(missing_ok=True)
        return removed


class StackRunning(RuntimeError):
    def __init__(self, names: list[str]):
        super().__init__(f"the stack is running ({', '.join(names)})")
        self.names = names


async def earlier_state(dsn: str) -> str:
    """What the database holds from an earlier run, in a line: tasks waiting, agents signed in..."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM tasks WHERE status IN ('queued', 'offered')) AS waiting,"
            " (SELECT count(*) FROM tasks WHERE status = 'assigned') AS assigned,"
            " (SELECT count(*) FROM agents WHERE state <> 'offline') AS agents,"
            " (SELECT count(*) FROM conversations) AS conversations"
        )
    finally:
        await conn.close()
    return (
        f"{_count(row['waiting'], 'task')} waiting (queued or offered), {row['assigned']} assigned to an agent, "
        f"{_count(row['agents'], 'agent')} signed in, {_count(row['conversations'], 'conversation')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def prepare(bootstrap: str, dsn: str) -> None:
    """Applies the schema migrations and creates the topics."""
    from relais.common.topics import ensure_topics

    await migrate(dsn)
    await ensure_topics(bootstrap)


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # each process leads its own group: children go too
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _wait(process: subprocess.Popen | None, pid: int, timeout: float) -> int | None:
    if process is not None:
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return 0
        time.sleep(0.1)
    return None


def check_prerequisites() -> list[str]:
    """What this machine lacks for the local processes, as instructions."""
    import shutil

    from infra.postgres.server import find_bin_dir

    missing = []
    if not shutil.which("java"):
        missing.append("Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)")
    if not shutil.which("mvn") and not (STATE / "cache").exists():
        missing.append("Maven, to fetch the Kafka jars once (Debian: apt-get install -y maven)")
    try:
        find_bin_dir()
    except RuntimeError:
        missing.append("PostgreSQL server (Debian: apt-get install -y postgresql)")
    return missing


def up(state_dir: Path = STATE) -> Stack:
    """Starts the stack of `state_dir` and returns once every service is healthy; on a failure, stops what it had
    started and exits with one line (the failing process's log tail above it)."""
    from relais.common.config import ConfigError, check_environment

    try:
        check_environment()  # the services would each refuse a bad setting: say it once, before starting anything
    except ConfigError as error:
        print(f"make up: {error}", file=sys.stderr)
        sys.exit(2)
    missing = check_prerequisites()
    if missing:
        if _docker_engine():
            print("Local prerequisites missing; using docker compose instead.")
            subprocess.run(["docker", "compose", "up", "-d", "--build", "--wait"], cwd=ROOT, check=True)
            sys.exit(0)
        print("relais needs, to run without Docker:\n  - " + "\n  - ".join(missing), file=sys.stderr)
        sys.exit("make up: prerequisites missing (above); `make prereqs` installs them when run as root")
    stack = Stack.for_state_dir(state_dir)
    running = stack.running()
    if running:
        if set(SERVICES) <= set(running):
            print(f"already running: {', '.join(running)} (make down first to restart)")
            return stack
        sys.exit(f"make up: partly running ({', '.join(running)}): `make down` first")
    earlier = stack.has_data()
    try:
        print("starting Kafka and PostgreSQL ...", flush=True)
        stack.start_infra()
        if earlier:
            print(
                f"found the state of an earlier run in {_shown(state_dir)}: {asyncio.run(earlier_state(stack.dsn))}\n"
                "  (kept; `make down` then `make reset` empties the queues and the database)",
                flush=True,
            )
        print("starting services ...", flush=True)
        stack.start_services()
        stack.start_standby()
        stack.start_gateway()
        path = stack.write_endpoints()
    except (Exception, KeyboardInterrupt) as error:
        _fail_up(stack, error)
    for key, value in stack.endpoints().items():
        print(f"  {key}={'(in endpoints.env)' if key == TOKEN else value}")
    print(f"relais is up; endpoints in {_shown(path)}, logs in {_shown(state_dir / 'logs')}/")
    return stack


def _fail_up(stack: Stack, error: BaseException) -> None:
    """Stops what `up` started; the error's details, then one line."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    if len(lines) > 1:
        print("\n".join(lines[1:]), file=sys.stderr)
    try:
        stack.stop()
        stopped = "stopped what it had started"
    except Exception as stop_error:  # say it, and still end with the one line
        stopped = f"could not stop everything ({stop_error}; `make down`)"
    what = "interrupted" if isinstance(error, KeyboardInterrupt) else f"failed: {lines[0].rstrip(':')}"
    print(f"make up {what}; {stopped}; logs in {_shown(stack.state_dir / 'logs')}/", file=sys.stderr)
    sys.exit(130 if isinstance(error, KeyboardInterrupt) else 1)


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _docker_engine() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description="the local relais stack")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=STATE,
        help="state directory (default .relais/; another one runs on free ports)",
    )
    parser.add_argument("command", nargs="?", default="status", choices=("up", "down", "status", "run", "reset"))
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    if args.command not in ("up", "run"):  # where PostgreSQL keeps a private state's data matters only when starting it
        logging.getLogger("infra.postgres.server").setLevel(logging.ERROR)
    if args.command == "up":
        up(state_dir)
    elif args.command == "down":
        Stack.for_state_dir(state_dir).stop()
        print("relais stopped")
    elif args.command == "status":
        for name, pid in Stack.for_state_dir(state_dir).status():
            print(f"{name:16} {f'running (pid {pid})' if pid else 'stopped'}")
    elif args.command == "reset":
        return reset(state_dir)
    elif args.command == "run":
        earlier = Stack.for_state_dir(state_dir).has_data()
        stack, failure = up(state_dir), None
        try:
            from relais.demo import run_demo

            asyncio.run(run_demo(stack.endpoints()))
            if not os.environ.get("RELAIS_DEMO_EXIT"):
                print(
                    "\nThe stack is still up (Kafka, PostgreSQL, services). Press Ctrl-C to stop everything.",
                    flush=True,
                )
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
        except Exception as error:  # the demo failed: said in one line once everything is stopped
            failure = f"{type(error).__name__}: {' '.join(str(error).split())}"
            if isinstance(error, TimeoutError) and earlier:  # other customers waiting keep the demo's advisors busy
                failure += "; the stack kept an earlier run's data: `make reset` empties it"
        finally:
            print("\nstopping ...", flush=True)
            stack.stop()
            print("relais stopped")
        if failure:
            print(f"make run: the demo failed ({failure}); logs in {_shown(state_dir / 'logs')}/", file=sys.stderr)
            return 1
    return 0


def reset(state_dir: Path = STATE, prog: str = "make reset") -> int:
    """Refuses while anything of the stack runs (one line, 1); else empties it and says what it kept."""
    logging.getLogger("infra.postgres.server").setLevel(logging.ERROR)
    stack = Stack.for_state_dir(state_dir)
    try:
        removed = stack.reset()
    except StackRunning as running:
        print(f"{prog}: {running}: `make down` first, then reset", file=sys.stderr)
        return 1
    kept = ", ".join(_shown(p) for p in (LIBS_DIR.parent.parent, state_dir / "models") if p.exists())
    if removed:
        print(
            f"emptied {_shown(state_dir)}: Kafka topics and the database (tasks, agents, conversations, turns, "
            f"KPIs, outbox); kept {kept or 'nothing else'}, endpoints.env and logs"
        )
    else:
        print(f"nothing to empty in {_shown(state_dir)} (no Kafka or database data)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
