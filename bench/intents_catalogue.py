"""The catalogue, the classifier and the bot's first-turn decision against the labelled evaluation set.

    python bench/intents_catalogue.py                       # tests/unit/classifier/evaluation_set.csv
    python bench/intents_catalogue.py --set other.csv --seed 1
    python bench/intents_catalogue.py --family minilm-student   # another family than the service's default

Trains the intent model on the shipped catalogue, classifies every message of the set as the first turn
of a conversation, applies the bot's policy (relais.bot.policy.decide), and prints, per language and
overall: the intent confusions (top list and a per-intent precision/recall/F1 table, out of scope
counted as the label "oos"), the sentiment confusion table and the bot/human decision table. The last
line is one JSON object with the headline figures. Nothing is asserted (see
tests/unit/classifier/test_evaluation_set.py for the thresholds).

Needs the `relais` package importable (pip install -e . from the repository root).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from relais.bot.policy import HANDOFF, ConversationState, decide
from relais.classifier.catalogue import load_catalogue
from relais.classifier.domain import classify, to_classification_proto
from relais.classifier.model import DEFAULT_FAMILY, FAMILIES, IntentModel
from relais.common import progress
from relais.common.pb import conversation_pb2 as pb

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "unit" / "classifier" / "evaluation_set.csv"
OOS = "oos"
SENTIMENTS = ("neutral", "negative", "angry", "distressed")
DECISIONS = ("bot", "human")
# A message scoring below this (with neither flag) is "negative" rather than "neutral".
NEGATIVE_SCORE = -0.15


@dataclass(frozen=True)
class Outcome:
    """One row of the set with what the pipeline made of it."""

    text: str
    language: str
    tier: str
    intent: str
    sentiment: str
    decision: str
    predicted_intent: str
    predicted_sentiment: str
    predicted_decision: str
    action: str
    asks_for_human: bool
    anger: bool
    distress: bool


def load_set(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sentiment_label(anger: bool, distress: bool, score: float) -> str:
    """One label per message: distress first (the more specific cue), then anger, then the score."""
    if distress:
        return "distressed"
    if anger:
        return "angry"
    return "negative" if score < NEGATIVE_SCORE else "neutral"


def run(rows: list[dict[str, str]], seed: int = 0, family: str = DEFAULT_FAMILY) -> tuple[list[Outcome], dict]:
    catalogue = load_catalogue()
    start = time.perf_counter()
    with progress.stage(f"training {family} on catalogue {catalogue.version}"):
        model = IntentModel.train(catalogue, seed=seed, family=family)
    train_s = time.perf_counter() - start
    outcomes = []
    start = time.perf_counter()
    for row in progress.track(rows, f"classifying and deciding {len(rows)} messages"):
        result = classify(row["text"], row["language"], model, catalogue)
        turn = pb.Turn(
            text=row["text"],
            language=row["language"],
            customer=pb.Customer(id="eval", tier=row["tier"]),
            classification=to_classification_proto(result, catalogue),
        )
        decision = decide(turn, ConversationState(), catalogue)
        s = result.sentiment
        outcomes.append(
            Outcome(
                text=row["text"],
                language=row["language"],
                tier=row["tier"],
                intent=row["intent"],
                sentiment=row["sentiment"],
                decision=row["decision"],
                predicted_intent=result.intent or OOS,
                predicted_sentiment=sentiment_label(s.anger, s.distress, s.score),
                predicted_decision="human" if decision.action == HANDOFF else "bot",
                action=decision.action,
                asks_for_human=result.asks_for_human,
                anger=s.anger,
                distress=s.distress,
            )
        )
    per_message_ms = (time.perf_counter() - start) / max(len(rows), 1) * 1000
    return outcomes, {
        "catalogue": catalogue.version,
        "catalogue_sha256": catalogue.sha256[:12],
        "intents": len(catalogue),
        "examples": len(catalogue.training_examples()),
        "train_s": round(train_s, 2),
        "per_message_ms": round(per_message_ms, 2),
        "seed": seed,
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def headline(outcomes: list[Outcome]) -> dict:
    """The figures the test checks, for one slice of the set."""
    n = len(outcomes)
    human = [o for o in outcomes if o.decision == "human"]
    explicit = [o for o in outcomes if o.intent == "speak_to_advisor"]
    angry = [o for o in outcomes if o.sentiment == "angry"]
    distressed = [o for o in outcomes if o.sentiment == "distressed"]
    upset = angry + distressed
    bot = [o for o in outcomes if o.decision == "bot"]
    return {
        "rows": n,
        "intent_accuracy": _ratio(sum(o.predicted_intent == o.intent for o in outcomes), n),
        "decision_accuracy": _ratio(sum(o.predicted_decision == o.decision for o in outcomes), n),
        "human_recall": _ratio(sum(o.predicted_decision == "human" for o in human), len(human)),
        "human_precision": _ratio(
            sum(o.decision == "human" for o in outcomes if o.predicted_decision == "human"),
            sum(o.predicted_decision == "human" for o in outcomes),
        ),
        "bot_recall": _ratio(sum(o.predicted_decision == "bot" for o in bot), len(bot)),
        "bot_answered_right_intent": _ratio(
            sum(o.action == "answer" and o.predicted_intent == o.intent for o in bot), len(bot)
        ),
        "explicit_request_recall": _ratio(sum(o.asks_for_human for o in explicit), len(explicit)),
        "anger_recall": _ratio(sum(o.anger for o in angry), len(angry)),
        "distress_recall": _ratio(sum(o.distress for o in distressed), len(distressed)),
        "upset_recall": _ratio(sum(o.anger or o.distress for o in upset), len(upset)),
        "calm_false_flags": _ratio(
            sum(o.anger or o.distress for o in outcomes if o.sentiment in ("neutral", "negative")),
            sum(o.sentiment in ("neutral", "negative") for o in outcomes),
        ),
        "oos_recall": _ratio(
            sum(o.predicted_intent == OOS for o in outcomes if o.intent == OOS), sum(o.intent == OOS for o in outcomes)
        ),
        "clarified": sum(o.action == "clarify" for o in outcomes),
    }


def _table(title: str, labels: list[str], counts: Counter) -> str:
    width = max(len(title), *(len(label) for label in labels)) + 1
    lines = [f"{title:<{width}}" + "".join(f"{label[:10]:>11}" for label in labels)]
    for gold in labels:
        lines.append(f"{gold:<{width}}" + "".join(f"{counts[(gold, pred)]:>11}" for pred in labels))
    return "\n".join(lines)


def intent_report(outcomes: list[Outcome], top: int = 15) -> str:
    labels = sorted({o.intent for o in outcomes} | {o.predicted_intent for o in outcomes})
    pairs = Counter((o.intent, o.predicted_intent) for o in outcomes)
    confusions = sorted(((n, gold, pred) for (gold, pred), n in pairs.items() if gold != pred), reverse=True)
    lines = ["top intent confusions (gold -> predicted: count)"]
    lines += [f"  {gold} -> {pred}: {n}" for n, gold, pred in confusions[:top]] or ["  none"]
    width = max(len(label) for label in labels) + 1
    lines.append(f"{'intent':<{width}}{'support':>8}{'precision':>10}{'recall':>8}{'f1':>7}")
    for label in labels:
        tp = pairs[(label, label)]
        support = sum(n for (gold, _), n in pairs.items() if gold == label)
        predicted = sum(n for (_, pred), n in pairs.items() if pred == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines.append(f"{label:<{width}}{support:>8}{precision:>10.2f}{recall:>8.2f}{f1:>7.2f}")
    return "\n".join(lines)


def report(name: str, outcomes: list[Outcome]) -> str:
    figures = headline(outcomes)
    parts = [
        f"===== {name}: {len(outcomes)} messages =====",
        "  ".join(f"{k}={v}" for k, v in figures.items() if k != "rows"),
        intent_report(outcomes),
        _table(
            "sentiment gold\\pred", list(SENTIMENTS), Counter((o.sentiment, o.predicted_sentiment) for o in outcomes)
        ),
        _table("decision gold\\pred", list(DECISIONS), Counter((o.decision, o.predicted_decision) for o in outcomes)),
    ]
    missed = [o for o in outcomes if o.decision == "human" and o.predicted_decision == "bot"]
    parts.append("human decisions the bot kept (gold intent -> predicted, action):")
    parts += [f"  [{o.language}] {o.text!r}: {o.intent} -> {o.predicted_intent}, {o.action}" for o in missed] or [
        "  none"
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="labelled CSV (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family", default=DEFAULT_FAMILY, choices=FAMILIES, help="default: %(default)s")
    args = parser.parse_args()

    outcomes, meta = run(load_set(args.set), args.seed, args.family)
    for language in sorted({o.language for o in outcomes}):
        print(report(f"language {language}", [o for o in outcomes if o.language == language]), end="\n\n")
    print(report("overall", outcomes), end="\n\n")
    summary = {**meta, "overall": headline(outcomes)}
    summary |= {
        lang: headline([o for o in outcomes if o.language == lang]) for lang in sorted({o.language for o in outcomes})
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    with progress.reporting("bench/intents_catalogue.py"):
        main()
