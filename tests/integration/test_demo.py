"""`relais demo --no-advisor` on the real stack: the demo's customers only, so people can take the hand-offs at
`relais desk`."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import yaml

from relais.common import cloudevents
from relais.common.pb import agent_desk_pb2 as desk
from relais.common.redact import redact
from relais.demo import CONVERSATIONS, DEMO_ADVISOR


async def test_demo_without_advisor_sends_the_customers_messages_and_signs_no_advisor_in(stack, db):
    started = datetime.now(timezone.utc)
    env = os.environ | stack.endpoints()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "relais.cli", "demo", "--no-advisor", "--wait", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    played = dict(re.findall(r"^\[\d+/\d+\] (\S+): (.+)$", done.stdout, re.M))
    conversations = yaml.safe_load(CONVERSATIONS.read_text())["conversations"]
    assert len(played) == len(conversations), done.stdout
    waiting = [cid for cid, outcome in played.items() if outcome.startswith("handed off, no advisor answered yet")]
    assert waiting and not [o for o in played.values() if "answered by an advisor" in o], done.stdout
    for conversation in conversations:
        (cid,) = [c for c in played if c.startswith(conversation["id"] + "-")]
        stored = [
            r["text"] for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 ORDER BY seq", cid)
        ]
        # Every customer message up to the hand-off (the demo stops a conversation there), as the customer wrote it.
        assert stored and stored == [redact(t) for t in conversation["turns"][: len(stored)]], (cid, stored)
        if cid not in waiting:
            assert len(stored) == len(conversation["turns"]), (cid, stored)
    # The demo has finished: had it signed its advisor in, routing's agents table would say so by now.
    row = await db.fetchrow("SELECT updated_at FROM agents WHERE agent_id = $1", DEMO_ADVISOR)
    assert row is None or row["updated_at"] < started, row
    # The hand-offs are there for a person at the desk, none held by a demo advisor.
    async with asyncio.timeout(20):
        while len(tasks := await db.fetch("SELECT agent_id FROM tasks WHERE conversation_id = ANY($1)", waiting)) < len(
            waiting
        ):
            await asyncio.sleep(0.2)
    assert all(r["agent_id"] != DEMO_ADVISOR for r in tasks), tasks


README_AGENT_LEVELS = {"billing": 3, "orders": 2, "conflict_handling": 1}  # docs/routing.md, "Try it as an agent"


async def test_the_readme_example_agent_is_offered_every_demo_hand_off_within_seconds(stack, db, agent_session):
    """The walk-through of docs/routing.md: `relais desk --agent alice --languages fr,en --skills billing:3,orders:2,conflict_handling`
    and `relais demo --no-advisor`. Every hand-off of the demo (an angry customer, a request for a person after a bot
    answer, an out-of-scope question needing skill `general`, which this agent lacks) reaches the agent in seconds."""
    from relais.demo import run_demo

    async with agent_session(f"alice-{uuid.uuid4().hex[:6]}", levels=README_AGENT_LEVELS) as alice:
        demo = asyncio.create_task(run_demo(stack.endpoints(), advisor=False, wait_for_agents=60))
        delays: dict[str, float] = {}
        async with asyncio.timeout(120):
            while not demo.done() or not alice.events.empty():
                try:
                    event = await asyncio.wait_for(alice.events.get(), 0.5)
                except TimeoutError:
                    continue
                if not event.HasField("offer"):
                    continue
                offer, seen = event.offer, datetime.now(timezone.utc)
                task = await db.fetchrow("SELECT created_at FROM tasks WHERE task_id = $1", offer.task_id)
                await alice.stub.Accept(desk.AcceptRequest(task_id=offer.task_id), metadata=alice.auth)
                await alice.stub.Reply(
                    desk.ReplyRequest(task_id=offer.task_id, text="Bonjour, je suis là. / Hello, I'm here."),
                    metadata=alice.auth,
                )
                await alice.stub.Close(
                    desk.CloseRequest(task_id=offer.task_id, disposition="resolved", resolved=True), metadata=alice.auth
                )
                delays[offer.context.conversation_id] = (seen - task["created_at"]).total_seconds()
        results = demo.result()
    handed_off = {cid for cid, final in results.items() if final != cloudevents.REPLY_BOT}
    assert len(handed_off) == 3, results
    # Each answered by this agent (the demo saw the advisor's reply), each offered within seconds of its task.
    assert all(results[cid] == cloudevents.REPLY_AGENT for cid in handed_off), results
    assert all(cid in delays and delays[cid] < 10 for cid in handed_off), delays
