"""The supervisors' live view (relais.routing.live), computed without I/O."""

import pytest

from relais.routing import live, rules

NOW = 1_800_000_030.0  # 30 s into a minute
TARGET = 20.0
BILLING_QUEUE_RULES = rules.RoutingRules(
    overflow=(rules.OverflowStep(60, relax_levels=1), rules.OverflowStep(180, queue="billing"))
)
ANY_QUEUE_RULES = rules.RoutingRules(
    overflow=(rules.OverflowStep(60, relax_levels=1), rules.OverflowStep(180, queue="any"))
)


def step(kind, seconds_ago=0.0, language="fr", queue="", waited=0.0):
    return live.Step(NOW - seconds_ago, kind, language, queue, waited)


def view(counters=None, waiting=(), agents=(), handle=None, now=NOW):
    counters = counters or live.Counters(TARGET)
    return live.view(now, waiting, counters.window(now), agents, handle or {}, 240.0, TARGET)


def test_queue_of_names_the_skill_queue_a_task_overflowed_to_and_nothing_for_any():
    assert live.queue_of({"cards": 2}, 0, BILLING_QUEUE_RULES) == ""
    assert live.queue_of({"cards": 2}, 1, BILLING_QUEUE_RULES) == ""
    assert live.queue_of({"cards": 2}, 2, BILLING_QUEUE_RULES) == "billing"
    assert live.queue_of({"cards": 2}, 2, ANY_QUEUE_RULES) == ""


def test_waiting_groups_merge_per_queue_with_the_oldest_kept():
    groups = [
        ("fr", {"cards": 2}, 0, 3, NOW - 10),
        ("fr", {"orders": 1}, 0, 2, NOW - 50),
        ("fr", {"cards": 2}, 2, 1, NOW - 200),
        ("en", {}, 0, 1, NOW - 5),
    ]
    merged = {(w.language, w.queue): w for w in live.waiting_by_queue(groups, BILLING_QUEUE_RULES)}
    assert merged == {
        ("fr", ""): live.Waiting("fr", "", 5, NOW - 50),
        ("fr", "billing"): live.Waiting("fr", "billing", 1, NOW - 200),
        ("en", ""): live.Waiting("en", "", 1, NOW - 5),
    }


def test_offered_accepted_abandoned_count_the_last_15_minutes_only():
    counters = live.Counters(TARGET)
    for kind, ago in [
        ("queued", 30),
        ("queued", 14 * 60 + 20),  # in the 14th minute before the current one: counted
        ("queued", 15 * 60 + 20),  # in the 15th: not
        ("transferred", 100),
        ("requeued", 200),
        ("accepted", 10),
        ("accepted", 20 * 60),
        ("abandoned", 50),
    ]:
        counters.add(step(kind, ago, waited=5))
    (fr,) = view(counters).queues
    assert (fr.offered_15m, fr.accepted_15m, fr.abandoned_15m) == (4, 1, 1)
    assert view(counters).handoffs_15m == 2  # queued only: transfers and requeues are no new hand-off


def test_service_level_is_answered_within_the_target_over_answered_and_abandoned_of_30_minutes():
    counters = live.Counters(TARGET)
    counters.add(step("accepted", 60, waited=5))
    counters.add(step("accepted", 25 * 60, waited=20))  # at the target: within
    counters.add(step("accepted", 120, waited=45))
    counters.add(step("abandoned", 300, waited=3))
    counters.add(step("accepted", 31 * 60, waited=1))  # too old
    counters.add(step("accepted", 60, language="en", waited=1))
    snapshot = view(counters)
    fr = next(q for q in snapshot.queues if q.language == "fr")
    assert (fr.answered_within_target_30m, fr.ended_30m) == (2, 4)
    assert fr.service_level_30m == pytest.approx(0.5)
    assert snapshot.service_level_30m == pytest.approx(3 / 5)


def test_no_service_level_when_nothing_ended():
    counters = live.Counters(TARGET)
    counters.add(step("queued", 10))
    snapshot = view(counters)
    assert snapshot.queues[0].service_level_30m is None
    assert snapshot.service_level_30m is None


def test_old_buckets_are_dropped():
    counters = live.Counters(TARGET)
    counters.add(step("accepted", 40 * 60))
    counters.add(step("accepted", 10))
    view(counters)
    assert list(counters.buckets) == [live.minute_of(NOW - 10)]


def test_a_step_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="offered"):
        live.Counters(TARGET).add(step("offered"))


def test_waiting_oldest_and_expected_wait_per_queue():
    waiting = [live.Waiting("fr", "", 4, NOW - 95.5), live.Waiting("fr", "billing", 1, NOW - 300)]
    agents = [
        live.AgentNow("available", ("fr", "en")),
        live.AgentNow("busy", ("fr",)),
        live.AgentNow("offline", ("fr",)),
    ]
    snapshot = view(waiting=waiting, agents=agents, handle={"fr": 300.0})
    by_queue = {(q.language, q.queue): q for q in snapshot.queues}
    assert set(by_queue) == {("fr", ""), ("fr", "billing"), ("en", "")}
    fr = by_queue["fr", ""]
    assert (fr.waiting, fr.oldest_wait_seconds, fr.agents_signed_in) == (4, 95.5, 2)
    assert fr.expected_wait_seconds == pytest.approx(4 * 300 / 2)
    en = by_queue["en", ""]
    assert (en.waiting, en.oldest_wait_seconds, en.expected_wait_seconds) == (0, 0.0, 0.0)


def test_no_expected_wait_without_an_agent_of_the_language_and_the_default_handling_time_until_known():
    snapshot = view(waiting=[live.Waiting("de", "", 2, NOW - 10)], agents=[live.AgentNow("available", ("fr",))])
    (de,) = [q for q in snapshot.queues if q.language == "de"]
    assert de.expected_wait_seconds is None
    assert live.expected_wait(3, 240.0, 2) == 360.0


def test_agents_by_state_show_every_state_and_by_language_only_the_signed_in():
    agents = [
        live.AgentNow("available", ("fr", "en")),
        live.AgentNow("wrap_up", ("fr",)),
        live.AgentNow("offline", ("de",)),
    ]
    snapshot = view(agents=agents)
    assert snapshot.agents_by_state == {"available": 1, "busy": 0, "wrap_up": 1, "break": 0, "offline": 1}
    assert snapshot.agents_by_language == {"en": 1, "fr": 2}


def test_bot_answers_of_15_minutes_recounted_from_a_minute_on():
    counters = live.Counters(TARGET)
    current = live.minute_of(NOW)
    counters.set_bot_answers({current - 16: 50, current - 14: 3, current - 1: 4, current: 2}, current - 16)
    assert view(counters).bot_answers_15m == 9
    counters.set_bot_answers({current: 5}, current - 1)  # the last minute had no answer after all
    assert view(counters).bot_answers_15m == 8
