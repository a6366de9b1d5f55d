"""The `relais` command.

Bad input and a missing stack end in one line on standard error, never a traceback: exit 2 for a usage error or a
bad setting, 1 when the stack (Kafka, the database, a service) cannot be reached or a command fails.
RELAIS_DEBUG=1 shows the traceback of an unexpected error.
"""

import argparse
import asyncio
import logging
import os
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path

from relais.common import progress
from relais.common.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_GRPC_PORTS,
    DEFAULT_KAFKA,
    SETTINGS,
    ConfigError,
    parse_setting,
    setting,
)

CLIENT_ADDRESSES = ("routing", "analytics", "lookup")


def endpoints(path: str | None) -> dict[str, str]:
    """Endpoints from `make up`'s endpoints.env, overridden by the environment; each checked (ConfigError)."""
    values = {"KAFKA_BOOTSTRAP_SERVERS": DEFAULT_KAFKA, "DATABASE_URL": DEFAULT_DATABASE_URL}
    values |= {f"{s.upper()}_GRPC_ADDR": f"127.0.0.1:{DEFAULT_GRPC_PORTS[s]}" for s in CLIENT_ADDRESSES}
    values |= dict.fromkeys(
        (
            "ROUTING_STANDBY_GRPC_ADDR",
            "RELAIS_SERVICE_TOKEN",
            "RELAIS_TLS_CA",
            "RELAIS_TLS_CLIENT_CERT",
            "RELAIS_TLS_CLIENT_KEY",
        ),
        "",
    )
    file = Path(path or ".relais/endpoints.env")
    if path and not file.is_file():
        raise UsageError(f"--endpoints {path}: no such file")
    if file.is_file():
        values |= dict(line.split("=", 1) for line in file.read_text().splitlines() if "=" in line)
    values |= {k: v for k, v in os.environ.items() if k in values}
    for name, value in values.items():
        if name in SETTINGS and value.strip():
            parse_setting(name, value.strip())
    return values


class UsageError(Exception):
    """Bad arguments found after parsing: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line instead of the usage block."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    try:
        return metadata.version("relais")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: make install)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="relais", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"relais {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    reset_cmd = commands.add_parser(
        "reset", help="empty the queues and the database of the stopped stack (keeps the Kafka jars and the models)"
    )
    reset_cmd.add_argument("--state-dir", help="state directory (default: the repository's .relais/)")
    demo = commands.add_parser("demo", help="replay the demo conversations against a running stack")
    demo.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    demo.add_argument(
        "--no-advisor", action="store_true", help="play the customers only: hand-offs wait for people on `relais desk`"
    )
    demo.add_argument(
        "--wait",
        type=float,
        default=600,
        metavar="SECONDS",
        help="with --no-advisor, how long each hand-off waits for an advisor's reply (default 600)",
    )
    chat = commands.add_parser("chat", help="a console customer: type messages, read relais' replies")
    chat.add_argument("--conversation", required=True, help="the conversation id (the CloudEvent subject)")
    chat.add_argument("--customer", help="customer id (default cust-<conversation>)")
    chat.add_argument("--language", help="the customer's language, when the channel knows it (fr, en, ...)")
    chat.add_argument("--tier", help="customer tier (standard, gold, vip, ...)")
    chat.add_argument("--channel", default="chat", choices=("chat", "email", "sms", "voice_transcript"))
    chat.add_argument(
        "--wait",
        type=float,
        default=10,
        metavar="SECONDS",
        help="at the end of input, how long to wait for the last replies (default 10)",
    )
    chat.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    topics_cmd = commands.add_parser("topics", help="create the Kafka topics relais uses")
    topics_cmd.add_argument("--endpoints")
    desk_cmd = commands.add_parser("desk", help="a console agent desk: sign in, take offers, reply, close")
    desk_cmd.add_argument("--agent", required=True, help="your agent id")
    desk_cmd.add_argument("--name", help="display name")
    desk_cmd.add_argument("--languages", default="fr,en")
    desk_cmd.add_argument(
        "--skills",
        default="general,orders,billing,cards,accounts,retention,complaints,conflict_handling",
        help="skill[:level],... e.g. billing:3,orders:2 (level 1 when omitted)",
    )
    desk_cmd.add_argument("--capacity", default="", help="channel:n,... e.g. chat:3,voice:1 (default from the rules)")
    desk_cmd.add_argument("--endpoints")
    bench = commands.add_parser("bench", help="measurements (from a source checkout: bench/)").add_subparsers(
        dest="bench_command", required=True
    )
    bench_routing = bench.add_parser("routing", help="hand-off to offer latency on a private stack (p50/p99)")
    bench_routing.add_argument("--tasks", type=int, default=1000, help="waiting tasks")
    bench_routing.add_argument("--agents", type=int, default=500, help="signed-in agents")
    bench_routing.add_argument("--samples", type=int, default=300)
    bench_routing.add_argument("--json", action="store_true", help="print one JSON object")
    try:
        from bench import pipeline as bench_pipeline  # the checkout's bench/, not part of the installed package
    except ModuleNotFoundError as error:
        if error.name != "bench":
            raise
    else:
        bench_pipeline.add_parser(bench)

    from relais import top
    from relais.analytics import client as analytics_client, staffing
    from relais.common import redact, retention

    staffing.add_parser(commands)
    redact.add_parser(commands)
    retention.add_parser(commands)
    analytics_client.add_parser(commands)
    top.add_parser(commands)

    intents = commands.add_parser("intents", help="train and evaluate the intent classifier").add_subparsers(
        dest="intents_command", required=True
    )
    train = intents.add_parser("train", help="train the intent model from the use-case catalogue")
    train.add_argument("--catalogue", help="catalogue YAML (default: the shipped catalogue)")
    train.add_argument("--out", help="artifact path (default: $RELAIS_INTENT_MODEL or .relais/models/intents.pkl)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--family", help="model family (default: the service's)")
    distil = intents.add_parser(
        "distil",
        help="the minilm-student family's encoder: MiniLM distilled from mpnet-ft, offline (torch: make bench-install)",
    )
    distil.add_argument("--catalogue", help="catalogue YAML whose examples it learns (default: the shipped catalogue)")
    distil.add_argument("--train", metavar="TRAIN.csv", help="learn a text,label CSV's rows instead of a catalogue")
    distil.add_argument(
        "--out", help="student file (default: $RELAIS_STUDENT_ENCODER or .relais/models/student-int8.onnx)"
    )
    distil.add_argument("--seed", type=int, default=0)
    evaluate = intents.add_parser("eval", help="train on a text,label CSV and evaluate on another; prints JSON")
    evaluate.add_argument("--train", required=True, metavar="TRAIN.csv")
    evaluate.add_argument("--test", required=True, metavar="TEST.csv")
    evaluate.add_argument("--val", metavar="VAL.csv", help="chooses the out-of-scope cut-off")
    evaluate.add_argument("--oos-label", help="label of out-of-scope rows, e.g. oos")
    evaluate.add_argument("--family", help="model family (default: the service's)")
    evaluate.add_argument("--student", metavar="STUDENT.onnx", help="minilm-student: a student distilled on TRAIN.csv")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The Kafka client logs each failed connection; the one line this command ends with says what failed.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    prog = " ".join(["relais", args.command] + [getattr(args, f"{args.command}_command", None) or ""]).strip()
    try:
        check_arguments(args)
        with progress.reporting(prog):  # the stages of long-running commands, on standard error
            return dispatch(args)
    except KeyboardInterrupt:
        return 130
    except (UsageError, ConfigError) as error:
        return _fail(prog, f"error: {error}", 2)
    except Exception as error:
        if os.environ.get("RELAIS_DEBUG"):
            raise
        unreachable = _unreachable(error, args)
        if unreachable:
            return _fail(prog, unreachable, 1)
        return _fail(prog, f"error: {_reason(error)} (RELAIS_DEBUG=1 shows the traceback)", 1)


def _fail(prog: str, message: str, code: int) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    # Clients left open by the failure would each add a warning at exit: the line above says it all.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return code


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _unreachable(error: Exception, args) -> str | None:
    """One line for a stack that is not there (or answers with an error), naming what and where; None otherwise."""
    import grpc
    from aiokafka.errors import KafkaConnectionError, KafkaError

    try:
        addresses = endpoints(getattr(args, "endpoints", None))
    except Exception:
        addresses = {}
    hint = "is the stack up? (make up)"
    if isinstance(error, KafkaError):
        reason = "" if isinstance(error, KafkaConnectionError) else f" ({_reason(error)})"
        return f"cannot reach Kafka at {addresses.get('KAFKA_BOOTSTRAP_SERVERS', '?')}{reason} — {hint}"
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return f"the relais service answered {error.code().name}: {' '.join(str(error.details()).split())} — {hint}"
    database = addresses.get("DATABASE_URL", "?").rsplit("@", 1)[-1]
    try:
        import asyncpg
    except ImportError:
        asyncpg = None
    if asyncpg is not None and isinstance(error, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return f"the database at {database} answered: {_reason(error)} — {hint}"
    if isinstance(error, TimeoutError):
        return f"no answer in time from {_needs(args)} or the services behind it — are they up? (make status)"
    if isinstance(error, ConnectionError) or (isinstance(error, OSError) and error.filename is None):
        return f"cannot reach {_needs(args)} ({_reason(error)}) — {hint}"
    return None


def _needs(args) -> str:
    try:
        addresses = endpoints(getattr(args, "endpoints", None))
    except Exception:
        return "the stack"
    if args.command in ("purge", "redact"):  # redact reaches the database with --rescan
        return f"the database at {addresses['DATABASE_URL'].rsplit('@', 1)[-1]}"
    if args.command in ("demo", "chat", "topics", "bench"):
        return f"Kafka at {addresses['KAFKA_BOOTSTRAP_SERVERS']}"
    return "the stack"


# Ranges the parsers' types do not say: (command, subcommand or None, option dest, minimum, minimum allowed?)
RANGES = [
    ("demo", None, "wait", 0, True),
    ("chat", None, "wait", 0, True),
    ("report", None, "days", 0, False),
    ("report", None, "peak_multiplier", 0, False),
    ("bench", "routing", "tasks", 0, True),
    ("bench", "routing", "agents", 1, True),
    ("bench", "routing", "samples", 1, True),
    ("bench", "pipeline", "rate", 0, False),
    ("bench", "pipeline", "seconds", 0, False),
    ("bench", "pipeline", "warmup", 0, True),
    ("bench", "pipeline", "start_rate", 0, False),
    ("bench", "pipeline", "search_seconds", 0, False),
    ("bench", "pipeline", "ceiling_records", 1, True),
]


def check_arguments(args) -> None:
    """UsageError for what argparse let through: out-of-range numbers, a --to that is no time, missing files."""
    sub = getattr(args, f"{args.command}_command", None)
    for command, subcommand, dest, minimum, inclusive in RANGES:
        value = getattr(args, dest, None)
        if command == args.command and subcommand in (None, sub) and value is not None:
            if value < minimum or (value == minimum and not inclusive):
                raise UsageError(
                    f"--{dest.replace('_', '-')} must be {'≥' if inclusive else '>'} {minimum}, got {value}"
                )
    if args.command == "report":
        if args.to:
            try:
                datetime.fromisoformat(args.to.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(
                    f"--to: expected an RFC 3339 time, e.g. 2026-12-06T18:00:00Z, got {args.to!r}"
                ) from None
        if not Path(args.out).resolve().parent.is_dir():
            raise UsageError(f"--out {args.out}: no such directory {str(Path(args.out).parent)!r}")
    if args.command == "purge" and args.days is None:
        setting("RELAIS_RETENTION_DAYS", None)
    if (
        args.command == "intents"
        and sub in ("train", "distil")
        and args.catalogue
        and not Path(args.catalogue).is_file()
    ):
        raise UsageError(f"--catalogue {args.catalogue}: no such file")
    if args.command == "intents" and sub == "distil" and args.train and args.catalogue:
        raise UsageError("--train and --catalogue: give one (the rows it learns)")


def _repository() -> Path:
    """The source checkout holding infra/ (the stack's code) and bench/, importable from an editable install."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "infra" / "stack.py").is_file():
        raise UsageError("this command needs the repository's infra/ (run it from a source checkout)")
    return root


def dispatch(args) -> int:
    from relais.analytics import client as analytics_client, staffing
    from relais.common import redact, retention

    if args.command == "reset":
        _repository()
        from infra import stack

        state_dir = Path(args.state_dir) if args.state_dir else stack.STATE
        if args.state_dir and not state_dir.is_dir():
            raise UsageError(f"--state-dir {args.state_dir}: no such directory")
        return stack.reset(state_dir, prog="relais reset")
    elif args.command == "demo":
        from relais.demo import run_demo

        try:
            asyncio.run(run_demo(endpoints(args.endpoints), advisor=not args.no_advisor, wait_for_agents=args.wait))
        except KeyboardInterrupt:
            return 130
    elif args.command == "chat":
        from relais.chat import chat_cli

        return chat_cli(args, endpoints(args.endpoints))
    elif args.command == "topics":
        from relais.common.topics import ensure_topics

        created = asyncio.run(ensure_topics(endpoints(args.endpoints)["KAFKA_BOOTSTRAP_SERVERS"]))
        print("created: " + (", ".join(created) or "nothing, all topics exist"))
    elif args.command == "desk":
        from relais.desk import desk_cli

        return desk_cli(args, endpoints(args.endpoints))
    elif args.command == "bench" and args.bench_command == "routing":
        _repository()
        from bench.routing import bench_cli

        return bench_cli(args)
    elif args.command == "bench" and args.bench_command == "pipeline":
        _repository()
        from bench import pipeline as bench_pipeline

        return bench_pipeline.pipeline_cli(args)
    elif args.command == "staffing":
        return staffing.staffing_cli(args)
    elif args.command == "redact":
        if args.rescan:
            from relais.common import rescan

            return rescan.rescan_cli(args, endpoints(args.endpoints))
        return redact.redact_cli(args)
    elif args.command == "purge":
        return retention.purge_cli(args, endpoints(args.endpoints))
    elif args.command == "report":
        return analytics_client.report_cli(args, endpoints(args.endpoints))
    elif args.command == "top":
        from relais import top

        return top.top_cli(args, endpoints(args.endpoints))
    elif args.command == "intents" and args.intents_command == "train":
        from relais.classifier.artifact import train_cli

        return train_cli(args)
    elif args.command == "intents" and args.intents_command == "distil":
        from relais.classifier.artifact import distil_cli

        return distil_cli(args)
    elif args.command == "intents" and args.intents_command == "eval":
        from relais.classifier.evaluate import eval_cli

        return eval_cli(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
