"""When analytics judges a window for alerts, which alerts it raises, and what it publishes. No I/O.

The rules themselves (over-automation, service level under target) are relais.analytics.kpis.alerts; this module
decides when to apply them. A window is judged once it is complete and its data has settled (no new outcome for
`settle` seconds), together with the window after it, which is compared with it. A window still filling is not
judged. A window touched again is judged again and finds the same alerts under the same ids (kind/window start),
which the outbox publishes once. relais.analytics.alert_ticker does the reading and publishing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from relais.analytics import kpis
from relais.common import bus, cloudevents, topics

SOURCE = "urn:relais:analytics"
ALERT_TYPE = "relais.alert.v1"


@dataclass
class TouchedWindows:
    """The alert windows touched since they were last judged, each with when it was last touched (a monotonic
    clock, passed in; 0.0, far behind it, makes a window due at the next pass)."""

    window: str  # a kpis.WINDOWS name
    settle: float  # seconds without a new outcome before a window is judged
    touched: dict[datetime, float] = field(default_factory=dict)

    @property
    def step(self) -> timedelta:
        return kpis.WINDOWS[self.window]

    def touch(self, at: datetime, clock: float) -> None:
        """An outcome at `at` was stored: its window waits `settle` seconds from `clock` before being judged."""
        self.touched[kpis.window_start(at, self.window)] = clock

    def after_restart(self, now: datetime) -> None:
        """The two windows before the current one are due: outcomes may have come while no process was judging."""
        for i in range(1, 3):
            self.touched.setdefault(kpis.window_start(now - self.step * i, self.window), 0.0)

    def take_settled(self, clock: float) -> list[datetime]:
        """Removes and returns, in order, the windows untouched for `settle` seconds at `clock`."""
        settled = sorted(t for t, touched in self.touched.items() if clock - touched >= self.settle)
        for t in settled:
            del self.touched[t]
        return settled

    def retry(self, settled: Iterable[datetime]) -> None:
        """A pass failed: its windows are due again (one touched since keeps its time and waits to settle)."""
        for t in settled:
            self.touched.setdefault(t, 0.0)

    def candidates(self, settled: Iterable[datetime]) -> list[datetime]:
        """The settled windows and the windows after them (compared with them), in order, each once."""
        return sorted({s for t in settled for s in (t, t + self.step)})

    def ready(self, start: datetime, now: datetime) -> bool:
        """Whether window `start` is judged now. An incomplete window is not: the current one stays due, so that
        it is judged once complete; a future one is dropped (its own outcomes will touch it). A window touched
        since it was taken is still filling and waits to settle."""
        if start + self.step > now:
            if start <= now:
                self.touched.setdefault(start, 0.0)
            return False
        return start not in self.touched


def judged_range(start: datetime, step: timedelta) -> tuple[datetime, datetime]:
    """The KPI rows a window is judged on: its own and the previous window's (over-automation compares them)."""
    return start - step, start + step


def raised_in(rows: Sequence[kpis.KpiRow], rules: kpis.AlertRules, start: datetime) -> list[kpis.Alert]:
    """The alerts of window `start` alone (the previous window's were raised when it was judged)."""
    return [alert for alert in kpis.alerts(rows, rules) if alert.window_start == start.isoformat()]


def alert_record(alert: kpis.Alert, window: str) -> bus.Record:
    """The alert on relais.alerts.v1: a structured CloudEvent keyed by kind, its id the alert's."""
    value = cloudevents.structured(
        ALERT_TYPE,
        SOURCE,
        alert.alert_id,
        alert.kind,
        {
            "kind": alert.kind,
            "window": window,
            "window_start": alert.window_start,
            "detail": alert.detail,
            "figures": alert.figures,
        },
    )
    return bus.Record(topics.ALERTS, alert.kind.encode(), value, [("content-type", cloudevents.STRUCTURED.encode())])
