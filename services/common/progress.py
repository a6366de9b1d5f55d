"""Progress of long-running commands (`relais intents train|eval`, `relais bench ...`, bench/*.py) on standard
error, so that standard output keeps only the result (one JSON object with --json).

A command opens `reporting(prog)`; the code it runs marks its stages with `stage(name, total)` and counts done
items with `Stage.advance()`. Outside `reporting` a stage says nothing, so library code can mark stages freely.
Lines, each prefixed with the command's name:

    relais intents eval: training ngram on 8002 rows
    relais intents eval: measuring 3000 messages: 33 % (1000/3000), about 4 s left
    relais intents eval: training ngram on 8002 rows: still running, 1 min 30 s
    relais intents eval: training ngram on 8002 rows: done in 95.2 s

Lines go out whether or not standard error is a terminal (CI logs keep them), rate-limited: a stage's count at
most once every `every` seconds, and a stage with nothing counted says it is still running every `heartbeat`
seconds (from a daemon thread) when nothing else was printed meanwhile.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

EVERY = 5.0  # seconds between two count lines of one stage
HEARTBEAT = 30.0  # seconds of silence after which a running stage says so

T = TypeVar("T")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """Where a command's progress lines go (None: nowhere), and how often."""

    def __init__(
        self,
        prog: str,
        stream: TextIO | None = None,
        every: float = EVERY,
        heartbeat: float = HEARTBEAT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.prog, self.stream, self.every, self.heartbeat, self.clock = prog, stream, every, heartbeat, clock
        self._lock = threading.Lock()
        self.last_line = clock()

    def say(self, text: str) -> None:
        if self.stream is None:
            return
        with self._lock:
            print(f"{self.prog}: {text}", file=self.stream, flush=True)
            self.last_line = self.clock()

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Stage]:
        running = Stage(self, name, total)
        self.say(name)
        stop = threading.Event()
        beat = None
        if self.stream is not None and self.heartbeat > 0:
            beat = threading.Thread(target=running._beat, args=(stop,), daemon=True, name=f"progress {name}")
            beat.start()
        try:
            yield running
        finally:
            stop.set()
            if beat is not None:
                beat.join()
        self.say(f"{name}: done in {_duration(self.clock() - running.started)}")


class Stage:
    """One stage of a command: counts what is done, says so now and then."""

    def __init__(self, progress: Progress, name: str, total: int | None):
        self.progress, self.name, self.total, self.done = progress, name, total, 0
        self.started = self._last_count = progress.clock()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.progress.clock()
        if now - self._last_count >= self.progress.every:
            self._last_count = now
            self.progress.say(f"{self.name}: {self._count(now)}")

    def _count(self, now: float) -> str:
        if not self.total:
            return f"{self.done} done"
        line = f"{100 * self.done / self.total:.0f} % ({self.done}/{self.total})"
        if 0 < self.done < self.total:
            line += f", about {_duration((now - self.started) * (self.total - self.done) / self.done)} left"
        return line

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.progress.heartbeat / 4):
            now = self.progress.clock()
            if now - self.progress.last_line >= self.progress.heartbeat and not stop.is_set():
                self.progress.say(f"{self.name}: still running, {_duration(now - self.started)}")


_SILENT = Progress("", stream=None)
_active: Progress = _SILENT


@contextlib.contextmanager
def reporting(
    prog: str,
    stream: TextIO | None = None,
    every: float = EVERY,
    heartbeat: float = HEARTBEAT,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Progress]:
    """Progress lines of the stages run inside, on `stream` (standard error by default)."""
    global _active
    previous, _active = _active, Progress(prog, stream or sys.stderr, every, heartbeat, clock)
    try:
        yield _active
    finally:
        _active = previous


def stage(name: str, total: int | None = None) -> contextlib.AbstractContextManager[Stage]:
    """A stage of the command being reported (silent when none is)."""
    return _active.stage(name, total)


def say(text: str) -> None:
    """One line now, for the command being reported (a partial result worth reading along the way)."""
    _active.say(text)


def track(items: Iterable[T], name: str, total: int | None = None) -> Iterator[T]:
    """The items, as one stage counting them."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with stage(name, total) as running:
        for item in items:
            yield item
            running.advance()
