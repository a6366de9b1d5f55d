"""The KPI formulas on small cases worked out by hand (relais.analytics.kpis)."""

from datetime import datetime, timedelta, timezone

import pytest

from relais.analytics import kpis

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def bot(cid, customer="c1", intent="order_status", at=T0, answered=True, turns=1, **kw):
    return kpis.Contact(
        cid,
        customer,
        intent,
        "fr",
        "chat",
        at,
        at + timedelta(seconds=20 * (turns - 1)),
        bot_answered=answered,
        bot_interactions=turns,
        bot_first_at=at,
        bot_last_at=at + timedelta(seconds=20 * (turns - 1)),
        **kw,
    )


def human(
    cid,
    customer="c9",
    intent="complaint",
    at=T0,
    wait=10,
    handle=600,
    abandoned=False,
    resolved=True,
    reason="HANDOFF_REASON_ANGER",
    turns=0,
):
    handed = at + timedelta(seconds=20 * turns)
    assigned = None if abandoned else handed + timedelta(seconds=wait)
    closed = handed + timedelta(seconds=wait) if assigned is None else assigned + timedelta(seconds=handle)
    return kpis.Contact(
        cid,
        customer,
        intent,
        "en",
        "email",
        at,
        closed,
        handed_off=True,
        handoff_reason=reason,
        bot_interactions=turns,
        handed_off_at=handed,
        assigned_at=assigned,
        closed_at=closed,
        abandoned=abandoned,
        agent_resolved=resolved and not abandoned,
    )


def test_a_return_on_the_same_intent_within_the_window_is_false_containment_and_not_fcr():
    first = bot("a", at=T0)
    back_in_time = human(
        "b", customer="c1", intent="order_status", at=T0 + timedelta(days=7)
    )  # exactly 7 days: counted
    late = bot("c", customer="c2", at=T0)
    back_late = human("d", customer="c2", intent="order_status", at=T0 + timedelta(days=7, seconds=1))
    other = bot("e", customer="c3", at=T0)
    back_other = human("f", customer="c3", intent="card_lost", at=T0 + timedelta(hours=1))
    assert kpis.recontacted([first, back_in_time, late, back_late, other, back_other], 7) == {"a"}
    [row] = kpis.compute([first, late, other], later=[back_in_time, back_late, back_other])
    assert (row.contained, row.false_contained) == (3, 1)
    assert row.false_containment_rate == pytest.approx(1 / 3)
    assert row.effective_containment_rate == pytest.approx(2 / 3)
    assert row.bot.fcr == pytest.approx(2 / 3) and row.fcr == pytest.approx(2 / 3)


def test_bot_and_human_sides_with_speed_of_answer_service_level_abandonment_and_handling_time():
    contacts = [
        bot("a"),
        bot("b", customer="c2", answered=False, turns=2),
        human("h1", wait=10, handle=300),
        human("h2", customer="x2", wait=30, handle=900, resolved=False),
        human("h3", customer="x3", wait=45, abandoned=True),
    ]
    [row] = kpis.compute(contacts)
    assert (row.contacts, row.bot.contacts, row.human.contacts) == (5, 2, 3)
    assert row.containment_rate == pytest.approx(1 / 5) and row.handoff_rate == pytest.approx(3 / 5)
    assert (row.answered, row.abandoned) == (2, 1) and row.abandonment_rate == pytest.approx(1 / 3)
    assert row.asa_seconds == pytest.approx(20.0)
    assert row.service_level == pytest.approx(1 / 3)  # 10 s answered in time; 30 s late; abandoned counts as offered
    assert row.human.handling_seconds == pytest.approx(600.0)
    assert row.bot.handling_seconds == pytest.approx(10.0)  # 0 s and 20 s
    assert row.human.fcr == pytest.approx(1 / 3) and row.bot.fcr == pytest.approx(1 / 2)
    assert row.handoff_reasons == {"HANDOFF_REASON_ANGER": 3}


def test_csat_and_nps_by_side():
    contacts = [bot("a"), bot("b", customer="c2"), human("h")]
    surveys = [
        kpis.Survey("a", "csat", 5),
        kpis.Survey("b", "csat", 3),
        kpis.Survey("a", "nps", 10),
        kpis.Survey("b", "nps", 6),
        kpis.Survey("b", "nps", 8),
        kpis.Survey("h", "csat", 4),
    ]
    [row] = kpis.compute(contacts, surveys)
    assert row.bot.csat == pytest.approx(0.5) and row.bot.csat_mean == pytest.approx(4.0)
    assert row.bot.nps == pytest.approx(0.0)  # one promoter, one detractor, one passive
    assert row.human.csat == 1.0 and row.human.nps is None and row.human.nps_responses == 0
    assert kpis.nps([10, 10, 9, 0]) == pytest.approx(50.0)


def test_cost_per_contact_and_saving_against_an_all_human_baseline():
    cost = kpis.CostModel(bot_interaction=0.5, agent_hour=36.0)
    contacts = [bot("a", turns=2), bot("b", customer="c2", turns=1), human("h", handle=600, turns=1)]
    [row] = kpis.compute(contacts, cost=cost)
    assert row.bot.cost_per_contact == pytest.approx(0.75)  # (1.0 + 0.5) / 2
    assert row.human.cost_per_contact == pytest.approx(0.5 + 6.0)  # its bot turn + 10 min at 36/h
    assert row.total_cost == pytest.approx(1.5 + 6.5)
    assert row.all_human_cost == pytest.approx(3 * 6.0)
    assert row.saving == pytest.approx(18.0 - 8.0)


def test_no_human_handled_yet_prices_the_baseline_with_the_declared_handling_time():
    [row] = kpis.compute([bot("a")], cost=kpis.CostModel(bot_interaction=0.1, agent_hour=30, baseline_aht_seconds=360))
    assert row.all_human_cost == pytest.approx(3.0) and row.saving == pytest.approx(2.9)


def test_occupancy_and_contacts_per_agent_hour_are_clipped_to_each_window():
    spans = [
        kpis.AgentSpan("a1", "available", T0, T0 + timedelta(minutes=30)),
        kpis.AgentSpan("a1", "busy", T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)),
        kpis.AgentSpan("a1", "wrap_up", T0 + timedelta(minutes=90), T0 + timedelta(minutes=100)),
        kpis.AgentSpan("a1", "break", T0 + timedelta(minutes=100), T0 + timedelta(minutes=120)),
    ]
    rows = kpis.compute([human("h", handle=60)], spans=spans, window="hour")
    assert [r.window_start for r in rows] == [T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()]
    assert rows[0].occupancy == pytest.approx(0.5)  # 30 min busy of 60 signed in
    assert rows[1].occupancy == pytest.approx(1.0)  # 30 busy + 10 wrap-up of 40; the break is not signed in
    assert rows[0].contacts_per_agent_hour == pytest.approx(1.0)
    assert rows[1].contacts == 0 and rows[1].contacts_per_agent_hour == 0.0


def test_suggestion_acceptance_counts_used_and_edited():
    uses = [kpis.SuggestionUse(T0, u) for u in ("used", "used", "edited", "ignored")]
    [row] = kpis.compute([], suggestions=uses)
    assert row.suggestion_acceptance == pytest.approx(0.75)


def test_windows_and_dimensions_split_contacts():
    contacts = [bot("a", at=T0), bot("b", customer="c2", at=T0 + timedelta(days=1), intent="opening_hours"), human("h")]
    days = kpis.compute(contacts, window="day")
    assert [(r.window_start[:10], r.contacts) for r in days] == [("2026-03-02", 2), ("2026-03-03", 1)]
    intents = kpis.compute(contacts, dimension="intent")
    assert {r.dimension_value: r.contacts for r in intents} == {"order_status": 1, "opening_hours": 1, "complaint": 1}
    assert all(r.occupancy is None for r in intents)
    with pytest.raises(ValueError, match="unknown window"):
        kpis.compute(contacts, window="week")
    with pytest.raises(ValueError, match="unknown dimension"):
        kpis.compute(contacts, dimension="colour")


def row(start, contacts, containment, csat, responses=20, fcr=0.8, service_level=None, offered=0):
    r = kpis.KpiRow(
        window_start=start,
        contacts=contacts,
        containment_rate=containment,
        service_level=service_level,
        answered=offered,
    )
    r.bot.csat, r.bot.csat_responses, r.bot.fcr = csat, responses, fcr
    return r


def test_over_automation_alert_fires_when_containment_rises_while_bot_csat_or_fcr_falls():
    rises_csat_falls = kpis.alerts([row("d1", 100, 0.50, 0.80), row("d2", 100, 0.70, 0.55)])
    assert [(a.kind, a.window_start) for a in rises_csat_falls] == [("over_automation", "d2")]
    assert "containment 0.50 -> 0.70" in rises_csat_falls[0].detail
    fcr_falls = kpis.alerts([row("d1", 100, 0.50, 0.80, fcr=0.8), row("d2", 100, 0.60, 0.80, fcr=0.6)])
    assert [a.kind for a in fcr_falls] == ["over_automation"]


@pytest.mark.parametrize(
    "rows",
    [
        [row("d1", 100, 0.50, 0.80), row("d2", 100, 0.70, 0.80)],  # more containment, satisfaction held
        [row("d1", 100, 0.50, 0.80), row("d2", 100, 0.50, 0.40)],  # satisfaction fell, containment did not rise
        [row("d1", 10, 0.50, 0.80), row("d2", 10, 0.90, 0.40)],  # too few contacts to tell
        [row("d1", 100, 0.50, 0.80, 3), row("d2", 100, 0.70, 0.40, 3)],  # too few survey answers, FCR held
    ],
)
def test_over_automation_alert_stays_quiet_otherwise(rows):
    assert kpis.alerts(rows) == []


def test_service_level_alert_under_target_with_enough_offered_contacts():
    assert [a.kind for a in kpis.alerts([row("d1", 50, 0.5, 0.8, service_level=0.7, offered=12)])] == ["service_level"]
    assert kpis.alerts([row("d1", 50, 0.5, 0.8, service_level=0.7, offered=3)]) == []
    assert kpis.alerts([row("d1", 50, 0.5, 0.8, service_level=0.85, offered=30)]) == []


def test_cost_model_loads_the_shipped_file_and_rejects_unknown_or_negative_values(tmp_path):
    shipped = kpis.CostModel.load()
    assert shipped.currency == "EUR" and shipped.agent_hour > shipped.bot_interaction > 0
    (tmp_path / "bad.yaml").write_text("agent_hour: 30\nbot_interactoin: 0.1\n")
    with pytest.raises(ValueError, match="unknown cost model keys"):
        kpis.CostModel.load(tmp_path / "bad.yaml")
    (tmp_path / "neg.yaml").write_text("agent_hour: -1\n")
    with pytest.raises(ValueError, match="must not be negative"):
        kpis.CostModel.load(tmp_path / "neg.yaml")
