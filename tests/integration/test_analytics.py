"""Analytics on the real broker and database: generated traffic with known truth, alerts, surveys through
intake, irritants, staffing, the report, and a replay of the log into an empty store."""

import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from bench import traffic
from infra.ports import free_port
from infra.postgres.migrate import migrate
from relais.analytics import staffing
from relais.common import bus, cloudevents, topics
from relais.common.pb import (
    agent_desk_pb2 as desk,
    agent_events_pb2 as ev,
    analytics_pb2 as api,
    analytics_pb2_grpc,
    conversation_pb2 as pb,
)
from relais.demo import send_message
from tests.integration.conftest import reply_of_type, service_channel, settled
from tests.integration.test_walking_skeleton import dead_letters

# A busy first day, then one where the bot "contains" more while its customers are less satisfied.
BEFORE = traffic.Day(contained=30, bot_csat=(5, 4, 5, 4, 3), waits=(5, 8, 12, 15, 18, 10, 25))
OVER_AUTOMATED = traffic.Day(
    contained=45, false_contained=9, bot_csat=(2, 3, 5, 2, 1), waits=(5, 8, 30, 45, 60, 12, 90)
)
STEADY = traffic.Day(contained=30, bot_csat=(5, 4, 5, 4, 3), waits=(5, 8, 12, 15, 18, 10, 6))


def ts(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


# Each call gets 30 days of its own (scenarios, their late returns, the irritants' two weeks), from a base drawn
# with `secrets`: the global `random` may be reseeded by other tests (hypothesis), which gave two scenarios the
# same days once.
_PAST_SLOTS = itertools.count(secrets.randbelow(100))


def some_past_day() -> datetime:
    """Days of their own, far from the other tests' traffic (which happens now) and from each other."""
    return datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(days=30 * next(_PAST_SLOTS))  # to 2010


async def ingest(stack, producer, db, generated: traffic.Traffic, timeout: float = 60) -> None:
    await bus.publish(producer, generated.records)
    outcomes = sum(r.topic == topics.OUTCOMES for r in generated.records)
    agent_events = sum(r.topic == topics.AGENT_EVENTS for r in generated.records)
    async with asyncio.timeout(timeout):
        while True:
            stored = await db.fetchval(
                "SELECT count(*) FROM kpi_outcomes WHERE conversation_id = ANY($1)", generated.conversation_ids
            )
            states = await db.fetchval(
                "SELECT count(*) FROM kpi_agent_states WHERE at >= $1 AND at < $2", generated.start, generated.end
            )
            uses = await db.fetchval(
                "SELECT count(*) FROM kpi_suggestions WHERE at >= $1 AND at < $2", generated.start, generated.end
            )
            if stored == outcomes and states + uses == agent_events:
                return
            await asyncio.sleep(0.2)


def analytics_stub(port: int):
    channel = service_channel(f"127.0.0.1:{port}")
    return channel, analytics_pb2_grpc.AnalyticsStub(channel)


def close(actual, expected, name):
    if expected is None:
        assert actual is None, name
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), name


def check_row(row: api.Kpis, truth: dict) -> None:
    """Every KPI of one day against what the generator wrote."""
    opt = lambda message, field: getattr(message, field) if message.HasField(field) else None
    assert row.contacts == truth["contacts"]
    assert (row.contained, row.false_contained) == (truth["contained"], truth["false_contained"])
    assert (row.bot.contacts, row.human.contacts) == (truth["bot_contacts"], truth["human_contacts"])
    assert (row.answered, row.abandoned) == (truth["answered"], truth["abandoned"])
    assert dict(row.handoff_reasons) == truth["handoff_reasons"]
    assert row.bot.interactions == truth["bot_interactions"]
    assert row.bot.csat_responses == truth["bot_csat_responses"]
    for field, key in [
        ("containment_rate", "containment_rate"),
        ("false_containment_rate", "false_containment_rate"),
        ("fcr", "fcr"),
        ("handoff_rate", "handoff_rate"),
        ("abandonment_rate", "abandonment_rate"),
        ("asa_seconds", "asa_seconds"),
        ("service_level", "service_level"),
        ("occupancy", "occupancy"),
        ("contacts_per_agent_hour", "contacts_per_agent_hour"),
        ("suggestion_acceptance", "suggestion_acceptance"),
        ("total_cost", "total_cost"),
        ("saving", "saving"),
    ]:
        close(opt(row, field), truth[key], field)
    for side, field, key in [
        ("bot", "fcr", "bot_fcr"),
        ("human", "fcr", "human_fcr"),
        ("bot", "csat", "bot_csat"),
        ("human", "csat", "human_csat"),
        ("bot", "nps", "bot_nps"),
        ("human", "handling_seconds", "human_aht_seconds"),
        ("bot", "cost_per_contact", "bot_cost_per_contact"),
        ("human", "cost_per_contact", "human_cost_per_contact"),
    ]:
        close(opt(getattr(row, side), field), truth[key], f"{side}.{field}")


@pytest.fixture(scope="module")
async def alerts_seen(stack):
    """Every alert on relais.alerts.v1 from the beginning, by id, as they come."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    partition = TopicPartition(topics.ALERTS, 0)
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    seen: dict[str, list[dict]] = {}

    async def read():
        async for record in consumer:
            event = json.loads(record.value)
            seen.setdefault(event["id"], []).append(event)

    task = asyncio.create_task(read())
    yield seen
    task.cancel()
    await consumer.stop()


@pytest.fixture(scope="module")
async def over_automation(stack, producer, db):
    generated = traffic.generate([BEFORE, OVER_AUTOMATED], start=some_past_day(), seed=1)
    await ingest(stack, producer, db, generated)
    return generated


async def test_every_kpi_equals_the_known_truth_of_generated_traffic(stack, over_automation):
    generated = over_automation
    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        reply = await stub.GetKpis(api.KpiRequest(window="day", **{"from": ts(generated.start)}, to=ts(generated.end)))
        by_intent = await stub.GetKpis(
            api.KpiRequest(dimension="intent", **{"from": ts(generated.start)}, to=ts(generated.end))
        )
        whole = await stub.GetKpis(api.KpiRequest(**{"from": ts(generated.start)}, to=ts(generated.end)))
    assert [r.window_start for r in reply.rows] == list(generated.truth.days)
    for row in reply.rows:
        check_row(row, generated.truth.days[row.window_start])
    days = list(generated.truth.days.values())
    assert sum(d["false_contained"] for d in days) == 14  # counted, not assumed: 5 then 9 recontacts
    assert whole.rows[0].contacts == sum(d["contacts"] for d in days) == sum(r.contacts for r in by_intent.rows)
    assert whole.rows[0].false_contained == sum(r.false_contained for r in by_intent.rows) == 14
    assert {
        r.dimension_value: (r.contacts, r.contained, r.false_contained, r.human.contacts) for r in by_intent.rows
    } == {intent: tuple(c.values()) for intent, c in generated.truth.by_intent.items()}
    assert set(generated.truth.by_intent) == set(traffic.INTENTS)
    assert reply.currency == "EUR" and reply.service_level_seconds == 20 and reply.recontact_days == 7


async def test_over_automation_alert_fires_on_its_scenario_and_a_steady_one_stays_quiet(
    stack, producer, db, over_automation, alerts_seen
):
    steady = traffic.generate([STEADY, STEADY], start=some_past_day(), seed=2)
    assert not steady.truth.alerts
    await ingest(stack, producer, db, steady)
    expected = over_automation.truth.alerts
    assert f"over_automation/{over_automation.start + timedelta(days=1):%Y-%m-%dT%H:%M:%S+00:00}" in expected
    # A probe after them: its later days settle later and are judged later (windows in order, each pass), so once
    # its alert is out, every alert of the steady days (and any second one of the others) is out before it.
    probe = traffic.generate([BEFORE, OVER_AUTOMATED], start=some_past_day(), seed=3)
    assert probe.truth.alerts
    await ingest(stack, producer, db, probe)
    async with asyncio.timeout(60):
        while not (expected | probe.truth.alerts) <= set(alerts_seen):
            await asyncio.sleep(0.2)
    for generated in (over_automation, steady, probe):
        raised = {
            a for a in alerts_seen if generated.start.isoformat() <= a.split("/", 1)[1] < generated.end.isoformat()
        }
        assert raised == generated.truth.alerts
        assert all(len(alerts_seen[a]) == 1 for a in raised)  # once each
    event = alerts_seen[next(a for a in expected if a.startswith("over_automation"))][0]
    assert event["type"] == "relais.alert.v1" and event["data"]["kind"] == "over_automation"
    assert "containment" in event["data"]["detail"] and event["data"]["figures"]["bot_csat"][1] < 0.5


async def test_staffing_view_comes_from_the_measured_busiest_interval(stack, over_automation):
    generated = over_automation
    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        plan = await stub.GetStaffing(
            api.StaffingRequest(
                target_level=0.8,
                target_seconds=20,
                peak_multiplier=3,
                **{"from": ts(generated.start)},
                to=ts(generated.end),
            )
        )
    slots: dict[int, int] = {}  # 15-minute intervals from the start of the range -> hand-offs
    for record in generated.records:
        if record.topic != topics.OUTCOMES:
            continue
        outcome = pb.Outcome.FromString(record.value)
        at = outcome.at.ToDatetime(tzinfo=timezone.utc)
        if outcome.kind == pb.OUTCOME_KIND_HANDED_OFF and generated.start <= at < generated.end:
            slot = int((at - generated.start).total_seconds() // 900)
            slots[slot] = slots.get(slot, 0) + 1
    per_hour = max(slots.values()) * 4
    assert plan.calls_per_hour == per_hour
    expected = staffing.required_agents(per_hour, plan.aht_seconds, 0.8, 20)
    assert plan.recommended.agents == expected.agents >= 1
    assert (
        plan.peak.agents == staffing.required_agents(per_hour * 3, plan.aht_seconds, 0.8, 20).agents > expected.agents
    )
    assert plan.recommended.service_level >= 0.8 and len(plan.curve) >= 5
    assert "busiest 15-minute interval" in plan.basis


async def test_surveys_enter_through_intake_redacted_and_bad_ones_are_dead_lettered(
    stack, producer, replies, db, conversation_id
):
    await send_message(
        producer, conversation_id, {"id": "cust-survey-1", "language": "en"}, "What are your opening hours?"
    )
    answer = await reply_of_type(replies, conversation_id, cloudevents.REPLY_BOT)
    invitation = answer["data"]["survey"]
    assert invitation["type"] == cloudevents.CONTACT_SURVEY and (invitation["min"], invitation["max"]) == (1, 5)
    value, headers = cloudevents.contact_survey(conversation_id, 2, comment="Too slow, write to me at jo@example.com")
    await bus.publish(producer, [bus.Record(topics.CONTACT_EVENTS, conversation_id.encode(), value, headers)])
    async with asyncio.timeout(20):
        while not (
            row := await db.fetchrow(
                "SELECT * FROM kpi_outcomes WHERE conversation_id = $1 AND kind = 'survey'", conversation_id
            )
        ):
            await asyncio.sleep(0.2)
    assert (row["survey_scale"], row["survey_score"], row["customer_id"]) == ("csat", 2, "cust-survey-1")
    assert row["survey_comment"] == "Too slow, write to me at [EMAIL]"

    marker = uuid.uuid4().hex
    for bad in (
        cloudevents.contact_survey(f"unknown-{marker}", 4),
        cloudevents.contact_survey(conversation_id, 9),
        cloudevents.contact_survey(conversation_id, 11, scale="nps"),
    ):
        await bus.publish(producer, [bus.Record(topics.CONTACT_EVENTS, marker.encode(), *bad)])
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in await dead_letters(stack.bootstrap, marker.encode(), 3)]
    assert "survey for unknown conversation" in reasons[0]
    assert "out of range: 1 to 5" in reasons[1] and "out of range: 0 to 10" in reasons[2]


THEMES = {
    "delivery": [
        "my parcel is late again, the delivery never came",
        "the delivery of my order is two weeks late",
        "ma livraison est en retard, le colis n'est jamais arrivé",
        "colis toujours pas livré, livraison en retard",
        "still waiting for the delivery of my parcel",
        "livraison en retard encore une fois",
    ],
    "card": [
        "my card is blocked and every payment is declined",
        "carte bloquée, paiement refusé au magasin",
        "why is my card declined? it is blocked",
        "ma carte est bloquée depuis hier",
    ],
}


def verbatim_turn(text: str, at: datetime, handed_off_conversation: str | None = None) -> bus.Record:
    conversation = handed_off_conversation or f"verb-{uuid.uuid4().hex[:10]}"
    turn = pb.Turn(
        turn_id=f"gen#{uuid.uuid4()}",
        conversation_id=conversation,
        seq=1,
        text=text,
        language="en",
        classification=pb.Classification(sentiment=pb.Sentiment(score=-0.7, anger=True)),
    )
    turn.sent_at.FromDatetime(at)
    return bus.Record(topics.CLASSIFIED_TURNS, conversation.encode(), turn.SerializeToString(), [])


async def test_irritants_group_redacted_verbatims_with_their_trend(stack, producer, db):
    end = some_past_day()
    records = []
    for week, delivery_count in ((-2, 6), (-1, 12)):  # delivery complaints double; card ones stay
        for i in range(delivery_count):
            records.append(
                verbatim_turn(
                    THEMES["delivery"][i % 6] + f" (ref {i})",
                    end + timedelta(weeks=week + 1, hours=-i - 1)
                    if week == -1
                    else end - timedelta(days=7, hours=i + 1),
                )
            )
        for i in range(6):
            text = THEMES["card"][i % 4] + (" — call me back at 06 12 34 56 78" if i == 0 else "")
            records.append(
                verbatim_turn(
                    text,
                    end - timedelta(days=7 * -week - 7, hours=i + 1)
                    if week == -1
                    else end - timedelta(days=7, hours=i + 30),
                )
            )
    await bus.publish(producer, records)
    async with asyncio.timeout(30):
        while await db.fetchval(
            "SELECT count(*) FROM kpi_verbatims WHERE at >= $1 AND at < $2", end - timedelta(days=14), end
        ) < len(records):
            await asyncio.sleep(0.2)
    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        found = await stub.GetIrritants(api.IrritantsRequest(to=ts(end)))
    assert found.verbatims == 18 and found.previous_verbatims == 12
    delivery = [
        i
        for i in found.irritants
        if any(w in i.label for w in ("delivery", "livraison", "parcel", "colis", "late", "retard"))
    ]
    card = [
        i for i in found.irritants if any(w in i.label for w in ("card", "carte", "blocked", "bloquée", "declined"))
    ]
    assert delivery and card, [i.label for i in found.irritants]
    assert sum(i.size for i in delivery) == 12 and sum(i.previous_size for i in delivery) == 6
    assert delivery[0].trend == pytest.approx(1.0)
    examples = " ".join(e for i in found.irritants for e in i.examples)
    assert "06 12 34 56 78" not in examples
    assert (
        await db.fetchval(
            "SELECT count(*) FROM kpi_verbatims WHERE text LIKE '%[PHONE]%' AND at >= $1 AND at < $2",
            end - timedelta(days=14),
            end,
        )
        == 2
    )


async def test_relais_report_writes_the_html_of_the_running_stack(stack, over_automation, db, tmp_path):
    out = tmp_path / "report.html"
    async with asyncio.timeout(30):  # the report shows the alerts analytics raised: wait until it has
        while await db.fetchval(
            "SELECT count(*) FROM kpi_alerts WHERE alert_id = ANY($1)", list(over_automation.truth.alerts)
        ) < len(over_automation.truth.alerts):
            await asyncio.sleep(0.2)
    env = os.environ | stack.endpoints() | {"ANALYTICS_GRPC_ADDR": f"127.0.0.1:{stack.ports['analytics']}"}
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "relais.cli",
            "report",
            "--out",
            str(out),
            "--to",
            over_automation.end.isoformat(),
            "--days",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    days = over_automation.truth.days
    assert [s["window_start"] for s in data["series"]] == list(days)
    assert [s["bot"]["containment"] for s in data["series"]] == pytest.approx(
        [d["containment_rate"] for d in days.values()]
    )
    assert {f"{a['kind']}/{a['window_start']}" for a in data["alerts"]} == over_automation.truth.alerts
    assert data["staffing"]["recommended"]["agents"] >= 1 and len(data["staffing"]["curve"]) >= 5
    assert data["totals"]["bot"]["contacts"] == sum(d["bot_contacts"] for d in days.values())
    handled = {a["agent_id"]: a["contacts"] for a in data["agents"]}  # the generator's one agent accepts them all
    assert handled["gen-agent"] == sum(d["answered"] for d in days.values()) and "Agents:" in html


async def test_replaying_the_log_into_an_empty_store_gives_the_same_numbers(stack, over_automation, tmp_path):
    name = f"replay_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    dsn = stack.dsn.rsplit("/", 1)[0] + f"/{name}"
    await migrate(dsn)
    port = free_port()
    env = stack.service_env("analytics") | {
        "DATABASE_URL": dsn,
        "RELAIS_CONSUMER_GROUP": f"relais-analytics-{name}",
        "ANALYTICS_GRPC_ADDR": f"127.0.0.1:{port}",
    }
    log = open(tmp_path / "replay.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "relais.analytics"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        generated = over_automation
        requests = [
            api.KpiRequest(window="day", **{"from": ts(generated.start)}, to=ts(generated.end)),
            api.KpiRequest(dimension="channel", **{"from": ts(generated.start)}, to=ts(generated.end)),
            api.KpiRequest(window="hour", **{"from": ts(generated.start)}, to=ts(generated.end)),
            api.KpiRequest(dimension="agent", **{"from": ts(generated.start)}, to=ts(generated.end)),
        ]
        live_channel, live = analytics_stub(stack.ports["analytics"])
        replay_channel, replay = analytics_stub(port)
        async with live_channel, replay_channel:
            expected = [await live.GetKpis(r) for r in requests]
            async with asyncio.timeout(90):
                while True:
                    try:
                        if await replay.GetKpis(requests[0]) == expected[0]:
                            break
                    except grpc.RpcError:
                        pass
                    await asyncio.sleep(0.5)
            assert expected[-1].rows  # the generator's agents: their contacts and suggestion answers
            for request, before in zip(requests, expected):
                assert await replay.GetKpis(request) == before
        fresh = await asyncpg.connect(dsn)
        try:  # the replayed store raises the same alerts (same ids, so consumers can drop the repeats)
            async with asyncio.timeout(30):
                while len(
                    raised := await fresh.fetch(
                        "SELECT alert_id FROM kpi_alerts WHERE window_start >= $1 AND window_start < $2",
                        generated.start,
                        generated.end,
                    )
                ) < len(generated.truth.alerts):
                    await asyncio.sleep(0.5)
            assert {r["alert_id"] for r in raised} == generated.truth.alerts
        finally:
            await fresh.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


async def accepted_with_suggestions(agent, offer) -> list:
    """Accepts the offer; its suggested replies, whether they came with the offer, the assignment or after."""
    accepted = await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
    for assist in (offer.assist, accepted.assignment.assist):
        if assist.suggestions:
            return list(assist.suggestions)
    return list((await agent.assist_for(offer.task_id)).suggestions)


async def test_the_agent_dimension_shows_who_transfers_and_who_ignores_the_suggestions(
    stack, producer, replies, db, agent_session
):
    """One conversation, two agents on the real desk: the first uses the suggestions and passes it on to billing, the
    second ignores them, answers and closes it resolved; the customer rates it 5."""
    run = uuid.uuid4().hex[:8]
    since = datetime.now(timezone.utc)
    conversation = f"coach-{run}"
    customer = {"id": f"cust-coach-{run}", "language": "en"}
    user_id, ignorer_id = f"coach-user-{run}", f"coach-ignorer-{run}"
    async with agent_session(user_id, languages=["en"]) as user:
        await send_message(
            producer, conversation, customer, "I want to talk to a person: my card payment was declined twice today"
        )
        offer = await user.offer_for(conversation)
        task = offer.task_id
        offered = await accepted_with_suggestions(user, offer)
        assert offered  # the premise: the assist suggests replies
        # the first used, a second one edited
        used = [(s.suggestion_id, use) for s, use in zip(offered, (ev.SUGGESTION_USE_USED, ev.SUGGESTION_USE_EDITED))]
        for suggestion_id, use in used:
            await user.stub.RecordSuggestionUse(
                desk.SuggestionUseRequest(task_id=task, suggestion_id=suggestion_id, use=use), metadata=user.auth
            )
        await user.stub.Reply(desk.ReplyRequest(task_id=task, text=offered[0].text), metadata=user.auth)
        async with agent_session(ignorer_id, languages=["en"]) as ignorer:
            await user.stub.Transfer(
                desk.TransferRequest(task_id=task, queue="billing", note="card dispute"), metadata=user.auth
            )
            again = await ignorer.offer_for(conversation)
            assert again.task_id == task  # not back to the one who passed it on
            ignored = await accepted_with_suggestions(ignorer, again)
            for suggestion in ignored:
                await ignorer.stub.RecordSuggestionUse(
                    desk.SuggestionUseRequest(
                        task_id=task, suggestion_id=suggestion.suggestion_id, use=ev.SUGGESTION_USE_IGNORED
                    ),
                    metadata=ignorer.auth,
                )
            await ignorer.stub.Reply(
                desk.ReplyRequest(task_id=task, text="I have reversed the second charge."), metadata=ignorer.auth
            )
            await ignorer.stub.Close(
                desk.CloseRequest(task_id=task, disposition="resolved", resolved=True), metadata=ignorer.auth
            )
    await reply_of_type(replies, conversation, cloudevents.REPLY_SURVEY)
    value, headers = cloudevents.contact_survey(conversation, 5)
    await bus.publish(producer, [bus.Record(topics.CONTACT_EVENTS, conversation.encode(), value, headers)])

    request = api.KpiRequest(dimension="agent", **{"from": ts(since)})
    channel, analytics = analytics_stub(stack.ports["analytics"])
    async with channel:

        async def rows() -> dict[str, api.Kpis]:
            reply = await analytics.GetKpis(request)
            return {r.dimension_value: r for r in reply.rows if r.dimension_value in (user_id, ignorer_id)}

        async with asyncio.timeout(30):
            while (
                len(found := await rows()) < 2
                or found[ignorer_id].human.csat_responses < 1
                or found[ignorer_id].agent.suggestions_answered < len(ignored)
                or found[user_id].agent.suggestions_answered < len(used)
            ):
                await asyncio.sleep(0.2)
        await settled(stack.bootstrap, groups=("intake", "routing", "analytics"))  # a duplicate would be stored by now
        found = await rows()
    # Each agent's part, as routing stamped it: acceptance to its transfer, acceptance after it to the close.
    steps = await db.fetch(
        "SELECT kind, agent_id, at FROM kpi_outcomes WHERE conversation_id = $1"
        " AND kind IN ('assigned', 'transferred', 'closed') ORDER BY at",
        conversation,
    )
    assert [(r["kind"], r["agent_id"]) for r in steps] == [
        ("assigned", user_id),
        ("transferred", user_id),
        ("assigned", ignorer_id),
        ("closed", ignorer_id),
    ]
    at = [r["at"] for r in steps]
    user, ignorer = found[user_id], found[ignorer_id]

    assert (user.contacts, user.agent.transfers, user.agent.transfer_rate) == (1, 1, 1.0)
    assert user.human.handling_seconds == pytest.approx((at[1] - at[0]).total_seconds())
    assert (user.human.resolved, user.fcr, user.human.csat_responses) == (0, 0.0, 0)  # passed on: not its to close
    assert (user.agent.suggestions_used, user.agent.suggestions_edited, user.agent.suggestions_ignored) == (
        1,
        len(used) - 1,
        0,
    )
    assert user.agent.suggestion_acceptance_rate == user.suggestion_acceptance == 1.0

    assert (ignorer.contacts, ignorer.agent.transfers, ignorer.agent.transfer_rate) == (1, 0, 0.0)
    assert ignorer.human.handling_seconds == pytest.approx((at[3] - at[2]).total_seconds())
    assert (ignorer.human.resolved, ignorer.fcr) == (1, 1.0)
    assert (ignorer.human.csat, ignorer.human.csat_mean, ignorer.human.csat_responses) == (1.0, 5.0, 1)
    assert (ignorer.agent.suggestions_answered, ignorer.agent.suggestions_ignored) == (len(ignored), len(ignored))
    assert ignorer.agent.suggestion_acceptance_rate == 0.0
