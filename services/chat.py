"""`relais chat`: a console customer, to try the stack from the customer's side (the desk's other half).

    relais chat --conversation me-1 --language fr

Each typed line is sent as a relais.contact.message.v1 event of that conversation (as an enterprise's channel
would send it, docs/contract.md); every reply on relais.replies.v1 (bot, hand-off, queue, advisor,
survey) is printed as it comes. At the end of input it waits `--wait` seconds for the last replies.
"""

import asyncio

from relais.common import bus
from relais.demo import ReplyWatcher, send_message
from relais.desk import stdin_lines


def render_reply(event: dict) -> str:
    """One reply as the customer reads it, with its kind: "[queue waiting] Un conseiller va vous répondre…"."""
    data = event.get("data") or {}
    kind = event.get("type", "").removeprefix("relais.reply.").removesuffix(".v1")
    status = f" {data['status']}" if data.get("status") else ""
    return f"[{kind}{status}] {data.get('text', '')}"


async def run(
    bootstrap: str, conversation_id: str, customer: dict, channel: str, lines, say=print, wait_seconds: float = 10
) -> int:
    """Sends each line, prints the replies as they come; returns how many replies were printed."""
    watcher = await ReplyWatcher(bootstrap).start()
    producer = bus.make_producer(bootstrap)
    await producer.start()
    shown = 0

    async def show_replies():
        nonlocal shown
        while True:
            replies = await watcher.wait_for(conversation_id, shown + 1, timeout=3600)
            for event in replies[shown:]:
                say(render_reply(event))
            shown = len(replies)

    printer = asyncio.create_task(show_replies())
    try:
        async for line in lines:
            if line.strip():
                await send_message(producer, conversation_id, customer, line.strip(), channel)
        await asyncio.sleep(wait_seconds)  # the replies to the last messages
    finally:
        printer.cancel()
        await producer.stop()
        await watcher.stop()
    return shown


def chat_cli(args, endpoints: dict[str, str]) -> int:
    customer = {"id": args.customer or f"cust-{args.conversation}"}
    if args.language:
        customer["language"] = args.language
    if args.tier:
        customer["tier"] = args.tier
    print(
        f"conversation {args.conversation} as customer {customer['id']}: type a message a line; end with Ctrl-D",
        flush=True,
    )
    try:
        asyncio.run(
            run(
                endpoints["KAFKA_BOOTSTRAP_SERVERS"],
                args.conversation,
                customer,
                args.channel,
                stdin_lines(),
                lambda text: print(text, flush=True),
                args.wait,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0
