"""Routing's state changes, each a function over one transaction (`Tx`, unit.py): a hand-off queued, a customer's
message, an offer, accept, reject, reply, transfer, close, sign-in and -out, a state asked for, the ticker's step.
They decide with the pure rules (rules.py, places.py), write through the store (store.py), and leave what the
agents and the customers are to hear in the transaction's `Effects`; they never publish nor push themselves."""

import json
import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from relais.common import bus, cloudevents, logs, telemetry, transcript
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.common.redact import redact
from relais.routing import records, rules, store, texts
from relais.routing.memory import PLACES_CHECK_SECONDS, Memory
from relais.routing.places import Places
from relais.routing.unit import QueueNotice, Tx

log = logging.getLogger(__name__)


# --- hand-offs and customer messages (Kafka) ---


async def free_agent(conn, memory: Memory, routing_rules: rules.RoutingRules, task: rules.Task) -> rules.Agent | None:
    """The agent who can take a new task at once, decided from memory (what assign([task], ...) would choose)."""
    await load_index(conn, memory)
    return memory.best_connected(task, routing_rules)


async def handoff_offered(
    conn,
    memory: Memory,
    routing_rules: rules.RoutingRules,
    key: str,
    task: rules.Task,
    context: pb.ConversationContext,
    need: rules.Requirement,
    agent_id: str,
    traceparent: str,
):
    """The hand-off written already offered to `agent_id`, in one statement (store.HANDOFF_OFFERED); None when it was
    seen before (nothing written). Else the row: when the offer expires, the agent's state before."""
    busy = records.state_event(agent_id, "available", "busy", "offer")  # stored only if it was available
    row = await store.handoff_offered(
        conn,
        key,
        task.task_id,
        context,
        need,
        records.queued_detail(need),
        traceparent,
        agent_id,
        float(routing_rules.offer_timeout_seconds),
        busy,
    )
    if not row["first"]:
        return None
    memory.offered(agent_id, need.channel, time.time())
    return row


async def queue(tx: Tx, context: pb.ConversationContext, key: str, skill_by_intent, kind: str = "handoff") -> str:
    """A new task: widened at once when nobody signed in could take it at its requirement, offered if someone can."""
    need = rules.requirement(context, tx.rules, skill_by_intent)
    task_id = task_id_of(key)
    new = rules.Task(task_id, need.language, need.channel, need.required, need.priority, time.time(), need.preferred)
    # Nobody signed in could take it at its requirement: widened at once to the overflow stage where someone can.
    stage = rules.widened_stage(new, await signed_in(tx, need.language), tx.rules) or 0
    queued_at = await store.queue_task(
        tx.conn, task_id, context, need, telemetry.current_traceparent(), kind, records.queued_detail(need), stage
    )
    if tx.memory.places is not None:
        tx.memory.places.add(task_id, need.language, need.priority, queued_at)
    if stage:
        await store.task_event(tx.conn, task_id, "overflow", detail=records.widened_detail(new, stage, tx.rules))
        new = replace(new, stage=stage)
    await dispatch(tx, new_task=new)
    if task_id not in tx.fx.offers:  # told their place once the transaction's (or the batch's) tasks are all queued
        tx.fx.waiting.append(QueueNotice(task_id, f"{task_id}/queued", context))
    return task_id


async def customer_message(tx: Tx, turn: pb.Turn, skill_by_intent) -> None:
    """A message in a conversation already handed off: it joins the task, never the bot."""
    task = await store.task_of_conversation(tx.conn, turn.conversation_id)
    if task is None:
        raise bus.BadInput(f"no task for conversation {turn.conversation_id!r}")
    context = pb.ConversationContext.FromString(task["context"])
    if task["status"] in ("closed", "abandoned"):
        if rules.closing_pleasantry(turn.text, turn.classification):
            await _after_end(tx, task, turn)
            return
        # A new request after the end: a new task with the whole story, required for what is asked now.
        transcript.append_turn(context, turn)
        _new_request(context, turn)
        await queue(tx, context, f"{turn.turn_id}/reopen", skill_by_intent)
        return
    transcript.append_turn(context, turn)  # within the same byte budget as the bot's
    await store.set_context(tx.conn, task["task_id"], context.SerializeToString())
    choice, phone = None, ""
    if task["status"] in ("queued", "offered") and task["kind"] == "handoff":
        phone = await store.conversation_phone(tx.conn, task["conversation_id"])
        if task["phone_asked_at"] is not None and phone and rules.customer_choice(turn.text, False) != "leave":
            await _callback(tx, task, context, turn, phone)  # the answer to "which number?"
            return
        offered = task["callback_offered"] or await serving(tx, task) == 0
        choice = rules.customer_choice(turn.text, callback_offered=offered)
    elif task["status"] in ("queued", "offered"):  # a callback task: the customer may still leave
        choice = rules.customer_choice(turn.text, callback_offered=False)
    if choice == "leave":
        await _abandon(tx, task, context, turn)
    elif choice == "callback" and phone:
        await _callback(tx, task, context, turn, phone)
    elif choice == "callback":
        await _ask_phone(tx, task, turn)
    else:
        await store.task_event(tx.conn, task["task_id"], "customer_message", detail=turn.turn_id)
        if task["status"] in ("offered", "assigned"):  # the refreshed assist follows, drafted after commit
            tx.fx.pushes.append(
                (
                    task["agent_id"],
                    desk.DeskEvent(customer_message=desk.CustomerMessage(task_id=task["task_id"], turn=turn)),
                )
            )
            tx.fx.assists.append((task["agent_id"], task["task_id"], context, task["kind"]))


async def _after_end(tx: Tx, task, turn: pb.Turn) -> None:
    """A thank-you or goodbye after the conversation ended: no task; a short polite reply, once."""
    answered = await store.answered_after_end(tx.conn, task["task_id"])
    await store.task_event(tx.conn, task["task_id"], "after_end", detail=turn.turn_id)
    if not answered:
        language = task["language"]
        tx.fx.records.append(  # in the customer message's span: the conversation's trace
            records.queue_reply(
                f"{turn.turn_id}/goodbye",
                turn.conversation_id,
                texts.say(language, texts.GOODBYE_TEXT),
                language,
                status="ended",
            )
        )


async def _abandon(tx: Tx, task, context: pb.ConversationContext, turn: pb.Turn) -> None:
    if tx.memory.places is not None:
        tx.memory.places.discard(task["task_id"])
    await store.abandon(tx.conn, task["task_id"])
    await store.task_event(
        tx.conn, task["task_id"], "abandoned", detail=f"waited {await store.waited_seconds(tx.conn, task['task_id'])} s"
    )
    if task["status"] == "offered":
        await withdraw(tx, task["task_id"], task["agent_id"], "customer_left")
    language = task["language"]
    tx.fx.records += [
        records.queue_reply(
            f"{turn.turn_id}/left",
            context.conversation_id,
            texts.say(language, texts.LEFT_TEXT),
            language,
            status="left",
        ),
        records.outcome(f"{task['task_id']}/abandoned", context, pb.OUTCOME_KIND_CLOSED, "", disposition="abandoned"),
    ]
    tx.memory.assists.pop(task["task_id"], None)


async def _callback(tx: Tx, task, context: pb.ConversationContext, turn: pb.Turn, phone: str) -> None:
    """The customer stops waiting; the task, with the number to call, waits for its due time on the voice channel:
    once the expected wait is over, or when nobody serves the queue, as soon as an advisor is there (at the
    center's next opening when it is closed). The time is told in the customer's time zone."""
    now = datetime.now(timezone.utc)
    advisors = await serving(tx, task)
    if advisors:
        position = (await places(tx)).place(task["task_id"], now.timestamp())
        wait = rules.expected_wait_seconds(position, await recent_handle(tx.conn, task["language"]), advisors, tx.rules)
        due = now + timedelta(seconds=wait)
    else:
        due = rules.callback_due(now, None, tx.rules.center)
    if task["status"] == "offered":
        await withdraw(tx, task["task_id"], task["agent_id"], "callback")
    tx.memory.places = None  # it waits from its due time now
    await store.make_callback(tx.conn, task["task_id"], due, phone)
    await store.task_event(tx.conn, task["task_id"], "callback_requested", detail=f"due {due.isoformat()}")
    language = task["language"]
    zone = rules.customer_zone(turn.customer.time_zone or context.customer.time_zone, tx.rules.center)
    promised = {}
    if advisors or due > now:
        text = texts.say(language, (texts.CALLBACK_TEXT, {"at": lambda lang: texts.spoken_time(due, zone, lang, now)}))
        promised = {"callback_due_at": due.astimezone(zone).isoformat()}
    else:
        text = texts.say(language, texts.CALLBACK_SOON_TEXT)
    tx.fx.records.append(
        records.queue_reply(
            f"{turn.turn_id}/callback", context.conversation_id, text, language, status="callback", **promised
        )
    )


async def _ask_phone(tx: Tx, task, turn: pb.Turn) -> None:
    """A callback with no number known: the customer is asked for it and keeps their place meanwhile. Intake keeps
    the number of the answer (relais.common.customer_contact) — never in the turn, which says [PHONE]."""
    await store.ask_phone(tx.conn, task["task_id"])
    await store.task_event(tx.conn, task["task_id"], "callback_phone_asked", detail=turn.turn_id)
    language = task["language"]
    tx.fx.records.append(
        records.queue_reply(
            f"{turn.turn_id}/phone",
            turn.conversation_id,
            texts.say(language, texts.PHONE_TEXT),
            language,
            status="callback_phone_requested",
        )
    )


# --- waiting customers ---


async def places(tx: Tx) -> Places:
    """The places, read again when the database says other tasks wait than those remembered (something changed
    the queue behind routing: an operator, a script); checked at most once a second, one count per language."""
    memory, now = tx.memory, time.monotonic()
    if memory.places is not None and now - memory.places_checked >= PLACES_CHECK_SECONDS:
        memory.places_checked = now
        counts = await store.waiting_counts(tx.conn)
        if counts != memory.places.counts():
            log.warning(
                "waiting tasks changed behind routing (%s in the database, %s remembered): read again",
                counts,
                memory.places.counts(),
            )
            memory.places = None
    if memory.places is None:
        memory.places, memory.places_checked = await store.load_places(tx.conn, tx.rules.aging_seconds_per_point), now
    return memory.places


async def position_messages(tx: Tx, waiting: list[QueueNotice]) -> list[bus.Record]:
    """Each waiting customer's place, expected wait and choices (one reply each, in `waiting`'s order). The places
    are counted in memory (places.py): a long queue costs a few bisections per customer, not a pass over it."""
    if not waiting:
        return []
    rows = {r["task_id"]: r for r in await store.tasks_for_dispatch(tx.conn, [w.task_id for w in waiting])}
    known = await places(tx)
    now = datetime.now(timezone.utc)
    replies, told = [], []
    for w in waiting:
        row = rows[w.task_id]
        language, position = row["language"], known.place(w.task_id, now.timestamp())
        advisors = rules.serving(task_of_row(row), await signed_in(tx, language), tx.rules)
        waits = rules.waiting(position, await recent_handle(tx.conn, language, tx.fx), advisors, now, tx.rules)
        told.append((w.task_id, position, waits.callback_offered, waits.wait_seconds is None))
        replies.append(_position_reply(w, language, position, waits, now, tx.rules, row["traceparent"]))
    await store.record_told(tx.conn, *map(list, zip(*told, strict=True)))
    return replies


def _position_reply(
    w: QueueNotice,
    language: str,
    position: int,
    waiting: rules.Waiting,
    now: datetime,
    routing_rules: rules.RoutingRules,
    traceparent: str,
) -> bus.Record:
    """The reply telling the customer their place, in the conversation's trace (the task's stored traceparent: it is
    sent after the hand-off's span, or by the ticker)."""
    context = w.context
    zone = rules.customer_zone(
        context.customer.time_zone or (context.turns[-1].customer.time_zone if context.turns else ""),
        routing_rules.center,
    )
    data = {
        "position": position,
        "status": "waiting",
        "callback_offered": waiting.callback_offered,
        "advisors_available": waiting.wait_seconds is not None,
    }
    if waiting.wait_seconds is not None:
        data["expected_wait_seconds"] = waiting.wait_seconds
        first = {"text": texts.QUEUE_TEXT, "position": position, "minutes": max(1, round(waiting.wait_seconds / 60))}
    elif waiting.opens_at is not None:
        data["opens_at"] = waiting.opens_at.astimezone(zone).isoformat()
        first = {"text": texts.CLOSED_TEXT, "opens": lambda lang: texts.spoken_time(waiting.opens_at, zone, lang, now)}
    else:
        first = {"text": texts.NOBODY_TEXT}
    offer = {"callback": lambda lang: texts.CALLBACK_OFFER[lang] if waiting.callback_offered else ""}
    text = texts.say(language, (first.pop("text"), first), (texts.CHOICES_TEXT, offer))
    return records.queue_reply(w.reply_id, context.conversation_id, text, language, traceparent, **data)


async def recent_handle(conn, language: str, fx=None) -> float | None:
    """The average handling time of the language's last 50 closed tasks (None until there are some); read once per
    transaction given its `fx`."""
    key = ("recent_handle", language)
    if fx is not None and key in fx.reads:
        return fx.reads[key]
    handle = await store.recent_handle(conn, language)
    if fx is not None:
        fx.reads[key] = handle
    return handle


async def signed_in(tx: Tx, language: str | None = None, once: bool = True) -> list[rules.Agent]:
    """The agents signed in (in any state but offline), of one language or all; with `once`, read once per
    transaction (only the agents' calls and the ticker sign agents in or out, each in its own transaction)."""
    key = ("signed_in", language)
    if once and key in tx.fx.reads:
        return tx.fx.reads[key]
    agents = await signed_in_agents(tx.conn, tx.memory, language)
    if once:
        tx.fx.reads[key] = agents
    return agents


async def signed_in_agents(conn, memory: Memory, language: str | None = None) -> list[rules.Agent]:
    return [memory.agent(r, {}) for r in await store.signed_in(conn, language)]


async def serving(tx: Tx, task) -> int:
    """How many signed-in advisors serve this task's queue (rules.serving)."""
    row = await store.task_for_dispatch(tx.conn, task["task_id"])
    return rules.serving(task_of_row(row), await signed_in(tx, row["language"], once=False), tx.rules)


# --- dispatch: the best eligible agent for each waiting task, as a timed reservation ---


async def dispatch(tx: Tx, new_task: rules.Task | None = None) -> None:
    """Offers waiting tasks; a new task is matched alone (the others already found nobody)."""
    memory = tx.memory
    await load_index(tx.conn, memory)
    if new_task is not None:
        tasks = [new_task]
        agents = [a for a in memory.connected() if new_task.language in a.languages]
    else:
        agents = memory.connected()
        # Only a task in the language of an agent with room can be offered: the others (a long queue nobody here
        # speaks, or everyone full) are not read at all.
        languages = {
            lang for a in agents if any(rules.has_room(a, channel) for channel in a.capacity) for lang in a.languages
        }
        if not languages:
            return
        tasks = [task_of_row(r) for r in await store.waiting_tasks(tx.conn, list(languages))]
    if not tasks or not agents:
        return
    channels = {t.task_id: t.channel for t in tasks}
    for offered_task, agent_id in rules.assign(tasks, agents, time.time(), tx.rules):
        await offer(tx, offered_task, agent_id, channels[offered_task])


async def load_index(conn, memory: Memory) -> None:
    if memory.index is None:
        memory.index_agents(*await store.offerable_agents(conn))


async def offer(tx: Tx, task_id: str, agent_id: str, channel: str) -> None:
    await store.offer(tx.conn, task_id, agent_id, tx.rules.offer_timeout_seconds)
    previous = await store.reserve(tx.conn, agent_id)
    if previous == "available":
        tx.fx.records.append(records.state_event(agent_id, previous, "busy", "offer"))
    if tx.memory.places is not None:
        tx.memory.places.discard(task_id)
    tx.fx.offers.append(task_id)
    tx.memory.offered(agent_id, channel, time.time())


async def withdraw(tx: Tx, task_id: str, agent_id: str, reason: str, declined: bool = False) -> None:
    """The offer leaves the agent: back to the queue (unless the task ended), the agent freed."""
    tx.memory.forget()
    conversation_id = await store.withdraw(tx.conn, task_id, agent_id, declined)
    name = reason if reason in ("rejected", "timeout") else "withdrawn"  # else the customer left, a sign-out...
    logs.event(log, name, agent_id=agent_id, conversation_id=conversation_id, task_id=task_id, reason=reason)
    if reason in ("timeout", "rejected"):
        await store.task_event(tx.conn, task_id, "offer_timeout" if reason == "timeout" else "rejected", agent_id)
        tx.fx.offer_results.append(reason)
    tx.fx.pushes.append((agent_id, desk.DeskEvent(offer_withdrawn=desk.OfferWithdrawn(task_id=task_id, reason=reason))))
    await release(tx, agent_id, closed=False)


async def release(tx: Tx, agent_id: str, closed: bool) -> None:
    tx.memory.index = None
    state = await store.agent_state(tx.conn, agent_id)
    if state is None:
        return  # no such agent: nothing to release
    new = rules.state_after_release(state, await store.holding(tx.conn, agent_id), closed)
    if closed:
        await store.touch_idle(tx.conn, agent_id)
    await set_state(
        tx,
        agent_id,
        new,
        "close" if closed else "offer_withdrawn",
        until=tx.rules.wrap_up_seconds if new == "wrap_up" else None,
    )


async def set_state(
    tx: Tx, agent_id: str, state: str, cause: str, only_from: tuple[str, ...] | None = None, until: float | None = None
) -> None:
    previous = await store.agent_state(tx.conn, agent_id)
    if previous == state or (only_from is not None and previous not in only_from):
        return
    tx.memory.index = None
    await store.set_agent_state(tx.conn, agent_id, state, until or 0)
    tx.fx.records.append(records.state_event(agent_id, previous, state, cause))


async def leave(tx: Tx, agent_id: str, cause: str) -> None:
    """The agent signs out (`cause` sign_out) or is signed out (not_connected): offers withdrawn, open conversations
    back to the queue as rules.requeue_after_leaving says and their customers told so, its token revoked, offline."""
    for task_id in await store.offered_to(tx.conn, agent_id):
        await withdraw(tx, task_id, agent_id, "signed_out")
    signed_out = cause == "sign_out"
    requeue = rules.requeue_after_leaving(agent_id, signed_out)
    tx.memory.places = None  # their open conversations wait again
    for row in await store.requeue_assigned(tx.conn, agent_id, requeue.stage, list(requeue.declined_by), requeue.note):
        await store.task_event(tx.conn, row["task_id"], "requeued", agent_id, detail=requeue.detail)
        logs.event(log, "requeued", agent_id=agent_id, conversation_id=row["conversation_id"], task_id=row["task_id"])
        tx.fx.records.append(
            records.queue_reply(
                f"{row['task_id']}/requeued/{uuid.uuid4()}",
                row["conversation_id"],
                texts.requeued_notice(row["language"], signed_out),
                row["language"],
                row["traceparent"],
                status="requeued",
            )
        )
    await store.revoke_token(tx.conn, agent_id)
    await set_state(tx, agent_id, "offline", cause)
    tx.memory.disconnected.pop(agent_id, None)


# --- the agents' calls (AgentDesk) ---


async def sign_in(
    tx: Tx,
    agent_id: str,
    display_name: str,
    languages: list[str],
    levels: dict[str, int],
    capacity: dict[str, int],
    token_sha256: str,
) -> None:
    await store.sign_in(tx.conn, agent_id, display_name, languages, levels, capacity, token_sha256)
    logs.event(log, "signed_in", agent_id=agent_id, languages=",".join(languages))
    tx.memory.index = None
    held = await store.holding(tx.conn, agent_id)
    await set_state(tx, agent_id, "busy" if held else "available", "sign_in", only_from=("offline", "break"))
    await dispatch(tx)


async def sign_out(tx: Tx, agent_id: str) -> None:
    logs.event(log, "signed_out", agent_id=agent_id, cause="sign_out")
    await leave(tx, agent_id, "sign_out")
    await dispatch(tx)


async def state_asked(tx: Tx, agent_id: str, wanted: str) -> None:
    """The agent asks for a state (rules.settable_state: AVAILABLE means busy while it holds tasks)."""
    current, holding = await store.state_and_holding(tx.conn, agent_id)
    state = rules.settable_state(current, wanted, holding)
    if state is None:
        raise ValueError(f"an agent cannot set {wanted!r}")  # refused before: desk_api checks rules.SETTABLE_STATES
    await set_state(tx, agent_id, state, "set_state")
    await dispatch(tx)


async def subscribed(tx: Tx) -> None:
    """An agent opened its stream: it may get offers now."""
    await dispatch(tx)


async def accept(tx: Tx, agent_id: str, task_id: str) -> bool:
    """False when the offer expired or was withdrawn meanwhile."""
    if not await store.accept(tx.conn, task_id, agent_id):
        return False
    await store.task_event(tx.conn, task_id, "accepted", agent_id)
    tx.fx.offer_results.append("accepted")
    task = await store.task_context_and_trace(tx.conn, task_id)
    ctx = pb.ConversationContext.FromString(task["context"])
    # After a transfer the same task is accepted again: its own id, so analytics keeps each agent's acceptance.
    accepted = await store.task_event_count(tx.conn, task_id, "accepted")
    outcome_id = f"{task_id}/assigned" if accepted <= 1 else f"{task_id}/assigned/{accepted}"
    with records.conversation_span("routing assign", task["traceparent"], agent_id):
        tx.fx.records.append(records.outcome(outcome_id, ctx, pb.OUTCOME_KIND_ASSIGNED, agent_id))
    return True


async def reject(tx: Tx, agent_id: str, task_id: str) -> None:
    if await store.offered_status(tx.conn, task_id, agent_id) == "offered":
        await withdraw(tx, task_id, agent_id, "rejected", declined=True)
        await dispatch(tx)


async def reply(tx: Tx, agent_id: str, task_id: str, reply_id: str, text: str) -> bool:
    """The message goes to the customer and into the task's context (the next advisor reads it). False when the task
    was closed or transferred meanwhile."""
    task = await store.assigned_context(tx.conn, task_id, agent_id)
    if task is None:
        return False
    ctx = pb.ConversationContext.FromString(task["context"])
    # The customer gets the text as written; the copy kept in the context is redacted like every stored message.
    message = pb.AdvisorMessage(reply_id=reply_id, agent_id=agent_id, text=redact(text))
    message.sent_at.GetCurrentTime()
    transcript.append_advisor_message(ctx, message)
    await store.set_context(tx.conn, task_id, ctx.SerializeToString())
    with records.conversation_span("routing agent reply", task["traceparent"], agent_id):
        tx.fx.records += [
            telemetry.traced(  # in the conversation_span: the conversation's trace
                cloudevents.reply(
                    cloudevents.REPLY_AGENT,
                    records.SOURCE,
                    reply_id,
                    ctx.conversation_id,
                    text,
                    ctx.language,
                    agent_id=agent_id,
                )
            ),
            records.outcome(reply_id, ctx, pb.OUTCOME_KIND_AGENT_REPLIED, agent_id),
        ]
    return True


async def transfer(tx: Tx, agent_id: str, task_id: str, queue_name: str, note: str) -> None:
    tx.memory.places = None  # it waits again
    moved = rules.transferred(queue_name, agent_id)
    assert moved.required is not None  # a transfer needs its queue's skill
    if conversation_id := await store.transfer(
        tx.conn,
        task_id,
        agent_id,
        dict(moved.required),
        list(moved.preferred),
        moved.stage,
        list(moved.declined_by),
        note,
    ):
        await store.task_event(tx.conn, task_id, "transferred", agent_id, detail=f"to {queue_name}: {note}")
        logs.event(
            log, "transferred", agent_id=agent_id, conversation_id=conversation_id, task_id=task_id, queue=queue_name
        )
        transfers = await store.task_event_count(tx.conn, task_id, "transferred")
        task = await store.task_context_and_trace(tx.conn, task_id)
        ctx = pb.ConversationContext.FromString(task["context"])
        with records.conversation_span("routing transfer", task["traceparent"], agent_id):
            tx.fx.records.append(
                records.outcome(f"{task_id}/transferred/{transfers}", ctx, pb.OUTCOME_KIND_TRANSFERRED, agent_id)
            )
        await release(tx, agent_id, closed=False)
        await dispatch(tx)


async def close(tx: Tx, agent_id: str, task_id: str, disposition: str, resolved: bool) -> None:
    if not await store.close(tx.conn, task_id, agent_id, disposition, resolved):
        return
    await store.task_event(tx.conn, task_id, "closed", agent_id, detail=disposition)
    await release(tx, agent_id, closed=True)
    task = await store.task_context_and_trace(tx.conn, task_id)
    ctx = pb.ConversationContext.FromString(task["context"])
    logs.event(
        log, "closed", agent_id=agent_id, conversation_id=ctx.conversation_id, task_id=task_id, disposition=disposition
    )
    with records.conversation_span("routing close", task["traceparent"], agent_id):
        tx.fx.records.append(
            records.outcome(
                f"{task_id}/closed", ctx, pb.OUTCOME_KIND_CLOSED, agent_id, disposition=disposition, resolved=resolved
            )
        )
        tx.fx.records.append(
            telemetry.traced(
                cloudevents.survey_request(records.SOURCE, f"{task_id}/survey", ctx.conversation_id, ctx.language)
            )
        )
    await dispatch(tx)


# --- the ticker: timeouts, wrap-ups, overflow, widening, re-dispatch ---


async def tick(tx: Tx, full: bool, callback_window_seconds: float) -> None:
    """One step of the ticker; waiting tasks are offered again when rules.redispatch says a finding may let one be."""
    signed_out = await _sign_out_disconnected(tx)
    expired = await store.expired_offers(tx.conn)
    for row in expired:
        await withdraw(tx, row["task_id"], row["agent_id"], "timeout", declined=True)
    wrap_ups_over = await store.wrap_ups_over(tx.conn)
    for agent_id in wrap_ups_over:
        await set_state(tx, agent_id, "available", "wrap_up_over")
    overflowed = False
    for row in await store.overflow_due(
        tx.conn, rules.overflow_steps(tx.rules)
    ):  # only the tasks whose next step is due
        stage = rules.overflow_stage(float(row["waited"]), tx.rules)
        if stage > row["stage"]:
            await store.set_stage(tx.conn, row["task_id"], stage)
            await store.task_event(tx.conn, row["task_id"], "overflow", detail=records.overflow_detail(stage, tx.rules))
            overflowed = True
    found = rules.TickFindings(
        full_pass=full,
        signed_out=signed_out,
        offers_expired=bool(expired),
        wrap_ups_over=bool(wrap_ups_over),
        overflowed=overflowed,
        widened=await _widen(tx, full),
    )
    if not rules.redispatch(found):  # read only when nothing else calls for a dispatch
        found = replace(found, callback_due=await store.callback_due(tx.conn, callback_window_seconds))
    if rules.redispatch(found):
        await dispatch(tx)


async def _sign_out_disconnected(tx: Tx) -> bool:
    """Signs out the agents without a stream for reconnect_seconds; True when one was."""
    memory, now, signed_out = tx.memory, time.monotonic(), False
    unconnected = await store.unconnected(tx.conn, list(memory.streams))
    for agent_id in memory.past_reconnect(unconnected, now, tx.rules.reconnect_seconds):
        logs.event(
            log, "signed_out", agent_id=agent_id, cause=f"no connection for {now - memory.disconnected[agent_id]:.0f} s"
        )
        await leave(tx, agent_id, "not_connected")
        signed_out = True
    return signed_out


async def _widen(tx: Tx, full: bool) -> bool:
    """Waiting tasks that no signed-in advisor could take are widened at once to the overflow stage where one can
    (rules.widened_stage): every task when who is signed in changed (a sign-in, a sign-out) and at the full pass,
    else those (re)queued in the last seconds (a transfer to a queue nobody signed in serves)."""
    seen = await store.signed_in_signature(tx.conn)
    every = rules.widen_every(full, seen, tx.memory.signed_in_seen)
    tx.memory.signed_in_seen = seen
    rows = await store.widenable(tx.conn, len(tx.rules.overflow), recent_only=not every)
    if not rows:
        return False
    agents = await signed_in(tx, once=False)
    stages: dict[tuple, int | None] = {}  # the same needs widen the same way
    widened = False
    for row in rows:
        task = task_of_row(row)
        signature = (task.language, task.channel, tuple(sorted(task.required.items())), task.stage)
        if signature not in stages:
            stages[signature] = rules.widened_stage(task, agents, tx.rules)
        stage = stages[signature]
        if stage is not None and stage > task.stage:
            await store.set_stage(tx.conn, task.task_id, stage)
            await store.task_event(
                tx.conn, task.task_id, "overflow", detail=records.widened_detail(task, stage, tx.rules)
            )
            widened = True
    return widened


async def queue_update(tx: Tx, task_id: str, reply_id: str) -> None:
    """A waiting customer with news is told their place again (the ticker found them: store.QUEUE_NEWS)."""
    context = pb.ConversationContext.FromString(await store.task_context(tx.conn, task_id))
    tx.fx.waiting.append(QueueNotice(task_id, reply_id, context))


# --- shared ---


def task_of_row(row) -> rules.Task:
    """A task as the rules see it, from a row of store.TASK_COLUMNS."""
    return rules.Task(
        row["task_id"],
        row["language"],
        row["channel"],
        json.loads(row["required"]),
        row["priority"],
        float(row["queued"]),
        tuple(row["preferred"]),
        row["stage"],
        frozenset(row["declined_by"]),
        float(row["due"]) if row["due"] is not None else None,
    )


def kind_of_need(row) -> rules.Task:
    """A kind of need (a row of store.QUEUE_DUE_KINDS) as a task the rules can judge who serves."""
    return rules.Task("", row["language"], row["channel"], json.loads(row["required"]), 0, 0.0, stage=row["stage"])


def task_id_of(key: str) -> str:
    return f"task-{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def _new_request(context: pb.ConversationContext, turn: pb.Turn) -> None:
    """The context of a new contact in the same conversation: the whole story, and what the customer asks now (the
    intent the classifier is sure of, else a request for a person)."""
    c = turn.classification
    context.intent = c.intent if c.intent and not c.out_of_scope else ""
    context.reason = pb.HANDOFF_REASON_CUSTOMER_REQUEST
    context.reasons[:] = [pb.HANDOFF_REASON_CUSTOMER_REQUEST]
    context.reason_detail = "the customer wrote again after the conversation ended"
    context.handed_off_at.GetCurrentTime()
