"""Faults at speed (issue 13): about 1,000 turns/s offered for a bounded window, open loop, while each service in
turn is killed with SIGKILL and restarted at once. Afterwards every inbound event has exactly one outcome, in
order per conversation, with the same checks as the other fault tests (one task per hand-off, each conversation
counted once, nothing dead-lettered, no service died).

It runs on the fault tests' own stack (durable PostgreSQL) and reuses their stream, waits and checks. A pipeline
slower than the offered rate answers most of the stream after the window, from a backlog the kills hit too: the
window is short so that the drain stays within the test's time at today's ~200-250 turns/s.
"""

import asyncio
import signal
import time
from collections import deque

from relais.common import cloudevents, topics
from tests.integration import test_faults
from tests.integration.test_faults import CUSTOMER, Stream, check_exactly_one_outcome, record_figures, wait_outcomes

# The fault tests' fixtures: a module-scoped stack of this module's own (durable PostgreSQL), its producer and watcher.
fault_stack = test_faults.fault_stack
fault_io = test_faults.fault_io

RATE = 1000  # turns offered per second
WINDOW_SECONDS = 8
KILLED = ("intake", "classifier", "bot", "routing", "analytics")  # in this order, spread over the window
SECOND_TURN_AFTER = RATE  # events between a conversation's two turns (~1 s): both often wait in the same backlog
SOURCE = "urn:relais:faults-at-speed"


def conversations_for(events: int) -> int:
    """How many of Stream's conversations (shapes of 1, 1 and 2 turns, in turn) make about `events` inbound events."""
    return round(events * 3 / 4)


def serialise(stream: Stream, second_turn_after: int) -> list[tuple[bytes, bytes, list]]:
    """The stream's events as (key, value, headers), built before the window, in send order: conversations' first
    turns in turn, a second turn `second_turn_after` events after its first. Each turn's id goes into
    stream.turn_ids in that order, which is then the order its replies must follow."""
    events: list[tuple[bytes, bytes, list]] = []
    later: deque[tuple[int, str, str]] = deque()  # (due at this many events sent, conversation, text)

    def add(cid: str, text: str) -> None:
        event_id = f"{cid}/{len(stream.turn_ids[cid])}"
        value, headers = cloudevents.contact_message(
            cid, CUSTOMER["id"], text, language=CUSTOMER["language"], event_id=event_id, source=SOURCE
        )
        stream.turn_ids[cid].append(f"{SOURCE}#{event_id}")
        events.append((cid.encode(), value, headers))

    for cid, (texts, _) in stream.conversations.items():
        while later and later[0][0] <= len(events):
            add(*later.popleft()[1:])
        add(cid, texts[0])
        later.extend((len(events) + second_turn_after, cid, text) for text in texts[1:])
    for _, cid, text in later:
        add(cid, text)
    return events


async def offer(producer, events: list[tuple[bytes, bytes, list]], rate: float) -> float:
    """Sends the events at `rate` per second, open loop (never waiting for a reply); returns the seconds until the
    broker acknowledged the last one."""
    start = time.monotonic()
    acks = []
    sent = 0
    while sent < len(events):
        due = min(len(events), int((time.monotonic() - start) * rate) + 1)
        for key, value, headers in events[sent:due]:
            acks.append(await producer.send(topics.CONTACT_EVENTS, value, key=key, headers=headers))
        sent = due
        await asyncio.sleep(0.005)
    await asyncio.gather(*acks)
    return time.monotonic() - start


async def kill_and_restart(stack, service: str, after: float) -> dict:
    await asyncio.sleep(after)
    killed_at = time.monotonic()
    await asyncio.to_thread(stack.stop_service, service, signal.SIGKILL)
    await asyncio.to_thread(stack.start_service, service)
    await asyncio.to_thread(stack.wait_healthy, [service])
    return {"service": service, "killed_at_s": round(after, 1), "down_s": round(time.monotonic() - killed_at, 1)}


async def test_sigkill_each_service_at_1000_turns_per_s(fault_stack, fault_io):
    producer, watcher = fault_io
    stream = Stream("speed", conversations_for(RATE * WINDOW_SECONDS))
    events = serialise(stream, SECOND_TURN_AFTER)
    assert len(events) == stream.events

    started = time.monotonic()
    spacing = WINDOW_SECONDS / len(KILLED)
    kills = [
        asyncio.create_task(kill_and_restart(fault_stack, service, spacing * (i + 0.5)))
        for i, service in enumerate(KILLED)
    ]
    send_seconds = await offer(producer, events, RATE)
    sent_at = time.monotonic()
    restarts = await asyncio.gather(*kills)
    done_at = await wait_outcomes(watcher, stream, timeout=180, logs=fault_stack.state_dir / "logs")
    copies = await check_exactly_one_outcome(fault_stack, watcher, stream)
    record_figures(
        fault="sigkill each service in turn at speed",
        events=len(events),
        conversations=len(stream.conversations),
        offered_per_s=RATE,
        achieved_send_per_s=round(len(events) / send_seconds, 1),
        send_seconds=round(send_seconds, 1),
        drain_seconds=round(done_at - sent_at, 1),
        answered_per_s=round(len(events) / (done_at - started), 1),
        restarts=restarts,
        redelivered_reply_copies=copies,
    )
