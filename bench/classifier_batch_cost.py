"""The classifier's CPU per message for a batch of turns, printed as JSON; nothing asserted.

    python bench/classifier_batch_cost.py                        # this tree
    python bench/classifier_batch_cost.py --before /tmp/base     # and a checkout of an older commit, side by side

Turns as the classifier receives them in `relais bench pipeline` (bench/pipeline.py: Traffic, its
catalogue examples, angry messages and requests for an advisor; the text redacted and the language set, as intake
leaves them), classified the way the service does it: `classify_batch` on a poll's worth of turns, for polls of
--sizes turns. `predict_us` is the intent model's share (`predict_batch`).

CPU is time.process_time, µs per message, best of --rounds. `checksum` digests every Classification (confidence to
9 decimals: the batch scorer sums as scikit-learn does, the older one-text scorer differed from it by ~1e-15): the
same inputs must give the same outputs before and after, and at every batch size.
"""

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
import types
from pathlib import Path


def _use_tree(root: Path) -> None:
    """Imports relais from `root`/services instead of the installed (editable) tree."""
    package = types.ModuleType("relais")
    package.__path__ = [str(root / "services")]
    sys.modules["relais"] = package


def measure(messages: int, rounds: int, sizes: list[int], seed: int) -> dict:
    from bench.pipeline import Traffic
    from relais.classifier import artifact, domain
    from relais.classifier.catalogue import load_catalogue
    from relais.common.redact import redact

    catalogue = load_catalogue()
    model = artifact.load_for(catalogue)
    traffic = Traffic(catalogue.training_examples(), {i.id for i in catalogue if i.bot_allowed}, "cost", seed)
    turns: list[tuple[str, str]] = []
    while len(turns) < messages:
        conversation = traffic.new()
        turns += [(redact(text), conversation.language) for text in conversation.texts]
    turns = turns[:messages]
    domain.classify_batch(turns[:200], model, catalogue)  # warm-up: lexicons, caches, lazy imports

    out: dict = {"messages": len(turns), "sizes": {}}
    for size in sizes:
        polls = [turns[start : start + size] for start in range(0, len(turns), size)]
        classify_us, predict_us = [], []
        for _ in range(rounds):
            t0 = time.process_time()
            results = [result for poll in polls for result in domain.classify_batch(poll, model, catalogue)]
            t1 = time.process_time()
            for poll in polls:
                model.predict_batch([text for text, _ in poll])
            t2 = time.process_time()
            classify_us.append((t1 - t0) / len(turns) * 1e6)
            predict_us.append((t2 - t1) / len(turns) * 1e6)
        out["sizes"][str(size)] = {
            "classify_us": round(min(classify_us), 1),
            "predict_us": round(min(predict_us), 1),
            "checksum": _digest([dataclasses.replace(r, confidence=round(r.confidence, 9)) for r in results]),
        }
    return out


def _digest(values: list) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,16,128,500", help="turns per poll, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, help="measure the relais tree at this checkout (used by --before)")
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with, measured in a child")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    common = [
        "--messages",
        str(args.messages),
        "--rounds",
        str(args.rounds),
        "--sizes",
        args.sizes,
        "--seed",
        str(args.seed),
    ]
    if args.root:
        _use_tree(args.root)
        print(json.dumps(measure(args.messages, args.rounds, sizes, args.seed)))
        return
    result = {}
    if args.before:
        child = subprocess.run(
            [sys.executable, __file__, "--root", str(args.before), *common], check=True, capture_output=True, text=True
        )
        result["before"] = json.loads(child.stdout)
    result["after"] = measure(args.messages, args.rounds, sizes, args.seed)
    if args.before:
        before, after = result["before"]["sizes"], result["after"]["sizes"]
        result["per_size"] = {
            size: {
                "before_us": before[size]["classify_us"],
                "after_us": after[size]["classify_us"],
                "ratio": round(after[size]["classify_us"] / before[size]["classify_us"], 3),
            }
            for size in after
        }
        result["same_results"] = all(before[size]["checksum"] == after[size]["checksum"] for size in after)
    result["same_results_at_every_size"] = len({s["checksum"] for s in result["after"]["sizes"].values()}) == 1
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
