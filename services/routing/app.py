"""Routing's application layer: each use case — a poll of hand-offs and customer messages, an agent's call, the
ticker's pass — opens one unit of work (unit.py), runs its handler (handlers.py) and does what follows the commit
(offers pushed, records sent). The edges are given this object: the Kafka loop (decode, handle_batch) and the
AgentDesk servicer (desk_api.py), which only decodes requests and encodes replies."""

import asyncio
import functools
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable

from aiokafka import ConsumerRecord

from relais.common import bus, logs, outbox, telemetry, topics
from relais.common.lease import Fenced, Lease
from relais.common.pb import agent_desk_pb2 as desk, agent_events_pb2 as ev, conversation_pb2 as pb
from relais.common.unit_of_work import Item, UnitOfWork
from relais.routing import handlers, records, rules, store, transcript_view
from relais.routing.desk_view import DeskView, offer_key
from relais.routing.memory import Memory
from relais.routing.unit import Decisions, Effects, QueueNotice, Tx

log = logging.getLogger(__name__)


class Routing:
    def __init__(
        self,
        pool,
        producer,
        routing_rules: rules.RoutingRules,
        skill_by_intent: dict[str, str],
        assistant=None,
        tick_seconds: float = 1.0,
        lease: Lease | None = None,
    ):
        self.pool, self.producer, self.rules, self.skill_by_intent = pool, producer, routing_rules, skill_by_intent
        self.tick_seconds, self.lease = tick_seconds, lease
        self.memory = Memory()
        self.view = DeskView(pool, self.memory, assistant)
        self.unit = Decisions(pool, producer, self.memory, routing_rules, self.view.deliver, lease)
        self.ticks = 0

    async def change(self, key: str, consumer: str, handler: Callable[[Tx], Awaitable[None]]) -> Effects:
        """`handler` in one unit of work; the customers it queued are told their place in the same transaction."""

        async def apply(tx: Tx) -> None:
            await handler(tx)
            tx.fx.records += await handlers.position_messages(tx, tx.fx.waiting)

        return await self.unit.change(key, consumer, apply)

    async def close(self) -> None:
        await self.unit.close()

    async def take_over(self) -> None:
        await self.unit.take_over()

    # --- hand-offs and customer messages (Kafka) ---

    @staticmethod
    def decode(record: ConsumerRecord) -> pb.HandoffEvent:
        event = bus.parse(pb.HandoffEvent, record.value)
        kind = event.WhichOneof("event")
        if kind == "handoff" and (not event.handoff.conversation_id or not event.handoff.turns):
            raise bus.BadInput("hand-off without conversation_id or turns")
        if kind == "customer_message" and not event.customer_message.conversation_id:
            raise bus.BadInput("customer message without conversation_id")
        if kind is None:
            raise bus.BadInput("empty HandoffEvent")
        return event

    async def handle_batch(self, items: list[Item], unit: UnitOfWork) -> None:
        """A poll's hand-offs and customer messages in one transaction on the decision connection, each conversation's
        in order; the customers queued by the batch are told their place together (one sort of each queue). A hand-off
        alone for which an agent is free takes the one-statement path (store.HANDOFF_OFFERED)."""
        if len(items) == 1 and items[0].value.HasField("handoff"):
            item = items[0]
            if await self._handoff_offered(item.record, item.value.handoff, _event_key(item.value)):
                return
        await self.unit.batch(unit, lambda tx: self._apply_batch(tx, items, unit))

    async def _apply_batch(self, tx: Tx, items: list[Item], unit: UnitOfWork) -> None:
        keys = [_event_key(item.value) for item in items]
        new = await unit.first_time(keys, [item.record for item in items])
        told: list[tuple[str, QueueNotice]] = []  # (event key, customer to tell) not told yet

        async def tell() -> None:
            for (key, _), reply in zip(
                told, await handlers.position_messages(tx, [notice for _, notice in told]), strict=True
            ):
                unit.emit(key, [reply])
            told.clear()

        fx = tx.fx
        for item, key in zip(items, keys, strict=True):
            if key not in new:
                continue
            new.discard(key)  # the same event twice in one poll: applied once
            event = item.value
            conversation_id = event.handoff.conversation_id or event.customer_message.conversation_id
            if any(notice.context.conversation_id == conversation_id for _, notice in told):
                await tell()  # their place first, then what follows in the conversation
            records_before, waiting_before = len(fx.records), len(fx.waiting)
            if event.HasField("handoff"):
                with telemetry.consume_span(
                    "routing queue", item.record, **{"relais.conversation_id": conversation_id}
                ):
                    await handlers.queue(tx, event.handoff, key, self.skill_by_intent)
            else:
                with telemetry.consume_span(
                    "routing customer message", item.record, **{"relais.conversation_id": conversation_id}
                ):
                    await handlers.customer_message(tx, event.customer_message, self.skill_by_intent)
            unit.emit(key, fx.records[records_before:])
            told += [(key, notice) for notice in fx.waiting[waiting_before:]]
        await tell()

    async def _handoff_offered(self, record: ConsumerRecord, context: pb.ConversationContext, key: str) -> bool:
        """The common case, an agent free for the new task: decided from memory, written in one statement, then offered.
        False when nobody can take it now, or when the hand-off was seen before: the general path (handle_batch) queues
        it, or sends again what it stored."""
        need = rules.requirement(context, self.rules, self.skill_by_intent)
        task_id = handlers.task_id_of(key)
        async with self.unit.decision() as conn:
            new = rules.Task(
                task_id, need.language, need.channel, need.required, need.priority, time.time(), need.preferred
            )
            best = await handlers.free_agent(conn, self.memory, self.rules, new)
            if best is None:
                return False
            agent_id = best.agent_id
            with telemetry.consume_span(
                "routing queue", record, parent=None, **{"relais.conversation_id": context.conversation_id}
            ):
                traceparent = telemetry.current_traceparent()
                row = await handlers.handoff_offered(
                    conn, self.memory, self.rules, key, new, context, need, agent_id, traceparent
                )
            if row is None:
                return False  # seen before: the general path sends again what was stored for it, if anything
        # Committed: the agent hears first, without waiting for assist; then the state change (if any) goes out; only
        # then is the assist drafted (a query, then a thread holding the GIL), and it follows on the agent's stream.
        with records.conversation_span("routing offer", traceparent, agent_id):
            offer = desk.Offer(
                task_id=task_id,
                context=context,
                priority=need.priority,
                callback=False,
                transcript=transcript_view.transcript(context),
            )
            offer.expires_at.FromDatetime(row["expires"])
            self.memory.push(agent_id, desk.DeskEvent(offer=offer))
        logs.event(log, "offered", agent_id=agent_id, conversation_id=context.conversation_id, task_id=task_id)
        if row["previous"] == "available":
            await outbox.publish_pending(self.pool, self.producer, records.KAFKA, key)
        self.view.assist_follows(agent_id, task_id, context, "handoff", offer.assist)
        return True

    # --- the agents' calls (desk_api.py decodes and encodes them) ---

    async def agent_of_token(self, token: str) -> str | None:
        return await store.agent_of_token(self.pool, _sha256(token))

    async def task(self, task_id: str):
        return await store.task(self.pool, task_id)

    async def sign_in(
        self, agent_id: str, display_name: str, languages: list[str], levels: dict[str, int], capacity: dict[str, int]
    ) -> str:
        """The agent's new token (only its SHA-256 is stored)."""
        token = secrets.token_urlsafe(32)
        await self.change(
            f"sign-in/{uuid.uuid4()}",
            records.DESK,
            lambda tx: handlers.sign_in(tx, agent_id, display_name, languages, levels, capacity, _sha256(token)),
        )
        return token

    async def sign_out(self, agent_id: str) -> None:
        await self.change(f"sign-out/{uuid.uuid4()}", records.DESK, lambda tx: handlers.sign_out(tx, agent_id))

    async def set_state(self, agent_id: str, wanted: str) -> str:
        """The agent's state once its wish (rules.SETTABLE_STATES) is applied."""
        await self.change(f"state/{uuid.uuid4()}", records.DESK, lambda tx: handlers.state_asked(tx, agent_id, wanted))
        state = await store.agent_state(self.pool, agent_id)
        assert state is not None, "an authenticated agent has a row (agents are never deleted)"
        return state

    async def events(
        self, agent_id: str, connected: Callable[[], Awaitable[None]]
    ) -> AsyncGenerator[desk.DeskEvent, None]:
        """What the agent holds (after a reconnect or a restart of routing, with all that arrived meanwhile), then
        every event as it happens. Only agents with a stream get offers: one connecting is dispatched to at once.
        `connected` runs once the stream is registered, before anything is read."""
        stream: asyncio.Queue = asyncio.Queue()
        self.memory.streams[agent_id] = stream
        self.memory.disconnected.pop(agent_id, None)
        await connected()
        try:
            delivered = set()  # offers sent here that may also be in the queue: each exact offer is sent once
            for task in await store.held(
                self.pool, agent_id
            ):  # each with its assist when drafted already, else it follows
                if task["status"] == "offered":
                    message = self.view.offer_message(task)
                    delivered.add(offer_key(message))
                    yield desk.DeskEvent(offer=message)
                else:
                    message = self.view.assignment_message(task)
                    yield desk.DeskEvent(assignment=message)
                self.view.assist_follows(agent_id, task["task_id"], message.context, task["kind"], message.assist)
            await self.change(f"subscribe/{uuid.uuid4()}", records.DESK, handlers.subscribed)
            while True:
                event = await stream.get()
                if event.HasField("offer") and offer_key(event.offer) in delivered:
                    delivered.discard(offer_key(event.offer))
                    continue
                yield event
        finally:
            if self.memory.streams.get(agent_id) is stream:
                del self.memory.streams[agent_id]
                self.memory.disconnected[agent_id] = time.monotonic()

    async def accept(self, agent_id: str, task_id: str) -> desk.Assignment | None:
        """The assignment, pushed on the agent's stream too; None when the offer expired or was withdrawn meanwhile."""
        accepted = False

        async def apply(tx: Tx) -> None:
            nonlocal accepted
            accepted = await handlers.accept(tx, agent_id, task_id)

        await self.change(f"accept/{uuid.uuid4()}", records.DESK, apply)
        if not accepted:
            return None
        task = await store.task(self.pool, task_id)
        logs.event(log, "accepted", agent_id=agent_id, conversation_id=task["conversation_id"], task_id=task_id)
        assignment = self.view.assignment_message(task)
        self.memory.push(agent_id, desk.DeskEvent(assignment=assignment))
        self.view.assist_follows(agent_id, task_id, assignment.context, task["kind"], assignment.assist)
        return assignment

    async def reject(self, agent_id: str, task_id: str) -> None:
        await self.change(f"reject/{uuid.uuid4()}", records.DESK, lambda tx: handlers.reject(tx, agent_id, task_id))

    async def reply(self, agent_id: str, task_id: str, text: str) -> str | None:
        """The reply's id; None when the task was closed or transferred meanwhile."""
        reply_id = f"{task_id}/reply/{uuid.uuid4()}"
        sent = False

        async def apply(tx: Tx) -> None:
            nonlocal sent
            sent = await handlers.reply(tx, agent_id, task_id, reply_id, text)

        await self.change(reply_id, records.DESK, apply)
        return reply_id if sent else None

    async def transfer(self, agent_id: str, task_id: str, queue: str, note: str) -> None:
        await self.change(
            f"transfer/{uuid.uuid4()}", records.DESK, lambda tx: handlers.transfer(tx, agent_id, task_id, queue, note)
        )

    async def close_task(self, agent_id: str, task_id: str, disposition: str, resolved: bool) -> None:
        await self.change(
            f"close/{uuid.uuid4()}",
            records.DESK,
            lambda tx: handlers.close(tx, agent_id, task_id, disposition, resolved),
        )
        self.memory.assists.pop(task_id, None)

    async def history(self, customer_id: str, conversation_id: str) -> list:
        return await self.view.history(customer_id, conversation_id)

    async def suggestion_used(self, agent_id: str, task, suggestion_id: str, use: ev.SuggestionUse) -> bool:
        """Publishes the agent's use of a suggestion on the task's assist; False when the assist has no such suggestion."""
        ctx = pb.ConversationContext.FromString(task["context"])
        assist = await self.view.assist(task["task_id"], ctx, task["kind"])
        suggestion = next((s for s in assist.suggestions if s.suggestion_id == suggestion_id), None)
        if suggestion is None:
            return False
        event = ev.AgentEvent(
            event_id=f"{task['task_id']}/{suggestion_id}/{agent_id}",
            agent_id=agent_id,
            suggestion_feedback=ev.SuggestionFeedback(
                task_id=task["task_id"],
                conversation_id=ctx.conversation_id,
                suggestion_id=suggestion_id,
                use=use,
                intent=ctx.intent,
                language=ctx.language,
                source=suggestion.source,
                article_ids=suggestion.article_ids,
            ),
        )
        event.at.GetCurrentTime()
        await bus.publish(
            self.producer,
            [bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(), telemetry.inject_headers())],
        )
        return True

    # --- the ticker: timeouts, wrap-ups, overflow, queue messages, re-dispatch ---

    async def run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Fenced as error:  # the worker steps down to standby
                log.warning("routing tick not run: %s", error)
            except Exception:  # a failed tick is retried at the next one; it must never stop routing
                log.exception("routing tick failed")

    async def tick(self) -> None:
        self.ticks += 1
        full = rules.full_pass(self.ticks, self.tick_seconds)
        # Most ticks have nothing to do, and a hand-off arriving during the step waits for the lock: whether anything is
        # due is asked first, in one read outside the lock; the step reads again under it.
        if full or not await self._nothing_due():
            await self.change(
                f"tick/{uuid.uuid4()}", records.DESK, lambda tx: handlers.tick(tx, full, self.tick_seconds * 2)
            )
        await self._queue_updates()
        await self._republish()

    async def _nothing_due(self) -> bool:
        """True when the tick's step would find nothing to do (rules.tick_idle over store.TICK_DUE); starts the
        disconnected agents' clocks. Read on a pool connection while this process holds the lease; otherwise the
        step's own connection says so (Fenced) or takes the lease again."""
        if self.lease is not None and not self.lease.held():
            return False
        due = await store.tick_due(
            self.pool, list(self.memory.streams), rules.overflow_steps(self.rules), self.tick_seconds * 2
        )
        reconnect_over = bool(
            self.memory.past_reconnect(set(due["unconnected"]), time.monotonic(), self.rules.reconnect_seconds)
        )
        return rules.tick_idle(due, self.memory.signed_in_seen, reconnect_over)

    async def _queue_updates(self) -> None:
        """Waiting customers hear again, at most every queue_update_seconds, when their position improved while
        advisors serve their queue, or when advisors came or all went (no wait could be given, or now one can).
        Decided in PostgreSQL (store.QUEUE_NEWS), given which kinds of needs nobody signed in serves: a long queue that
        has nothing new is neither read nor sorted here every tick."""
        # One snapshot (and one now()) for both reads: a task that became due between them would be judged with
        # needs nobody looked at, as if advisors served it, and sent a message with no news.
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            kinds = await store.queue_due_kinds(conn, self.rules.queue_update_seconds)
            if not kinds:
                return
            signed_in = {
                language: await handlers.signed_in_agents(conn, self.memory, language)
                for language in {k["language"] for k in kinds}
            }
            unserved = [
                k for k in kinds if rules.serving(handlers.kind_of_need(k), signed_in[k["language"]], self.rules) == 0
            ]
            news = await store.queue_news(
                conn, self.rules.queue_update_seconds, self.rules.aging_seconds_per_point, unserved
            )
        for row in news:
            reply_id = f"{row['task_id']}/queued/{row['updates_sent'] + 1}"
            await self.change(
                reply_id,
                records.KAFKA,
                functools.partial(handlers.queue_update, task_id=row["task_id"], reply_id=reply_id),
            )

    async def _republish(self) -> None:
        """Outputs of agents' calls committed but not acknowledged before a crash are sent now."""
        for event_key in await store.unpublished(self.pool, records.DESK):
            await outbox.publish_pending(self.pool, self.producer, records.DESK, event_key)


def _event_key(event: pb.HandoffEvent) -> str:
    if event.HasField("handoff"):
        return f"{event.handoff.turns[-1].turn_id}/handoff"
    return f"{event.customer_message.turn_id}/message"


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
