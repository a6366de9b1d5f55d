"""The agent dimension (coaching) on a small case worked out by hand (relais.analytics.kpis.agent_rows)."""

from datetime import datetime, timedelta, timezone

import pytest

from relais.analytics import kpis
from relais.analytics.ingest import outcome_fact
from relais.common.pb import conversation_pb2 as pb

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def contact(cid, at, customer, intent="billing", **kw):
    return kpis.Contact(cid, customer, intent, "fr", "chat", at, at + timedelta(minutes=10), handed_off=True, **kw)


def step(cid, agent, kind, at, resolved=False):
    return kpis.AgentStep(cid, agent, kind, at, resolved)


# "t": alice accepts (10 s), passes it on (70 s: 60 s handled); bob accepts (100 s), closes it resolved (400 s: 300 s).
# "u", an hour later: alice accepts (3605 s), closes it resolved (3725 s: 120 s), but the customer comes back on the
# same intent the next day ("u-again"), so it is not resolved at the first contact.
# "v", two hours later: bob accepts (7205 s), closes it unresolved (7405 s: 200 s).
CONTACTS = [
    contact("t", s(0), "c1"),
    contact("u", s(3600), "c2"),
    contact("v", s(7200), "c3"),
]
LATER = [contact("u-again", s(86400), "c2")]
STEPS = [
    step("t", "alice", "assigned", s(10)),
    step("t", "alice", "transferred", s(70)),
    step("t", "bob", "assigned", s(100)),
    step("t", "bob", "closed", s(400), resolved=True),
    step("u", "alice", "assigned", s(3605)),
    step("u", "alice", "closed", s(3725), resolved=True),
    step("v", "bob", "assigned", s(7205)),
    step("v", "bob", "closed", s(7405)),
]
SURVEYS = [kpis.Survey("t", "csat", 5), kpis.Survey("u", "csat", 2)]  # each for the agent who closed it
USES = [
    kpis.SuggestionUse(s(20), "used", "alice"),
    kpis.SuggestionUse(s(30), "edited", "alice"),
    kpis.SuggestionUse(s(3610), "ignored", "alice"),
    kpis.SuggestionUse(s(3620), "ignored", "alice"),
    kpis.SuggestionUse(s(200), "ignored", "bob"),
    kpis.SuggestionUse(s(7300), "ignored", "bob"),
    kpis.SuggestionUse(s(7300), "used", "carol"),  # answered a suggestion, handled no contact that started here
]


def agent_rows(window=""):
    rows = kpis.compute(CONTACTS, SURVEYS, (), USES, later=LATER, steps=STEPS, window=window, dimension=kpis.AGENT)
    return {(r.window_start[11:16], r.dimension_value): r for r in rows}


def test_each_agent_has_its_contacts_handling_time_resolution_csat_transfers_and_suggestion_acceptance():
    rows = agent_rows()
    assert list(rows) == [("", "alice"), ("", "bob"), ("", "carol")]
    alice, bob, carol = rows[("", "alice")], rows[("", "bob")], rows[("", "carol")]

    assert (alice.contacts, alice.human.contacts) == (2, 2)
    assert alice.human.handling_seconds == pytest.approx((60 + 120) / 2)
    assert (alice.human.resolved, alice.fcr) == (0, 0.0)  # "t" passed on, "u" came back
    assert (alice.human.csat, alice.human.csat_mean, alice.human.csat_responses) == (0.0, 2.0, 1)
    assert (alice.agent.transfers, alice.agent.transfer_rate) == (1, 0.5)
    assert (
        alice.agent.suggestions_answered,
        alice.agent.suggestions_used,
        alice.agent.suggestions_edited,
        alice.agent.suggestions_ignored,
    ) == (4, 1, 1, 2)
    assert alice.agent.suggestion_acceptance_rate == alice.suggestion_acceptance == 0.5

    assert bob.contacts == 2 and bob.human.handling_seconds == pytest.approx((300 + 200) / 2)
    assert (bob.human.resolved, bob.fcr) == (1, 0.5)
    assert (bob.human.csat, bob.human.csat_responses) == (1.0, 1)
    assert (bob.agent.transfers, bob.agent.transfer_rate) == (0, 0.0)
    assert (bob.agent.suggestions_answered, bob.agent.suggestions_ignored) == (2, 2)
    assert bob.agent.suggestion_acceptance_rate == 0.0

    assert carol.contacts == 0 and carol.fcr is None and carol.human.handling_seconds is None
    assert carol.agent.transfer_rate is None and carol.agent.suggestion_acceptance_rate == 1.0
    # What only makes sense for the whole center is left out of an agent's row.
    assert alice.bot.contacts == 0 and alice.occupancy is None and alice.total_cost is None
    doc = alice.to_dict()
    assert doc["agent"]["transfers"] == 1 and "transfer_rate" not in carol.to_dict()["agent"]


def test_with_a_window_contacts_count_where_they_started_and_answers_where_given():
    rows = agent_rows("hour")
    assert list(rows) == [
        ("09:00", "alice"),
        ("09:00", "bob"),
        ("10:00", "alice"),
        ("11:00", "bob"),
        ("11:00", "carol"),
    ]
    first = rows[("09:00", "alice")]
    assert (first.contacts, first.human.handling_seconds, first.agent.transfers) == (1, 60.0, 1)
    assert first.agent.suggestion_acceptance_rate == 1.0  # used then edited, in that hour
    assert rows[("10:00", "alice")].agent.suggestion_acceptance_rate == 0.0
    assert rows[("09:00", "bob")].human.handling_seconds == 300.0  # bob's part of "t", which started at 09:00


def test_an_agents_part_ends_at_its_own_transfer_or_close_and_unknown_ends_give_no_handling_time():
    parts = kpis.agent_parts(
        [
            step("x", "bob", "closed", s(50), resolved=True),  # its acceptance was never stored (older outcome ids)
            step("y", "alice", "assigned", s(0)),  # requeued when alice signed out, then accepted again
            step("y", "alice", "assigned", s(100)),
            step("y", "alice", "closed", s(160)),
            step("z", "dan", "assigned", s(0)),  # still open
            step("z", "", "closed", s(10)),  # the customer left: routing's own close names no agent
        ]
    )
    assert [(p.conversation_id, p.agent_id, p.handling_seconds, p.ended_by, p.resolved) for p in parts] == [
        ("x", "bob", None, "closed", True),
        ("y", "alice", None, "", False),
        ("y", "alice", 60.0, "closed", False),
        ("z", "dan", None, "", False),
    ]


def test_steps_of_contacts_started_outside_the_range_are_not_counted():
    rows = kpis.compute(CONTACTS[:1], steps=STEPS, dimension=kpis.AGENT)
    assert {r.dimension_value: r.contacts for r in rows} == {"alice": 1, "bob": 1}


def test_a_transfer_outcome_is_stored_as_a_transferred_step_of_the_agent_who_passed_it_on():
    outcome = pb.Outcome(
        outcome_id="task-1/transferred/1", conversation_id="t", kind=pb.OUTCOME_KIND_TRANSFERRED, agent_id="alice"
    )
    outcome.at.FromDatetime(s(70))
    fact = outcome_fact(outcome)
    assert fact.table == "kpi_outcomes"
    assert (fact.values[3], fact.values[8], fact.values[-1]) == ("transferred", "alice", s(70))
