"""Erlang C staffing: how many agents a queue needs to answer a share of contacts within a target time.

The model is M/M/N: contacts arrive at random (Poisson), handling times are exponential, nobody hangs
up while waiting. Real customers do abandon, so Erlang C slightly overstates waiting and staffing;
it is the industry's usual, conservative baseline.

Concurrent chats (`concurrency` c > 1): classic Erlang C knows one contact per agent. relais counts
each agent as c chat slots, runs Erlang C on slots = floor(agents * c), and lets every slot take the
measured chat AHT. That assumes the AHT was measured while agents juggled chats as usual, so it
already includes the slowdown of sharing their attention. It is an approximation: a real agent
slows down as chats pile up rather than at a fixed rate, and a chat waits only when every slot of
every agent is taken; treat the result as a rough guide and check it against observed chat queues.
"""

import argparse
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from itertools import count

# Beyond this the search walks millions of agents; no single queue is that big.
MAX_TRAFFIC_ERLANGS = 1_000_000


class InvalidInput(ValueError):
    """An impossible input; keeps the parameter's name so the CLI can name its flag."""

    def __init__(self, parameter: str, requirement: str, value: object):
        self.parameter, self.requirement, self.value = parameter, requirement, value
        super().__init__(f"{parameter.replace('_', ' ')} must be {requirement}, got {value}")


def _erlang_b_steps(traffic: float):
    """Yield (servers, Erlang B) for 0, 1, 2, ... servers: the recursion stays in [0, 1], so no
    factorial or power ever overflows."""
    blocking = 1.0
    for servers in count():
        yield servers, blocking
        blocking = traffic * blocking / (servers + 1 + traffic * blocking)


def _erlang_b(servers: int, traffic: float) -> float:
    return next(blocking for n, blocking in _erlang_b_steps(traffic) if n == servers)


def _c_from_b(servers: int, traffic: float, blocking: float) -> float:
    if servers <= traffic:
        return 1.0
    return servers * blocking / (servers - traffic * (1 - blocking))


def erlang_c(agents: int, traffic_erlangs: float) -> float:
    """Probability that a contact waits; 1.0 when the agents cannot keep up with the traffic."""
    if agents <= traffic_erlangs:
        return 1.0
    return _c_from_b(agents, traffic_erlangs, _erlang_b(agents, traffic_erlangs))


def _service_level(wait: float, agents: int, traffic: float, aht_seconds: float, target_seconds: float) -> float:
    if agents <= traffic:
        return 0.0
    return 1 - wait * math.exp(-(agents - traffic) * target_seconds / aht_seconds)


def _asa(wait: float, agents: int, traffic: float, aht_seconds: float) -> float:
    return wait * aht_seconds / (agents - traffic) if agents > traffic else math.inf


def service_level(agents: int, traffic: float, aht_seconds: float, target_seconds: float) -> float:
    """Share of contacts answered within target_seconds."""
    return _service_level(erlang_c(agents, traffic), agents, traffic, aht_seconds, target_seconds)


def asa_seconds(agents: int, traffic: float, aht_seconds: float) -> float:
    """Average speed of answer (mean wait over all contacts); infinite when the queue grows forever."""
    return _asa(erlang_c(agents, traffic), agents, traffic, aht_seconds)


@dataclass(frozen=True)
class Staffing:
    agents: int
    service_level: float
    occupancy: float
    asa_seconds: float
    traffic_erlangs: float
    calls_per_hour: float
    aht_seconds: float

    def as_dict(self) -> dict:
        # JSON has no infinity: an overloaded queue's ASA becomes null.
        return asdict(self) | {"asa_seconds": self.asa_seconds if math.isfinite(self.asa_seconds) else None}


def _check(parameter: str, value: float, ok: bool, requirement: str) -> None:
    # NaN fails every comparison anyway; infinity would pass `> 0` and make the search endless.
    if not (math.isfinite(value) and ok):
        raise InvalidInput(parameter, requirement, value)


def _traffic(calls_per_hour: float, aht_seconds: float, concurrency: float) -> float:
    _check("calls_per_hour", calls_per_hour, calls_per_hour > 0, "> 0")
    _check("aht_seconds", aht_seconds, aht_seconds > 0, "> 0")
    _check("concurrency", concurrency, concurrency >= 1, ">= 1")
    traffic = calls_per_hour * aht_seconds / 3600
    if traffic > MAX_TRAFFIC_ERLANGS:
        raise ValueError(
            f"traffic of {traffic:.0f} Erlangs (calls per hour x AHT / 3600) is beyond "
            f"the {MAX_TRAFFIC_ERLANGS} Erlangs this sizes"
        )
    return traffic


def _staffing(agents, slots, blocking, traffic, calls_per_hour, aht_seconds, target_seconds) -> Staffing:
    wait = _c_from_b(slots, traffic, blocking)
    return Staffing(
        agents=agents,
        service_level=_service_level(wait, slots, traffic, aht_seconds, target_seconds),
        occupancy=min(1.0, traffic / slots) if slots else 1.0,
        asa_seconds=_asa(wait, slots, traffic, aht_seconds),
        traffic_erlangs=traffic,
        calls_per_hour=calls_per_hour,
        aht_seconds=aht_seconds,
    )


def required_agents(
    calls_per_hour: float,
    aht_seconds: float,
    target_level: float,
    target_seconds: float,
    *,
    concurrency: float = 1.0,
    max_occupancy: float | None = None,
) -> Staffing:
    """The fewest agents answering target_level of contacts within target_seconds (and, if given,
    busy at most max_occupancy of the time)."""
    traffic = _traffic(calls_per_hour, aht_seconds, concurrency)
    _check("target_level", target_level, 0 < target_level <= 1, "in (0, 1]")
    _check("target_seconds", target_seconds, target_seconds >= 0, ">= 0")
    if max_occupancy is not None:
        _check("max_occupancy", max_occupancy, 0 < max_occupancy <= 1, "in (0, 1]")
    # One walk up the Erlang B recursion serves every candidate: linear in the answer, even for thousands.
    steps = _erlang_b_steps(traffic)
    servers, blocking = next(steps)
    for agents in count(max(1, math.floor(traffic / concurrency))):
        slots = math.floor(agents * concurrency)
        while servers < slots:
            servers, blocking = next(steps)
        if slots <= traffic:
            continue
        staffing = _staffing(agents, slots, blocking, traffic, calls_per_hour, aht_seconds, target_seconds)
        if staffing.service_level >= target_level and (max_occupancy is None or staffing.occupancy <= max_occupancy):
            return staffing
    raise AssertionError("unreachable: count() never ends")


def staffing_curve(
    calls_per_hour: float,
    aht_seconds: float,
    target_seconds: float,
    agents_range: Iterable[int],
    *,
    concurrency: float = 1.0,
) -> list[Staffing]:
    """Service level, occupancy and ASA for each head count in agents_range (for a chart)."""
    traffic = _traffic(calls_per_hour, aht_seconds, concurrency)
    _check("target_seconds", target_seconds, target_seconds >= 0, ">= 0")
    curve = []
    for agents in agents_range:
        slots = math.floor(agents * concurrency)
        blocking = _erlang_b(slots, traffic) if slots > traffic else 1.0  # overloaded: no need to walk
        curve.append(_staffing(agents, slots, blocking, traffic, calls_per_hour, aht_seconds, target_seconds))
    return curve


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("staffing", help="agents needed to meet a service level (Erlang C)")
    parser.add_argument("--calls-per-hour", type=float, required=True, help="contacts offered per hour")
    parser.add_argument("--aht-seconds", type=float, required=True, help="average handling time, wrap-up included")
    parser.add_argument(
        "--target-level", type=float, default=0.8, help="share answered within the target (default 0.8)"
    )
    parser.add_argument("--target-seconds", type=float, default=20, help="target answer time (default 20)")
    parser.add_argument("--peak-multiplier", type=float, help="also size a peak hour of calls-per-hour x this")
    parser.add_argument("--concurrency", type=float, default=1.0, help="chats an agent handles at once (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _report(staffing: Staffing) -> dict:
    return {
        "agents": staffing.agents,
        "service_level": round(staffing.service_level, 4),
        "occupancy": round(staffing.occupancy, 4),
        "asa_seconds": round(staffing.asa_seconds, 2),
    }


def _summary(label: str, staffing: Staffing, args) -> str:
    return (
        f"{label}: {staffing.agents} agents for {staffing.calls_per_hour:g} contacts/h "
        f"({staffing.traffic_erlangs:.1f} Erlangs) -> {staffing.service_level:.1%} answered within "
        f"{args.target_seconds:g} s, occupancy {staffing.occupancy:.1%}, ASA {staffing.asa_seconds:.1f} s"
    )


def staffing_cli(args: argparse.Namespace) -> int:
    try:
        multiplier = args.peak_multiplier
        if multiplier is not None:
            _check("peak_multiplier", multiplier, multiplier > 0, "> 0")
        size = partial(
            required_agents,
            aht_seconds=args.aht_seconds,
            target_level=args.target_level,
            target_seconds=args.target_seconds,
            concurrency=args.concurrency,
        )
        base = size(args.calls_per_hour)
        peak = size(args.calls_per_hour * multiplier) if multiplier is not None else None
    except ValueError as err:
        message = (
            f"--{err.parameter.replace('_', '-')} must be {err.requirement}, got {err.value}"
            if isinstance(err, InvalidInput)
            else str(err)
        )
        print(f"relais staffing: error: {message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(_report(base) | ({"peak": _report(peak)} if peak else {})))
    else:
        print(_summary("normal", base, args))
        if peak:
            print(_summary(f"peak x{multiplier:g}", peak, args))
    return 0
