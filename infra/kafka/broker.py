"""Run a single-node Apache Kafka broker (KRaft) from the Maven Central jars.

No Docker and no Kafka tarball: Maven resolves kafka_2.13 and its runtime
classpath once into <repo>/.relais/cache, and the broker runs as a plain JVM.
See infra/kafka/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import NoReturn

from infra.ports import free_port, port_in_use

KAFKA_VERSION = "4.1.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
POM_DIR = Path(__file__).resolve().parent
LIBS_DIR = REPO_ROOT / ".relais" / "cache" / f"kafka-{KAFKA_VERSION}" / "libs"
# Written only after Maven succeeded, so an interrupted download is redone.
LIBS_MARKER = ".complete"

LOG4J2_PROPERTIES = """\
status = warn
# Kafka stops itself on SIGTERM; log4j's own hook only adds a warning then.
shutdownHook = disable
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDOUT
# One INFO line when the server is up, handy when reading kafka.log.
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""


def ensure_libs() -> Path:
    """Return the directory holding the broker's jars, resolving them with Maven if needed."""
    if (LIBS_DIR / LIBS_MARKER).exists():
        return LIBS_DIR
    _require_java()  # Maven needs it too
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka jars: apt-get install -y maven")
    LIBS_DIR.parent.mkdir(parents=True, exist_ok=True)
    # Lock, so parallel test runs do not resolve into the same directory at once.
    with open(LIBS_DIR.parent / "libs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (LIBS_DIR / LIBS_MARKER).exists():
            return LIBS_DIR
        if LIBS_DIR.exists():
            shutil.rmtree(LIBS_DIR)  # leftovers of an interrupted run
        LIBS_DIR.mkdir()
        cmd = [
            "mvn",
            "-B",
            "-q",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            f"-DoutputDirectory={LIBS_DIR}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, cwd=POM_DIR, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"Maven could not resolve the Kafka jars (rc={result.returncode}):\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        (LIBS_DIR / LIBS_MARKER).write_text(f"kafka {KAFKA_VERSION}\n")
    return LIBS_DIR


def new_cluster_id() -> str:
    """A cluster id like `kafka-storage random-uuid` prints, without starting a JVM for it.

    Kafka's Uuid is 16 random bytes in URL-safe base64 without padding; it never
    hands out ids starting with "-" (they would look like a CLI option).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Java 17+ is needed to run Kafka: apt-get install -y openjdk-17-jre-headless")
    return java


def _broker_answers(bootstrap: str, timeout: float) -> bool:
    """True if a metadata request to the broker lists at least one broker.

    Runs its own event loop in a thread so it works from sync code and from
    inside a running asyncio loop (e.g. a pytest-asyncio test) alike.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
            return bool(cluster.get("brokers"))
        finally:
            await admin.close()

    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(check()))
        except Exception:
            outcome.append(False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return bool(outcome and outcome[0])


class KafkaBroker:
    """A single-node KRaft broker (broker + controller in one JVM) on loopback."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 0,
        controller_port: int = 0,
        heap: str = "512m",
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.heap = heap
        self._process: subprocess.Popen | None = None
        meta = self._read_meta()
        # Reuse the ports of an earlier run: the formatted metadata log records
        # the controller endpoint, and clients may have the bootstrap saved.
        self.port = port or meta.get("port") or free_port()
        self.controller_port = controller_port or meta.get("controller_port") or free_port()
        self.cluster_id: str | None = meta.get("cluster_id")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_file(self) -> Path:
        return self.state_dir / "kafka.log"

    def ensure_libs(self) -> Path:
        return ensure_libs()

    def start(self, timeout: float = 90) -> str:
        """Start the broker and return its bootstrap address once clients can use it."""
        if self._process and self._process.poll() is None:
            return self.bootstrap
        java = _require_java()
        libs = self.ensure_libs()
        classpath = f"{libs}/*"  # the JVM expands the wildcard itself
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise RuntimeError(
                    f"port {port} on 127.0.0.1 is taken; is a broker for {self.state_dir} already running?"
                )

        props = self._write_config_files()
        if self.cluster_id is None:
            self.cluster_id = new_cluster_id()
        self._write_meta()
        if not (self.state_dir / "data" / "meta.properties").exists():
            # --ignore-formatted: harmless if an earlier format got that far.
            self._run_tool(
                java,
                classpath,
                ["format", "-t", self.cluster_id, "-c", str(props), "--ignore-formatted"],
            )

        cmd = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.state_dir}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(props),
        ]
        log = open(self.log_file, "ab")
        try:
            # Own process group, so stop() also reaches anything the JVM spawns.
            self._process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
            )
        finally:
            log.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"Kafka exited with code {self._process.returncode}")
            if self._port_open() and _broker_answers(self.bootstrap, timeout=5):
                return self.bootstrap
            time.sleep(0.2)
        self.stop()
        self._fail(f"Kafka did not become ready within {timeout:.0f}s")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the broker's process group (controlled shutdown), SIGKILL if it lingers."""
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the broker's process group, as a crash would: no controlled shutdown (fault tests).
        start() then restarts it on the same data and ports."""
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def __enter__(self) -> "KafkaBroker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------

    def _write_config_files(self) -> Path:
        props = self.state_dir / "server.properties"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voter: format without --standalone.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.state_dir / "data"),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            # One node: internal topics cannot have more than one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.state_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        return props

    def _run_tool(self, java: str, classpath: str, args: list[str]) -> str:
        cmd = [
            # Short-lived tool: C1 only starts faster.
            java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            *args,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.state_dir)
        if result.returncode != 0:
            raise RuntimeError(
                f"kafka StorageTool {args[0]} failed (rc={result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _read_meta(self) -> dict:
        path = self.state_dir / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_meta(self) -> None:
        meta = {
            "port": self.port,
            "controller_port": self.controller_port,
            "cluster_id": self.cluster_id,
            "kafka_version": KAFKA_VERSION,
        }
        (self.state_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    def _fail(self, message: str) -> NoReturn:
        tail = ""
        if self.log_file.exists():
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{message}; last lines of {self.log_file}:\n{tail}")
