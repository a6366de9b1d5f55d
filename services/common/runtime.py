"""Runs a service until SIGTERM/SIGINT, then lets it finish the record in hand and stop cleanly — within
RELAIS_STOP_SECONDS (20): a service whose broker or database is gone cannot flush or commit, and must not ignore
the signal for ever (what it had not committed is read again by the next process, deduplication makes it harmless)."""

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from relais.common import logs, telemetry
from relais.common.config import ConfigError, Settings, check_environment, setting

Main = Callable[[Settings, asyncio.Event], Awaitable[None]]

# Where `make status` and `make down` find every process: the stack names the pid file of those it starts
# (RELAIS_PID_FILE); a process started by hand writes <service>-<port>.pid in RELAIS_RUN_DIR (endpoints.env).
PID_FILE_ENV, RUN_DIR_ENV = "RELAIS_PID_FILE", "RELAIS_RUN_DIR"


def serve(service: str, main: Main) -> None:
    from relais.common import metrics
    from relais.common.grpcserver import AccessError

    try:
        check_environment()
        level = setting("RELAIS_LOG_LEVEL", "INFO")
        log_format = setting("RELAIS_LOG_FORMAT", "text")
        settings = Settings.from_env(service)
    except ConfigError as error:
        sys.exit(_one_line(error))
    logs.setup(service, level, log_format)  # text, or one JSON object per line (relais.common.logs)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(OUTAGES)
    pid_file = write_pid_file(service, settings.grpc_addr)
    telemetry.setup(service)
    try:
        metrics.setup(service)  # /metrics and OTLP metrics (docs/operations.md, "Metrics")
        event_loop(_run(settings, main, lambda: remove_pid_file(pid_file)))
    except (ConfigError, AccessError) as error:  # a setting only a service's own code reads (TLS files, Kafka security)
        sys.exit(_one_line(error))
    finally:
        telemetry.shutdown()
        metrics.shutdown()
        remove_pid_file(pid_file)


def event_loop(coroutine):
    """Runs the coroutine (a service, the load generator) on uvloop (libuv's event loop: a record's trip through
    sockets and callbacks costs less CPU than on asyncio's own), or on asyncio's with RELAIS_EVENT_LOOP=asyncio;
    returns its result."""
    if setting("RELAIS_EVENT_LOOP", "uvloop") == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def _one_line(error: Exception) -> int:
    print(str(error).replace("\n", " "), file=sys.stderr)
    return 2


def pid_file_path(service: str, grpc_addr: str, environ=None) -> Path | None:
    """This process's pid file: RELAIS_PID_FILE, else <service>-<port>.pid (the pid when the port is chosen by
    the system) in RELAIS_RUN_DIR or ./.relais/run; None outside a relais state directory."""
    environ = os.environ if environ is None else environ
    if environ.get(PID_FILE_ENV, "").strip():
        return Path(environ[PID_FILE_ENV].strip())
    run_dir = Path(environ.get(RUN_DIR_ENV, "").strip() or ".relais/run")
    if not run_dir.is_dir():
        return None
    port = grpc_addr.rsplit(":", 1)[-1]
    return run_dir / f"{service}-{port if port not in ('', '0') else os.getpid()}.pid"


def write_pid_file(service: str, grpc_addr: str) -> Path | None:
    path = pid_file_path(service, grpc_addr)
    if path is not None:
        try:
            path.write_text(str(os.getpid()))
        except OSError as error:
            logging.getLogger(service).warning("cannot write the pid file %s: %s", path, error.strerror)
            return None
    return path


def remove_pid_file(path: Path | None) -> None:
    """Removes the pid file if it is still ours (a restart may have written its own since)."""
    try:
        if path is not None and path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


async def _run(settings: Settings, main: Main, on_abort: Callable[[], None] = lambda: None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.ensure_future(main(settings, stop))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not running.done():
        grace = setting("RELAIS_STOP_SECONDS", 20.0)
        await asyncio.wait({running}, timeout=grace)
        if not running.done():
            logging.getLogger(settings.service).error(
                "did not stop within %g s (RELAIS_STOP_SECONDS; is its broker or database unreachable?): exiting without"
                " finishing",
                grace,
            )
            on_abort()
            logging.shutdown()
            os._exit(1)  # the stuck work holds the loop's shutdown too
    running.result()
    logging.getLogger(settings.service).info("stopped cleanly")


def _transient(error: BaseException | None) -> str | None:
    """'kafka' or 'database' when `error` is a broker or database connection failure, else None."""
    if error is None:
        return None
    import asyncpg
    from aiokafka.errors import KafkaError

    if isinstance(error, KafkaError):
        return "kafka"
    if isinstance(
        error,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
        ),
    ):
        return "database"
    return None


class OutageFilter(logging.Filter):
    """Thins out the error lines an outage repeats (aiokafka alone writes ~75 a second while the broker is down):
    for each kind of outage — the broker (aiokafka's own loggers, or our loops' lines about a Kafka error), the
    database (our lines about a lost connection) — the first line is written, then one "still failing after N s"
    line at 1, 2, 4, 8... minutes with how many were left out. An outage is over when the worker's watchdog
    finds the broker or database reachable and no such line came since its last check (`reset`), or after a
    minute without such lines."""

    FIRST_REMINDER = 60.0
    QUIET = 60.0

    def __init__(self):
        super().__init__()
        self.outages: dict[str, list[float]] = {}  # kind -> [started, last seen, next reminder (s), left out]

    def kind(self, record: logging.LogRecord) -> str | None:
        if record.levelno < logging.WARNING:
            return None
        if record.name.startswith("aiokafka"):
            return "kafka"
        error = (
            record.exc_info[1]
            if record.exc_info
            else next(
                (a for a in (record.args if isinstance(record.args, tuple) else ()) if isinstance(a, BaseException)),
                None,
            )
        )
        return _transient(error)

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, "_relais_outage", None)  # the same record through another handler
        if verdict is None:
            verdict = record._relais_outage = self._decide(record)
        return verdict

    def _decide(self, record: logging.LogRecord) -> bool:
        kind = self.kind(record)
        if kind is None:
            return True
        now = time.monotonic()
        outage = self.outages.get(kind)
        if outage is None or now - outage[1] > self.QUIET:
            self.outages[kind] = [now, now, self.FIRST_REMINDER, 0]
            return True
        outage[1] = now
        if now - outage[0] < outage[2]:
            outage[3] += 1
            return False
        record.msg = (
            f"still failing after {now - outage[0]:.0f} s ({outage[3]:.0f} similar lines not logged): {record.msg}"
        )
        record.exc_info = record.exc_text = None  # the first line had the traceback
        outage[2] *= 2
        outage[3] = 0
        return True

    def reset(self, kind: str | None = None, quiet_for: float = 0) -> None:
        """Ends the outage `kind` (every one by default) if no line of it came in the last `quiet_for` seconds."""
        now = time.monotonic()
        for name in [kind] if kind else list(self.outages):
            if name in self.outages and now - self.outages[name][1] >= quiet_for:
                del self.outages[name]


OUTAGES = OutageFilter()
