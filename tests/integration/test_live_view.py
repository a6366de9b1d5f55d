"""The supervisors' live view on the real stack: routing's LiveView API and `relais top --json`.

The test speaks its own made-up language, so the queue it reads is its own whatever other tests left waiting."""

import asyncio
import json
import sys
import uuid

import grpc
import pytest

from relais.common.pb import agent_desk_pb2 as desk, live_pb2 as live_pb, live_pb2_grpc as live_grpc
from tests.integration.conftest import SERVICE_TOKEN, service_channel
from tests.integration.test_routing import context, hand_off


@pytest.fixture
def language():
    return f"x{uuid.uuid4().hex[:6]}"


class Watcher:
    """A Watch stream read in the background; `until` waits for a snapshot that satisfies a condition."""

    def __init__(self, stub: live_grpc.LiveViewStub):
        self.call = stub.Watch(live_pb.WatchRequest())
        self.latest: live_pb.LiveSnapshot | None = None
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for snapshot in self.call:
            self.latest = snapshot
            self.changed.set()

    async def until(self, holds, timeout: float = 15) -> live_pb.LiveSnapshot:
        async with asyncio.timeout(timeout):
            while True:
                if self.latest is not None and holds(self.latest):
                    return self.latest
                self.changed.clear()
                await self.changed.wait()

    def stop(self):
        self.reader.cancel()
        self.call.cancel()


def queue(snapshot: live_pb.LiveSnapshot, language: str, name: str = "") -> live_pb.QueueLive | None:
    return next((q for q in snapshot.queues if q.language == language and q.queue == name), None)


async def relais_top_json(stack, tmp_path) -> dict:
    endpoints = tmp_path / "endpoints.env"
    endpoints.write_text(
        f"ROUTING_GRPC_ADDR=127.0.0.1:{stack.ports['routing']}\nRELAIS_SERVICE_TOKEN={SERVICE_TOKEN}\n"
        "ROUTING_STANDBY_GRPC_ADDR=\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relais.cli",
        "top",
        "--json",
        "--endpoints",
        str(endpoints),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_waiting_customer_agents_and_acceptance_show_on_the_live_view_and_relais_top(
    stack, producer, agent_session, language, conversation_id, tmp_path
):
    addr = f"127.0.0.1:{stack.ports['routing']}"
    async with grpc.aio.insecure_channel(addr) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await live_grpc.LiveViewStub(anonymous).GetSnapshot(live_pb.WatchRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    async with service_channel(addr) as channel:
        watcher = Watcher(live_grpc.LiveViewStub(channel))
        try:
            first = await watcher.until(lambda s: True, timeout=10)  # at once on subscribe
            assert set(first.agents_by_state) >= {"available", "busy", "wrap_up", "break", "offline"}
            assert queue(first, language) is None

            # A customer asks for a person; nobody speaks the language yet.
            await hand_off(
                producer, context(conversation_id, language, intent="speak_to_advisor", text="un conseiller")
            )
            waiting = await watcher.until(lambda s: (q := queue(s, language)) is not None and q.oldest_wait_seconds > 0)
            mine = queue(waiting, language)
            assert mine is not None
            assert (mine.waiting, mine.offered_15m, mine.accepted_15m) == (1, 1, 0)
            assert not mine.HasField("expected_wait_seconds")  # no agent of the language: no estimate
            assert waiting.handoffs_15m >= 1

            shown = await relais_top_json(stack, tmp_path)
            (row,) = [q for q in shown["queues"] if q["language"] == language]
            assert row["waiting"] == 1 and row["oldest_wait_seconds"] > 0 and row["expected_wait_seconds"] is None
            assert set(shown["agents"]) >= {"available", "busy", "offline"} and "service_level_30m" in shown

            async with agent_session(f"agent-{language}", languages=(language,)) as agent:
                signed_in = await watcher.until(lambda s: s.agents_by_language.get(language) == 1)
                assert signed_in.agents_by_state["available"] + signed_in.agents_by_state["busy"] >= 1
                offer = await agent.offer_for(conversation_id)
                await agent.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=agent.auth)
                answered = await watcher.until(lambda s: (q := queue(s, language)) is not None and q.accepted_15m == 1)
                mine = queue(answered, language)
                assert mine is not None
                assert (mine.waiting, mine.oldest_wait_seconds, mine.offered_15m) == (0, 0.0, 1)
                assert mine.service_level_30m == 1.0  # answered within 20 s
                assert answered.agents_by_state["busy"] >= 1
                await agent.stub.Close(
                    desk.CloseRequest(task_id=offer.task_id, disposition="done"), metadata=agent.auth
                )
        finally:
            watcher.stop()
