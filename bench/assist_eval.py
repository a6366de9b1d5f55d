"""Agent assist on a labelled set of hand-offs (tests/unit/routing/assist_evaluation.yaml, FR and EN, written apart from
the knowledge base): the share of first suggestions judged relevant, what no suggestion may say (unsupported
claims, irreversible actions nobody asked for, unrelated lookup results), and the drafting time. Figures; the
unit test tests/unit/routing/test_assist.py asserts the targets on the same evaluation.

    python bench/assist_eval.py [--cases PATH] [--rounds 20] [--json] [--verbose]

Relevant: one of the first suggestion's topics (its articles' ids without the language, or `greeting` /
`callback` for the takeover and callback openings) is among the case's acceptable ones. Claims are counted over
every suggestion by relais.routing.assist.check against the case's context and the articles each suggestion cites.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from relais.common import progress
from relais.common.pb import conversation_pb2 as pb
from relais.routing import assist

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "unit" / "routing" / "assist_evaluation.yaml"
HANDED_OFF = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)
TURN_KEYS = {"text", "intent", "best_guess", "score", "anger", "distress", "urgency", "human"}
CASE_KEYS = {
    "id",
    "language",
    "kind",
    "tier",
    "reasons",
    "intent",
    "handoff_turn",
    "turns",
    "bot",
    "lookups",
    "relevant",
}
TARGETS = {"relevant_share": 0.80, "unsupported": 0, "irreversible": 0, "off_topic": 0}


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str
    context: pb.ConversationContext
    relevant: frozenset[str]


def load_cases(path: Path = CASES) -> list[Case]:
    """The labelled cases; a malformed one is a ValueError naming it."""
    cases = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["cases"]
    loaded = [_case(raw) for raw in cases]
    ids = [c.case_id for c in loaded]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: duplicate case ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return loaded


def _case(raw: dict) -> Case:
    name = raw.get("id", "?")
    unknown = set(raw) - CASE_KEYS | {k for t in raw.get("turns", []) for k in t} - TURN_KEYS
    if unknown or not raw.get("turns") or not raw.get("relevant") or raw.get("kind", "handoff") not in assist.KINDS:
        raise ValueError(
            f"case {name}: needs turns and relevant, kind in {assist.KINDS}; unknown keys {sorted(unknown)}"
        )
    language = raw["language"]
    customer = pb.Customer(id=f"cust-{name}", language=language, tier=raw.get("tier", ""))
    reasons = [pb.HandoffReason.Value("HANDOFF_REASON_" + r.upper()) for r in raw.get("reasons", ["customer_request"])]
    ctx = pb.ConversationContext(
        conversation_id=f"conv-{name}",
        customer=customer,
        language=language,
        channel=pb.CHANNEL_CHAT,
        reason=reasons[0],
        reasons=reasons,
    )
    for n, turn in enumerate(raw["turns"], 1):
        sentiment = pb.Sentiment(
            score=turn.get("score", 0.0),
            anger=turn.get("anger", False),
            distress=turn.get("distress", False),
            urgency=turn.get("urgency", False),
        )
        classification = pb.Classification(
            intent=turn.get("intent", ""),
            best_guess=turn.get("best_guess", turn.get("intent", "")),
            out_of_scope=not turn.get("intent"),
            confidence=0.9 if turn.get("intent") else 0.3,
            sentiment=sentiment,
            asks_for_human=turn.get("human", False),
        )
        added = ctx.turns.add(
            turn_id=f"chat#{name}-{n}",
            conversation_id=ctx.conversation_id,
            seq=n,
            language=language,
            text=turn["text"],
            customer=customer,
            channel=pb.CHANNEL_CHAT,
            classification=classification,
        )
        added.sent_at.FromDatetime(HANDED_OFF - timedelta(minutes=len(raw["turns"]) - n))
    handoff_turn = raw.get("handoff_turn", len(raw["turns"]))
    ctx.intent = raw.get("intent", ctx.turns[handoff_turn - 1].classification.intent)
    ctx.handed_off_at.FromDatetime(HANDED_OFF - timedelta(minutes=len(raw["turns"]) - handoff_turn))
    for attempt in raw.get("bot", []):
        ctx.bot_attempts.add(
            turn_id=ctx.turns[attempt["turn"] - 1].turn_id,
            intent=attempt["intent"],
            reply_text=attempt.get("reply", ""),
            resolved=attempt.get("resolved", False),
            clarification=attempt.get("clarification", False),
        )
    for lookup in raw.get("lookups", []):
        ctx.lookups.add(
            name=lookup["name"],
            turn_id=ctx.turns[lookup["turn"] - 1].turn_id,
            request={k: str(v) for k, v in (lookup.get("request") or {}).items()},
            result={k: str(v) for k, v in (lookup.get("result") or {}).items()},
            ok="error" not in lookup,
            error=lookup.get("error", ""),
        )
    return Case(name, raw.get("kind", "handoff"), ctx, frozenset(raw["relevant"]))


def topics(suggestion) -> set[str]:
    """kb-delivery-delay-fr -> delivery-delay; a template opening names its own topic."""
    found = {a.removeprefix("kb-").rsplit("-", 1)[0] for a in suggestion.article_ids}
    return found | ({suggestion.topic} if getattr(suggestion, "topic", "") else set())


def evaluate(assistant, cases: list[Case], rounds: int = 1) -> dict:
    """Relevance of the first suggestion, problems over all suggestions, and µs per assist over `rounds` passes
    (wall clock, and the thread's CPU time, which other processes on a busy machine do not inflate)."""
    misses, problems, times, cpu = [], [], [], []
    for case in cases:
        result = assistant.assist(case.context, [], kind=case.kind)
        first = result.suggestions[0] if result.suggestions else None
        if first is None or not topics(first) & case.relevant:
            misses.append(
                {"case": case.case_id, "got": sorted(topics(first)) if first else [], "expected": sorted(case.relevant)}
            )
        for s in result.suggestions:
            articles = [assistant.knowledge.get(a) for a in s.article_ids]
            problems += [
                {"case": case.case_id, "kind": p.kind, "detail": p.detail}
                for p in assist.check(case.context, s.text, articles, case.kind)
            ]
    for _ in range(rounds):
        for case in cases:
            start, start_cpu = time.perf_counter(), time.thread_time()
            assistant.assist(case.context, [], kind=case.kind)
            times.append((time.perf_counter() - start) * 1e6)
            cpu.append((time.thread_time() - start_cpu) * 1e6)
    times.sort()
    cpu.sort()
    count = {
        kind: sum(1 for p in problems if p["kind"] == kind) for kind in ("unsupported", "irreversible", "off_topic")
    }
    return {
        "cases": len(cases),
        "relevant": len(cases) - len(misses),
        "relevant_share": round((len(cases) - len(misses)) / len(cases), 4),
        **count,
        "us_per_assist_mean": round(statistics.fmean(times)) if times else None,
        "us_per_assist_p95": round(times[int(0.95 * (len(times) - 1))]) if times else None,
        "cpu_us_per_assist_mean": round(statistics.fmean(cpu)) if cpu else None,
        "cpu_us_per_assist_p95": round(cpu[int(0.95 * (len(cpu) - 1))]) if cpu else None,
        "misses": misses,
        "problems": problems,
    }


def meets_targets(report: dict) -> bool:
    return report["relevant_share"] >= TARGETS["relevant_share"] and all(
        report[k] <= TARGETS[k] for k in ("unsupported", "irreversible", "off_topic")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--rounds", type=int, default=20, help="timed passes over the cases (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.add_argument("--verbose", action="store_true", help="list the misses and the problems")
    args = parser.parse_args(argv)
    with progress.stage(f"the assistant over the cases, {args.rounds} timed rounds"):
        report = evaluate(assist.Assistant.from_env(), load_cases(args.cases), args.rounds)
    if not args.verbose:
        report = {k: v for k, v in report.items() if k not in ("misses", "problems")}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(
        f"assist evaluation: {report['cases']} labelled hand-offs ({args.cases.relative_to(ROOT) if args.cases.is_relative_to(ROOT) else args.cases})"
    )
    print(
        f"  first suggestion relevant  {report['relevant']}/{report['cases']} = {report['relevant_share']:.1%}"
        f"   (target ≥ {TARGETS['relevant_share']:.0%})"
    )
    print(f"  unsupported claims         {report['unsupported']}   (target 0, over all suggestions)")
    print(f"  unasked irreversible acts  {report['irreversible']}   (target 0)")
    print(f"  unrelated lookup results   {report['off_topic']}   (target 0)")
    print(
        f"  drafting time              {report['us_per_assist_mean']} µs per assist (mean), "
        f"p95 {report['us_per_assist_p95']} µs; CPU {report['cpu_us_per_assist_mean']} µs (mean), "
        f"p95 {report['cpu_us_per_assist_p95']} µs"
    )
    for miss in report.get("misses", []):
        print(f"  miss {miss['case']}: got {miss['got']}, expected one of {miss['expected']}")
    for problem in report.get("problems", []):
        print(f"  {problem['kind']} {problem['case']}: {problem['detail']}")
    return 0


if __name__ == "__main__":
    with progress.reporting("bench/assist_eval.py"):
        sys.exit(main())
