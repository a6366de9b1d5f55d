"""The supervisor's report tells the truth, on the real broker and database: it shows the alerts analytics
raised (ListAlerts, from what analytics stored when raising them) and none for a day still going; irritants
count contacts, not messages, leave out queue commands and requests for a person (the classifier's flag,
stored with each verbatim), and never come without a label."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

from bench import traffic
from relais.classifier.catalogue import HUMAN_INTENT
from relais.classifier.sentiment import asks_for_human
from relais.common import bus, topics
from relais.common.pb import analytics_pb2 as api, conversation_pb2 as pb
from relais.demo import send_message
from tests.integration.test_analytics import analytics_stub, ingest, ts
from tests.unit.analytics.test_irritants import corpus, phrasings

# Days of their own, away from test_analytics' (2001-2010) and from the traffic of now.
_BASE = datetime(1990, 1, 1, tzinfo=timezone.utc) + timedelta(days=40 * secrets.randbelow(80))


def report(stack, *args: str, tmp_path) -> dict:
    """`relais report` of the running stack with `args`: the data embedded in the HTML it wrote."""
    out = tmp_path / f"report-{uuid.uuid4().hex[:6]}.html"
    env = os.environ | stack.endpoints() | {"ANALYTICS_GRPC_ADDR": f"127.0.0.1:{stack.ports['analytics']}"}
    done = subprocess.run(
        [sys.executable, "-m", "relais.cli", "report", "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text().split('id="report-data">', 1)[1].split("</script>", 1)[0])


def waited_handoff(conversation_id: str, start: datetime, wait: float) -> list[bus.Record]:
    """A hand-off answered after `wait` seconds, then closed: outside a 20 s service level when wait > 20."""
    story = traffic.Story(
        conversation_id,
        f"cust-{conversation_id}",
        "order_status",
        "fr",
        pb.CHANNEL_CHAT,
        start,
        "human",
        bot_turns=1,
        reason="HANDOFF_REASON_CUSTOMER_REQUEST",
        answered=True,
        resolved=True,
        wait=wait,
        handle=30,
    )
    return traffic.story_records(story)


async def test_the_report_shows_the_alerts_analytics_raised_and_none_for_a_day_still_going(
    stack, producer, db, tmp_path
):
    # A complete past day whose service level is far under target: analytics raises its alert.
    past = traffic.generate([traffic.Day(waits=(40, 60, 90, 25, 30, 50, 70))], start=_BASE, seed=3)
    (raised_id,) = past.truth.alerts
    assert raised_id == f"service_level/{_BASE.isoformat()}"
    await ingest(stack, producer, db, past)
    # Today, still going: 60 hand-offs answered after 2 minutes each, so today's service level is under target too.
    now = datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = max(today + timedelta(seconds=1), now - timedelta(minutes=30))
    ids = [f"slow-{uuid.uuid4().hex[:10]}" for _ in range(60)]
    records = [r for i, cid in enumerate(ids) for r in waited_handoff(cid, first + timedelta(seconds=5 * i), 120)]
    await bus.publish(producer, records)
    async with asyncio.timeout(60):
        while await db.fetchval("SELECT count(*) FROM kpi_outcomes WHERE conversation_id = ANY($1)", ids) < len(
            records
        ):
            await asyncio.sleep(0.2)
        while not await db.fetchval("SELECT 1 FROM kpi_alerts WHERE alert_id = $1", raised_id):
            await asyncio.sleep(0.2)
    stored = await db.fetchrow("SELECT * FROM kpi_alerts WHERE alert_id = $1", raised_id)

    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        listed = await stub.ListAlerts(api.AlertsRequest(**{"from": ts(_BASE)}, to=ts(_BASE + timedelta(days=1))))
        still_going = await stub.ListAlerts(api.AlertsRequest(**{"from": ts(today)}))
        live = await stub.GetKpis(api.KpiRequest(window="day", **{"from": ts(today)}, to=ts(now)))
    assert [(a.alert_id, a.kind, a.window_start, a.detail) for a in listed.alerts] == [
        (raised_id, "service_level", _BASE.isoformat(), stored["detail"])
    ]
    assert listed.window == "day" and listed.alerts[0].raised_at.ToDatetime(tzinfo=timezone.utc) == stored["raised_at"]
    assert list(still_going.alerts) == []
    # The premise: computed on the fly, today's figures would "alert" (the report used to show this one).
    (today_row,) = live.rows
    assert today_row.answered + today_row.abandoned >= 10 and today_row.service_level < 0.8

    data = await asyncio.to_thread(
        report, stack, "--to", (_BASE + timedelta(days=1)).isoformat(), "--days", "1", tmp_path=tmp_path
    )
    assert [(a["kind"], a["window_start"], a["detail"]) for a in data["alerts"]] == [
        ("service_level", _BASE.isoformat(), stored["detail"])
    ]
    assert data["alert_window"] == "day"
    data = await asyncio.to_thread(report, stack, "--days", "2", tmp_path=tmp_path)
    assert today.isoformat() in [s["window_start"] for s in data["series"]]
    assert not [a for a in data["alerts"] if a["window_start"] == today.isoformat()], data["alerts"]


def customer_turn(
    conversation_id: str, seq: int, text: str, at: datetime, *, human: bool = False, intent: str = ""
) -> bus.Record:
    """A classified customer message, negative (so its contact's verbatims are read), as the classifier sends it."""
    turn = pb.Turn(
        turn_id=f"truth#{uuid.uuid4()}",
        conversation_id=conversation_id,
        seq=seq,
        text=text,
        language="fr",
        classification=pb.Classification(
            intent=intent, asks_for_human=human, sentiment=pb.Sentiment(score=-0.6, anger=True)
        ),
    )
    turn.sent_at.FromDatetime(at)
    return bus.Record(topics.CLASSIFIED_TURNS, conversation_id.encode(), turn.SerializeToString(), [])


COMMANDS = ["STOP", "stop", "ANNULER", "CALLBACK", "RAPPEL", "quit"]
HUMAN_REQUESTS = [
    "je veux parler à un conseiller",
    "Je veux parler à un conseiller svp",
    "I want to talk to a human",
    "je veux parler à un conseiller !",
    "can I speak to an agent please",
    "un conseiller svp",
]
TYPOS = [
    "remboursment svp",
    "rembourssement !!",
    "remboursemnt??",
    "rembousement",
    "remboursemen",
    "rembourseement",
    "rembourcement",
]


async def test_irritants_count_contacts_and_leave_out_queue_commands_and_requests_for_a_person(stack, producer, db):
    end = _BASE + timedelta(days=20)
    at = iter(end - timedelta(days=6) + timedelta(minutes=i) for i in range(10_000))
    texts, _ = corpus({"delivery": 22, "card": 21}, seed=21)
    records = [customer_turn(f"one-{uuid.uuid4().hex[:10]}", 1, text, next(at)) for text in texts + TYPOS]
    marathon = f"marathon-{uuid.uuid4().hex[:8]}"  # one customer, 50 messages about the same late parcel
    records += [
        customer_turn(marathon, i + 1, phrasings("delivery", "en")[i] + f" (message {i})", next(at)) for i in range(50)
    ]
    records += [customer_turn(f"cmd-{uuid.uuid4().hex[:10]}", 1, text, next(at)) for text in COMMANDS * 2]
    assert all(asks_for_human(text) for text in HUMAN_REQUESTS)  # what the classifier flags
    records += [
        customer_turn(
            f"human-{uuid.uuid4().hex[:10]}",
            1,
            text,
            next(at),
            human=i % 3 > 0,
            intent=HUMAN_INTENT if i % 3 < 2 else "",
        )  # i % 3 == 0: stored before the flag was
        for i, text in enumerate(HUMAN_REQUESTS * 2)
    ]
    await bus.publish(producer, records)
    async with asyncio.timeout(60):
        while await db.fetchval(
            "SELECT count(*) FROM kpi_verbatims WHERE at >= $1 AND at < $2", end - timedelta(days=7), end
        ) < len(records):
            await asyncio.sleep(0.2)
    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        found = await stub.GetIrritants(api.IrritantsRequest(to=ts(end)))
    # The store reads every negative verbatim but the requests for a person; irritants drop the queue commands.
    assert (found.verbatims, found.contacts) == (len(texts) + len(TYPOS) + 50 + 12, len(texts) + len(TYPOS) + 1 + 12)
    topics_found = [(i.label, i.size, list(i.examples)) for i in found.irritants]
    assert sum(i.size for i in found.irritants) <= len(texts) + len(TYPOS) + 1, topics_found
    assert max(i.size for i in found.irritants) <= 23, topics_found  # not 50 messages of one contact
    holding = [i for i in found.irritants if any("(message " in e for e in i.examples)]
    assert len(holding) == 1 and sum("(message " in e for e in holding[0].examples) == 1, topics_found
    mechanics = set(COMMANDS) | set(HUMAN_REQUESTS)
    for irritant in found.irritants:
        assert irritant.label.strip(" ·") and irritant.label != "?", topics_found
        assert not mechanics & set(irritant.examples), topics_found
        assert not {"stop", "annuler", "callback", "rappel", "quit", "conseiller", "human", "agent"} & set(
            irritant.terms
        )
    # The misspellings share no word (each is below the vocabulary's minimum count): labelled by a verbatim.
    typo_topic = [i for i in found.irritants if set(i.examples) <= set(TYPOS)]
    assert typo_topic and typo_topic[0].label in TYPOS and not typo_topic[0].terms, topics_found


async def test_the_classifiers_request_for_a_person_is_stored_with_the_verbatim(stack, producer, db):
    asking, other = f"ask-{uuid.uuid4().hex[:10]}", f"other-{uuid.uuid4().hex[:10]}"
    await send_message(producer, asking, {"id": "cust-truth-1", "language": "fr"}, "Je veux parler à un conseiller.")
    await send_message(producer, other, {"id": "cust-truth-2", "language": "fr"}, "Mon colis n'est jamais arrivé !")
    async with asyncio.timeout(30):
        while (
            len(
                rows := await db.fetch(
                    "SELECT conversation_id, asks_for_human FROM kpi_verbatims WHERE conversation_id = ANY($1)",
                    [asking, other],
                )
            )
            < 2
        ):
            await asyncio.sleep(0.2)
    assert {r["conversation_id"]: r["asks_for_human"] for r in rows} == {asking: True, other: False}
