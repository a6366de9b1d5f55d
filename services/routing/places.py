"""Waiting customers' places, counted in memory: rules.queue_order's order (effective priority — base priority plus
one point per aging_seconds_per_point waited — then longest waiting, then task id) without sorting the queue.

Each language's waiting tasks are kept per base priority, sorted by (queued_at, task_id). Within one base priority,
the older a task the higher its effective priority, so the tasks ahead of a given one form a prefix of that list:
a place is a few bisections per priority level, not a pass over a queue of thousands. A callback waits from its due
time, which is its queued_at (service._callback): one queued later than now is not counted, nor told a place.
"""

from collections.abc import Callable

from sortedcontainers import SortedList

_LAST = "\U0010ffff"  # after every task id: (t, _LAST) follows every entry queued at t


class Places:
    def __init__(self, aging_seconds_per_point: float):
        self.aging = aging_seconds_per_point
        self.queues: dict[str, dict[int, SortedList]] = {}  # language -> base priority -> [(queued_at, task_id)]
        self.tasks: dict[str, tuple[str, int, float]] = {}  # task_id -> (language, priority, queued_at)

    def add(self, task_id: str, language: str, priority: int, queued_at: float) -> None:
        self.discard(task_id)
        self.tasks[task_id] = (language, priority, queued_at)
        self.queues.setdefault(language, {}).setdefault(priority, SortedList()).add((queued_at, task_id))

    def discard(self, task_id: str) -> None:
        entry = self.tasks.pop(task_id, None)
        if entry is not None:
            language, priority, queued_at = entry
            self.queues[language][priority].discard((queued_at, task_id))

    def counts(self) -> dict[str, int]:
        """How many tasks wait per language (callbacks not due yet included)."""
        return {language: n for language, queue in self.queues.items() if (n := sum(map(len, queue.values())))}

    def level(self, priority: int, queued_at: float, now: float) -> int:
        """rules.effective_priority."""
        return priority + int(max(0.0, now - queued_at) // self.aging)

    def place(self, task_id: str, now: float) -> int:
        """The task's 1-based place in its language's queue at `now`; 1 when it is not waiting."""
        entry = self.tasks.get(task_id)
        if entry is None or entry[2] > now:
            return 1
        language, priority, queued_at = entry
        mine, level = (queued_at, task_id), self.level(priority, queued_at, now)
        ahead = 0
        for base, waiting in self.queues[language].items():
            waiting_now = waiting.bisect_right((now, _LAST))  # callbacks not due yet come last and are left out

            def outranks(e: tuple[float, str], base: int = base) -> bool:
                return self.level(base, e[0], now) > level

            def ranks_level(e: tuple[float, str], base: int = base) -> bool:
                return self.level(base, e[0], now) >= level

            # Older than the point where the effective priority drops to `level`: ahead whatever their id.
            above = _prefix(waiting, waiting_now, now - (level - base + 1) * self.aging, outranks)
            # Or at the same effective priority, and queued before this one.
            at_least = _prefix(waiting, waiting_now, now - (level - base) * self.aging, ranks_level)
            ahead += max(above, min(at_least, waiting.bisect_left(mine)))
        return ahead + 1


def _prefix(waiting: SortedList, end: int, queued_by: float, holds: Callable[[tuple[float, str]], bool]) -> int:
    """How many of waiting[:end] hold (a prefix): found by bisecting on queued_at <= queued_by, then checked with the
    rule itself at the edge, so that float rounding at a boundary can never move a place."""
    i = min(end, waiting.bisect_right((queued_by, _LAST)))
    while i > 0 and not holds(waiting[i - 1]):
        i -= 1
    while i < end and holds(waiting[i]):
        i += 1
    return i
