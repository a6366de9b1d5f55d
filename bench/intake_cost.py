"""Intake's CPU per message outside the database and the broker, printed as JSON; nothing asserted.

    python bench/intake_cost.py                        # this tree
    python bench/intake_cost.py --before /tmp/base     # and a checkout of an older commit, side by side

Messages as `relais bench pipeline` sends them (bench/pipeline.py: Traffic, one to three turns per
conversation, half of the conversations declaring their language), read as intake reads them:

- decode: parse_contact_event + redact + take_phone, per record (intake's `decode`);
- language: each conversation's first message guessed alone (language, sure, ambiguous_with), its later ones knowing
  the conversation's language (the language alone, as intake keeps it), a poll's worth of messages at a time (the
  batch calls when the tree has them, else one call per message);
- handler: intake's handle_batch on the decoded records, a poll at a time, the database replaced by a stand-in
  that answers its statements from memory (no SQL is run or encoded: what is left is intake's own work, the
  language guess included, with tracing set up as the service does, default sampler, no exporter).

CPU is time.process_time (every thread of the process), µs per message, best of --rounds (and of --repeats runs
of each tree, alternated, with --before).
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path


def _use_tree(root: Path) -> None:
    """Imports relais from `root`/services instead of the installed (editable) tree."""
    package = types.ModuleType("relais")
    package.__path__ = [str(root / "services")]
    sys.modules["relais"] = package


def measure(conversations: int, rounds: int, batch: int, seed: int) -> dict:
    from bench.pipeline import SOURCE, Traffic
    from relais.classifier.catalogue import load_catalogue
    from relais.common import cloudevents, customer_contact, language
    from relais.common.redact import redact

    catalogue = load_catalogue()
    traffic = Traffic(catalogue.training_examples(), {i.id for i in catalogue if i.bot_allowed}, "cost", seed)
    drawn = [traffic.new() for _ in range(conversations)]
    # (conversation index, turn index, value) in the order a poll would bring them: first turns, then later ones
    records = []
    for turn in range(3):
        for n, conversation in enumerate(drawn):
            if turn < len(conversation.texts):
                value, headers = cloudevents.contact_message(
                    conversation.conversation_id,
                    conversation.customer_id,
                    conversation.texts[turn],
                    language=conversation.hint,
                    tier=conversation.tier,
                    event_id=str(uuid.uuid4()),
                    source=SOURCE,
                )
                records.append((n, turn, value, headers))
    language.warm_up()
    batch_api = hasattr(language, "turn_languages")

    def decode_all():
        out = []
        for n, turn, value, headers in records:
            event = cloudevents.parse_contact_event(value, headers, 4000)
            message = event.message
            assert message is not None  # contact messages, no survey
            out.append((n, turn, message, redact(message.text), customer_contact.take_phone(message)))
        return out

    def guess_all(decoded):
        """What intake keeps: (language, sure, ambiguous_with) of a first message, the language of a later one."""
        conversation_language: dict[int, str] = {}
        guesses: list[tuple[str, bool, str] | str] = []
        for start in range(0, len(decoded), batch):
            poll = decoded[start : start + batch]
            firsts = [(n, (m.text, m.customer.language, None)) for n, turn, m, _, _ in poll if turn == 0]
            if batch_api:
                first_guesses = language.guess_languages([ask for _, ask in firsts])
            else:
                first_guesses = [language.guess_language(*ask) for _, ask in firsts]
            for (n, _), guess in zip(firsts, first_guesses):  # before the later turns: one poll may hold both
                conversation_language[n] = guess.language
            later = [(m.text, m.customer.language, conversation_language[n]) for n, turn, m, _, _ in poll if turn]
            if batch_api:
                later_languages = language.turn_languages(later)
            else:
                later_languages = [language.guess_language(*ask).language for ask in later]
            guesses += [(g.language, g.sure, g.ambiguous_with) for g in first_guesses]
            guesses += later_languages
        return guesses

    handler_us = _handler_cost(records, rounds, batch)
    decoded = decode_all()
    guess_all(decoded)  # warm-up
    decode_us, language_us = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        decoded = decode_all()
        t1 = time.process_time()
        guesses = guess_all(decoded)
        t2 = time.process_time()
        decode_us.append((t1 - t0) / len(records) * 1e6)
        language_us.append((t2 - t1) / len(records) * 1e6)
    summary: dict[str, int] = {}
    for g in guesses:
        key = g if isinstance(g, str) else f"{g[0]}{'' if g[1] else '?'}"
        summary[key] = summary.get(key, 0) + 1
    return {
        "messages": len(records),
        "decode_us": round(min(decode_us), 1),
        "language_us": round(min(language_us), 1),
        "total_us": round(min(decode_us) + min(language_us), 1),
        "handler_us": handler_us,
        "batch_api": batch_api,
        "guesses": dict(sorted(summary.items())),
        # the same inputs must give the same outputs before and after
        "language_checksum": _digest(guesses),
        "text_checksum": _digest([(d[3], d[4]) for d in decoded]),
    }


class _Database:
    """Answers intake's statements from memory, as PostgreSQL would for a first delivery."""

    def __init__(self):
        self.conversations: dict[str, dict] = {}

    async def fetch(self, sql: str, *args):
        if sql.startswith("INSERT INTO processed_events"):
            return [(key,) for key in args[1]]
        if sql.startswith("UPDATE conversations SET turn_count"):
            rows = []
            for conversation_id, turns in zip(*args):
                if conversation_id in self.conversations:
                    self.conversations[conversation_id]["turn_count"] += turns
                    rows.append(dict(self.conversations[conversation_id]))
            return rows
        if sql.startswith("INSERT INTO conversations"):
            for conversation_id, language, turns in zip(args[0], args[3], args[5]):
                self.conversations[conversation_id] = {
                    "conversation_id": conversation_id,
                    "turn_count": turns,
                    "traceparent": None,
                    "language": language,
                }
            return [dict(self.conversations[c]) for c in args[0]]
        raise AssertionError(f"unexpected statement: {sql[:60]}")

    async def execute(self, sql: str, *args):
        if sql.startswith("WITH turn AS"):
            for conversation_id, traceparent in zip(args[-2], args[-1]):
                self.conversations[conversation_id]["traceparent"] = traceparent

    async def fetchval(self, sql: str, *args):
        return False


def _handler_cost(records, rounds: int, batch: int) -> float:
    """µs of CPU per message of intake's handle_batch, best of `rounds`, a new set of conversations each round."""
    import asyncio
    from types import SimpleNamespace
    from typing import cast

    from aiokafka import ConsumerRecord

    from relais.common import telemetry, topics, worker
    from relais.common.unit_of_work import Item, UnitOfWork
    from relais.intake import service

    telemetry.setup("intake")
    # What build reads of a worker, without a broker or a database.
    w = SimpleNamespace(settings=SimpleNamespace(max_text_chars=4000), pool=None, producer=None, stop=None)
    handler = asyncio.run(service.build(cast(worker.Worker, w)))
    decode, handle_batch = handler.decode, handler.handle_batch
    assert decode is not None and handle_batch is not None  # intake consumes records
    consumed = [
        ConsumerRecord(topics.CONTACT_EVENTS, 0, offset, 0, 0, None, value, None, 0, len(value), headers)
        for offset, (_, _, value, headers) in enumerate(records)
    ]

    async def one_round() -> float:
        items = [Item(record, decode(record)) for record in consumed]
        database = _Database()
        start = time.process_time()
        for first in range(0, len(items), batch):
            await handle_batch(items[first : first + batch], UnitOfWork("intake", database))
        return (time.process_time() - start) / len(items) * 1e6

    asyncio.run(one_round())  # warm-up
    return round(min(asyncio.run(one_round()) for _ in range(rounds)), 1)


def _digest(values: list) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="messages per poll for the language guess")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, help="measure the relais tree at this checkout (used by --before)")
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="with --before: runs of each tree, alternated (a busy machine slows both alike)",
    )
    args = parser.parse_args()
    common = [
        "--conversations",
        str(args.conversations),
        "--rounds",
        str(args.rounds),
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
    ]
    if args.root:
        _use_tree(args.root)
        print(json.dumps(measure(args.conversations, args.rounds, args.batch, args.seed)))
        return
    if not args.before:
        print(json.dumps(measure(args.conversations, args.rounds, args.batch, args.seed), indent=2))
        return
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, root in (("before", args.before), ("after", Path(__file__).resolve().parent.parent)):
            child = subprocess.run(
                [sys.executable, __file__, "--root", str(root), *common], check=True, capture_output=True, text=True
            )
            runs[name].append(json.loads(child.stdout))
    result: dict[str, dict] = {}
    for name, measured in runs.items():
        result[name] = dict(measured[0])
        for key in ("decode_us", "language_us", "total_us", "handler_us"):
            result[name][key] = min(run[key] for run in measured)
    same = all(result["before"][k] == result["after"][k] for k in ("language_checksum", "text_checksum", "guesses"))
    print(json.dumps({**result, "same_results": same}, indent=2))


if __name__ == "__main__":
    main()
