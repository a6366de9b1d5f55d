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
    values |= dict.fromkeys(("RELAIS_SERVICE_TOKEN", "RELAIS_TLS_CA", "RELAIS_TLS_CLIENT_CERT", "RELAIS_TLS_CLIENT_KEY"), "")
    file = Path(path or ".relais/endpoints.env")
    if file.exists():
        values |= dict(line.split("=", 1) for line in file.read_text().splitlines() if "=" in line)
    return values | {k: v for k, v in os.environ.items() if k in values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relais", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="replay the demo conversations against a running stack")
    demo.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    demo.add_argument("--no-advisor", action="store_true",
                      help="play the customers only: hand-offs wait for people on `relais desk`")
    demo.add_argument("--wait", type=float, default=600, metavar="SECONDS",
                      help="with --no-advisor, how long each hand-off waits for an advisor's reply (default 600)")
    topics_cmd = commands.add_parser("topics", help="create the Kafka topics relais uses")
    topics_cmd.add_argument("--endpoints")
    desk_cmd = commands.add_parser("desk", help="a console agent desk: sign in, take offers, reply, close")
    desk_cmd.add_argument("--agent", required=True, help="your agent id")
    desk_cmd.add_argument("--name", help="display name")
    desk_cmd.add_argument("--languages", default="fr,en")
    desk_cmd.add_argument("--skills", default="general,orders,billing,cards,accounts,retention,complaints,conflict_handling",
                          help="skill[:level],... e.g. billing:3,orders:2 (level 1 when omitted)")
    desk_cmd.add_argument("--capacity", default="", help="channel:n,... e.g. chat:3,voice:1 (default from the rules)")
    desk_cmd.add_argument("--endpoints")
    bench = commands.add_parser("bench", help="measurements").add_subparsers(dest="bench_command", required=True)
    bench_routing = bench.add_parser("routing", help="hand-off to offer latency on a private stack (p50/p99)")
    bench_routing.add_argument("--tasks", type=int, default=1000, help="waiting tasks")
    bench_routing.add_argument("--agents", type=int, default=500, help="signed-in agents")
    bench_routing.add_argument("--samples", type=int, default=300)
    bench_routing.add_argument("--json", action="store_true", help="print one JSON object")
    from relais.benchmarks import pipeline as bench_pipeline

    bench_pipeline.add_parser(bench)

    from relais.analytics import client as analytics_client, staffing
    from relais.common import redact, retention

    staffing.add_parser(commands)
    redact.add_parser(commands)
    retention.add_parser(commands)
    analytics_client.add_parser(commands)

    intents = commands.add_parser("intents", help="train and evaluate the intent classifier").add_subparsers(
        dest="intents_command", required=True)
    train = intents.add_parser("train", help="train the intent model from the use-case catalogue")
    train.add_argument("--catalogue", help="catalogue YAML (default: the shipped catalogue)")
    train.add_argument("--out", help="artifact path (default: $RELAIS_INTENT_MODEL or .relais/models/intents.pkl)")
    train.add_argument("--seed", type=int, default=0)
    evaluate = intents.add_parser("eval", help="train on a text,label CSV and evaluate on another; prints JSON")
    evaluate.add_argument("--train", required=True, metavar="TRAIN.csv")
    evaluate.add_argument("--test", required=True, metavar="TEST.csv")
    evaluate.add_argument("--val", metavar="VAL.csv", help="chooses the out-of-scope cut-off")
    evaluate.add_argument("--oos-label", help="label of out-of-scope rows, e.g. oos")
    evaluate.add_argument("--family", help="model family (default: the service's)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from relais.demo import run_demo

        try:
            asyncio.run(run_demo(endpoints(args.endpoints), advisor=not args.no_advisor, wait_for_agents=args.wait))
        except KeyboardInterrupt:
            return 130
    elif args.command == "topics":
        from relais.common.topics import ensure_topics

        created = asyncio.run(ensure_topics(endpoints(args.endpoints)["KAFKA_BOOTSTRAP_SERVERS"]))
        print("created: " + (", ".join(created) or "nothing, all topics exist"))
    elif args.command == "desk":
        from relais.desk import desk_cli

        return desk_cli(args, endpoints(args.endpoints))
    elif args.command == "bench" and args.bench_command == "routing":
        from relais.routing.bench import bench_cli

        return bench_cli(args)
    elif args.command == "bench" and args.bench_command == "pipeline":
        return bench_pipeline.pipeline_cli(args)
    elif args.command == "staffing":
        return staffing.staffing_cli(args)
    elif args.command == "redact":
        return redact.redact_cli(args)
    elif args.command == "purge":
        return retention.purge_cli(args, endpoints(args.endpoints))
    elif args.command == "report":
        return analytics_client.report_cli(args, endpoints(args.endpoints))
    elif args.command == "intents" and args.intents_command == "train":
        from relais.classifier.artifact import train_cli

        return train_cli(args)
    elif args.command == "intents" and args.intents_command == "eval":
        from relais.classifier.evaluate import eval_cli

        return eval_cli(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
