"""Personal data on the real pipeline: French and English messages with card numbers, IBANs, e-mail
addresses, phone numbers (international and UK/US/French national formats) and a French NIR go through intake, classifier, bot, routing and analytics, and no raw value
is left in any table, topic, log file or exported span; the bot still reads order numbers, and near-misses
(amounts, dates, order numbers) stay as written. Then retention: closed conversations lose their
transcripts, recent ones and ones with an open task keep them, and the KPIs do not move."""

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaConsumer, TopicPartition

from relais.common import bus, cloudevents, retention, topics
from relais.common.config import kafka_security
from relais.common.pb import analytics_pb2 as api, conversation_pb2 as pb
from relais.common.redact import luhn_valid, redact
from relais.demo import send_message
from tests.integration.conftest import reply_of_type, settled
from tests.integration.test_analytics import analytics_stub, ts

# ------------------------------------------------------------------------------ fresh personal data
# Values of this run only, so that finding one anywhere can only mean it leaked from these messages.

rng = random.Random()


def card_number() -> str:
    body = "4970" + "".join(rng.choice("0123456789") for _ in range(11))
    digits = body + next(d for d in "0123456789" if luhn_valid(body + d))
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def french_iban() -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(23))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "FR00")) % 97
    iban = f"FR{check:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def french_mobile() -> str:
    return "06 " + " ".join(f"{rng.randrange(10, 100)}" for _ in range(4))


def uk_mobile() -> str:
    return f"+44 7700 {rng.randrange(100000, 1000000)}"


def uk_national() -> str:
    return f"020 7946 0{rng.randrange(100, 1000)}"  # Ofcom's range for drama, valid in libphonenumber's plan


def us_national() -> str:
    return f"(415) 555-01{rng.randrange(10, 100)}"


def french_nir() -> str:
    """A social-security number (NIR) with its key, spaced as on the card."""
    body = (
        f"{rng.choice('12')}{rng.randrange(40, 100):02d}{rng.randrange(1, 13):02d}{rng.choice(['75', '69', '13'])}"
        f"{rng.randrange(1, 1000):03d}{rng.randrange(1, 1000):03d}"
    )
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example-{rng.randrange(1000, 10000)}.fr"


def needles(values: list[str]) -> list[str]:
    """Each raw value as written, and its digits or characters without separators."""
    found = set()
    for value in values:
        found.add(value)
        compact = value.replace(" ", "").replace("+", "")
        if len(compact) >= 10:
            found.add(compact)
    return sorted(found)


# ------------------------------------------------------------------------------------ where to look


async def text_columns(db) -> list[tuple[str, str, str]]:
    rows = await db.fetch(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        " AND c.data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb', 'ARRAY')"
        " ORDER BY 1, 2"
    )
    return [(r["table_name"], r["column_name"], r["data_type"]) for r in rows]


async def raw_values_in_database(db, raw: list[str]) -> list[str]:
    """`table.column: value` for every raw value found in any text or bytea column of any table."""
    leaks = []
    for table, column, data_type in await text_columns(db):
        if data_type == "bytea":
            found = await db.fetch(
                f'SELECT DISTINCT n FROM "{table}", unnest($1::bytea[]) AS n WHERE position(n IN "{column}") > 0',
                [r.encode() for r in raw],
            )
            leaks += [f"{table}.{column}: {r['n'].decode()}" for r in found]
        else:
            found = await db.fetch(
                f'SELECT DISTINCT n FROM "{table}", unnest($1::text[]) AS n WHERE strpos("{column}"::text, n) > 0', raw
            )
            leaks += [f"{table}.{column}: {r['n']}" for r in found]
    return leaks


async def topic_values(bootstrap: str, topic_names: list[str], keys: set[bytes]) -> list[bytes]:
    """Every record value of these conversations on these topics, from the beginning of the log."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_security(),
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topic_names for p in (consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values = []
        async with asyncio.timeout(30):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [r.value or b"" for r in records if r.key in keys]
        return values
    finally:
        await consumer.stop()


def raw_values_in_logs(stack, raw: list[str]) -> list[str]:
    leaks = []
    for path in sorted((stack.state_dir / "logs").glob("*.log")):
        text = path.read_text(errors="replace")
        leaks += [f"{path.name}: {r}" for r in raw if r in text]
    return leaks


def raw_values_in_spans(spans, raw: list[str]) -> list[str]:
    return [
        f"{s.service} {s.name}: {r}"
        for s in spans
        for r in raw
        if r in s.name or any(r in str(v) for v in s.attributes.values())
    ]


async def wait_until(predicate, timeout: float = 30, what: str = ""):
    async with asyncio.timeout(timeout):
        while not (result := await predicate()):
            await asyncio.sleep(0.2)
    return result


# ------------------------------------------------------------------------------------------ redaction


async def test_personal_data_is_redacted_everywhere_and_order_numbers_still_work(stack, producer, replies, db, otlp):
    card_fr, card_en = card_number(), card_number()
    iban_fr, iban_en = french_iban(), french_iban().replace(" ", "")
    mail_fr, mail_en = email("camille.durand"), email("john.smith")
    phone_fr, phone_en, phone_intl = french_mobile(), uk_mobile(), "+33 " + french_mobile()[1:]
    # National formats of the regions served and an identifier with its key (issue 12).
    phone_uk, phone_us, nir = uk_national(), us_national(), french_nir()
    raw = needles(
        [card_fr, card_en, iban_fr, iban_en, mail_fr, mail_en, phone_fr, phone_en, phone_intl, phone_uk, phone_us, nir]
    ) + [phone_us.replace("(", "").replace(") ", "").replace("-", "")]
    run = uuid.uuid4().hex[:8]
    fr_card, en_order, en_person, fr_order = (
        f"pd-{kind}-{run}" for kind in ("fr-card", "en-order", "en-person", "fr-order")
    )
    near_miss = (
        "Bonjour, le 12/03/2025 j'ai payé 1 234,56 € pour la commande CMD-123456, code postal 75011 : où en est-elle ?"
    )
    messages = {
        fr_card: (
            {"id": f"cust-{run}-1", "language": "fr"},
            f"J'ai perdu ma carte {card_fr}, bloquez-la ! Mon IBAN est {iban_fr}, écrivez-moi à {mail_fr} "
            f"ou appelez le {phone_fr}, mon numéro de sécu est {nir}",
        ),
        en_order: (
            {"id": "cust-en-001", "language": "en"},
            f"Where is my order CMD-654321? Reach me at {mail_en} or {phone_en} or {phone_uk}",
        ),
        en_person: (
            {"id": f"cust-{run}-2", "language": "en"},
            f"I want to talk to a real person about card {card_en}, IBAN {iban_en}, call {phone_intl} or {phone_us}",
        ),
        fr_order: ({"id": "cust-fr-001", "language": "fr"}, near_miss),
    }
    for text in [t for _, t in messages.values() if t != near_miss]:  # the test's own premise
        assert not [r for r in raw if r in redact(text)], redact(text)
    assert redact(near_miss) == near_miss

    for conversation, (customer, text) in messages.items():
        await send_message(producer, conversation, customer, text)
    order_en = await reply_of_type(replies, en_order, cloudevents.REPLY_BOT)
    order_fr = await reply_of_type(replies, fr_order, cloudevents.REPLY_BOT)
    assert "CMD-654321" in order_en["data"]["text"], order_en  # the order number reached the lookup
    assert "CMD-123456" in order_fr["data"]["text"], order_fr
    await reply_of_type(replies, en_person, cloudevents.REPLY_HANDOFF)
    first_fr = (await replies.wait_for(fr_card, 1))[0]
    await wait_until(
        lambda: db.fetchval("SELECT count(*) = 4 FROM kpi_verbatims WHERE conversation_id = ANY($1)", list(messages))
    )
    if first_fr["type"] == cloudevents.REPLY_HANDOFF:
        await wait_until(lambda: db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", fr_card))
    await wait_until(lambda: db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", en_person))

    # What was stored is the redacted text, placeholders in place; near-misses as written.
    turns = {
        r["conversation_id"]: r["text"]
        for r in await db.fetch(
            "SELECT conversation_id, text FROM turns WHERE conversation_id = ANY($1)", list(messages)
        )
    }
    assert turns[fr_card] == (
        "J'ai perdu ma carte [CARD], bloquez-la ! Mon IBAN est [IBAN], écrivez-moi à [EMAIL] "
        "ou appelez le [PHONE], mon numéro de sécu est [NATIONAL_ID]"
    )
    assert turns[en_order] == "Where is my order CMD-654321? Reach me at [EMAIL] or [PHONE] or [PHONE]"
    assert turns[en_person] == "I want to talk to a real person about card [CARD], IBAN [IBAN], call [PHONE] or [PHONE]"
    assert turns[fr_order] == near_miss
    contexts = [
        pb.ConversationContext.FromString(r["context"])
        for r in await db.fetch("SELECT context FROM tasks WHERE conversation_id = $1", en_person)
    ]
    assert contexts and contexts[0].turns[0].text == turns[en_person]
    assert (await db.fetchval("SELECT text FROM kpi_verbatims WHERE conversation_id = $1", fr_order)) == near_miss

    # The classifier read the redacted text: placeholders are not shouting, the intent survives.
    classified = {
        c: pb.ConversationContext.FromString(r).turns[0].classification
        for c, r in [
            (r["conversation_id"], r["context"])
            for r in await db.fetch(
                "SELECT conversation_id, context FROM bot_conversations WHERE conversation_id = ANY($1)", list(messages)
            )
        ]
    }
    assert classified[fr_card].intent == "lost_or_stolen_card", classified[fr_card]
    assert classified[en_order].intent == "order_status" and not classified[en_order].sentiment.anger

    # No raw value anywhere: tables, topics, logs, spans. Each search first proves it finds what is there.
    kept = await raw_values_in_database(db, ["CMD-654321"])
    assert {"turns.text: CMD-654321", "bot_conversations.context: CMD-654321"} <= set(kept), kept
    assert await raw_values_in_database(db, raw) == []
    values = await topic_values(
        stack.bootstrap,
        [topics.TURNS, topics.CLASSIFIED_TURNS, topics.HANDOFFS, topics.REPLIES, topics.OUTCOMES],
        {c.encode() for c in messages},
    )
    assert len(values) >= 4 * 2
    assert [r for r in raw for v in values if r.encode() in v] == []
    # Every service processed them (settled), and each one's spans of them reached the receiver.
    await settled(stack.bootstrap)
    services = {f"relais-{s}" for s in ("intake", "classifier", "bot", "analytics")}
    async with asyncio.timeout(20):
        while not services <= {
            s.service for s in otlp.snapshot() if s.attributes.get("relais.conversation_id") in messages
        }:
            await asyncio.sleep(0.1)
    spans = otlp.snapshot()
    assert any(s.attributes.get("relais.conversation_id") == fr_card for s in spans)
    assert raw_values_in_spans(spans, [fr_card]) and raw_values_in_spans(spans, raw) == []
    assert {"intake.log", "classifier.log", "bot.log", "routing.log", "analytics.log"} <= {
        p.name for p in (stack.state_dir / "logs").glob("*.log")
    }
    assert raw_values_in_logs(stack, ["serving on"])
    assert raw_values_in_logs(stack, raw) == []

    # A survey comment is redacted too; once more, nothing raw anywhere.
    value, headers = cloudevents.contact_survey(en_order, 2, comment=f"Too slow. Call me on {phone_en} or {phone_uk}")
    await bus.publish(producer, [bus.Record(topics.CONTACT_EVENTS, en_order.encode(), value, headers)])
    comment = await wait_until(
        lambda: db.fetchval(
            "SELECT survey_comment FROM kpi_outcomes WHERE conversation_id = $1 AND kind = 'survey'", en_order
        )
    )
    assert comment == "Too slow. Call me on [PHONE] or [PHONE]"
    assert await raw_values_in_database(db, raw) == []
    assert raw_values_in_logs(stack, raw) == []


# ------------------------------------------------------------------------------------------ retention

OLD = timedelta(days=100)  # older than the 90-day period purged below


async def age(db, conversation_id: str, by: timedelta) -> None:
    """Moves every timestamp of the conversation `by` into the past, in every service's tables."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE conversations SET created_at = created_at - $2::interval, updated_at = updated_at - $2::interval"
            " WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE turns SET received_at = received_at - $2::interval, sent_at = sent_at - $2::interval"
            " WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE bot_conversations SET updated_at = updated_at - $2::interval WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE tasks SET created_at = created_at - $2::interval, queued_at = queued_at - $2::interval, offered_at = offered_at - $2::interval,"
            " assigned_at = assigned_at - $2::interval, closed_at = closed_at - $2::interval, last_update_at = last_update_at - $2::interval"
            " WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE kpi_verbatims SET stored_at = stored_at - $2::interval WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE kpi_outcomes SET stored_at = stored_at - $2::interval WHERE conversation_id = $1",
            conversation_id,
            by,
        )
        await conn.execute(
            "UPDATE outbox SET created_at = created_at - $2::interval WHERE key = $1", conversation_id.encode(), by
        )


async def transcript(db, conversation_id: str) -> dict:
    """What is left of the conversation's transcript in each table."""

    def texts(rows):
        return [t.text for r in rows for t in pb.ConversationContext.FromString(r["context"]).turns if t.text]

    return {
        "turns": [
            r["text"]
            for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 AND text <> ''", conversation_id)
        ],
        "bot": texts(
            await db.fetch("SELECT context FROM bot_conversations WHERE conversation_id = $1", conversation_id)
        ),
        "tasks": texts(await db.fetch("SELECT context FROM tasks WHERE conversation_id = $1", conversation_id)),
        "verbatims": [
            r["text"]
            for r in await db.fetch("SELECT text FROM kpi_verbatims WHERE conversation_id = $1", conversation_id)
        ],
    }


async def kpis(stack, start: datetime, end: datetime) -> list:
    channel, stub = analytics_stub(stack.ports["analytics"])
    async with channel:
        requests = [
            api.KpiRequest(**{"from": ts(start)}, to=ts(end)),
            api.KpiRequest(window="hour", dimension="intent", **{"from": ts(start)}, to=ts(end)),
            api.KpiRequest(dimension="language", **{"from": ts(start)}, to=ts(end)),
        ]
        return [await stub.GetKpis(r) for r in requests]


def purge_command(stack, *options: str) -> dict:
    env = os.environ | {"DATABASE_URL": stack.dsn}
    out = subprocess.run(
        [sys.executable, "-m", "relais.cli", "purge", *options],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


async def test_retention_purges_closed_conversations_only_and_keeps_the_kpis(stack, producer, replies, db):
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    run = uuid.uuid4().hex[:8]
    bot_done, abandoned, waiting, recent = (f"ret-{kind}-{run}" for kind in ("bot", "abandoned", "waiting", "recent"))
    await send_message(
        producer,
        bot_done,
        {"id": "cust-fr-001", "language": "fr"},
        "Où en est ma commande CMD-123456 ? Mon mail : lea@example.fr",
    )
    await send_message(producer, recent, {"id": "cust-en-001", "language": "en"}, "Where is my order CMD-654321?")
    for conversation in (abandoned, waiting):
        await send_message(
            producer,
            conversation,
            {"id": f"cust-{conversation}", "language": "fr"},
            "Je veux parler à un conseiller, appelez-moi au 06 11 22 33 44",
        )
    await reply_of_type(replies, bot_done, cloudevents.REPLY_BOT)
    await reply_of_type(replies, recent, cloudevents.REPLY_BOT)
    for conversation in (abandoned, waiting):
        await reply_of_type(replies, conversation, cloudevents.REPLY_HANDOFF)
        await wait_until(lambda c=conversation: db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1", c))
    await send_message(producer, abandoned, {"id": f"cust-{abandoned}", "language": "fr"}, "STOP")
    await wait_until(
        lambda: db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1 AND status = 'abandoned'", abandoned)
    )
    ids = [bot_done, abandoned, waiting, recent]
    # Everything has settled: 5 verbatims, the abandonment's outcome.
    await wait_until(lambda: db.fetchval("SELECT count(*) = 5 FROM kpi_verbatims WHERE conversation_id = ANY($1)", ids))
    await wait_until(
        lambda: db.fetchval(
            "SELECT count(*) FROM kpi_outcomes WHERE conversation_id = $1 AND kind = 'closed'", abandoned
        )
    )
    await settled(stack.bootstrap)
    before = {c: await transcript(db, c) for c in ids}
    assert all(before[c]["turns"] and before[c]["bot"] and before[c]["verbatims"] for c in ids), before
    assert before[abandoned]["tasks"] and before[waiting]["tasks"]
    end = datetime.now(timezone.utc) + timedelta(minutes=5)
    kpis_before = await kpis(stack, start, end)

    for conversation in (bot_done, abandoned, waiting):
        await age(db, conversation, OLD)
    assert await db.fetchval("SELECT status FROM tasks WHERE conversation_id = $1", waiting) == "queued"

    # A dry run counts and changes nothing; the purge then does what it counted.
    dry = purge_command(stack, "--days", "90", "--dry-run")
    assert dry["dry_run"] and dry["closed_conversations"] >= 2
    assert {c: await transcript(db, c) for c in ids} == before
    counts = await retention.purge(db, datetime.now(timezone.utc) - timedelta(days=90))
    assert {k: v for k, v in counts.items()} == {k: v for k, v in dry.items() if k in counts}
    assert counts["closed_conversations"] >= 2 and counts["turns"] >= 3 and counts["bot_conversations"] >= 2
    assert counts["tasks"] >= 1 and counts["kpi_verbatims"] >= 3

    after = {c: await transcript(db, c) for c in ids}
    empty: dict[str, list] = {"turns": [], "bot": [], "tasks": [], "verbatims": []}
    assert after[bot_done] == empty and after[abandoned] == empty  # closed: transcripts gone
    assert after[waiting] == before[waiting]  # an open task: kept, however old
    assert after[recent] == before[recent]  # recent: kept
    # The rows themselves stay (order, timestamps, intents), only the text went.
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = ANY($1)", [bot_done, abandoned]) == 3
    context = pb.ConversationContext.FromString(
        await db.fetchval("SELECT context FROM bot_conversations WHERE conversation_id = $1", bot_done)
    )
    assert context.turns[0].classification.intent == "order_status" and not context.turns[0].text
    assert not context.bot_attempts or not context.bot_attempts[0].reply_text
    assert counts["outbox"] >= 2  # the turns, replies and outcomes published long ago
    assert (
        await db.fetchval("SELECT count(*) FROM outbox WHERE key = ANY($1)", [bot_done.encode(), abandoned.encode()])
        == 0
    )
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", waiting.encode()) > 0

    assert await kpis(stack, start, end) == kpis_before  # KPIs come from kpi_outcomes, which kept its facts

    # Purged once: a second purge has nothing left to do.
    again = await retention.purge(db, datetime.now(timezone.utc) - timedelta(days=90))
    assert again["closed_conversations"] == 0 and sum(again.values()) == 0

    await send_message(producer, waiting, {"id": f"cust-{waiting}", "language": "fr"}, "STOP")  # leave no open task
    await wait_until(
        lambda: db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = $1 AND status = 'abandoned'", waiting)
    )
