"""`relais chat`, the console customer of the walk-through in docs/routing.md, on the real stack: typed lines become
contact events, the replies come back in the customer's language."""

import asyncio
import os
import subprocess
import sys
import uuid

from relais.chat import render_reply


def test_a_reply_reads_with_its_kind_and_status():
    assert (
        render_reply({"type": "relais.reply.queue.v1", "data": {"text": "Vous avez quitté la file.", "status": "left"}})
        == "[queue left] Vous avez quitté la file."
    )
    assert render_reply({"type": "relais.reply.bot.v1", "data": {"text": "Hello"}}) == "[bot] Hello"


async def test_the_console_customer_sends_each_line_and_prints_the_replies(stack, db):
    conversation = f"chat-{uuid.uuid4().hex[:8]}"
    env = os.environ | stack.endpoints()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "relais.cli", "chat", "--conversation", conversation, "--language", "fr", "--wait", "8"],
        input="Bonjour, quels sont vos horaires d'ouverture ?\nJe veux parler à un conseiller\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("[bot] Notre service client est ouvert") for line in lines), done.stdout
    assert any(line.startswith("[handoff] Je vous mets en relation avec un conseiller") for line in lines), done.stdout
    stored = [
        r["text"]
        for r in await db.fetch("SELECT text FROM turns WHERE conversation_id = $1 ORDER BY seq", conversation)
    ]
    assert stored == ["Bonjour, quels sont vos horaires d'ouverture ?", "Je veux parler à un conseiller"]
