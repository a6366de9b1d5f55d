"""Every service's /metrics on the session's stack: a few turns through the real processes move the series that SREs
alert on (docs/operations.md, "Metrics"). Values are compared before and after, as other tests share the stack."""

import asyncio
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families

from relais.common import bus, cloudevents, topics
from relais.common.pb import agent_desk_pb2 as desk
from relais.demo import send_message
from tests.integration.conftest import reply_of_type
from tests.integration.test_routing import context, hand_off

PROCESSES = ("intake", "classifier", "bot", "routing", "analytics", "lookup")


def url(stack, process: str) -> str:
    return stack.endpoints()[f"{process.upper()}_METRICS_URL"]


async def scrape(stack, process: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted labels (the OTel scope's left out): value}."""

    def get() -> str:
        with urllib.request.urlopen(url(stack, process), timeout=5) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain")
            return answer.read().decode()

    series: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(get)):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if not k.startswith("otel_scope")))
            series.setdefault(sample.name, {})[labels] = sample.value
    return series


def value(series, name: str, **labels) -> float:
    return series.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


async def until(stack, process: str, check, timeout: float = 15):
    """The scrape of `process` once `check(series)` holds (gauges are read about once a second)."""
    async with asyncio.timeout(timeout):
        while True:
            series = await scrape(stack, process)
            if check(series):
                return series
            await asyncio.sleep(0.2)


async def test_every_process_serves_the_series_and_a_few_turns_move_them(
    stack, producer, replies, agent_session, conversation_id
):
    processed = dict(service="intake", topic=topics.CONTACT_EVENTS)
    before = {process: await scrape(stack, process) for process in ("intake", "bot", "routing")}

    # A question the bot answers, a request for a person, and the same contact event delivered twice.
    customer = {"id": "cust-fr-001"}
    await send_message(producer, conversation_id, customer, "Bonjour, quels sont vos horaires d'ouverture ?")
    [answer] = await replies.wait_for(conversation_id, 1)
    assert answer["type"] == cloudevents.REPLY_BOT
    other = f"{conversation_id}-b"
    event_id = str(uuid.uuid4())
    for _ in range(2):
        await send_message(producer, other, customer, "je veux parler à un conseiller", event_id=event_id)
    assert (await reply_of_type(replies, other, cloudevents.REPLY_HANDOFF))["data"]["reason"].endswith(
        "CUSTOMER_REQUEST"
    )

    intake = await until(
        stack,
        "intake",
        lambda s: (
            value(s, "relais_records_processed_total", **processed, result="duplicate")
            > value(before["intake"], "relais_records_processed_total", **processed, result="duplicate")
        ),
    )
    ok_before = value(before["intake"], "relais_records_processed_total", **processed, result="ok")
    assert value(intake, "relais_records_processed_total", **processed, result="ok") >= ok_before + 2
    assert value(intake, "relais_batch_records_count", service="intake") > 0
    assert value(intake, "relais_handler_duration_seconds_count", service="intake") > 0
    lags = {dict(labels)["topic"] for labels in intake["relais_consumer_lag_records"]}
    assert topics.CONTACT_EVENTS in lags
    assert all(dict(labels)["group"] == "relais-intake" for labels in intake["relais_consumer_lag_records"])

    bot = await until(
        stack,
        "bot",
        lambda s: (
            value(s, "relais_handoffs_total", reason="customer_request")
            > value(before["bot"], "relais_handoffs_total", reason="customer_request")
        ),
    )
    assert value(bot, "relais_bot_answers_total", intent="opening_hours") > value(
        before["bot"], "relais_bot_answers_total", intent="opening_hours"
    )

    # Routing: a customer waiting in a language nobody speaks; a bad record dead-lettered; an agent signs in,
    # is offered a hand-off in its language and accepts it.
    language = f"x{uuid.uuid4().hex[:6]}"
    await hand_off(producer, context(f"{conversation_id}-q", language))
    routing = await until(
        stack, "routing", lambda s: value(s, "relais_queue_waiting_tasks", language=language, queue="") == 1
    )
    assert value(routing, "relais_queue_oldest_wait_seconds", language=language, queue="") >= 0
    await bus.publish(producer, [bus.Record(topics.HANDOFFS, b"metrics", b"\x08\x99garbage")])
    dead_before = value(before["routing"], "relais_dead_letters_total", service="routing")
    await until(stack, "routing", lambda s: value(s, "relais_dead_letters_total", service="routing") > dead_before)

    spoken = f"y{uuid.uuid4().hex[:6]}"
    async with agent_session(f"agent-{conversation_id}", languages=[spoken]) as agent:
        await until(stack, "routing", lambda s: value(s, "relais_agents", state="available") >= 1)
        await hand_off(producer, context(f"{conversation_id}-o", spoken))
        offer = await agent.offer_for(f"{conversation_id}-o")
        await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
        accepted_before = value(before["routing"], "relais_offers_total", result="accepted")
        await until(
            stack,
            "routing",
            lambda s: (
                value(s, "relais_offers_total", result="accepted") > accepted_before
                and value(s, "relais_agents", state="busy") >= 1
            ),
        )
        await agent.stub.Close(desk.CloseRequest(task_id=offer.task_id, disposition="resolved"), metadata=agent.auth)

    for process in PROCESSES:  # the standard process series, everywhere
        series = await scrape(stack, process)
        assert value(series, "process_cpu_seconds_total") > 0, process
        assert value(series, "process_resident_memory_bytes") > 0, process
        assert value(series, "process_open_fds") > 0, process
