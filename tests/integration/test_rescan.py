"""`relais redact --rescan` on the real database: rows an older version stored, redacted by the rules of the day
(international numbers, cards, e-mails caught; UK/US national numbers and the NIR not), are redacted again by the
current rules in every table that keeps customer text; what is not customer text stays; a dry run changes
nothing; a second run changes nothing."""

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone

from relais.common import cloudevents, topics
from relais.common.pb import conversation_pb2 as pb

# As an older version left them: the +44 number and the card were caught, these were not.
UK = "020 7946 0958"
US = "(415) 555-0132"
FR_MOBILE = "06 12 34 56 78"
NIR = "1 85 07 75 116 001 91"
OLD_TEXT = f"Call me on {UK} or {US}, NIR {NIR}, card [CARD], order CMD-123456 of 12/03/2026"
NEW_TEXT = "Call me on [PHONE] or [PHONE], NIR [NATIONAL_ID], card [CARD], order CMD-123456 of 12/03/2026"
NEAR_MISS = "Commande CMD-0612345678 du 12/03/2026 : 1 234,56 €, livrée au 75008, colis 6A12345678901"
BOT_REPLY = f"Our customer service answers on {FR_MOBILE}."  # the company's number, not the customer's: stays
RAW = [UK, US, NIR, "2079460958", "4155550132"]


def rescan_command(stack, *options: str) -> dict:
    env = os.environ | {"DATABASE_URL": stack.dsn}
    done = subprocess.run(
        [sys.executable, "-m", "relais.cli", "redact", "--rescan", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def context(conversation_id: str, texts: list[str]) -> pb.ConversationContext:
    ctx = pb.ConversationContext(conversation_id=conversation_id, language="en", reason_detail="asked for a person")
    for i, text in enumerate(texts):
        ctx.turns.append(
            pb.Turn(turn_id=f"old#{conversation_id}-{i}", conversation_id=conversation_id, seq=i + 1, text=text)
        )
    ctx.bot_attempts.append(
        pb.BotAttempt(turn_id=f"old#{conversation_id}-0", intent="order_status", reply_text=BOT_REPLY)
    )
    return ctx


async def seed(db, run: str) -> dict:
    """One conversation as an older version stored it, in every table that keeps customer text; returns its ids."""
    conv, task = f"rescan-{run}", f"task-rescan-{run}"
    turn_ids = [f"old#{conv}-{i}" for i in range(5)]
    texts = [OLD_TEXT, NEAR_MISS, f"{FR_MOBILE} please", "nir compact 185077511600191", "merci"]
    now = datetime.now(timezone.utc)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO conversations (conversation_id, customer_id, channel, language, callback_phone)"
            " VALUES ($1, 'cust-rescan', 'chat', 'en', '02079460958')",
            conv,
        )
        await conn.executemany(
            "INSERT INTO turns (turn_id, conversation_id, seq, language, text, sent_at) VALUES ($1, $2, $3, 'en', $4, $5)",
            [(t, conv, i + 1, text, now) for i, (t, text) in enumerate(zip(turn_ids, texts))],
        )
        await conn.execute(
            "INSERT INTO bot_conversations (conversation_id, context) VALUES ($1, $2)",
            conv,
            context(conv, texts).SerializeToString(),
        )
        await conn.execute(
            "INSERT INTO tasks (task_id, conversation_id, language, skill, status, context, note)"
            " VALUES ($1, $2, 'en', 'general', 'closed', $3, $4)",
            task,
            conv,
            context(conv, texts[:2]).SerializeToString(),
            f"customer prefers {US}",
        )
        await conn.executemany(
            "INSERT INTO task_events (task_id, kind, detail) VALUES ($1, $2, $3)",
            [
                (task, "transferred", f"to billing: customer prefers {US}"),
                (task, "customer_message", f"old#{conv}-0612345678"),
            ],
        )  # an id, not text: stays
        await conn.executemany(
            "INSERT INTO kpi_verbatims (turn_id, conversation_id, language, text, at) VALUES ($1, $2, 'en', $3, $4)",
            [(t, conv, text, now) for t, text in zip(turn_ids, texts)],
        )
        await conn.execute(
            "INSERT INTO kpi_outcomes (outcome_id, conversation_id, kind, survey_comment, at)"
            " VALUES ($1, $2, 'survey', $3, $4)",
            f"{conv}/survey",
            conv,
            f"Too slow. Call {UK}",
            now,
        )
        turn = pb.Turn(turn_id=turn_ids[0], conversation_id=conv, seq=1, text=OLD_TEXT)
        survey = pb.Outcome(outcome_id=f"{conv}/survey", conversation_id=conv, survey_comment=f"Too slow. Call {UK}")
        reply_value = cloudevents.reply(
            cloudevents.REPLY_BOT, "urn:relais:bot", f"{turn_ids[0]}/bot", conv, BOT_REPLY, "en"
        ).value
        records = [
            (topics.TURNS, turn.SerializeToString(), False),
            (topics.CLASSIFIED_TURNS, turn.SerializeToString(), True),
            (topics.HANDOFFS, pb.HandoffEvent(handoff=context(conv, texts[:1])).SerializeToString(), True),
            (topics.HANDOFFS, pb.HandoffEvent(customer_message=turn).SerializeToString(), False),
            (topics.OUTCOMES, survey.SerializeToString(), True),
            (topics.REPLIES, reply_value, True),
        ]
        await conn.executemany(
            "INSERT INTO outbox (consumer, event_key, seq, topic, key, value, headers, published)"
            " VALUES ('rescan-test', $1, $2, $3, $4, $5, '[]', $6)",
            [(conv, i, topic, conv.encode(), value, published) for i, (topic, value, published) in enumerate(records)],
        )
    return {"conv": conv, "task": task, "turn_ids": turn_ids}


async def stored(db, ids: dict) -> dict:
    """Every stored text of the seeded conversation, table by table."""
    conv, task = ids["conv"], ids["task"]

    def turn_texts(data: bytes) -> list[str]:
        return [t.text for t in pb.ConversationContext.FromString(data).turns]

    outbox = {}
    for r in await db.fetch(
        "SELECT seq, topic, value FROM outbox WHERE consumer = 'rescan-test' AND event_key = $1 ORDER BY seq", conv
    ):
        value = bytes(r["value"])
        if r["topic"] in (topics.TURNS, topics.CLASSIFIED_TURNS):
            outbox[r["seq"]] = [pb.Turn.FromString(value).text]
        elif r["topic"] == topics.HANDOFFS:
            event = pb.HandoffEvent.FromString(value)
            outbox[r["seq"]] = (
                [t.text for t in event.handoff.turns] if event.HasField("handoff") else [event.customer_message.text]
            )
        elif r["topic"] == topics.OUTCOMES:
            outbox[r["seq"]] = [pb.Outcome.FromString(value).survey_comment]
        else:
            outbox[r["seq"]] = [json.loads(value)["data"]["text"]]
    bot = pb.ConversationContext.FromString(
        await db.fetchval("SELECT context FROM bot_conversations WHERE conversation_id = $1", conv)
    )
    task_row = await db.fetchrow("SELECT context, note FROM tasks WHERE task_id = $1", task)
    return {
        "turns": [
            r["text"] for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 ORDER BY seq", conv)
        ],
        "bot_conversations": [t.text for t in bot.turns] + [a.reply_text for a in bot.bot_attempts],
        "tasks": turn_texts(task_row["context"]) + [task_row["note"]],
        "task_events": [
            r["detail"] for r in await db.fetch("SELECT detail FROM task_events WHERE task_id = $1 ORDER BY id", task)
        ],
        "kpi_verbatims": [
            r["text"]
            for r in await db.fetch("SELECT text FROM kpi_verbatims WHERE conversation_id = $1 ORDER BY turn_id", conv)
        ],
        "kpi_outcomes": [await db.fetchval("SELECT survey_comment FROM kpi_outcomes WHERE conversation_id = $1", conv)],
        "outbox": outbox,
        "conversations": [
            await db.fetchval("SELECT callback_phone FROM conversations WHERE conversation_id = $1", conv)
        ],
    }


async def test_rescan_applies_the_current_rules_to_every_stored_text_once(stack, db):
    run = uuid.uuid4().hex[:8]
    ids = await seed(db, run)
    before = await stored(db, ids)
    assert any(UK in t for t in before["turns"]) and any(NIR in t for t in before["kpi_verbatims"])  # the premise

    dry = rescan_command(stack, "--dry-run", "--batch-rows", "2")
    assert dry["dry_run"] is True and "GB" in dry["regions"]
    assert await stored(db, ids) == before  # a dry run changes nothing
    # The seeded rows that hold raw numbers: 3 turns and verbatims, the contexts, the task (note and context),
    # the transfer step, the survey comment, 5 outbox records (the bot's reply is not customer text).
    expected = {
        "turns": 3,
        "bot_conversations": 1,
        "tasks": 1,
        "task_events": 1,
        "kpi_verbatims": 3,
        "kpi_outcomes": 1,
        "outbox": 5,
    }
    assert all(dry[table] >= n for table, n in expected.items()), dry

    report = rescan_command(stack, "--batch-rows", "2")  # several batches per table, each committed
    assert report["dry_run"] is False
    assert {t: report[t] for t in expected} == {t: dry[t] for t in expected}, (dry, report)
    assert report["placeholders"]["phone"] >= 12 and report["placeholders"]["national_id"] >= 8

    after = await stored(db, ids)
    new_texts = [NEW_TEXT, NEAR_MISS, "[PHONE] please", "nir compact [NATIONAL_ID]", "merci"]
    assert after["turns"] == new_texts
    assert after["kpi_verbatims"] == new_texts
    assert after["bot_conversations"] == new_texts + [BOT_REPLY]  # the bot's own words stay
    assert after["tasks"] == new_texts[:2] + ["customer prefers [PHONE]"]
    assert after["task_events"] == ["to billing: customer prefers [PHONE]", f"old#{ids['conv']}-0612345678"]
    assert after["kpi_outcomes"] == ["Too slow. Call [PHONE]"]
    assert after["outbox"] == {
        0: [NEW_TEXT],
        1: [NEW_TEXT],
        2: [NEW_TEXT],
        3: [NEW_TEXT],
        4: ["Too slow. Call [PHONE]"],
        5: [BOT_REPLY],
    }
    assert after["conversations"] == ["02079460958"]  # the number to call back, kept on purpose
    # Nothing raw is left in the tables the rescan covers, for this conversation.
    flat = json.dumps({k: v for k, v in after.items() if k != "conversations"})
    assert not [r for r in RAW if r in flat.replace(BOT_REPLY, "")], flat

    again = rescan_command(stack)
    assert {t: again[t] for t in expected} == dict.fromkeys(expected, 0), again
    assert sum(again["placeholders"].values()) == 0
    assert await stored(db, ids) == after
