"""`make screenshots`: docs/images/desk.png and docs/images/wallboard.png, the two web pages of the gateway in a
realistic state, taken in Debian's headless Chromium driven by Playwright.

    python -m infra.screenshots             # a private stack on free ports (a temporary directory), stopped after
    python -m infra.screenshots --running   # the stack `make up` started (.relais/endpoints.env)

Customers write through the gateway's HTTP intake (POST /events) and wait for their answers on relais.replies.v1:
two get bot answers, four ask for a person while nobody is signed in; a French advisor signs in and takes a break;
an English agent signs in on the desk, accepts the angry customer's conversation, sends a suggested reply, and the
customer writes again (the desk shows the transcript with its lookup, the refreshed assist and the customer's
history); the wallboard then shows the French customers waiting and the agents by state.
"""

import argparse
import asyncio
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000
RUN = uuid.uuid4().hex[:6]  # conversation ids of their own: `--running` may hold earlier runs' conversations

# (conversation, customer, language, turns): each turn once the previous one was answered.
BOT_ANSWERED = [
    (f"shot-{RUN}-hours-en", "cust-en-002", "en", ["What are your opening hours?"]),
    (f"shot-{RUN}-hours-fr", "cust-fr-004", "fr", ["Bonjour, quels sont vos horaires d'ouverture ?"]),
]
ANGRY = (
    f"shot-{RUN}-angry",
    "cust-en-002",
    "en",
    [
        "Hi, where is my order CMD-424242? It should have arrived by now.",
        "This is RIDICULOUS!!! Third time I ask and nobody answers, your service is a joke.",
    ],
)
WAITING = [
    ANGRY,
    (f"shot-{RUN}-fr-1", "cust-fr-001", "fr", ["Bonjour, je voudrais parler à un conseiller s'il vous plaît."]),
    (f"shot-{RUN}-fr-2", "cust-fr-003", "fr", ["Je veux parler à un humain, c'est pour un litige sur ma facture."]),
    (f"shot-{RUN}-en-2", "cust-en-005", "en", ["Can you put me in touch with a human?"]),
]
FOLLOW_UP = "Fine. But the tracking page has not moved for five days, can you check with the carrier?"


def endpoints_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


async def post_event(http: aiohttp.ClientSession, url: str, conversation: str, customer: str, language: str, text: str):
    from relais.common import cloudevents

    body, _ = cloudevents.contact_message(conversation, customer, text, language=language)
    async with http.post(
        f"{url}/events", data=body, headers={"Content-Type": "application/cloudevents+json"}
    ) as response:
        if response.status != 202:
            raise RuntimeError(f"POST /events answered {response.status}: {await response.text()}")


async def connect_call(http: aiohttp.ClientSession, url: str, method: str, token: str, request: dict) -> dict:
    """A unary AgentDesk call in the Connect protocol, as the desk makes it."""
    async with http.post(
        f"{url}/relais.v1.AgentDesk/{method}", json=request, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"AgentDesk/{method} answered {response.status}: {await response.text()}")
        return await response.json()


async def play(http, url: str, watcher, conversation) -> None:
    """The customer's turns, each once the previous one was answered."""
    cid, customer, language, turns = conversation
    for n, text in enumerate(turns, start=1):
        await post_event(http, url, cid, customer, language, text)
        await watcher.wait_for(cid, n, timeout=60)


async def shoot(endpoints: dict[str, str], out: Path) -> None:
    from playwright.async_api import async_playwright, expect

    from relais.demo import ReplyWatcher

    url, token = endpoints["RELAIS_HTTP_URL"], endpoints["RELAIS_SERVICE_TOKEN"]
    watcher = await ReplyWatcher(endpoints["KAFKA_BOOTSTRAP_SERVERS"]).start()
    out.mkdir(parents=True, exist_ok=True)
    try:
        async with aiohttp.ClientSession() as http, async_playwright() as playwright:
            await asyncio.gather(*(play(http, url, watcher, c) for c in BOT_ANSWERED))
            await asyncio.gather(*(play(http, url, watcher, c) for c in WAITING))

            # A French advisor signed in but on break (no stream: no offer meanwhile), so French customers wait.
            lea = await connect_call(
                http, url, "SignIn", token, {"agentId": "lea", "displayName": "Léa", "languages": ["fr"]}
            )
            await connect_call(http, url, "SetState", lea["token"], {"state": "AGENT_STATE_BREAK"})

            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            desk = await (
                await browser.new_context(locale="en-GB", viewport={"width": 1440, "height": 1000})
            ).new_page()
            await desk.goto(f"{url}/desk")
            await desk.get_by_label("Front-end token").fill(token)
            await desk.get_by_label("Agent id").fill("sam")
            await desk.get_by_label("Name", exact=True).fill("Sam Carter")
            await desk.get_by_label("Languages").fill("en")
            await desk.get_by_label("Skills").fill("orders:4, complaints:3, conflict_handling:3, general:2")
            await desk.get_by_role("button", name="Sign in").click()
            angry = desk.locator("#offers .task-button", has_text=ANGRY[1])
            await expect(angry).to_be_visible(timeout=WAIT_MS)
            await angry.click()
            await desk.get_by_role("button", name="Accept", exact=True).click()
            await expect(desk.locator(".suggestion").first).to_be_visible(timeout=WAIT_MS)
            await desk.get_by_role("button", name="Send — Suggestion 1").click()
            await expect(desk.locator("#transcript .line.advisor")).to_have_count(1, timeout=WAIT_MS)
            await post_event(http, url, ANGRY[0], ANGRY[1], ANGRY[2], FOLLOW_UP)
            await expect(desk.locator("#transcript .line.customer")).to_have_count(3, timeout=WAIT_MS)
            # The assist refreshed for the new message: its first suggestion not sent yet.
            await expect(desk.locator(".suggestion").first.locator(".badge")).to_have_count(0, timeout=WAIT_MS)
            await expect(desk.locator(".history li").first).to_be_visible(timeout=WAIT_MS)
            await desk.locator("#toast").evaluate("el => el.hidden = true")
            await desk.screenshot(path=str(out / "desk.png"))
            print(f"wrote {out / 'desk.png'}")

            wallboard = await (
                await browser.new_context(locale="en-GB", viewport={"width": 1600, "height": 900})
            ).new_page()
            await wallboard.goto(f"{url}/wallboard#token={token}")
            # The French customers waiting past the service level's target (amber), Sam busy.
            await wallboard.wait_for_function(
                """() => Number(document.querySelector('tr[data-queue="fr/"] [data-testid=queue-waiting]')
                          ?.textContent) === 2
                      && Number(document.querySelector('[data-testid=oldest-wait]').dataset.seconds) >= 30
                      && Number(document.querySelector('[data-testid=agents-busy]').textContent) >= 1""",
                timeout=WAIT_MS,
            )
            await wallboard.screenshot(path=str(out / "wallboard.png"))
            print(f"wrote {out / 'wallboard.png'}")

            # Leave the stack as found: the conversation closed, the agent signed out.
            await desk.locator("details:has(#close-form) summary").click()
            await desk.get_by_role("button", name="Close the conversation").click()
            await desk.get_by_role("button", name="Sign out").click()
            await connect_call(http, url, "SignOut", lea["token"], {})
            await browser.close()
    finally:
        await watcher.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--running", action="store_true", help="use the stack of `make up` (.relais/endpoints.env)")
    parser.add_argument("--endpoints", type=Path, help="use the running stack of this endpoints.env")
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (default docs/images)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: `make prereqs` installs Debian's chromium package")
    if args.running or args.endpoints:
        path = args.endpoints or ROOT / ".relais" / "endpoints.env"
        if not path.exists() or "RELAIS_HTTP_URL" not in endpoints_of(path):
            sys.exit(f"no running stack with a gateway ({path}): `make up` first")
        asyncio.run(shoot(endpoints_of(path), args.out))
        return 0

    from infra.stack import up

    state_dir = Path(tempfile.mkdtemp(prefix="relais-screenshots-"))
    stack = up(state_dir)
    try:
        asyncio.run(shoot(stack.endpoints(), args.out))
    finally:
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
