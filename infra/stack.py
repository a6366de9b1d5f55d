"""Starts and stops the local relais stack: Kafka, PostgreSQL and every service, as processes.

    python -m infra.stack up      # start in the background, return once all are healthy
    python -m infra.stack down    # stop everything `up` started
    python -m infra.stack run     # up, replay the demo, wait for Ctrl-C, down
    python -m infra.stack status

State (data, logs, pids, endpoints.env) lives in .relais/ at the repository root. Test fixtures
use the `Stack` class with their own state directory and free ports.
"""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.kafka.broker import KafkaBroker
from infra.ports import free_port, port_in_use
from infra.postgres.migrate import migrate
from infra.postgres.server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "RELAIS_SERVICE_TOKEN"
STATE = ROOT / ".relais"
# Start order: lookup before the bot that calls it; routing before the bot hands off.
SERVICES = ("lookup", "intake", "classifier", "bot", "routing", "analytics")
DEFAULT_PORTS = {
    "kafka": 19092, "kafka_controller": 19093, "postgres": 15432,
    "intake": 50051, "classifier": 50052, "bot": 50053, "routing": 50054, "analytics": 50055, "lookup": 50056,
}


class Stack:
    def __init__(self, state_dir: Path = STATE, ports: dict[str, int] | None = None, *, fast_db: bool = False,
                 extra_env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.ports = dict(DEFAULT_PORTS if ports is None else ports)
        self.broker = KafkaBroker(state_dir / "kafka", port=self.ports["kafka"], controller_port=self.ports["kafka_controller"])
        self.postgres = PostgresServer(state_dir / "postgres", port=self.ports["postgres"], fast=fast_db)
        self.extra_env = extra_env or {}
        # The service token of the Lookup and Analytics APIs (README, "Access"): given, kept from the last
        # `make up`, or a new one; passed to the services and written into endpoints.env for the clients.
        self.service_token = (self.extra_env.get(TOKEN) or os.environ.get(TOKEN, "").strip()
                              or self._saved_endpoints().get(TOKEN) or secrets.token_urlsafe(32))
        self.bootstrap = self.broker.bootstrap
        self.dsn = self.postgres.dsn
        self.processes: dict[str, subprocess.Popen] = {}
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        (state_dir / "run").mkdir(parents=True, exist_ok=True)

    @classmethod
    def with_free_ports(cls, state_dir: Path, **kwargs) -> "Stack":
        return cls(state_dir, {name: free_port() for name in DEFAULT_PORTS}, **kwargs)

    # --- infrastructure ---

    def start_infra(self) -> None:
        self.bootstrap = self.broker.start()
        self._write_pid("kafka", self.broker.pid)
        self.dsn = self.postgres.start()
        asyncio.run(prepare(self.bootstrap, self.dsn))

    def use_infra(self, bootstrap: str, dsn: str) -> None:
        """Runs the services against a broker and database started elsewhere (test fixtures)."""
        self.bootstrap, self.dsn = bootstrap, dsn
        self.broker = self.postgres = None

    def endpoints(self) -> dict[str, str]:
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.dsn}
        env |= {f"{name.upper()}_GRPC_ADDR": f"127.0.0.1:{self.ports[name]}" for name in SERVICES}
        env[TOKEN] = self.service_token
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

    def start_service(self, name: str, service: str | None = None) -> subprocess.Popen:
        """Starts process `name` of `service` (by default the service of that name), on port ports[name]."""
        service = service or name
        env = self.service_env(service) | {f"{service.upper()}_GRPC_ADDR": f"127.0.0.1:{self.ports[name]}"}
        log = open(self.state_dir / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"relais.{service}"], env=env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
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

    def wait_healthy(self, names=SERVICES, timeout: float = 90) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from relais.common.grpcserver import sync_channel

        deadline = time.monotonic() + timeout
        for name in names:  # TLS when the services have it (RELAIS_TLS_CA); health checks need no token
            with sync_channel(f"127.0.0.1:{self.ports[name]}", os.environ | self.extra_env) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    process = self.processes.get(name)
                    if process is not None and process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
                    try:
                        if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
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

    def stop(self) -> None:
        extra = {path.stem for path in (self.state_dir / "run").glob("*.pid")} | set(self.processes)
        for name in sorted(extra - {*SERVICES, "kafka"}):  # instances started by start_instance
            self.stop_service(name)
        for name in reversed(SERVICES):
            self.stop_service(name)
        if self.postgres is None:
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
        path = self.state_dir / "run" / f"{name}.pid"
        try:
            pid = int(path.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None


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


def up() -> Stack:
    missing = check_prerequisites()
    if missing:
        if _docker_engine():
            print("Local prerequisites missing; using docker compose instead.")
            subprocess.run(["docker", "compose", "up", "-d", "--build", "--wait"], cwd=ROOT, check=True)
            sys.exit(0)
        sys.exit("relais needs, to run without Docker:\n  - " + "\n  - ".join(missing))
    stack = Stack()
    running = [name for name in SERVICES if stack._read_pid(name)]
    if running:
        print(f"already running: {', '.join(running)} (make down first to restart)")
        return stack
    print("starting Kafka and PostgreSQL ...", flush=True)
    stack.start_infra()
    print("starting services ...", flush=True)
    stack.start_services()
    path = stack.write_endpoints()
    for key, value in stack.endpoints().items():
        print(f"  {key}={'(in endpoints.env)' if key == TOKEN else value}")
    print(f"relais is up; endpoints in {path.relative_to(ROOT)}, logs in .relais/logs/")
    return stack


def _docker_engine() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "up":
        up()
    elif command == "down":
        Stack().stop()
        print("relais stopped")
    elif command == "status":
        stack = Stack()
        for name in ("kafka", *SERVICES):
            print(f"{name:12} {'running' if stack._read_pid(name) else 'stopped'}")
    elif command == "run":
        stack = up()
        try:
            from relais.demo import run_demo

            asyncio.run(run_demo(stack.endpoints()))
            if not os.environ.get("RELAIS_DEMO_EXIT"):
                print("\nThe stack is still up (Kafka, PostgreSQL, services). Press Ctrl-C to stop everything.", flush=True)
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
        except KeyboardInterrupt:
            pass
        finally:
            print("\nstopping ...", flush=True)
            stack.stop()
            print("relais stopped")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
