"""Issue 16 on the real stack: a customer who may leave us is handed to an advisor with the retention skill, a message
with two requests is handed off with its own reason."""

import asyncio

from relais.common import cloudevents
from relais.common.pb import conversation_pb2 as pb
from relais.demo import send_message
from tests.integration.conftest import reply_of_type

CHURN_FR = (
    "Je suis client depuis 12 ans et je pense sérieusement à partir chez un concurrent, "
    "qu'est-ce que vous pouvez faire pour moi ?"
)
EVERYTHING_BUT_RETENTION = {s: 5 for s in ("general", "orders", "billing", "cards", "accounts", "complaints")}


async def _task(db, conversation_id: str, timeout: float = 15):
    async with asyncio.timeout(timeout):
        while (
            task := await db.fetchrow(
                "SELECT * FROM tasks WHERE conversation_id = $1 AND agent_id IS NOT NULL", conversation_id
            )
        ) is None:
            await asyncio.sleep(0.1)
    return task


async def test_a_customer_thinking_of_leaving_goes_to_a_retention_advisor(
    producer, replies, db, agent_session, conversation_id
):
    async with (
        agent_session(f"generalist-{conversation_id}", languages=["fr"], levels=EVERYTHING_BUT_RETENTION),
        agent_session(f"keeper-{conversation_id}", languages=["fr"], levels={"retention": 2}) as keeper,
    ):
        await send_message(producer, conversation_id, {"id": "cust-fr-churn", "language": "fr"}, CHURN_FR)
        handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
        assert handoff["data"]["reason"] == "HANDOFF_REASON_CHURN_RISK"
        offer = await keeper.offer_for(conversation_id)
        assert offer.context.reason == pb.HANDOFF_REASON_CHURN_RISK
        assert offer.context.turns[-1].classification.churn_risk
        task = await _task(db, conversation_id)
        assert (task["agent_id"], task["required"]) == (keeper.agent_id, '{"retention": 2}')


async def test_two_requests_in_one_message_are_handed_off_with_their_reason(producer, replies, conversation_id):
    await send_message(
        producer,
        conversation_id,
        {"id": "cust-en-two", "language": "en"},
        "What's the balance on my current account? And also I'd like to change my postal address",
    )
    handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
    assert "HANDOFF_REASON_MULTIPLE_REQUESTS" in handoff["data"]["reasons"], handoff["data"]
