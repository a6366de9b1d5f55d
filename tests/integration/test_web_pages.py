"""The web pages the gateway serves (/desk, /wallboard), in Debian's headless Chromium driven by Playwright, on the
session's real stack: a customer's real hand-off (a message asking for a person, on relais.contact-events.v1) waits
on the wallboard, is offered on the desk, accepted, answered with a suggested reply that reaches relais.replies.v1,
and closed; the desk comes back by itself when its stream drops and keeps the conversation.

Customers write in English with ids of their own; an offer left by another test that reaches the desk first is taken
and closed through the page (as AgentSession.offer_for does on the API). The stack's offers expire after 3 s.
"""

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from relais.common import cloudevents
from relais.demo import send_message
from tests.integration.conftest import ALL_SKILLS, SERVICE_TOKEN, reply_of_type
from tests.integration.test_routing import task_of

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 20_000  # what a page gets to show a change that went through the stack


@pytest.fixture(scope="session")
async def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make prereqs` (infra/prereqs.sh) installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        await launched.close()


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(locale="en-GB", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors  # type: ignore[attr-defined]  # read by the tests: a page that threw failed
    await page.goto(url)
    return page


async def sign_in(page: Page, agent_id: str, languages: str = "en") -> None:
    await page.get_by_label("Front-end token").fill(SERVICE_TOKEN)
    await page.get_by_label("Agent id").fill(agent_id)
    await page.get_by_label("Name", exact=True).fill(f"Agent {agent_id}")
    await page.get_by_label("Languages").fill(languages)
    await page.get_by_label("Skills").fill(", ".join(f"{skill}:{level}" for skill, level in ALL_SKILLS.items()))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=WAIT_MS)


async def take_offer(page: Page, customer_id: str) -> None:
    """Selects and accepts the offer of this customer; offers left by other tests that come first are accepted and
    closed on the page, so they do not hold the desk's capacity."""
    mine = page.locator("#offers .task-button", has_text=customer_id)
    offers = page.locator("#offers .task-button")
    while not await mine.count():
        await expect(offers.first).to_be_visible(timeout=WAIT_MS)
        if await mine.count():
            break
        leftover = offers.first
        await leftover.evaluate("button => button.click()")  # the list is redrawn as countdowns tick
        await page.get_by_role("button", name="Accept", exact=True).click()
        if await page.locator("#composer").is_visible():  # accepted (else it expired meanwhile)
            await close_selected(page, "no_answer")
    await mine.evaluate("button => button.click()")  # at once: the offers' list is redrawn as countdowns tick
    await expect(page.locator("#conversation-header h2")).to_have_text(f"Customer {customer_id}")
    await page.get_by_role("button", name="Accept", exact=True).click()
    await expect(page.locator("#conversations .task-button", has_text=customer_id)).to_be_visible()
    await expect(page.locator("#composer")).to_be_visible()


async def close_selected(page: Page, disposition: str = "resolved") -> None:
    close = page.locator("details:has(#close-form)")
    if await close.get_attribute("open") is None:
        await close.locator("summary").click()
    await page.get_by_label("Outcome").select_option(disposition)
    await page.get_by_role("button", name="Close the conversation").click()
    await expect(page.locator("#composer")).to_be_hidden()


async def wallboard_waiting(page: Page, language: str) -> int:
    cell = page.locator(f'tr[data-queue="{language}/"] [data-testid="queue-waiting"]')
    return int(await cell.inner_text()) if await cell.count() else 0


async def test_an_agent_takes_a_real_hand_off_on_the_desk_while_the_wallboard_shows_it_waiting(
    gateway, browser, producer, replies, db, conversation_id
):
    customer_id = f"cust-{conversation_id}"
    wallboard = await open_page(browser, f"{gateway}/wallboard#token={SERVICE_TOKEN}")
    await expect(wallboard.locator("#updated")).not_to_be_empty(timeout=WAIT_MS)  # a snapshot is shown
    assert "token=" not in wallboard.url  # kept, and out of the address bar
    before = await wallboard_waiting(wallboard, "en")

    await send_message(
        producer, conversation_id, {"id": customer_id, "language": "en"}, "I want to talk to a person, please."
    )
    handoff = await reply_of_type(replies, conversation_id, cloudevents.REPLY_HANDOFF)
    assert handoff["data"]["reason"] == "HANDOFF_REASON_CUSTOMER_REQUEST"
    # Nobody speaking English is signed in: the customer waits, and the wallboard counts them.
    await wallboard.wait_for_function(
        f"""() => Number(document.querySelector('tr[data-queue="en/"] [data-testid="queue-waiting"]')
                 ?.textContent) >= {before + 1}""",
        timeout=WAIT_MS,
    )
    total = int(await wallboard.get_by_test_id("total-waiting").inner_text())
    assert total >= before + 1

    desk = await open_page(browser, f"{gateway}/desk")
    await sign_in(desk, f"web-{conversation_id}")
    await take_offer(desk, customer_id)
    transcript = desk.locator("#transcript")
    await expect(transcript.locator(".line.customer .text")).to_have_text(["I want to talk to a person, please."])

    suggestion = desk.locator(".suggestion").first
    await expect(suggestion).to_be_visible(timeout=WAIT_MS)  # the assist follows the offer on the stream
    text = await suggestion.locator(".text").inner_text()
    await desk.get_by_role("button", name="Send — Suggestion 1").click()
    await expect(transcript.locator(".line.advisor .text")).to_have_text([text])
    sent = await reply_of_type(replies, conversation_id, cloudevents.REPLY_AGENT)
    assert sent["data"]["text"] == text and sent["data"]["language"] == "en"
    await expect(suggestion.locator(".badge")).to_have_text("sent")
    # Taken by the desk: the wallboard's count comes back down.
    await wallboard.wait_for_function(
        f"""() => Number(document.querySelector('tr[data-queue="en/"] [data-testid="queue-waiting"]')
                 ?.textContent ?? 0) <= {before}""",
        timeout=WAIT_MS,
    )

    await close_selected(desk, "resolved")
    task = await task_of(db, conversation_id)
    assert (task["status"], task["disposition"], task["resolved"]) == ("closed", "resolved", True)
    # Gone from the agent's conversations. (Its wrap-up view is not asserted here: an offer left by another test can
    # reach this agent before the close, and then the desk rightly shows that offer instead.)
    await expect(desk.locator("#conversations .task-button", has_text=customer_id)).to_have_count(0)
    await desk.get_by_role("button", name="Sign out").click()
    await expect(desk.get_by_role("heading", name="Sign in")).to_be_visible()
    assert desk.script_errors == [] and wallboard.script_errors == []  # type: ignore[attr-defined]
    await desk.context.close()
    await wallboard.context.close()


async def test_the_desk_comes_back_by_itself_when_its_stream_drops_and_keeps_the_conversation(
    gateway, stack, browser, producer, replies, conversation_id
):
    customer_id = f"cust-{conversation_id}"
    desk = await open_page(browser, f"{gateway}/desk")
    await sign_in(desk, f"web-{conversation_id}")
    await send_message(producer, conversation_id, {"id": customer_id, "language": "en"}, "Can I speak to an agent?")
    await take_offer(desk, customer_id)

    # The gateway restarts: the desk's stream drops, it says so, and subscribes again by itself.
    await asyncio.to_thread(stack.stop_service, "gateway")
    await expect(desk.locator("#connection")).to_have_text("Connection lost, reconnecting…", timeout=WAIT_MS)
    await asyncio.to_thread(stack.start_gateway)
    await expect(desk.locator("#connection")).to_have_text("Connected", timeout=WAIT_MS)
    await send_message(producer, conversation_id, {"id": customer_id, "language": "en"}, "Hello? Still there?")
    transcript = desk.locator("#transcript .line.customer .text")
    await expect(transcript).to_have_text(["Can I speak to an agent?", "Hello? Still there?"], timeout=WAIT_MS)

    # A reload keeps the session (sessionStorage) and routing sends the conversation again, as it is now.
    await desk.reload()
    await expect(desk.locator("#connection")).to_have_text("Connected", timeout=WAIT_MS)
    conversation = desk.locator("#conversations .task-button", has_text=customer_id)
    await conversation.click()
    await expect(transcript).to_have_text(["Can I speak to an agent?", "Hello? Still there?"], timeout=WAIT_MS)
    await desk.get_by_label("Reply to the customer").fill("Yes, I am here.")
    await desk.get_by_role("button", name="Send", exact=True).click()
    sent = await reply_of_type(replies, conversation_id, cloudevents.REPLY_AGENT)
    assert sent["data"]["text"] == "Yes, I am here."
    await close_selected(desk)
    # French at the switch, kept across a reload.
    await desk.get_by_role("button", name="Français").click()
    await expect(desk.get_by_role("heading", name="Mes conversations")).to_be_visible()
    await desk.reload()
    await expect(desk.locator("#connection")).to_have_text("Connecté", timeout=WAIT_MS)
    await desk.get_by_role("button", name="Se déconnecter").click()
    await expect(desk.get_by_role("heading", name="Connexion")).to_be_visible()
    assert desk.script_errors == []  # type: ignore[attr-defined]
    await desk.context.close()
