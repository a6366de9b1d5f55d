"""The in-memory places (relais.routing.places) are rules.queue_position's, through arrivals, departures, aging and
callbacks not due yet."""

import random

from relais.routing import rules
from relais.routing.places import Places

RULES = rules.load_rules()


def test_places_are_the_rules_places_as_the_queue_changes_and_ages():
    rng = random.Random(3)
    places = Places(RULES.aging_seconds_per_point)
    tasks: dict[str, rules.Task] = {}
    now = 1_000_000.0
    for step in range(600):
        now += rng.uniform(0, 4)
        if tasks and rng.random() < 0.3:
            gone = rng.choice(sorted(tasks))
            del tasks[gone]
            places.discard(gone)
        else:
            task_id = f"t{step}"
            # Some queued long ago (a requeue keeps its first queued_at), some on an aging boundary, some callbacks due later.
            queued = rng.choice(
                (
                    now,
                    now - rng.uniform(0, 900),
                    now - RULES.aging_seconds_per_point * rng.randint(1, 20),
                    now + rng.uniform(1, 300),
                )
            )
            task = rules.Task(
                task_id,
                rng.choice(("fr", "en")),
                "chat",
                {},
                rng.randint(0, 5),
                queued,
                due_at=queued if queued > now else None,
            )
            tasks[task_id] = task
            places.add(task_id, task.language, task.priority, task.queued_at)
        if step % 25 == 0:
            expected = rules.queue_positions(list(tasks.values()), now, RULES)
            assert {t: places.place(t, now) for t in tasks} == {t: expected.get(t, 1) for t in tasks}
    assert places.place("never-queued", now) == 1


def test_an_older_task_of_lower_priority_passes_ahead_as_it_ages():
    places, a = Places(30), 0.0
    places.add("low-old", "en", 0, a)
    places.add("high-new", "en", 2, a + 50)
    assert [places.place(t, a + 55) for t in ("high-new", "low-old")] == [1, 2]
    # At 60 s the old task has 2 points, as many as the new one, and waited longer.
    assert [places.place(t, a + 60) for t in ("low-old", "high-new")] == [1, 2]
