"""routing: turns each hand-off into a task (language, skills with levels, priority — rules.py and
routing_rules.yaml), offers it to the best eligible agent as a timed reservation over the AgentDesk gRPC
API, and follows it to the end: accept or reject, re-offer after a timeout, overflow, transfer, close.
Waiting customers get their position and expected wait; they can leave or ask for a callback.

Every change is one PostgreSQL transaction (tasks, agents, task_events) whose outgoing records go
through the outbox (relais.common.unit_of_work, every service's), so a restart — even SIGKILL — loses no task and no reservation: the state is the
database, and a ticker expires offers, ends wrap-ups, applies overflow and re-dispatches. One active routing
process at a time, holding the lease (relais.common.lease) on the connection its decisions are made on; a
standby takes over when it dies. The active's lock serialises decisions and it holds the agents' live streams.
The agents' calls are in desk_api.py; the decisions themselves, pure, in rules.py.
"""

import asyncio
import gc
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import asyncpg
from aiokafka import ConsumerRecord
from google.protobuf import message as pb_message
from opentelemetry.trace import Link, get_current_span

from relais.classifier.catalogue import load_catalogue
from relais.common import bus, cloudevents, outbox, telemetry, topics, transcript, worker
from relais.common.lease import Fenced, Lease
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, conversation_pb2 as pb
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork, headers_json, mark_published
from relais.routing import records, rules, texts, transcript_view
from relais.routing.places import Places
from relais.routing.desk_api import AgentDeskApi, Effects, QueueNotice

log = logging.getLogger(__name__)
PLACES_CHECK_SECONDS = 1.0  # how long the remembered places may go unchecked against the database
AGENT_COLUMNS = ("agent_id, token_sha256, languages, skill_levels::text AS levels, capacity::text AS capacity,"
                 " extract(epoch FROM idle_since) AS idle, state")
TASK_COLUMNS = ("task_id, language, channel, required::text AS required, priority, extract(epoch FROM queued_at) AS queued,"
                " preferred, stage, declined_by, extract(epoch FROM due_at) AS due")
# Who is signed in (each agent with its sign-in's token), as one value: it changes with every sign-in and sign-out.
SIGNED_IN = ("SELECT coalesce(md5(string_agg(agent_id || ' ' || token_sha256, ',' ORDER BY agent_id)), '') FROM agents"
             " WHERE state <> 'offline'")
# The languages someone signed in speaks (as ARRAY(...), read once per statement, not once per task).
SPOKEN = "SELECT DISTINCT unnest(languages) FROM agents WHERE state <> 'offline'"
# The agents signed in without a stream here ($1: those with one).
UNCONNECTED = "SELECT agent_id FROM agents WHERE state <> 'offline' AND agent_id <> ALL($1::text[])"


def _overflow_due(steps: str, count: str) -> str:
    """The waiting tasks due their next overflow step (`steps`: the steps' after_seconds, `count`: how many): stage by
    stage, each a range of the tasks_waiting_by_stage index, not a pass over the queue."""
    return f"""
SELECT t.task_id, t.stage, date_part('epoch', now() - t.queued_at) AS waited
FROM generate_subscripts({steps}::float8[], 1) AS step,
     LATERAL (SELECT task_id, stage, queued_at FROM tasks WHERE status = 'queued' AND stage = step - 1
                     AND queued_at <= now() - make_interval(secs => ({steps}::float8[])[step])
                     AND (due_at IS NULL OR due_at <= now())) t
WHERE step <= {count}"""


OVERFLOW_DUE = _overflow_due("$1", "$2")
# What the ticker's step would act on, in one read: the same conditions as its own queries (tick), each as a yes or no.
TICK_DUE = f"""
SELECT ARRAY({UNCONNECTED}) AS unconnected, ({SIGNED_IN}) AS signed_in,
       EXISTS (SELECT FROM tasks WHERE status = 'offered' AND offer_expires_at < now()) AS expired,
       EXISTS (SELECT FROM agents WHERE state = 'wrap_up' AND state_until < now()) AS wrap_up_over,
       EXISTS ({_overflow_due("$2", "$3")}) AS overflow,
       EXISTS (SELECT FROM tasks WHERE status = 'queued' AND stage < $3 AND queued_at >= now() - interval '5 seconds'
               AND language = ANY (ARRAY({SPOKEN}))) AS widen,
       EXISTS (SELECT FROM tasks WHERE status = 'queued' AND due_at BETWEEN now() - make_interval(secs => $4) AND now()) AS callback
"""
# The waiting customers due to hear again (not told for queue_update_seconds, $1): their kinds of needs.
QUEUE_DUE = ("status = 'queued' AND kind = 'handoff' AND coalesce(last_update_at, queued_at) < now() - make_interval(secs => $1)")
QUEUE_DUE_KINDS = f"SELECT DISTINCT language, channel, required::text AS required, stage FROM tasks WHERE {QUEUE_DUE}"
# Of those, the ones with news: nobody serves their needs now and they were not told so (or the reverse), or advisors
# serve them and their place improved since they were told it. $2: aging_seconds_per_point; $3-$6: the kinds of needs
# nobody serves. Places in rules.queue_order's order, each queue sorted once, and only when a customer due in it is
# served (told nobody serves them, they have no place to hear).
QUEUE_NEWS = f"""
WITH unserved AS (SELECT * FROM unnest($3::text[], $4::text[], $5::jsonb[], $6::int[]) AS u (language, channel, required, stage)),
due AS (SELECT t.task_id, t.language, t.updates_sent, t.last_position, t.told_nobody,
               EXISTS (SELECT FROM unserved u WHERE (u.language, u.channel, u.required, u.stage)
                                                  = (t.language, t.channel, t.required, t.stage)) AS nobody
        FROM tasks t WHERE {QUEUE_DUE}),
q AS (SELECT task_id, language, queued_at,
             priority + floor(greatest(0, date_part('epoch', now() - queued_at)) / $2)::int AS eff
      FROM tasks WHERE status = 'queued' AND (due_at IS NULL OR due_at <= now())
                       AND language IN (SELECT language FROM due WHERE NOT nobody)),
places AS (SELECT task_id, row_number() OVER (PARTITION BY language COLLATE "C"
                                              ORDER BY eff DESC, queued_at, task_id COLLATE "C") AS place FROM q)
SELECT due.task_id, due.updates_sent FROM due LEFT JOIN places USING (task_id)
WHERE due.nobody <> due.told_nobody OR (NOT due.nobody AND (due.last_position IS NULL OR coalesce(places.place, 0) < due.last_position))
ORDER BY due.task_id"""
# A hand-off that an agent can take at once, in one statement (one round trip, its own transaction, committed —
# fsync included — before PostgreSQL answers): the deduplication row, the task already offered, its 'queued' and
# 'offered' steps, the agent's reservation and, when the agent was available, its state change in the outbox.
# A redelivered hand-off finds its processed_events row and changes nothing.
HANDOFF_OFFERED = """
WITH first AS (
    INSERT INTO processed_events (consumer, event_key) VALUES ('routing', $1) ON CONFLICT DO NOTHING RETURNING event_key),
t AS (
    INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, traceparent, kind, customer_id, intent,
                       channel, required, preferred, status, agent_id, offered_at, offer_expires_at)
    SELECT $2, $3, $4, $5, $6, $7, $8, 'handoff', $9, $10, $11, $12::jsonb, $13, 'offered', $15, now(),
           now() + make_interval(secs => $16) FROM first
    RETURNING task_id, offer_expires_at),
steps AS (
    INSERT INTO task_events (task_id, kind, agent_id, detail)
    SELECT t.task_id, s.kind, s.agent_id, s.detail FROM t,
           (VALUES (1, 'queued', '', $14::text), (2, 'offered', $15::text, '')) AS s (n, kind, agent_id, detail) ORDER BY s.n),
old AS (SELECT state FROM agents WHERE agent_id = $15 AND EXISTS (SELECT FROM t) FOR UPDATE),
a AS (
    UPDATE agents SET idle_since = now(), updated_at = now(),
           state = CASE WHEN old.state = 'available' THEN 'busy' ELSE old.state END
    FROM old WHERE agents.agent_id = $15 RETURNING old.state AS previous),
o AS (
    INSERT INTO outbox (consumer, event_key, seq, topic, key, value, headers)
    SELECT 'routing', $1, 0, $17, $18, $19, $20 FROM a WHERE a.previous = 'available')
SELECT EXISTS (SELECT FROM t) AS first, (SELECT offer_expires_at FROM t) AS expires, (SELECT previous FROM a) AS previous
"""


class Routing(AgentDeskApi):
    """The hand-offs from Kafka, the decisions and the ticker; the agents' calls are in desk_api.py."""

    def __init__(self, pool, producer, routing_rules: rules.RoutingRules, skill_by_intent: dict[str, str],
                 assistant=None, tick_seconds: float = 1.0, lease: Lease | None = None):
        self.pool = pool
        # With a lease (an active and a standby process), the decision connection is the one holding it: a process that
        # lost the lease has no connection to decide on (relais.common.lease).
        self.lease = lease
        self.producer = producer
        self.rules = routing_rules
        self.skill_by_intent = skill_by_intent
        self.assistant = assistant
        self.tick_seconds = tick_seconds
        self.lock = asyncio.Lock()  # one decision at a time
        # The agents' live Subscribe streams: only these agents get offers (an offer nobody sees holds a customer).
        self.streams: dict[str, asyncio.Queue] = {}
        # Signed-in agents without a stream here, since when (monotonic): their front end is gone, has not
        # subscribed yet, or routing restarted. They keep what they hold; after reconnect_seconds they are signed out.
        self.disconnected: dict[str, float] = {}
        # task_id -> ((turns, kind), assist drafted, agents it was pushed to): desk_api.py
        self.assists: dict[str, tuple[tuple[int, str], asyncio.Future, set[str]]] = {}
        self.followups: set[asyncio.Task] = set()  # assists being drafted to follow their offer or message
        self.ticks = 0
        self.profiles: dict[tuple[str, str], tuple] = {}  # (agent, token) -> languages, levels, capacity
        # The agents who may receive offers, with their load: read from the database when None, kept up to date by
        # offers, and dropped by any other change to an agent (this process is the only writer, under its lock).
        self.index: dict[str, rules.Agent] | None = None
        # rules.ranking of the index's agents per kind of need (rules.needs_signature): profiles only, so valid until the
        # index is read again.
        self.rankings: dict[tuple, tuple[tuple[str, ...], ...]] = {}
        # The waiting customers' places (places.py): read from the database when None, kept up to date as hand-offs are
        # queued and offered, and dropped by any other change to who waits (a withdrawn offer, a transfer, a callback...).
        self.places: Places | None = None
        self.places_checked = 0.0  # when (monotonic) they were last found to match the database
        # The connection the decisions use, one at a time under the lock: kept, not taken from the pool and reset each time.
        self.conn = None

    async def _decision_conn(self):
        if self.lease is not None:
            conn = await self.lease.connection()  # Fenced when another process holds the lease
            if conn is not self.conn:  # taken again after a lost connection: what memory holds may be stale
                self.index, self.places, self.signed_in_seen = None, None, None
            self.conn = conn
            return conn
        if self.conn is not None and _lost(self.conn):
            await self._drop_conn()
        if self.conn is None:
            self.conn = await self.pool.acquire()
        return self.conn

    async def _drop_conn(self) -> None:
        """After a failure, a connection still sound (not lost, its transaction rolled back) is kept: giving back the
        lease's would release the lease. Otherwise it goes back to the pool (which resets or replaces it) and the next
        change takes another (with a lease: takes the lease again, if nobody else did meanwhile)."""
        conn = self.conn
        if conn is None:
            return
        if self.lease is not None:
            if not _lost(conn) and not conn.is_in_transaction():
                return
            self.conn = None
            await self.lease.drop()
            return
        self.conn = None
        try:
            await self.pool.release(conn)
        except Exception:
            log.warning("decision connection not released cleanly", exc_info=True)

    async def close(self) -> None:
        async with self.lock:
            if self.lease is not None:
                self.conn = None  # the worker gives the lease back
            else:
                await self._drop_conn()

    async def take_over(self) -> None:
        """This process just took the lease: what it remembers from an earlier active period is stale. Agents count as
        disconnected from now (they have reconnect_seconds to subscribe here); the agents' index is read again."""
        async with self.lock:
            self.conn, self.index, self.places, self.signed_in_seen = None, None, None, None
            self.disconnected.clear()

    # --- one state change: a transaction with its outbox records, then the pushes ---

    async def change(self, key: str, consumer: str, apply: Callable[[object, Effects], Awaitable[None]]) -> Effects:
        """Kafka events (consumer "routing") are applied once per key; agents' calls and ticks (DESK) always."""
        fx = Effects()

        async def run(conn) -> list[bus.Record]:
            fx.clear()  # a retried transaction starts afresh
            await apply(conn, fx)
            fx.records += await self._position_messages(conn, fx, fx.waiting)
            return list(fx.records)

        async with self.lock:
            conn = await self._decision_conn()
            unit = UnitOfWork(consumer, conn, marks=[])  # relais.common's, as every service's
            try:
                async with conn.transaction():
                    first = consumer != "routing" or bool(await unit.first_time([key]))
                    if first:
                        unit.emit(key, await run(conn))
                    await unit.store()
            except BaseException:
                self.index, self.places = None, None  # they may hold what was rolled back
                await self._drop_conn()
                raise
        # Committed: the agents hear first (the decision's latency), then the records go out and are marked sent
        # (a redelivered event re-sends what was not acknowledged).
        await self._push_all(fx)
        if unit.outputs:
            await bus.publish(self.producer, unit.outputs)
            async with self.pool.acquire() as marking:
                await mark_published(marking, consumer, unit.marks)
        return fx

    async def _push_all(self, fx: Effects) -> None:
        for agent_id, event in fx.pushes:
            self._push(agent_id, event)
        for task_id in fx.offers:
            task = await self.pool.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
            if task is None or task["status"] != "offered":
                continue
            with self._conversation_span("routing offer", task["traceparent"], task["agent_id"]):
                offer = self._offer_message(task)  # never waits for assist: it follows when not drafted yet
                self._push(task["agent_id"], desk.DeskEvent(offer=offer))
            self._assist_follows(task["agent_id"], task_id, offer.context, task["kind"], offer.assist)
        for agent_id, task_id, context, kind in fx.assists:
            self._assist_follows(agent_id, task_id, context, kind, self._drafted(task_id, context, kind))

    # --- hand-offs and customer messages (Kafka) ---

    @staticmethod
    def decode(record: ConsumerRecord) -> pb.HandoffEvent:
        try:
            event = pb.HandoffEvent.FromString(record.value or b"")
        except pb_message.DecodeError as error:
            raise bus.BadInput(f"bad protobuf: not a relais.v1.HandoffEvent ({error})") from None
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
        alone for which an agent is free takes the one-statement path (HANDOFF_OFFERED)."""
        if len(items) == 1 and items[0].value.HasField("handoff"):
            item = items[0]
            if await self._handoff_offered(item.record, item.value.handoff, _event_key(item.value)):
                return
        fx = Effects()
        async with self.lock:
            conn = await self._decision_conn()
            unit.conn = conn
            try:
                async with conn.transaction():
                    await self._apply_batch(conn, fx, items, unit)
                    await unit.store()
            except BaseException:
                self.index, self.places = None, None  # they may hold what was rolled back
                await self._drop_conn()
                raise
        await self._push_all(fx)  # committed: the agents hear first, then the loop sends the records

    async def _apply_batch(self, conn, fx: Effects, items: list[Item], unit: UnitOfWork) -> None:
        keys = [_event_key(item.value) for item in items]
        new = await unit.first_time(keys, [item.record for item in items])
        told: list[tuple[str, QueueNotice]] = []  # (event key, customer to tell) not told yet

        async def tell() -> None:
            for (key, _), reply in zip(told, await self._position_messages(conn, fx, [notice for _, notice in told])):
                unit.emit(key, [reply])
            told.clear()

        for item, key in zip(items, keys):
            if key not in new:
                continue
            new.discard(key)  # the same event twice in one poll: applied once
            event = item.value
            conversation_id = event.handoff.conversation_id or event.customer_message.conversation_id
            if any(notice.context.conversation_id == conversation_id for _, notice in told):
                await tell()  # their place first, then what follows in the conversation
            records_before, waiting_before = len(fx.records), len(fx.waiting)
            if event.HasField("handoff"):
                with telemetry.consume_span("routing queue", item.record, **{"relais.conversation_id": conversation_id}):
                    await self._queue(conn, fx, event.handoff, key)
            else:
                with telemetry.consume_span("routing customer message", item.record,
                                            **{"relais.conversation_id": conversation_id}):
                    await self._customer_message(conn, fx, item.record, event.customer_message)
            unit.emit(key, fx.records[records_before:])
            told += [(key, notice) for notice in fx.waiting[waiting_before:]]
        await tell()

    async def _handoff_offered(self, record: ConsumerRecord, context: pb.ConversationContext, key: str) -> bool:
        """The common case, an agent free for the new task: decided from memory, written in one statement (HANDOFF_OFFERED),
        then offered. False when nobody can take it now, or when the hand-off was seen before: the general path
        (handle_batch) queues it, or sends again what it stored."""
        need = rules.requirement(context, self.rules, self.skill_by_intent)
        task_id = _task_id(key)
        async with self.lock:
            conn = await self._decision_conn()
            try:
                await self._load_index(conn)
                new = rules.Task(task_id, need.language, need.channel, need.required, need.priority, time.time(), need.preferred)
                best = self._best_connected(new)  # what assign([new], ...) would choose
                if best is None:
                    return False
                agent_id = best.agent_id
                with telemetry.consume_span("routing queue", record, **{"relais.conversation_id": context.conversation_id}):
                    traceparent = telemetry.current_traceparent()
                    busy = records.state_event(agent_id, "available", "busy", "offer")  # stored only if it was available
                    row = await conn.fetchrow(
                        HANDOFF_OFFERED, key, task_id, context.conversation_id, need.language, ",".join(need.required),
                        need.priority, context.SerializeToString(), traceparent, context.customer.id, context.intent,
                        need.channel, json.dumps(need.required), list(need.preferred),
                        f"needs {_needs(need.required)} in {need.language}, priority {need.priority}",
                        agent_id, float(self.rules.offer_timeout_seconds), busy.topic, busy.key, busy.value,
                        headers_json(busy.headers))
            except BaseException:
                self.index, self.places = None, None
                await self._drop_conn()
                raise
            if not row["first"]:
                return False  # seen before: the general path sends again what was stored for it, if anything
            agent = self.index.get(agent_id)
            self.index[agent_id] = replace(agent, load=agent.load | {need.channel: agent.load.get(need.channel, 0) + 1},
                                           idle_since=time.time(), state="busy")
        # Committed: the agent hears first, without waiting for assist; then the state change (if any) goes out; only
        # then is the assist drafted (a query, then a thread holding the GIL), and it follows on the agent's stream.
        with self._conversation_span("routing offer", traceparent, agent_id):
            offer = desk.Offer(task_id=task_id, context=context, priority=need.priority, callback=False,
                               transcript=transcript_view.transcript(context))
            offer.expires_at.FromDatetime(row["expires"])
            self._push(agent_id, desk.DeskEvent(offer=offer))
        if row["previous"] == "available":
            await outbox.publish_pending(self.pool, self.producer, "routing", key)
        self._assist_follows(agent_id, task_id, context, "handoff", offer.assist)
        return True

    async def _queue(self, conn, fx: Effects, context: pb.ConversationContext, key: str, kind: str = "handoff") -> str:
        need = rules.requirement(context, self.rules, self.skill_by_intent)
        task_id = _task_id(key)
        new = rules.Task(task_id, need.language, need.channel, need.required, need.priority, time.time(), need.preferred)
        # Nobody signed in could take it at its requirement: widened at once to the overflow stage where someone can.
        stage = rules.widened_stage(new, await self._signed_in(conn, need.language, fx), self.rules) or 0
        queued_at = await conn.fetchval(
            "WITH t AS (INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, traceparent, kind,"
            " customer_id, intent, channel, required, preferred, stage)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $15) RETURNING task_id, queued_at)"
            " INSERT INTO task_events (task_id, kind, detail) SELECT task_id, 'queued', $14 FROM t"
            " RETURNING (SELECT date_part('epoch', queued_at) FROM t)",
            task_id, context.conversation_id, need.language, ",".join(need.required), need.priority,
            context.SerializeToString(), telemetry.current_traceparent(), kind, context.customer.id, context.intent,
            need.channel, json.dumps(need.required), list(need.preferred),
            f"needs {_needs(need.required)} in {need.language}, priority {need.priority}", stage,
        )
        if self.places is not None:
            self.places.add(task_id, need.language, need.priority, queued_at)
        if stage:
            await records.task_event(conn, task_id, "overflow", detail=self._widened_detail(new, stage))
            new = replace(new, stage=stage)
        await self._dispatch(conn, fx, new_task=new)
        if task_id not in fx.offers:  # told their place once the transaction's (or the batch's) tasks are all queued
            fx.waiting.append(QueueNotice(task_id, f"{task_id}/queued", context))
        return task_id

    async def _customer_message(self, conn, fx: Effects, record, turn: pb.Turn) -> None:
        """A message in a conversation already handed off: it joins the task, never the bot."""
        task = await conn.fetchrow(
            "SELECT * FROM tasks WHERE conversation_id = $1 ORDER BY status IN ('queued', 'offered', 'assigned') DESC,"
            " created_at DESC LIMIT 1 FOR UPDATE", turn.conversation_id)
        if task is None:
            raise bus.BadInput(f"no task for conversation {turn.conversation_id!r}")
        context = pb.ConversationContext.FromString(task["context"])
        if task["status"] in ("closed", "abandoned"):
            if rules.closing_pleasantry(turn.text, turn.classification):
                await self._after_end(conn, fx, task, turn)
                return
            # A new request after the end: a new task with the whole story, required for what is asked now.
            transcript.append_turn(context, turn)
            _new_request(context, turn)
            await self._queue(conn, fx, context, f"{turn.turn_id}/reopen")
            return
        transcript.append_turn(context, turn)  # within the same byte budget as the bot's
        await conn.execute("UPDATE tasks SET context = $2 WHERE task_id = $1", task["task_id"], context.SerializeToString())
        choice, phone = None, ""
        if task["status"] in ("queued", "offered") and task["kind"] == "handoff":
            phone = await self._phone(conn, task)
            if task["phone_asked_at"] is not None and phone and rules.customer_choice(turn.text, False) != "leave":
                await self._callback(conn, fx, task, context, turn, phone)  # the answer to "which number?"
                return
            offered = task["callback_offered"] or await self._serving(conn, task) == 0
            choice = rules.customer_choice(turn.text, callback_offered=offered)
        elif task["status"] in ("queued", "offered"):  # a callback task: the customer may still leave
            choice = rules.customer_choice(turn.text, callback_offered=False)
        if choice == "leave":
            await self._abandon(conn, fx, task, context, turn)
        elif choice == "callback" and phone:
            await self._callback(conn, fx, task, context, turn, phone)
        elif choice == "callback":
            await self._ask_phone(conn, fx, task, turn)
        else:
            await records.task_event(conn, task["task_id"], "customer_message", detail=turn.turn_id)
            if task["status"] in ("offered", "assigned"):  # the refreshed assist follows, drafted after commit
                fx.pushes.append((task["agent_id"], desk.DeskEvent(customer_message=desk.CustomerMessage(
                    task_id=task["task_id"], turn=turn))))
                fx.assists.append((task["agent_id"], task["task_id"], context, task["kind"]))

    async def _after_end(self, conn, fx: Effects, task, turn: pb.Turn) -> None:
        """A thank-you or goodbye after the conversation ended: no task; a short polite reply, once."""
        answered = await conn.fetchval("SELECT EXISTS (SELECT FROM task_events WHERE task_id = $1 AND kind = 'after_end')",
                                       task["task_id"])
        await records.task_event(conn, task["task_id"], "after_end", detail=turn.turn_id)
        if not answered:
            language = task["language"]
            fx.records.append(cloudevents.reply(cloudevents.REPLY_QUEUE, records.SOURCE, f"{turn.turn_id}/goodbye",
                                                turn.conversation_id, texts.say(language, texts.GOODBYE_TEXT), language, status="ended"))

    async def _abandon(self, conn, fx: Effects, task, context: pb.ConversationContext, turn: pb.Turn) -> None:
        if self.places is not None:
            self.places.discard(task["task_id"])
        await conn.execute("UPDATE tasks SET status = 'abandoned', closed_at = now(), disposition = 'abandoned',"
                           " resolved = false, callback_phone = '' WHERE task_id = $1", task["task_id"])
        await records.task_event(conn, task["task_id"], "abandoned", detail=f"waited {await _waited(conn, task['task_id'])} s")
        if task["status"] == "offered":
            await self._withdraw(conn, fx, task["task_id"], task["agent_id"], "customer_left")
        language = task["language"]
        fx.records += [
            cloudevents.reply(cloudevents.REPLY_QUEUE, records.SOURCE, f"{turn.turn_id}/left", context.conversation_id,
                              texts.say(language, texts.LEFT_TEXT), language, status="left"),
            records.outcome(f"{task['task_id']}/abandoned", context, pb.OUTCOME_KIND_CLOSED, "", disposition="abandoned"),
        ]
        self.assists.pop(task["task_id"], None)

    async def _callback(self, conn, fx: Effects, task, context: pb.ConversationContext, turn: pb.Turn, phone: str) -> None:
        """The customer stops waiting; the task, with the number to call, waits for its due time on the voice channel:
        once the expected wait is over, or when nobody serves the queue, as soon as an advisor is there (at the
        center's next opening when it is closed). The time is told in the customer's time zone."""
        now = datetime.now(timezone.utc)
        serving = await self._serving(conn, task)
        if serving:
            position = (await self._places(conn)).place(task["task_id"], now.timestamp())
            wait = rules.expected_wait_seconds(position, await self._recent_handle(conn, task["language"]), serving, self.rules)
            due = now + timedelta(seconds=wait)
        else:
            due = rules.callback_due(now, None, self.rules.center)
        if task["status"] == "offered":
            await self._withdraw(conn, fx, task["task_id"], task["agent_id"], "callback")
        self.places = None  # it waits from its due time now
        await conn.execute("UPDATE tasks SET kind = 'callback', channel = 'voice', due_at = $2, queued_at = $2,"
                           " callback_phone = $3, phone_asked_at = NULL WHERE task_id = $1", task["task_id"], due, phone)
        await records.task_event(conn, task["task_id"], "callback_requested", detail=f"due {due.isoformat()}")
        language = task["language"]
        zone = rules.customer_zone(turn.customer.time_zone or context.customer.time_zone, self.rules.center)
        promised = {}
        if serving or due > now:
            text = texts.say(language, (texts.CALLBACK_TEXT, {"at": lambda lang: rules.spoken_time(due, zone, lang, now)}))
            promised = {"callback_due_at": due.astimezone(zone).isoformat()}
        else:
            text = texts.say(language, texts.CALLBACK_SOON_TEXT)
        fx.records.append(cloudevents.reply(cloudevents.REPLY_QUEUE, records.SOURCE, f"{turn.turn_id}/callback",
                                            context.conversation_id, text, language, status="callback", **promised))

    async def _ask_phone(self, conn, fx: Effects, task, turn: pb.Turn) -> None:
        """A callback with no number known: the customer is asked for it and keeps their place meanwhile. Intake keeps
        the number of the answer (relais.common.customer_contact) — never in the turn, which says [PHONE]."""
        await conn.execute("UPDATE tasks SET phone_asked_at = now() WHERE task_id = $1", task["task_id"])
        await records.task_event(conn, task["task_id"], "callback_phone_asked", detail=turn.turn_id)
        language = task["language"]
        fx.records.append(cloudevents.reply(cloudevents.REPLY_QUEUE, records.SOURCE, f"{turn.turn_id}/phone",
                                            turn.conversation_id, texts.say(language, texts.PHONE_TEXT), language,
                                            status="callback_phone_requested"))

    async def _phone(self, conn, task) -> str:
        """The number to call this customer back on, as intake kept it for the conversation ('' when unknown)."""
        return await conn.fetchval("SELECT callback_phone FROM conversations WHERE conversation_id = $1",
                                   task["conversation_id"]) or ""

    # --- waiting customers ---

    async def _places(self, conn) -> Places:
        """The places, read again when the database says other tasks wait than those remembered (something changed
        the queue behind routing: an operator, a script); checked at most once a second, one count per language."""
        now = time.monotonic()
        if self.places is not None and now - self.places_checked >= PLACES_CHECK_SECONDS:
            self.places_checked = now
            counts = dict(await conn.fetch("SELECT language, count(*) FROM tasks WHERE status = 'queued' GROUP BY 1"))
            if counts != self.places.counts():
                log.warning("waiting tasks changed behind routing (%s in the database, %s remembered): read again",
                            counts, self.places.counts())
                self.places = None
        if self.places is None:
            self.places, self.places_checked = await load_places(conn, self.rules.aging_seconds_per_point), now
        return self.places

    async def _position_messages(self, conn, fx: Effects, waiting: list[QueueNotice]) -> list[bus.Record]:
        """Each waiting customer's place, expected wait and choices (one reply each, in `waiting`'s order). The places
        are counted in memory (places.py): a long queue costs a few bisections per customer, not a pass over it."""
        if not waiting:
            return []
        rows = {r["task_id"]: r for r in await conn.fetch(f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ANY($1::text[])",
                                                           [w.task_id for w in waiting])}
        places = await self._places(conn)
        now = datetime.now(timezone.utc)
        replies, told = [], []
        for w in waiting:
            row = rows[w.task_id]
            language, position = row["language"], places.place(w.task_id, now.timestamp())
            serving = rules.serving(_task(row), await self._signed_in(conn, language, fx), self.rules)
            waits = rules.waiting(position, await self._recent_handle(conn, language, fx), serving, now, self.rules)
            told.append((w.task_id, position, waits.callback_offered, waits.wait_seconds is None))
            replies.append(self._position_reply(w, language, position, waits, now))
        await conn.execute(
            "UPDATE tasks SET last_position = t.position, last_update_at = now(), updates_sent = updates_sent + 1,"
            " callback_offered = t.callback_offered, told_nobody = t.told_nobody"
            " FROM unnest($1::text[], $2::int[], $3::bool[], $4::bool[]) AS t(task_id, position, callback_offered, told_nobody)"
            " WHERE tasks.task_id = t.task_id", *map(list, zip(*told)))
        return replies

    def _position_reply(self, w: QueueNotice, language: str, position: int, waiting: rules.Waiting, now: datetime) -> bus.Record:
        context = w.context
        zone = rules.customer_zone(context.customer.time_zone or (context.turns[-1].customer.time_zone if context.turns
                                                                  else ""), self.rules.center)
        data = {"position": position, "status": "waiting", "callback_offered": waiting.callback_offered,
                "advisors_available": waiting.wait_seconds is not None}
        if waiting.wait_seconds is not None:
            data["expected_wait_seconds"] = waiting.wait_seconds
            first = {"text": texts.QUEUE_TEXT, "position": position, "minutes": max(1, round(waiting.wait_seconds / 60))}
        elif waiting.opens_at is not None:
            data["opens_at"] = waiting.opens_at.astimezone(zone).isoformat()
            first = {"text": texts.CLOSED_TEXT, "opens": lambda lang: rules.spoken_time(waiting.opens_at, zone, lang, now)}
        else:
            first = {"text": texts.NOBODY_TEXT}
        offer = {"callback": lambda lang: texts.CALLBACK_OFFER[lang] if waiting.callback_offered else ""}
        text = texts.say(language, (first.pop("text"), first), (texts.CHOICES_TEXT, offer))
        return cloudevents.reply(cloudevents.REPLY_QUEUE, records.SOURCE, w.reply_id, context.conversation_id, text, language,
                                 **data)

    async def _recent_handle(self, conn, language: str, fx: Effects | None = None) -> float | None:
        """The average handling time of the language's last 50 closed tasks (None until there are some); read once per
        transaction given its `fx`."""
        key = ("recent_handle", language)
        if fx is not None and key in fx.reads:
            return fx.reads[key]
        handle = await conn.fetchval(
            "SELECT avg(extract(epoch FROM closed_at - assigned_at)) FROM (SELECT closed_at, assigned_at FROM tasks"
            " WHERE status = 'closed' AND language = $1 AND assigned_at IS NOT NULL ORDER BY closed_at DESC LIMIT 50) recent",
            language)
        handle = float(handle) if handle else None
        if fx is not None:
            fx.reads[key] = handle
        return handle

    async def _signed_in(self, conn, language: str | None = None, fx: Effects | None = None) -> list[rules.Agent]:
        """The agents signed in (in any state but offline), of one language or all; read once per transaction given its
        `fx` (only the agents' calls and the ticker sign agents in or out, each in its own transaction)."""
        key = ("signed_in", language)
        if fx is not None and key in fx.reads:
            return fx.reads[key]
        rows = await conn.fetch(f"SELECT {AGENT_COLUMNS} FROM agents WHERE state <> 'offline'"
                                " AND ($1::text IS NULL OR $1 = ANY(languages))", language)
        agents = [self._agent(r, {}) for r in rows]
        if fx is not None:
            fx.reads[key] = agents
        return agents

    async def _serving(self, conn, task) -> int:
        """How many signed-in advisors serve this task's queue (rules.serving)."""
        row = await conn.fetchrow(f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = $1", task["task_id"])
        return rules.serving(_task(row), await self._signed_in(conn, row["language"]), self.rules)

    def _widened_detail(self, task: rules.Task, stage: int) -> str:
        needs, queue = rules.needs_at_stage(task.required, task.stage, self.rules)
        before = f"queue {queue}" if queue else _needs(needs)
        return f"{_overflow_detail(stage, self.rules)} at once: no advisor signed in for {before} in {task.language}"

    # --- dispatch: the best eligible agent for each waiting task, as a timed reservation ---

    async def _dispatch(self, conn, fx: Effects, new_task: rules.Task | None = None) -> None:
        """Offers waiting tasks; a new task is matched alone (the others already found nobody)."""
        await self._load_index(conn)
        if new_task is not None:
            tasks = [new_task]
            agents = [a for a in self._connected() if new_task.language in a.languages]
        else:
            agents = self._connected()
            # Only a task in the language of an agent with room can be offered: the others (a long queue nobody here
            # speaks, or everyone full) are not read at all.
            languages = {lang for a in agents if any(rules.has_room(a, channel) for channel in a.capacity)
                         for lang in a.languages}
            if not languages:
                return
            tasks = [_task(r) for r in await conn.fetch(f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'queued'"
                                                        " AND (due_at IS NULL OR due_at <= now()) AND language = ANY($1::text[])",
                                                        list(languages))]
        if not tasks or not agents:
            return
        channels = {t.task_id: t.channel for t in tasks}
        for offered_task, agent_id in rules.assign(tasks, agents, time.time(), self.rules):
            await self._offer(conn, fx, offered_task, agent_id, channels[offered_task])

    async def _load_index(self, conn) -> None:
        if self.index is None:
            rows = await conn.fetch(f"SELECT {AGENT_COLUMNS} FROM agents WHERE state IN ('available', 'busy')")
            load: dict[str, dict[str, int]] = {}
            for row in await conn.fetch("SELECT agent_id, channel, count(*) AS n FROM tasks"
                                        " WHERE status IN ('offered', 'assigned') GROUP BY 1, 2"):
                load.setdefault(row["agent_id"], {})[row["channel"]] = row["n"]
            self.index = {r["agent_id"]: self._agent(r, load.get(r["agent_id"], {})) for r in rows}
            self.rankings = {}

    def _best_connected(self, task: rules.Task) -> rules.Agent | None:
        """rules.best_agent over the connected agents, read from the ranking of the task's needs (rules.best_ranked): a
        hand-off looks at the best-matched agents only, not at every agent signed in."""
        signature = rules.needs_signature(task)
        groups = self.rankings.get(signature)
        if groups is None:
            groups = self.rankings[signature] = rules.ranking(task, self.index.values(), self.rules)
        return rules.best_ranked(task, groups, self.index, self.streams)

    def _connected(self) -> list[rules.Agent]:
        """The agents who may get offers: in the index, with a live stream here (a reconnecting agent is dispatched
        to as it subscribes)."""
        return [agent for agent_id, agent in self.index.items() if agent_id in self.streams]

    async def _offer(self, conn, fx: Effects, task_id: str, agent_id: str, channel: str) -> None:
        await conn.execute(
            "WITH o AS (UPDATE tasks SET status = 'offered', agent_id = $2, offered_at = now(),"
            " offer_expires_at = now() + make_interval(secs => $3) WHERE task_id = $1 AND status = 'queued' RETURNING task_id)"
            " INSERT INTO task_events (task_id, kind, agent_id) SELECT task_id, 'offered', $2 FROM o",
            task_id, agent_id, self.rules.offer_timeout_seconds)
        previous = await conn.fetchval(
            "UPDATE agents a SET idle_since = now(), updated_at = now(),"
            " state = CASE WHEN old.state = 'available' THEN 'busy' ELSE old.state END"
            " FROM (SELECT state FROM agents WHERE agent_id = $1 FOR UPDATE) old WHERE a.agent_id = $1 RETURNING old.state",
            agent_id)
        if previous == "available":
            fx.records.append(records.state_event(agent_id, previous, "busy", "offer"))
        if self.places is not None:
            self.places.discard(task_id)
        fx.offers.append(task_id)
        agent = (self.index or {}).get(agent_id)
        if agent is None:
            self.index = None
        else:
            self.index[agent_id] = replace(agent, load=agent.load | {channel: agent.load.get(channel, 0) + 1},
                                           idle_since=time.time(), state="busy")

    async def _withdraw(self, conn, fx: Effects, task_id: str, agent_id: str, reason: str, declined: bool = False) -> None:
        """The offer leaves the agent: back to the queue (unless the task ended), the agent freed."""
        self.index, self.places = None, None
        await conn.execute(
            "UPDATE tasks SET status = CASE WHEN status = 'offered' THEN 'queued' ELSE status END, offer_expires_at = NULL,"
            " agent_id = CASE WHEN status = 'offered' THEN NULL ELSE agent_id END,"
            " declined_by = CASE WHEN $3 THEN array_append(declined_by, $2) ELSE declined_by END WHERE task_id = $1",
            task_id, agent_id, declined)
        if reason in ("timeout", "rejected"):
            await records.task_event(conn, task_id, "offer_timeout" if reason == "timeout" else "rejected", agent_id)
        fx.pushes.append((agent_id, desk.DeskEvent(offer_withdrawn=desk.OfferWithdrawn(task_id=task_id, reason=reason))))
        await self._release(conn, fx, agent_id, closed=False)

    async def _sign_out(self, conn, fx: Effects, agent_id: str, cause: str) -> None:
        """Offers withdrawn, open conversations back to the queue ahead of newcomers (their first queued_at kept) and
        their customers told so, the agent's token revoked, offline."""
        for row in await conn.fetch("SELECT task_id FROM tasks WHERE agent_id = $1 AND status = 'offered'", agent_id):
            await self._withdraw(conn, fx, row["task_id"], agent_id, "signed_out")
        why = "signed out" if cause == "sign_out" else "was disconnected"
        self.places = None  # their open conversations wait again
        for row in await conn.fetch("UPDATE tasks SET status = 'queued', agent_id = NULL, stage = 0, declined_by = ARRAY[$1],"
                                    " note = $2 WHERE agent_id = $1 AND status = 'assigned'"
                                    " RETURNING task_id, conversation_id, language",
                                    agent_id, f"the previous advisor {why}"):
            await records.task_event(conn, row["task_id"], "requeued", agent_id, detail=f"agent {why}")
            fx.records.append(cloudevents.reply(
                cloudevents.REPLY_QUEUE, records.SOURCE, f"{row['task_id']}/requeued/{uuid.uuid4()}", row["conversation_id"],
                texts.requeued_notice(row["language"], cause == "sign_out"), row["language"], status="requeued"))
        await conn.execute("UPDATE agents SET token_sha256 = '' WHERE agent_id = $1", agent_id)
        await self._set_state(conn, fx, agent_id, "offline", cause)
        self.disconnected.pop(agent_id, None)

    async def _sign_out_disconnected(self, conn, fx: Effects) -> bool:
        """Signs out the agents without a stream for reconnect_seconds; True when one was."""
        now, signed_out = time.monotonic(), False
        unconnected = {r["agent_id"] for r in await conn.fetch(UNCONNECTED, list(self.streams))}
        for agent_id in self._past_reconnect(unconnected, now):
            log.info("agent %s signed out: no connection for %.0f s", agent_id, now - self.disconnected[agent_id])
            await self._sign_out(conn, fx, agent_id, "not_connected")
            signed_out = True
        return signed_out

    def _past_reconnect(self, unconnected: set[str], now: float) -> list[str]:
        """Keeps since when each agent signed in without a stream here has been so (forgetting the others); returns
        those without one for reconnect_seconds."""
        unconnected = unconnected - set(self.streams)  # subscribed while the agents were read
        for agent_id in set(self.disconnected) - unconnected:
            del self.disconnected[agent_id]
        return [agent_id for agent_id in unconnected
                if now - self.disconnected.setdefault(agent_id, now) >= self.rules.reconnect_seconds]

    async def _release(self, conn, fx: Effects, agent_id: str, closed: bool) -> None:
        self.index = None
        state = await conn.fetchval("SELECT state FROM agents WHERE agent_id = $1", agent_id)
        left = await conn.fetchval("SELECT count(*) FROM tasks WHERE agent_id = $1 AND status IN ('offered', 'assigned')", agent_id)
        new = rules.state_after_release(state, left, closed)
        if closed:
            await conn.execute("UPDATE agents SET idle_since = now() WHERE agent_id = $1", agent_id)
        await self._set_state(conn, fx, agent_id, new, "close" if closed else "offer_withdrawn",
                              until=self.rules.wrap_up_seconds if new == "wrap_up" else None)

    async def _set_state(self, conn, fx: Effects, agent_id: str, state: str, cause: str,
                         only_from: tuple[str, ...] | None = None, until: float | None = None) -> None:
        previous = await conn.fetchval("SELECT state FROM agents WHERE agent_id = $1", agent_id)
        if previous == state or (only_from is not None and previous not in only_from):
            return
        self.index = None
        await conn.execute("UPDATE agents SET state = $2, state_until = now() + make_interval(secs => $3),"
                           " updated_at = now() WHERE agent_id = $1", agent_id, state, until or 0)
        fx.records.append(records.state_event(agent_id, previous, state, cause))

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
        full = self.ticks % max(1, round(30 / self.tick_seconds)) == 0

        async def step(conn, fx):
            # A full pass every 30 s as a safety net; otherwise only when something changed (aging alone changes no one's
            # eligibility, and new tasks, closes, rejects and sign-ins dispatch in their own transactions).
            changed = full
            changed |= await self._sign_out_disconnected(conn, fx)
            for row in await conn.fetch("SELECT task_id, agent_id FROM tasks WHERE status = 'offered'"
                                        " AND offer_expires_at < now() FOR UPDATE"):
                await self._withdraw(conn, fx, row["task_id"], row["agent_id"], "timeout", declined=True)
                changed = True
            for agent_id in await conn.fetch("SELECT agent_id FROM agents WHERE state = 'wrap_up' AND state_until < now()"):
                await self._set_state(conn, fx, agent_id["agent_id"], "available", "wrap_up_over")
                changed = True
            steps = [step.after_seconds for step in self.rules.overflow]
            for row in await conn.fetch(OVERFLOW_DUE, steps, len(steps)):  # only the tasks whose next step is due
                stage = rules.overflow_stage(float(row["waited"]), self.rules)
                if stage > row["stage"]:
                    await conn.execute("UPDATE tasks SET stage = $2, declined_by = '{}' WHERE task_id = $1", row["task_id"], stage)
                    await records.task_event(conn, row["task_id"], "overflow", detail=_overflow_detail(stage, self.rules))
                    changed = True
            changed |= await self._widen(conn, full=full)
            changed = changed or await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE status = 'queued' AND due_at BETWEEN now() - make_interval(secs => $1)"
                " AND now())", self.tick_seconds * 2)
            if changed:
                await self._dispatch(conn, fx)

        # Most ticks have nothing to do, and a hand-off arriving during the step waits for the lock: whether anything is
        # due is asked first, in one read outside the lock; the step reads again under it.
        if full or not await self._nothing_due():
            await self.change(f"tick/{uuid.uuid4()}", records.DESK, step)
        await self._queue_updates()
        await self._republish()

    signed_in_seen: str | None = None  # who was signed in at the last widening pass (SIGNED_IN)

    async def _nothing_due(self) -> bool:
        """True when the tick's step would find nothing to do (TICK_DUE: no agent disconnected for too long, no offer
        expired, no wrap-up over, no overflow step due, nothing to widen, no callback due); starts the disconnected
        agents' clocks. Read on a pool connection while this process holds the lease; otherwise the step's own
        connection says so (Fenced) or takes the lease again."""
        if self.lease is not None and not self.lease.held():
            return False
        steps = [step.after_seconds for step in self.rules.overflow]
        due = await self.pool.fetchrow(TICK_DUE, list(self.streams), steps, len(steps), self.tick_seconds * 2)
        if self._past_reconnect(set(due["unconnected"]), time.monotonic()):
            return False
        return due["signed_in"] == self.signed_in_seen and not (
            due["expired"] or due["wrap_up_over"] or due["overflow"] or due["widen"] or due["callback"])

    async def _widen(self, conn, full: bool) -> bool:
        """Waiting tasks that no signed-in advisor could take are widened at once to the overflow stage where one can
        (rules.widened_stage): every task when who is signed in changed (a sign-in, a sign-out) and at the full pass,
        else those (re)queued in the last seconds (a transfer to a queue nobody signed in serves)."""
        seen = await conn.fetchval(SIGNED_IN)
        every = full or seen != self.signed_in_seen
        self.signed_in_seen = seen
        # Only a task in a language someone signed in speaks can be widened (else no stage would do): the others, a long
        # queue nobody here speaks, are not read.
        recent = "" if every else " AND queued_at >= now() - interval '5 seconds'"  # a range of tasks_waiting_since
        rows = await conn.fetch(f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'queued' AND stage < $1{recent}"
                                f" AND language = ANY (ARRAY({SPOKEN}))", len(self.rules.overflow))
        if not rows:
            return False
        agents = await self._signed_in(conn)
        stages: dict[tuple, int | None] = {}  # the same needs widen the same way
        widened = False
        for row in rows:
            task = _task(row)
            signature = (task.language, task.channel, tuple(sorted(task.required.items())), task.stage)
            if signature not in stages:
                stages[signature] = rules.widened_stage(task, agents, self.rules)
            stage = stages[signature]
            if stage is not None and stage > task.stage:
                await conn.execute("UPDATE tasks SET stage = $2, declined_by = '{}' WHERE task_id = $1", task.task_id, stage)
                await records.task_event(conn, task.task_id, "overflow", detail=self._widened_detail(task, stage))
                widened = True
        return widened

    async def _queue_updates(self) -> None:
        """Waiting customers hear again, at most every queue_update_seconds, when their position improved while
        advisors serve their queue, or when advisors came or all went (no wait could be given, or now one can).
        Decided in PostgreSQL (QUEUE_NEWS), given which kinds of needs nobody signed in serves: a long queue that has
        nothing new is neither read nor sorted here every tick."""
        # One snapshot (and one now()) for both reads: a task that became due between them would be judged with
        # needs nobody looked at, as if advisors served it, and sent a message with no news.
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            kinds = await conn.fetch(QUEUE_DUE_KINDS, self.rules.queue_update_seconds)
            if not kinds:
                return
            signed_in = {language: await self._signed_in(conn, language) for language in {k["language"] for k in kinds}}
            unserved = [k for k in kinds if rules.serving(rules.Task("", k["language"], k["channel"], json.loads(k["required"]),
                                                                     0, 0.0, stage=k["stage"]),
                                                          signed_in[k["language"]], self.rules) == 0]
            news = await conn.fetch(QUEUE_NEWS, self.rules.queue_update_seconds, self.rules.aging_seconds_per_point,
                                    [k["language"] for k in unserved], [k["channel"] for k in unserved],
                                    [k["required"] for k in unserved], [k["stage"] for k in unserved])
        for row in news:
            reply_id = f"{row['task_id']}/queued/{row['updates_sent'] + 1}"

            async def update(conn, fx, task_id=row["task_id"], reply_id=reply_id):
                context = pb.ConversationContext.FromString(await conn.fetchval("SELECT context FROM tasks WHERE task_id = $1", task_id))
                fx.waiting.append(QueueNotice(task_id, reply_id, context))

            await self.change(reply_id, "routing", update)

    async def _republish(self) -> None:
        """Outputs of agents' calls committed but not acknowledged before a crash are sent now."""
        stale = await self.pool.fetch("SELECT DISTINCT event_key FROM outbox WHERE consumer = $1 AND NOT published"
                                      " AND created_at < now() - interval '5 seconds'", records.DESK)
        for row in stale:
            await outbox.publish_pending(self.pool, self.producer, records.DESK, row["event_key"])

    # --- shared by the decisions and the API ---

    def _agent(self, row, load: dict[str, int]) -> rules.Agent:
        # Languages, levels and capacity change only at sign-in, which also changes the token: parse them once.
        key = (row["agent_id"], row["token_sha256"])
        if key not in self.profiles:
            self.profiles[key] = (frozenset(row["languages"]), json.loads(row["levels"]), json.loads(row["capacity"]))
        languages, levels, capacity = self.profiles[key]
        return rules.Agent(row["agent_id"], languages, levels, capacity, load, float(row["idle"]), row["state"])

    def _push(self, agent_id: str, event: desk.DeskEvent) -> None:
        stream = self.streams.get(agent_id)
        if stream is not None:
            stream.put_nowait(event)

    def _conversation_span(self, name: str, traceparent: str, agent_id: str):
        """A span in the conversation's trace, linked to the agent's own call when there is one."""
        caller = get_current_span().get_span_context()
        links = [Link(caller)] if caller.is_valid else []
        parent = telemetry.context_from_traceparent(traceparent)
        return telemetry.tracer().start_as_current_span(name, context=parent, links=links, attributes={"relais.agent_id": agent_id})


async def load_places(conn, aging_seconds_per_point: float) -> Places:
    """The waiting customers' places as the database has them (rules.queue_order's order)."""
    places = Places(aging_seconds_per_point)
    for row in await conn.fetch("SELECT task_id, language, priority, date_part('epoch', queued_at) AS queued FROM tasks"
                                " WHERE status = 'queued'"):
        places.add(row["task_id"], row["language"], row["priority"], row["queued"])
    return places


def _lost(conn) -> bool:
    """The kept connection is closed, or asyncpg took it back when the server went away (a database restart): it
    then detaches the pool's proxy, on which every call, is_closed() included, raises InterfaceError."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


def _task(row) -> rules.Task:
    return rules.Task(row["task_id"], row["language"], row["channel"], json.loads(row["required"]), row["priority"],
                      float(row["queued"]), tuple(row["preferred"]), row["stage"], frozenset(row["declined_by"]),
                      float(row["due"]) if row["due"] is not None else None)


async def _waited(conn, task_id: str) -> int:
    return int(await conn.fetchval("SELECT extract(epoch FROM now() - created_at) FROM tasks WHERE task_id = $1", task_id))


def _needs(required: dict[str, int]) -> str:
    return ", ".join(f"{skill} ≥ {level}" for skill, level in sorted(required.items())) or "no skill"


def _overflow_detail(stage: int, routing_rules: rules.RoutingRules) -> str:
    step = routing_rules.overflow[stage - 1]
    return f"stage {stage}: " + (f"levels relaxed by {step.relax_levels}" if step.relax_levels else "") + \
        (f"queue {step.queue}" if step.queue else "")


def _new_request(context: pb.ConversationContext, turn: pb.Turn) -> None:
    """The context of a new contact in the same conversation: the whole story, and what the customer asks now (the
    intent the classifier is sure of, else a request for a person)."""
    c = turn.classification
    context.intent = c.intent if c.intent and not c.out_of_scope else ""
    context.reason = pb.HANDOFF_REASON_CUSTOMER_REQUEST
    context.reasons[:] = [pb.HANDOFF_REASON_CUSTOMER_REQUEST]
    context.reason_detail = "the customer wrote again after the conversation ended"
    context.handed_off_at.GetCurrentTime()


def _event_key(event: pb.HandoffEvent) -> str:
    if event.HasField("handoff"):
        return f"{event.handoff.turns[-1].turn_id}/handoff"
    return f"{event.customer_message.turn_id}/message"


def _task_id(key: str) -> str:
    return f"task-{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def _assistant():
    """The agent assistant (relais.routing.assist), or None when it cannot be built: routing runs without it."""
    try:
        from relais.routing.assist import Assistant

        return Assistant.from_env()
    except Exception:
        log.exception("agent assist unavailable; offers go out without summary and suggestions")
        return None


async def build(w: worker.Worker) -> worker.Service:
    # Assist drafts in a thread (after its offer is pushed) while the next decisions may be in flight; when a commit
    # answers, the event loop must get the GIL back within half a millisecond, not after the default 5 ms switch interval.
    sys.setswitchinterval(0.0005)
    catalogue = load_catalogue()
    routing_rules = rules.load_rules(known_intents=catalogue.intents)
    # One active routing process, any number of standbys: the lease (docs/operations.md, "Routing: active and standby").
    lease = Lease(w.pool, "routing", os.environ.get("RELAIS_ADVERTISED_ADDR", "").strip() or w.settings.grpc_addr)
    routing = Routing(w.pool, w.producer, routing_rules, {i.id: i.skill for i in catalogue.intents.values()},
                      _assistant(), float(os.environ.get("RELAIS_ROUTING_TICK_SECONDS") or 1.0), lease)
    # What was loaded to start (libraries, the catalogue, the assistant's knowledge base: ~120,000 objects) lives as long
    # as the process: kept out of the collector's full passes, each of which stalled every decision for 70-100 ms.
    gc.collect()
    gc.freeze()
    return worker.Service(
        decode=routing.decode, handle_batch=routing.handle_batch, own_transaction=True, topics=(topics.HANDOFFS,),
        grpc_services=(desk.DESCRIPTOR.services_by_name["AgentDesk"].full_name,),
        register=lambda server: desk_grpc.add_AgentDeskServicer_to_server(routing, server),
        background=(routing.run_ticker,),
        close=routing.close,
        lease=lease, on_active=routing.take_over,
    )


def main() -> None:
    serve("routing", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
