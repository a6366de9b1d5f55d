"""`relais demo --no-advisor` on the real stack: the demo's customers only, so people can take the hand-offs at
`relais desk`."""

import asyncio
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import yaml

from relais.common.redact import redact
from relais.demo import CONVERSATIONS, DEMO_ADVISOR


async def test_demo_without_advisor_sends_the_customers_messages_and_signs_no_advisor_in(stack, db):
    started = datetime.now(timezone.utc)
    env = os.environ | stack.endpoints()
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "relais.cli", "demo", "--no-advisor",
                                                    "--wait", "0"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    played = dict(re.findall(r"^\[\d+/\d+\] (\S+): (.+)$", done.stdout, re.M))
    conversations = yaml.safe_load(CONVERSATIONS.read_text())["conversations"]
    assert len(played) == len(conversations), done.stdout
    waiting = [cid for cid, outcome in played.items() if outcome.startswith("handed off, no advisor answered yet")]
    assert waiting and not [o for o in played.values() if "answered by an advisor" in o], done.stdout
    for conversation in conversations:
        (cid,) = [c for c in played if c.startswith(conversation["id"] + "-")]
        stored = [r["text"] for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 ORDER BY seq", cid)]
        # Every customer message up to the hand-off (the demo stops a conversation there), as the customer wrote it.
        assert stored and stored == [redact(t) for t in conversation["turns"][:len(stored)]], (cid, stored)
        if cid not in waiting:
            assert len(stored) == len(conversation["turns"]), (cid, stored)
    # The demo has finished: had it signed its advisor in, routing's agents table would say so by now.
    row = await db.fetchrow("SELECT updated_at FROM agents WHERE agent_id = $1", DEMO_ADVISOR)
    assert row is None or row["updated_at"] < started, row
    # The hand-offs are there for a person at the desk, none held by a demo advisor.
    async with asyncio.timeout(20):
        while len(tasks := await db.fetch("SELECT agent_id FROM tasks WHERE conversation_id = ANY($1)", waiting)) < len(waiting):
            await asyncio.sleep(0.2)
    assert all(r["agent_id"] != DEMO_ADVISOR for r in tasks), tasks
