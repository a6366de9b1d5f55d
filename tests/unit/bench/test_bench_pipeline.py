"""The pure parts of `relais bench pipeline`: percentiles, the 'holds' rule, the saturation search, the traffic."""

import asyncio
import math

from bench import pipeline
from bench.pipeline import Step, Traffic, find_saturation, holds, percentile, summarise
from relais.classifier.catalogue import load_catalogue


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summarise_has_the_keys_and_handles_empty():
    out = summarise([3.0, 1.0, 2.0])
    assert out["p50_ms"] == 2.0 and out["p99_ms"] == 3.0 and out["max_ms"] == 3.0
    assert summarise([], "q_")["q_p95_ms"] is None


def test_holds_needs_tracking_and_a_flat_backlog():
    assert holds(1000, 980, 50, 60)
    assert not holds(1000, 800, 50, 60)  # achieved does not track
    assert not holds(1000, 990, 50, 900)  # the backlog builds up
    assert not holds(100, 100, 0, 0, unanswered=3)  # lost turns


def fake_pipeline(capacity: float):
    """A pipeline that keeps up to `capacity` turns/s and falls behind above it."""
    calls = []

    async def run(rate: float) -> Step:
        calls.append(rate)
        achieved = min(rate, capacity)
        backlog_end = 0 if rate <= capacity else int((rate - capacity) * 20)  # 20 s of excess
        return Step(offered_per_s=rate, achieved_per_s=achieved, backlog_start=0, backlog_end=backlog_end)

    return run, calls


def test_saturation_search_ramps_then_refines():
    run, calls = fake_pipeline(700)
    best, steps = asyncio.run(find_saturation(run, start=100, factor=1.5, refinements=3))
    assert best is not None and best.holds
    assert 506 <= best.offered_per_s <= 700  # ramp 100,150,225,337.5,506.25 hold, 759 fails, then bisect below 759
    assert calls[:6] == [100, 150, 225, 337.5, 506.25, 759.375]
    assert len(steps) == len(calls) <= 9
    assert all(s.holds == (s.offered_per_s <= 700) for s in steps)


def test_saturation_search_comes_down_when_the_start_is_too_much():
    run, calls = fake_pipeline(30)
    best, _ = asyncio.run(find_saturation(run, start=100, refinements=0))
    assert best is not None and best.offered_per_s == 27  # 100 fails achieving 30: next is 90 % of that, which holds
    assert calls == [100, 27]


def test_saturation_search_gives_none_when_nothing_holds():
    run, _ = fake_pipeline(0)
    best, steps = asyncio.run(find_saturation(run, start=100, min_rate=10))
    assert best is None and steps


def test_traffic_is_bilingual_mixed_and_unique():
    catalogue = load_catalogue()
    traffic = Traffic(catalogue.training_examples(), {i.id for i in catalogue if i.bot_allowed}, "t", seed=3)
    conversations = [traffic.new() for _ in range(2000)]
    assert len({c.conversation_id for c in conversations}) == 2000
    assert {c.language for c in conversations} == {"fr", "en"}
    kinds = {k: sum(c.kind == k for c in conversations) / 2000 for k in ("bot", "person_intent", "advisor", "angry")}
    assert all(share > 0.05 for share in kinds.values()), kinds
    advisor = [c for c in conversations if c.kind == "advisor"]
    assert all(c.texts[-1] in pipeline.ADVISOR[c.language] for c in advisor)
    angry = [c for c in conversations if c.kind == "angry"]
    assert all(c.texts[-1] in pipeline.ANGRY[c.language] for c in angry)
    assert {None, "fr", "en"} >= {c.hint for c in conversations} and any(c.hint is None for c in conversations)
    assert all(1 <= len(c.texts) <= 3 for c in conversations)


def test_cli_parser_takes_the_documented_options():
    import argparse

    parser = argparse.ArgumentParser()
    pipeline.add_parser(parser.add_subparsers(dest="bench_command"))
    args = parser.parse_args(["pipeline", "--private", "--rate", "20", "--seconds", "3", "--json"])
    assert args.private and args.rate == 20 and args.seconds == 3 and args.json
    assert parser.parse_args(["pipeline"]).rate is None  # no --rate: the saturation search


def test_per_turn_counts_the_window_deltas():
    before = pipeline.Counters(
        pg_statements=1000, pg_commits=50, kafka_end_offsets={"relais.turns.v1": 10, "relais.replies.v1": 20}
    )
    after = pipeline.Counters(
        pg_statements=1900,
        pg_commits=80,
        kafka_end_offsets={"relais.turns.v1": 110, "relais.replies.v1": 220, "relais.outcomes.v1": 50},
    )
    out = pipeline.per_turn(before, after, turns=100)
    assert out["pg_statements_per_turn"] == 9.0
    assert out["pg_commits_per_turn"] == 0.3
    assert out["kafka_records_per_turn"] == 3.5  # 100 + 200 + 50 (a topic absent at the start counts from 0)
    assert out["kafka_records_per_turn_by_topic"] == {
        "relais.outcomes.v1": 0.5,
        "relais.replies.v1": 2.0,
        "relais.turns.v1": 1.0,
    }


def test_per_turn_is_none_when_unknown_or_nothing_answered():
    out = pipeline.per_turn(pipeline.Counters(), pipeline.Counters(pg_commits=5), turns=10)
    assert out["pg_statements_per_turn"] is None and out["pg_commits_per_turn"] is None
    assert out["kafka_records_per_turn"] is None
    counted = pipeline.Counters(pg_statements=1, pg_commits=1, kafka_end_offsets={"relais.turns.v1": 3})
    assert all(v in (None, {}) for v in pipeline.per_turn(counted, counted, turns=0).values())


def test_cpu_ms_per_turn_per_process_stack_and_total():
    cpu = {"intake": 30.0, "postgres": 50.0, "bench": 12.0}
    idle = {"intake": 2.0, "postgres": 60.0, "bench": 2.0}
    out = pipeline.cpu_ms_per_turn(cpu, idle, turns_per_s=200)
    # 28 % of a core = 280 ms/s over 200 turns/s = 1.4 ms; below idle counts 0
    assert out["cpu_ms_per_turn"] == {"intake": 1.4, "postgres": 0.0, "bench": 0.5}
    assert out["cpu_ms_per_turn_stack"] == 1.4  # the load generator is counted apart
    assert out["cpu_ms_per_turn_total"] == 1.9
    assert pipeline.cpu_ms_per_turn(cpu, idle, 0)["cpu_ms_per_turn"] is None


def test_reply_fields_reads_type_and_in_reply_to_without_decoding():
    from relais.common import cloudevents

    survey = cloudevents.survey_invitation("fr")  # its own "type" inside data must not be taken for the event's
    record = cloudevents.reply(
        cloudevents.REPLY_BOT,
        "urn:relais:bot",
        "r1",
        "bench-x-1",
        'Il a dit "type": "x"',
        "fr",
        in_reply_to="urn:relais:bench#abc",
        survey=survey,
    )
    assert pipeline.reply_fields(record.value) == (cloudevents.REPLY_BOT, "urn:relais:bench#abc")
    queue = cloudevents.reply(
        cloudevents.REPLY_QUEUE, "urn:relais:routing", "r2", "bench-x-1", "En attente", "fr", status="waiting"
    )
    assert pipeline.reply_fields(queue.value) == (cloudevents.REPLY_QUEUE, None)
    # Unusual layouts (data first, escaped id) are decoded in full and read the same
    import json

    odd = json.dumps({"data": {"in_reply_to": 'a\\"b', "type": "inner"}, "type": "relais.reply.bot.v1"}).encode()
    assert pipeline.reply_fields(odd) == ("relais.reply.bot.v1", 'a\\"b')
