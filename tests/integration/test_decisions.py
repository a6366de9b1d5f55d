"""The classifier's artifact and the bot/human decisions, through the real services."""

import subprocess
import sys

import yaml

from infra.ports import free_port
from infra.stack import ROOT
from relais.classifier import artifact
from relais.classifier.catalogue import DEFAULT_CATALOGUE_PATH, load_catalogue
from relais.common import cloudevents
from relais.common.pb import conversation_pb2 as pb
from relais.demo import send_message
from tests.integration.conftest import reply_of_type


def test_the_classifier_refuses_a_model_trained_on_another_catalogue(stack, tmp_path):
    doc = yaml.safe_load(DEFAULT_CATALOGUE_PATH.read_text())
    doc["version"] = "another-version"
    other = tmp_path / "catalogue.yaml"
    other.write_text(yaml.safe_dump(doc, allow_unicode=True))
    artifact.train(load_catalogue(other), tmp_path / "other.pkl")

    env = stack.service_env("classifier") | {
        "RELAIS_INTENT_MODEL": str(tmp_path / "other.pkl"),
        "CLASSIFIER_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "relais.classifier"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "trained on catalogue 'another-version'" in done.stderr and "relais intents train" in done.stderr


async def test_the_hand_off_reasons_reach_routing(producer, replies, agent_session, conversation_id):
    catalogue = load_catalogue()
    async with agent_session(f"agent-{conversation_id}", languages=["en"]) as agent:
        await send_message(
            producer,
            conversation_id,
            {"id": "cust-en-001", "language": "en", "tier": "vip"},
            "I want to talk to a real person about a payment of 450 € I never made, this is unacceptable!!!",
        )
        handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
        assert handoff["data"]["reason"] == "HANDOFF_REASON_CUSTOMER_REQUEST"
        assert "HANDOFF_REASON_ANGER" in handoff["data"]["reasons"]
        offer = await agent.offer_for(conversation_id)
        context = offer.context
        assert context.reason == pb.HANDOFF_REASON_CUSTOMER_REQUEST
        assert pb.HANDOFF_REASON_ANGER in context.reasons
        assert context.turns[0].classification.amount == 450
        assert context.intent == "speak_to_advisor" and "asked for a person" in context.reason_detail
        assert context.priority == catalogue.intents["speak_to_advisor"].priority


async def test_a_faq_intent_is_answered_from_the_catalogue(producer, replies, conversation_id):
    catalogue = load_catalogue()
    faq = next(i for i in catalogue.intents.values() if i.bot_allowed and i.answer)
    assert faq.answer is not None
    await send_message(producer, conversation_id, {"id": "cust-fr-001", "language": "fr"}, faq.examples["fr"][0])
    reply = await reply_of_type(replies, conversation_id, cloudevents.REPLY_BOT)
    assert reply["data"]["text"] == faq.answer["fr"] and reply["data"]["intent"] == faq.id
