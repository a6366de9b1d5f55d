"""The `relais` command."""

import argparse
import asyncio
import os
import sys
from pathlib import Path

from relais.common.config import DEFAULT_DATABASE_URL, DEFAULT_KAFKA, grpc_addr


def endpoints(path: str | None) -> dict[str, str]:
    """Endpoints from `make up`'s endpoints.env, overridden by the environment."""
    values = {"KAFKA_BOOTSTRAP_SERVERS": DEFAULT_KAFKA, "DATABASE_URL": DEFAULT_DATABASE_URL}
    values |= {f"{s.upper()}_GRPC_ADDR": grpc_addr(s) for s in ("routing", "analytics", "lookup")}
    file = Path(path or ".relais/endpoints.env")
    if file.exists():
        values |= dict(line.split("=", 1) for line in file.read_text().splitlines() if "=" in line)
    return values | {k: v for k, v in os.environ.items() if k in values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relais", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="replay the demo conversations against a running stack")
    demo.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    topics_cmd = commands.add_parser("topics", help="create the Kafka topics relais uses")
    topics_cmd.add_argument("--endpoints")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from relais.demo import run_demo

        asyncio.run(run_demo(endpoints(args.endpoints)))
    elif args.command == "topics":
        from relais.common.topics import ensure_topics

        created = asyncio.run(ensure_topics(endpoints(args.endpoints)["KAFKA_BOOTSTRAP_SERVERS"]))
        print("created: " + (", ".join(created) or "nothing, all topics exist"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
