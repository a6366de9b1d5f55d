"""When analytics judges a window for alerts (relais.analytics.alerts), worked by hand on hour windows with a
30-second settle. Clocks are the ticker's monotonic seconds; `now` is the wall clock."""

import json
from datetime import datetime, timedelta, timezone

from relais.analytics import alerts, kpis

SETTLE = 30.0


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 3, 2, hh, mm, tzinfo=timezone.utc)


def hour_windows() -> alerts.TouchedWindows:
    return alerts.TouchedWindows("hour", SETTLE)


def judge_pass(windows: alerts.TouchedWindows, clock: float, now: datetime) -> list[datetime]:
    """The windows one ticker pass judges (AlertTicker.judge's order, without its reads)."""
    return [start for start in windows.candidates(windows.take_settled(clock)) if windows.ready(start, now)]


def test_outcomes_touch_their_window_and_the_last_touch_counts():
    windows = hour_windows()
    windows.touch(at(10, 5), clock=100.0)
    windows.touch(at(10, 40), clock=120.0)
    windows.touch(at(11, 0), clock=110.0)
    assert windows.touched == {at(10): 120.0, at(11): 110.0}


def test_a_window_settles_only_after_settle_seconds_without_a_touch():
    windows = hour_windows()
    windows.touch(at(10, 5), clock=100.0)
    assert windows.take_settled(129.9) == []
    windows.touch(at(10, 50), clock=120.0)  # a new outcome restarts the wait
    assert windows.take_settled(149.9) == []
    assert windows.take_settled(150.0) == [at(10)]


def test_a_settled_window_is_taken_once_until_touched_again():
    windows = hour_windows()
    windows.touch(at(10, 5), clock=0.0)
    assert windows.take_settled(30.0) == [at(10)]
    assert windows.take_settled(1000.0) == []
    windows.touch(at(10, 7), clock=1000.0)
    assert windows.take_settled(1030.0) == [at(10)]


def test_settled_windows_come_in_order_and_the_others_stay():
    windows = hour_windows()
    windows.touch(at(12), clock=0.0)
    windows.touch(at(9), clock=5.0)
    windows.touch(at(11), clock=20.0)
    assert windows.take_settled(40.0) == [at(9), at(12)]
    assert windows.touched == {at(11): 20.0}


def test_a_settled_window_is_judged_with_the_window_after_it():
    windows = hour_windows()
    assert windows.candidates([at(10)]) == [at(10), at(11)]
    assert windows.candidates([at(11), at(10)]) == [at(10), at(11), at(12)]  # 11:00 once
    assert alerts.judged_range(at(11), timedelta(hours=1)) == (at(10), at(12))


def test_a_complete_window_untouched_since_it_was_taken_is_judged():
    windows = hour_windows()
    assert windows.ready(at(10), now=at(11)) is True  # 10:00-11:00 is complete at 11:00
    assert windows.touched == {}


def test_the_current_window_is_not_judged_but_stays_due_until_complete():
    windows = hour_windows()
    assert windows.ready(at(10), now=at(10, 59)) is False
    assert windows.touched == {at(10): 0.0}  # looked at again at the next pass
    assert windows.take_settled(clock=1000.0) == [at(10)]


def test_a_future_window_is_dropped():
    windows = hour_windows()
    assert windows.ready(at(11), now=at(10, 30)) is False
    assert windows.touched == {}


def test_a_window_touched_again_while_the_pass_runs_waits_to_settle():
    windows = hour_windows()
    windows.touch(at(9, 30), clock=0.0)
    assert windows.take_settled(30.0) == [at(9)]
    windows.touch(at(9, 45), clock=31.0)  # a late outcome, stored while the pass reads
    assert windows.ready(at(9), now=at(12)) is False
    assert windows.touched == {at(9): 31.0}  # its own time kept: judged 30 s after it
    assert windows.take_settled(60.0) == []
    assert windows.take_settled(61.0) == [at(9)]


def test_after_a_restart_the_two_windows_before_the_current_one_are_due():
    windows = hour_windows()
    windows.touch(at(11, 10), clock=500.0)  # touched already: keeps its time
    windows.after_restart(now=at(12, 30))
    assert windows.touched == {at(11): 500.0, at(10): 0.0}


def test_after_a_restart_with_day_windows_yesterday_and_the_day_before_are_due():
    windows = alerts.TouchedWindows("day", SETTLE)
    windows.after_restart(now=at(12, 30))
    assert windows.touched == {at(0) - timedelta(days=1): 0.0, at(0) - timedelta(days=2): 0.0}


def test_a_failed_pass_makes_its_windows_due_again_but_a_newer_touch_wins():
    windows = hour_windows()
    windows.touch(at(9), clock=0.0)
    windows.touch(at(10), clock=0.0)
    settled = windows.take_settled(30.0)
    windows.touch(at(10, 20), clock=35.0)  # during the failed pass
    windows.retry(settled)
    assert windows.touched == {at(9): 0.0, at(10): 35.0}


def test_a_pass_judges_each_complete_settled_window_once_and_the_next_one_when_complete():
    windows = hour_windows()
    windows.touch(at(10, 15), clock=1000.0)
    windows.touch(at(11, 5), clock=1000.0)
    # At 11:20: 10:00 complete and judged; 11:00 is the current window (not judged, kept due); 12:00 is future.
    assert judge_pass(windows, clock=1030.0, now=at(11, 20)) == [at(10)]
    assert windows.touched == {at(11): 0.0}
    # The current window comes back every pass, judged only once complete.
    assert judge_pass(windows, clock=1031.0, now=at(11, 59)) == []
    assert judge_pass(windows, clock=1032.0, now=at(12)) == [at(11)]  # 12:00 is current: kept due
    assert windows.touched == {at(12): 0.0}


def test_nothing_touched_nothing_judged():
    windows = hour_windows()
    assert judge_pass(windows, clock=1000.0, now=at(12)) == []


def service_level_row(window_start: datetime, service_level: float) -> kpis.KpiRow:
    return kpis.KpiRow(window_start=window_start.isoformat(), service_level=service_level, answered=10, abandoned=2)


def test_a_window_raises_its_own_alerts_not_the_previous_ones():
    rows = [service_level_row(at(10), 0.5), service_level_row(at(11), 0.6)]  # both under the 0.8 target
    raised = alerts.raised_in(rows, kpis.AlertRules(), at(11))
    assert [a.alert_id for a in raised] == [f"service_level/{at(11).isoformat()}"]


def test_a_window_judged_again_raises_the_same_alert_id_so_the_outbox_publishes_it_once():
    rows = [service_level_row(at(10), 0.9), service_level_row(at(11), 0.6)]
    first = alerts.raised_in(rows, kpis.AlertRules(), at(11))
    again = alerts.raised_in(
        [service_level_row(at(10), 0.9), service_level_row(at(11), 0.55)], kpis.AlertRules(), at(11)
    )
    assert [a.alert_id for a in first] == [a.alert_id for a in again] == [f"service_level/{at(11).isoformat()}"]


def test_a_window_within_target_raises_nothing():
    rows = [service_level_row(at(10), 0.5), service_level_row(at(11), 0.85)]
    assert alerts.raised_in(rows, kpis.AlertRules(), at(11)) == []


def test_the_alert_event_is_a_structured_cloudevent_keyed_by_kind():
    alert = kpis.Alert(
        "service_level",
        at(11).isoformat(),
        "service level 0.60 under target 0.80",
        {"service_level": 0.6, "target": 0.8},
    )
    record = alerts.alert_record(alert, "hour")
    event = json.loads(record.value)
    assert (record.topic, record.key) == ("relais.alerts.v1", b"service_level")
    assert record.headers == [("content-type", b"application/cloudevents+json")]
    assert (event["type"], event["source"], event["id"], event["subject"]) == (
        "relais.alert.v1",
        "urn:relais:analytics",
        f"service_level/{at(11).isoformat()}",
        "service_level",
    )
    assert event["data"] == {
        "kind": "service_level",
        "window": "hour",
        "window_start": at(11).isoformat(),
        "detail": "service level 0.60 under target 0.80",
        "figures": {"service_level": 0.6, "target": 0.8},
    }
