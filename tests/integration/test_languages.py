"""Languages we do not serve, on the real services: a Spanish or German message gets the catalogue's short
answer in its language and is handed to a person who speaks it; French and English go on as before."""

import asyncio

from relais.classifier.catalogue import load_catalogue
from relais.common import cloudevents
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.demo import send_message
from tests.integration.conftest import reply_of_type

CATALOGUE = load_catalogue()


async def _task_language(db, conversation_id: str, timeout: float = 20) -> str:
    async with asyncio.timeout(timeout):
        while (
            language := await db.fetchval("SELECT language FROM tasks WHERE conversation_id = $1", conversation_id)
        ) is None:
            await asyncio.sleep(0.1)
    return language


async def _handed_off_context(db, conversation_id: str) -> pb.ConversationContext:
    return pb.ConversationContext.FromString(
        await db.fetchval(
            "SELECT context FROM bot_conversations WHERE conversation_id = $1 AND handed_off", conversation_id
        )
    )


async def test_a_spanish_message_gets_the_spanish_answer_and_a_spanish_speaking_advisor(
    producer, replies, agent_session, conversation_id
):
    customer = {"id": "cust-es-001"}  # no declared language: detected
    async with agent_session(f"agent-es-{conversation_id}", languages=["es"]) as agent:
        await send_message(producer, conversation_id, customer, "Hola, ¿dónde está mi pedido CMD-123456?")
        handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
        assert handoff["data"]["language"] == "es"
        assert handoff["data"]["text"] == CATALOGUE.unsupported_language_reply("es")
        assert handoff["data"]["reason"] == "HANDOFF_REASON_LANGUAGE_NOT_SERVED"
        # The bot did not try to answer the order question in French or English.
        assert [r["type"] for r in replies.replies[conversation_id]][0] == cloudevents.REPLY_HANDOFF

        offer = await agent.offer_for(conversation_id)
        assert offer.context.language == "es" and offer.context.reason == pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED
        assert [(t.language, t.text) for t in offer.context.turns] == [
            ("es", "Hola, ¿dónde está mi pedido CMD-123456?")
        ]
        await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
        await agent.stub.Reply(
            desk.ReplyRequest(task_id=offer.task_id, text="Hola, lo miro ahora mismo."), metadata=agent.auth
        )
        agent_reply = await reply_of_type(replies, conversation_id, cloudevents.REPLY_AGENT)
        assert agent_reply["data"]["language"] == "es"
        await agent.stub.Close(
            desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=agent.auth
        )


async def test_a_german_message_gets_the_german_answer_and_a_german_hand_off(producer, replies, db, conversation_id):
    await send_message(producer, conversation_id, {"id": "cust-de-001"}, "Hallo, wo ist meine Bestellung CMD-654321?")
    handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
    assert (handoff["data"]["language"], handoff["data"]["text"]) == ("de", CATALOGUE.unsupported_language_reply("de"))
    assert await _task_language(db, conversation_id) == "de"
    context = await _handed_off_context(db, conversation_id)
    assert context.language == "de" and context.reason_detail == "language de not served"
    assert not [r for r in replies.replies[conversation_id] if r["type"] == cloudevents.REPLY_BOT]


async def test_a_language_without_a_short_answer_gets_english_and_french(producer, replies, db, conversation_id):
    await send_message(
        producer, conversation_id, {"id": "cust-pl-001", "language": "pl"}, "Dzień dobry, gdzie jest moje zamówienie?"
    )
    handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
    english, french = handoff["data"]["text"].splitlines()
    assert "advisor" in english and "conseiller" in french
    assert await _task_language(db, conversation_id) == "pl"  # an advisor who signed in with pl gets it


async def test_a_first_message_that_could_be_spanish_or_french_is_answered_in_french_and_english(
    producer, replies, conversation_id
):
    await send_message(producer, conversation_id, {"id": "cust-fr-001"}, "pedido CMD-123456")
    [reply] = await replies.wait_for(conversation_id, 1)
    assert reply["type"] == cloudevents.REPLY_BOT
    french, english = reply["data"]["text"].splitlines()
    assert french.startswith("Votre commande CMD-123456") and english.startswith("Your order CMD-123456")


async def test_french_and_english_are_still_answered_by_the_bot(producer, replies, conversation_id):
    french, english = f"{conversation_id}-fr", f"{conversation_id}-en"
    await send_message(producer, french, {"id": "cust-fr-001"}, "Bonjour, quels sont vos horaires d'ouverture ?")
    await send_message(producer, english, {"id": "cust-en-001"}, "Hi, where is my order CMD-654321?")
    [fr_reply] = await replies.wait_for(french, 1)
    [en_reply] = await replies.wait_for(english, 1)
    assert (fr_reply["type"], fr_reply["data"]["language"]) == (cloudevents.REPLY_BOT, "fr")
    assert "lundi 08:00–20:00" in fr_reply["data"]["text"] and "\n" not in fr_reply["data"]["text"]
    assert (en_reply["type"], en_reply["data"]["language"]) == (cloudevents.REPLY_BOT, "en")
    assert en_reply["data"]["text"].startswith("Your order CMD-654321 is")
    # A follow-up with no word of any language stays in the conversation's language.
    await send_message(producer, french, {"id": "cust-fr-001"}, "CMD-123456 ?")
    follow_up = (await replies.wait_for(french, 2))[1]
    assert (follow_up["type"], follow_up["data"]["language"]) == (cloudevents.REPLY_BOT, "fr")
    assert follow_up["data"]["text"].startswith("Votre commande CMD-123456") and "\n" not in follow_up["data"]["text"]
