"""routing: queues each hand-off as a task (language, skill, priority), persists it, and offers it
to an available agent over the AgentDesk gRPC API; agents accept, reply to the customer and close.

State lives in PostgreSQL (tasks, agents), so a restart loses no task or offer; live agent
streams are rebuilt from it when agents reconnect.
"""

import asyncio
import hashlib
import logging
import secrets
import uuid

import grpc
from aiokafka import ConsumerRecord
from google.protobuf import message as pb_message
from opentelemetry.trace import Link, get_current_span

from relais.classifier.catalogue import load_catalogue
from relais.common import bus, cloudevents, outbox, telemetry, topics, worker
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, conversation_pb2 as pb
from relais.common.runtime import serve
from relais.routing import rules

log = logging.getLogger(__name__)
SOURCE = "urn:relais:routing"
QUEUE_TEXT = {
    "fr": "Un conseiller va vous répondre. Vous êtes en position {position} ; attente estimée : {minutes} min.",
    "en": "An advisor will be with you shortly. You are number {position} in the queue; estimated wait: {minutes} min.",
}


class Routing(desk_grpc.AgentDeskServicer):
    def __init__(self, pool, producer, skill_by_intent: dict[str, str]):
        self.pool = pool
        self.producer = producer
        self.skill_by_intent = skill_by_intent
        self.streams: dict[str, asyncio.Queue] = {}

    # --- hand-offs from the bot (Kafka) ---

    async def handle(self, record: ConsumerRecord) -> None:
        try:
            event = pb.HandoffEvent.FromString(record.value or b"")
        except pb_message.DecodeError as error:
            raise bus.BadInput(f"bad protobuf: not a relais.v1.HandoffEvent ({error})") from None
        kind = event.WhichOneof("event")
        if kind == "handoff":
            context = event.handoff
            if not context.conversation_id or not context.turns:
                raise bus.BadInput("hand-off without conversation_id or turns")
            key = f"{context.turns[-1].turn_id}/handoff"
            apply = lambda conn: self._queue(conn, record, context, key)
        elif kind == "customer_message":
            turn = event.customer_message
            key = f"{turn.turn_id}/message"
            apply = lambda conn: self._append(conn, record, turn)
        else:
            raise bus.BadInput("empty HandoffEvent")
        await outbox.process_once(self.pool, self.producer, "routing", key, apply)
        await self.dispatch()

    async def _queue(self, conn, record, context: pb.ConversationContext, key: str) -> list[bus.Record]:
        with telemetry.consume_span("routing queue", record, **{"relais.conversation_id": context.conversation_id}):
            need = rules.requirement(context, self.skill_by_intent)
            task_id = f"task-{uuid.uuid5(uuid.NAMESPACE_URL, key)}"
            await conn.execute(
                "INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, traceparent)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                task_id, context.conversation_id, need.language, need.skill, need.priority,
                context.SerializeToString(), telemetry.current_traceparent(),
            )
            if await self._agent_available_for(conn, need):
                return []
            position = await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE status = 'queued' AND language = $1 AND priority >= $2",
                need.language, need.priority,
            )
            handle_s = await conn.fetchval(
                "SELECT avg(extract(epoch FROM closed_at - assigned_at)) FROM"
                " (SELECT closed_at, assigned_at FROM tasks WHERE status = 'closed' AND assigned_at IS NOT NULL"
                "  ORDER BY closed_at DESC LIMIT 50) recent"
            )
            wait = rules.expected_wait_seconds(position, float(handle_s) if handle_s else None)
            text = QUEUE_TEXT.get(need.language, QUEUE_TEXT["en"]).format(position=position, minutes=max(1, round(wait / 60)))
            return [cloudevents.reply(cloudevents.REPLY_QUEUE, SOURCE, f"{task_id}/queued", context.conversation_id, text,
                                      need.language, position=position, expected_wait_seconds=wait)]

    async def _append(self, conn, record, turn: pb.Turn) -> list[bus.Record]:
        """A message in a conversation already handed off: it joins the task, never the bot."""
        with telemetry.consume_span("routing customer message", record, **{"relais.conversation_id": turn.conversation_id}):
            task = await conn.fetchrow(
                "SELECT task_id, context, status, agent_id FROM tasks WHERE conversation_id = $1"
                " ORDER BY status = 'closed', created_at DESC LIMIT 1 FOR UPDATE",
                turn.conversation_id,
            )
            if task is None:
                raise bus.BadInput(f"no task for conversation {turn.conversation_id!r}")
            context = pb.ConversationContext.FromString(task["context"])
            context.turns.append(turn)
            if task["status"] == "closed":
                # The customer wrote again after the advisor closed: a new task, with the whole story.
                return await self._queue(conn, record, context, f"{turn.turn_id}/reopen")
            await conn.execute("UPDATE tasks SET context = $2 WHERE task_id = $1", task["task_id"], context.SerializeToString())
            if task["status"] in ("offered", "assigned"):
                self._push(task["agent_id"], desk.DeskEvent(customer_message=desk.CustomerMessage(task_id=task["task_id"], turn=turn)))
            return []

    async def _agent_available_for(self, conn, need: rules.Requirement) -> bool:
        agents = await conn.fetch("SELECT languages, skills FROM agents WHERE state = 'available'")
        return any(rules.eligible(a["languages"], a["skills"], need) for a in agents)

    async def dispatch(self) -> None:
        """Offers queued tasks, highest priority and oldest first, to the longest-idle eligible agent."""
        offers = []
        async with self.pool.acquire() as conn, conn.transaction():
            tasks = await conn.fetch(
                "SELECT task_id, language, skill, priority, context, traceparent FROM tasks WHERE status = 'queued'"
                " ORDER BY priority DESC, created_at LIMIT 200 FOR UPDATE SKIP LOCKED"
            )
            if not tasks:
                return
            agents = await conn.fetch(
                "SELECT agent_id, languages, skills FROM agents WHERE state = 'available'"
                " ORDER BY idle_since FOR UPDATE SKIP LOCKED"
            )
            free = list(agents)
            for task in tasks:
                need = rules.Requirement(task["language"], task["skill"], task["priority"])
                agent = next((a for a in free if rules.eligible(a["languages"], a["skills"], need)), None)
                if agent is None:
                    continue
                free.remove(agent)
                await conn.execute("UPDATE tasks SET status = 'offered', agent_id = $2, offered_at = now() WHERE task_id = $1",
                                   task["task_id"], agent["agent_id"])
                await conn.execute("UPDATE agents SET state = 'busy', updated_at = now() WHERE agent_id = $1", agent["agent_id"])
                offers.append((agent["agent_id"], task))
        for agent_id, task in offers:
            with self._conversation_span("routing offer", task["traceparent"], agent_id):
                context = pb.ConversationContext.FromString(task["context"])
                self._push(agent_id, desk.DeskEvent(offer=desk.Offer(task_id=task["task_id"], context=context)))

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

    # --- the AgentDesk API ---

    async def SignIn(self, request, context):
        if not request.agent_id.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agent_id is required")
        if not request.languages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at least one language is required")
        token = secrets.token_urlsafe(32)
        await self.pool.execute(
            "INSERT INTO agents (agent_id, display_name, languages, skills, state, token_sha256, idle_since)"
            " VALUES ($1, $2, $3, $4, 'available', $5, now()) ON CONFLICT (agent_id) DO UPDATE SET"
            " display_name = $2, languages = $3, skills = $4, token_sha256 = $5, updated_at = now(),"
            " state = CASE WHEN agents.state = 'offline' THEN 'available' ELSE agents.state END",
            request.agent_id, request.display_name, [l.lower() for l in request.languages],
            [s.lower() for s in request.skills] or [rules.GENERAL], _sha256(token),
        )
        await self.dispatch()
        return desk.SignInReply(token=token)

    async def SignOut(self, request, context):
        agent_id = await self._authenticate(context)
        await self.pool.execute("UPDATE agents SET state = 'offline', token_sha256 = '', updated_at = now() WHERE agent_id = $1", agent_id)
        return desk.SignOutReply()

    async def Subscribe(self, request, context):
        agent_id = await self._authenticate(context)
        stream: asyncio.Queue = asyncio.Queue()
        self.streams[agent_id] = stream
        try:
            # What this agent already holds, for a reconnect or a restart of routing.
            held = await self.pool.fetch(
                "SELECT task_id, status, context FROM tasks WHERE agent_id = $1 AND status IN ('offered', 'assigned') ORDER BY offered_at",
                agent_id,
            )
            sent = set()
            for task in held:
                ctx = pb.ConversationContext.FromString(task["context"])
                sent.add(task["task_id"])
                if task["status"] == "offered":
                    yield desk.DeskEvent(offer=desk.Offer(task_id=task["task_id"], context=ctx))
                else:
                    yield desk.DeskEvent(assignment=desk.Assignment(task_id=task["task_id"], context=ctx))
            while True:
                event = await stream.get()
                if event.HasField("offer") and event.offer.task_id in sent:
                    sent.discard(event.offer.task_id)
                    continue
                yield event
        finally:
            if self.streams.get(agent_id) is stream:
                del self.streams[agent_id]

    async def Accept(self, request, context):
        agent_id = await self._authenticate(context)
        task = await self._own_task(context, agent_id, request.task_id, "offered")
        await self.pool.execute("UPDATE tasks SET status = 'assigned', assigned_at = now() WHERE task_id = $1", request.task_id)
        ctx = pb.ConversationContext.FromString(task["context"])
        with self._conversation_span("routing assign", task["traceparent"], agent_id):
            await bus.publish(self.producer, [_outcome(f"{request.task_id}/assigned", ctx, pb.OUTCOME_KIND_ASSIGNED, agent_id)])
        return desk.AcceptReply(assignment=desk.Assignment(task_id=request.task_id, context=ctx))

    async def Reply(self, request, context):
        agent_id = await self._authenticate(context)
        if not request.text.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "text is empty")
        task = await self._own_task(context, agent_id, request.task_id, "assigned")
        ctx = pb.ConversationContext.FromString(task["context"])
        reply_id = f"{request.task_id}/reply/{uuid.uuid4()}"
        with self._conversation_span("routing agent reply", task["traceparent"], agent_id):
            await bus.publish(self.producer, [
                cloudevents.reply(cloudevents.REPLY_AGENT, SOURCE, reply_id, ctx.conversation_id, request.text,
                                  ctx.language, agent_id=agent_id),
                _outcome(reply_id, ctx, pb.OUTCOME_KIND_AGENT_REPLIED, agent_id),
            ])
        return desk.ReplyReply(reply_id=reply_id)

    async def Close(self, request, context):
        agent_id = await self._authenticate(context)
        task = await self._own_task(context, agent_id, request.task_id, "assigned")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE tasks SET status = 'closed', closed_at = now(), disposition = $2, resolved = $3 WHERE task_id = $1",
                request.task_id, request.disposition, request.resolved,
            )
            await conn.execute("UPDATE agents SET state = 'available', idle_since = now() WHERE agent_id = $1", agent_id)
        ctx = pb.ConversationContext.FromString(task["context"])
        outcome = _outcome(f"{request.task_id}/closed", ctx, pb.OUTCOME_KIND_CLOSED, agent_id,
                           disposition=request.disposition, resolved=request.resolved)
        await bus.publish(self.producer, [outcome])
        await self.dispatch()
        return desk.CloseReply()

    async def _authenticate(self, context) -> str:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if not auth.startswith("Bearer "):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing `authorization: Bearer <token>` metadata")
        agent_id = await self.pool.fetchval(
            "SELECT agent_id FROM agents WHERE token_sha256 = $1 AND state <> 'offline'", _sha256(auth[7:].strip())
        )
        if agent_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or signed-out token: sign in again")
        return agent_id

    async def _own_task(self, context, agent_id: str, task_id: str, status: str):
        task = await self.pool.fetchrow("SELECT agent_id, status, context, traceparent FROM tasks WHERE task_id = $1", task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        if task["agent_id"] != agent_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"task {task_id!r} is not yours")
        if task["status"] != status:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"task {task_id!r} is {task['status']}, not {status}")
        return task


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _outcome(outcome_id: str, ctx: pb.ConversationContext, kind: int, agent_id: str, **extra) -> bus.Record:
    outcome = pb.Outcome(outcome_id=outcome_id, conversation_id=ctx.conversation_id, kind=kind, intent=ctx.intent,
                         language=ctx.language, channel=ctx.channel, agent_id=agent_id, **extra)
    outcome.at.GetCurrentTime()
    return bus.Record(topics.OUTCOMES, ctx.conversation_id.encode(), outcome.SerializeToString(), telemetry.inject_headers())


async def build(w: worker.Worker) -> worker.Service:
    catalogue = load_catalogue()
    routing = Routing(w.pool, w.producer, {i.id: i.skill for i in catalogue.intents.values()})
    return worker.Service(
        handle=routing.handle, topics=(topics.HANDOFFS,),
        grpc_services=(desk.DESCRIPTOR.services_by_name["AgentDesk"].full_name,),
        register=lambda server: desk_grpc.add_AgentDeskServicer_to_server(routing, server),
    )


def main() -> None:
    serve("routing", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
