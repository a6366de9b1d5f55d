"""SIGTERM to any service mid-stream loses nothing and duplicates nothing."""

import asyncio
import signal
import uuid

import pytest

from relais.common import cloudevents
from relais.demo import send_message
from tests.integration.conftest import settled

SIMPLE = "What are your opening hours?"
ADVISOR = "I want to speak to an advisor please"
EXPECTED = {
    SIMPLE: [cloudevents.REPLY_BOT],
    ADVISOR: [cloudevents.REPLY_HANDOFF, cloudevents.REPLY_QUEUE],  # no agent signed in: queued
}


@pytest.mark.parametrize("service", ["intake", "classifier", "bot", "routing", "analytics"])
async def test_sigterm_mid_stream_loses_and_duplicates_nothing(service, stack, producer, replies, db):
    run = uuid.uuid4().hex[:8]
    conversations = {f"sigterm-{service}-{run}-{i}": (SIMPLE if i % 2 else ADVISOR) for i in range(60)}

    async def send_all():
        for cid, text in conversations.items():
            await send_message(producer, cid, {"id": "cust-en-001", "language": "en"}, text)
            await asyncio.sleep(0.01)

    sender = asyncio.create_task(send_all())
    await asyncio.sleep(0.25)
    code = await asyncio.to_thread(stack.stop_service, service, signal.SIGTERM)
    assert code == 0, f"{service} did not stop cleanly on SIGTERM:\n{stack.log_tail(service)}"
    await sender
    await asyncio.to_thread(stack.start_service, service)
    await asyncio.to_thread(stack.wait_healthy, [service])

    for cid, text in conversations.items():
        await replies.wait_for(cid, len(EXPECTED[text]), timeout=60)
    await settled(stack.bootstrap, replies)  # a duplicate would be in by now
    for cid, text in conversations.items():
        assert [r["type"] for r in replies.replies[cid]] == EXPECTED[text], cid
        assert len({r["id"] for r in replies.replies[cid]}) == len(EXPECTED[text])

    ids = list(conversations)
    assert await db.fetchval("SELECT count(*) FROM turns WHERE conversation_id = ANY($1)", ids) == 60
    assert await db.fetchval("SELECT count(*) FROM tasks WHERE conversation_id = ANY($1)", ids) == 30
    async with asyncio.timeout(20):
        while await db.fetchval("SELECT count(*) FROM kpi_contacts WHERE conversation_id = ANY($1)", ids) < 60:
            await asyncio.sleep(0.2)
    counts = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE bot_answered) AS bot, count(*) FILTER (WHERE handed_off) AS handed_off"
        " FROM kpi_contacts WHERE conversation_id = ANY($1)",
        ids,
    )
    assert (counts["bot"], counts["handed_off"]) == (30, 30)
    # Leave no queue behind: later tests sign agents in and would be offered these first.
    await db.execute("UPDATE tasks SET status = 'closed', closed_at = now() WHERE conversation_id = ANY($1)", ids)
