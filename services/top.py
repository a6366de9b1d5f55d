"""`relais top`: the supervisors' live view (routing's LiveView API) in the terminal, redrawn in place every second;
`relais top --json` prints one snapshot as a JSON object.

It calls whichever of routing's addresses serves (ROUTING_GRPC_ADDR, then ROUTING_STANDBY_GRPC_ADDR: the standby
answers UNAVAILABLE) with the service token (RELAIS_SERVICE_TOKEN), both from .relais/endpoints.env.
"""

import asyncio
import json
import shutil
import sys
from datetime import datetime, timezone

import grpc

from relais.common import grpcserver
from relais.common.pb import live_pb2 as pb, live_pb2_grpc as pb_grpc

STATES = ("available", "busy", "wrap_up", "break", "offline")  # shown in this order
RETRY_SECONDS = 1.0  # between two attempts when no routing process serves the live view
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen
ALTERNATE_SCREEN, MAIN_SCREEN = "\x1b[?1049h", "\x1b[?1049l"  # the terminal comes back as it was on quitting


def add_parser(commands) -> None:
    top = commands.add_parser("top", help="the live view for supervisors: queues, waits, agents, service level")
    top.add_argument("--json", action="store_true", help="print one snapshot as a JSON object and exit")
    top.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")


def as_json(snapshot: pb.LiveSnapshot) -> dict:
    """The snapshot as `relais top --json` prints it; an unset figure (no estimate, nothing ended) is null."""

    def optional(message, name: str):
        return getattr(message, name) if message.HasField(name) else None

    return {
        "at": snapshot.at.ToDatetime(timezone.utc).isoformat(),
        "queues": [
            {
                "language": q.language,
                "queue": q.queue,
                "waiting": q.waiting,
                "oldest_wait_seconds": q.oldest_wait_seconds,
                "expected_wait_seconds": optional(q, "expected_wait_seconds"),
                "offered_15m": q.offered_15m,
                "accepted_15m": q.accepted_15m,
                "abandoned_15m": q.abandoned_15m,
                "service_level_30m": optional(q, "service_level_30m"),
                "agents_signed_in": q.agents_signed_in,
            }
            for q in snapshot.queues
        ],
        "agents": {state: snapshot.agents_by_state.get(state, 0) for state in STATES}
        | dict(sorted(snapshot.agents_by_state.items())),
        "agents_by_language": dict(sorted(snapshot.agents_by_language.items())),
        "bot_answers_15m": snapshot.bot_answers_15m,
        "handoffs_15m": snapshot.handoffs_15m,
        "service_level_30m": optional(snapshot, "service_level_30m"),
        "service_level_target_seconds": snapshot.service_level_target_seconds,
    }


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


COLUMNS = ("QUEUE", "WAITING", "OLDEST", "EXP. WAIT", "OFFERED", "ACCEPTED", "ABANDONED", "SL 30m", "AGENTS")


def render(view: dict, note: str = "") -> str:
    """The screen for one snapshot (as_json's shape): the queues' table, the agents by state, the service level."""
    at = datetime.fromisoformat(view["at"]).strftime("%Y-%m-%d %H:%M:%S %Z")
    rows = [
        (
            q["language"] + (f" / {q['queue']}" if q["queue"] else ""),
            str(q["waiting"]),
            duration(q["oldest_wait_seconds"]) if q["waiting"] else "-",
            duration(q["expected_wait_seconds"]),
            str(q["offered_15m"]),
            str(q["accepted_15m"]),
            str(q["abandoned_15m"]),
            percent(q["service_level_30m"]),
            str(q["agents_signed_in"]),
        )
        for q in view["queues"]
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]

    def line(cells) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    out = [f"relais top  {at}  (Ctrl-C quits){'  ' + note if note else ''}", ""]
    out += [line(COLUMNS), *(line(r) for r in rows)] if rows else ["no queue: nobody waits, no agent signed in"]
    out += [
        "",
        "agents       " + "  ".join(f"{state} {n}" for state, n in view["agents"].items()),
        "by language  " + ("  ".join(f"{lang} {n}" for lang, n in view["agents_by_language"].items()) or "-"),
        f"last 15 min  hand-offs {view['handoffs_15m']}  bot answers {view['bot_answers_15m']}",
        f"service level, last 30 min: {percent(view['service_level_30m'])} answered within "
        f"{duration(view['service_level_target_seconds'])}",
    ]
    return "\n".join(out)


def routing_addresses(endpoints: dict[str, str]) -> list[str]:
    found: list[str] = []
    for value in (endpoints.get("ROUTING_GRPC_ADDR"), endpoints.get("ROUTING_STANDBY_GRPC_ADDR")):
        for addr in (value or "").split(","):
            if addr.strip() and addr.strip() not in found:
                found.append(addr.strip())
    return found


async def snapshot_once(endpoints: dict[str, str], timeout: float = 10) -> pb.LiveSnapshot:
    """One snapshot from the routing process that serves (the standby's UNAVAILABLE sends to the next address)."""
    error: grpc.RpcError | None = None
    for addr in routing_addresses(endpoints):
        async with grpcserver.channel(
            addr, endpoints.get("RELAIS_SERVICE_TOKEN") or None, env=endpoints, trace=False
        ) as ch:
            try:
                return await pb_grpc.LiveViewStub(ch).GetSnapshot(pb.WatchRequest(), timeout=timeout)
            except grpc.aio.AioRpcError as failed:
                if failed.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                error = failed
    raise error or RuntimeError("no routing address (ROUTING_GRPC_ADDR)")


async def watch(endpoints: dict[str, str], out=sys.stdout) -> None:
    """Redraws every snapshot pushed; when the stream drops (routing restarting, a take-over), tries the addresses
    again, saying so on the last screen."""
    token = endpoints.get("RELAIS_SERVICE_TOKEN") or None
    last: dict | None = None
    while True:
        reason = "no routing process serves the live view"
        for addr in routing_addresses(endpoints):
            async with grpcserver.channel(addr, token, env=endpoints, trace=False) as ch:
                try:
                    async for snapshot in pb_grpc.LiveViewStub(ch).Watch(pb.WatchRequest()):
                        last = as_json(snapshot)
                        out.write(CLEAR + render(last) + "\n")
                        out.flush()
                except grpc.aio.AioRpcError as failed:
                    if failed.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                        raise
                    reason = f"{addr}: {failed.code().name}"
        if last is None:
            raise ConnectionError(reason)  # never reached: one line from the CLI, as for the other commands
        out.write(CLEAR + render(last, note=f"[reconnecting: {reason}]") + "\n")
        out.flush()
        await asyncio.sleep(RETRY_SECONDS)


def top_cli(args, endpoints: dict[str, str]) -> int:
    if args.json:
        print(json.dumps(as_json(asyncio.run(snapshot_once(endpoints))), indent=2, ensure_ascii=False))
        return 0
    screen = sys.stdout.isatty() and shutil.get_terminal_size().lines > 0
    if screen:
        sys.stdout.write(ALTERNATE_SCREEN)
    try:
        asyncio.run(watch(endpoints))
    except KeyboardInterrupt:
        return 0
    finally:
        if screen:
            sys.stdout.write(MAIN_SCREEN)
            sys.stdout.flush()
    return 0
