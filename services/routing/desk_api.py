"""The AgentDesk gRPC API of the routing service: what agents call, and what they are shown.

Mixed into `Routing` (service.py), whose transactions (`change`), decisions (`_dispatch`, `_withdraw`,
`_release`, `_set_state`) and agents' streams it uses. Authorisation: a token per agent, sent as
`authorization: Bearer <token>`; only its SHA-256 is stored. An agent acts only on its own tasks.
"""

import asyncio
import hashlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError

from relais.common import bus, cloudevents, telemetry, topics, transcript
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, agent_events_pb2 as ev
from relais.common.pb import conversation_pb2 as pb
from relais.common.redact import redact
from relais.routing import records, rules, transcript_view

log = logging.getLogger(__name__)
USE_NAME = {ev.SUGGESTION_USE_USED: "used", ev.SUGGESTION_USE_EDITED: "edited", ev.SUGGESTION_USE_IGNORED: "ignored"}
MAX_REPLY_CHARS = 4000  # as a customer's message (RELAIS_MAX_TEXT_CHARS)


def offer_key(offer: desk.Offer) -> tuple[str, int, int]:
    """One offer of a task: a re-offer of the same task (after a reject, a transfer, a timeout) has another expiry."""
    return offer.task_id, offer.expires_at.seconds, offer.expires_at.nanos


@dataclass
class Effects:
    """What a transaction produced: records for the outbox, offers and desk events to push after commit, and the
    assists to draft after those pushes (agent, task, context, kind)."""
    records: list[bus.Record] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    pushes: list[tuple[str, desk.DeskEvent]] = field(default_factory=list)
    assists: list[tuple[str, str, pb.ConversationContext, str]] = field(default_factory=list)
    waiting: list["QueueNotice"] = field(default_factory=list)  # customers queued now, to be told their place
    # What this transaction read and none of its steps changes (who is signed in, recent handling times): read once.
    reads: dict = field(default_factory=dict)

    def clear(self) -> None:
        for part in (self.records, self.offers, self.pushes, self.assists, self.waiting):
            part.clear()
        self.reads.clear()


@dataclass
class QueueNotice:
    """A customer to tell their place in the queue: the task, the reply's id, the conversation."""
    task_id: str
    reply_id: str
    context: pb.ConversationContext


class AgentDeskApi(desk_grpc.AgentDeskServicer):
    async def SignIn(self, request, context):
        agent_id = request.agent_id.strip()
        if not agent_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agent_id is required")
        if "\x00" in agent_id or any("\x00" in s for s in [*request.languages, *request.skills]):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agent_id, languages and skills must not contain NUL")
        if not request.languages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at least one language is required")
        levels = {s.strip().lower(): 1 for s in request.skills if s.strip()}
        for skill in request.skill_levels:
            if not skill.skill.strip() or not 1 <= skill.level <= rules.MAX_LEVEL:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"skill {skill.skill!r}: level must be 1..{rules.MAX_LEVEL}, got {skill.level}")
            levels[skill.skill.strip().lower()] = skill.level
        capacity = dict(self.rules.default_capacity)
        for channel, n in request.capacity.items():
            if channel not in rules.CHANNELS or n < 0:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"capacity: channel must be one of {', '.join(rules.CHANNELS)} with n ≥ 0, got {channel}={n}")
            capacity[channel] = n
        token = secrets.token_urlsafe(32)

        async def apply(conn, fx):
            await conn.execute(
                "INSERT INTO agents (agent_id, display_name, languages, skills, skill_levels, capacity, token_sha256, idle_since)"
                " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, now()) ON CONFLICT (agent_id) DO UPDATE SET"
                " display_name = $2, languages = $3, skills = $4, skill_levels = $5::jsonb, capacity = $6::jsonb,"
                " token_sha256 = $7, updated_at = now()",
                agent_id, request.display_name, [lang.strip().lower() for lang in request.languages], sorted(levels),
                json.dumps(levels), json.dumps(capacity), _sha256(token))
            self.index = None
            held = await conn.fetchval("SELECT count(*) FROM tasks WHERE agent_id = $1 AND status IN ('offered', 'assigned')",
                                       agent_id)
            await self._set_state(conn, fx, agent_id, "busy" if held else "available", "sign_in", only_from=("offline", "break"))
            await self._dispatch(conn, fx)

        await self.change(f"sign-in/{uuid.uuid4()}", records.DESK, apply)
        return desk.SignInReply(token=token)

    async def SignOut(self, request, context):
        agent_id = await self._authenticate(context)

        async def apply(conn, fx):
            await self._sign_out(conn, fx, agent_id, "sign_out")
            await self._dispatch(conn, fx)

        await self.change(f"sign-out/{uuid.uuid4()}", records.DESK, apply)
        return desk.SignOutReply()

    async def SetState(self, request, context):
        agent_id = await self._authenticate(context)
        wanted = records.STATE_NAME.get(request.state, "")
        if wanted not in ("available", "break"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an agent sets only AVAILABLE or BREAK"
                                " (busy and wrap-up are set by routing; SignOut goes offline)")

        async def apply(conn, fx):
            held = await conn.fetchval("SELECT count(*) FROM tasks WHERE agent_id = $1 AND status IN ('offered', 'assigned')", agent_id)
            await self._set_state(conn, fx, agent_id, "busy" if wanted == "available" and held else wanted, "set_state")
            await self._dispatch(conn, fx)

        await self.change(f"state/{uuid.uuid4()}", records.DESK, apply)
        state = await self.pool.fetchval("SELECT state FROM agents WHERE agent_id = $1", agent_id)
        return desk.SetStateReply(state=records.STATE_ENUM[state])

    async def Subscribe(self, request, context):
        """What the agent holds (after a reconnect or a restart of routing, with all that arrived meanwhile), then
        every event as it happens. Only agents with a stream get offers: one connecting is dispatched to at once."""
        agent_id = await self._authenticate(context)
        stream: asyncio.Queue = asyncio.Queue()
        self.streams[agent_id] = stream
        self.disconnected.pop(agent_id, None)
        await context.send_initial_metadata(())  # the front end knows it is connected before any event
        try:
            held = await self.pool.fetch(
                # An offer that expired while the agent was away is the ticker's to withdraw and offer again, not shown.
                "SELECT * FROM tasks t WHERE agent_id = $1 AND (status = 'assigned' OR status = 'offered'"
                " AND offer_expires_at > now()) ORDER BY offered_at,"
                " (SELECT max(id) FROM task_events e WHERE e.task_id = t.task_id AND e.kind = 'offered')", agent_id)
            delivered = set()  # offers sent here that may also be in the queue: each exact offer is sent once
            for task in held:  # each with its assist when drafted already, else the assist follows
                if task["status"] == "offered":
                    message = self._offer_message(task)
                    delivered.add(offer_key(message))
                    yield desk.DeskEvent(offer=message)
                else:
                    message = self._assignment_message(task)
                    yield desk.DeskEvent(assignment=message)
                self._assist_follows(agent_id, task["task_id"], message.context, task["kind"], message.assist)
            await self.change(f"subscribe/{uuid.uuid4()}", records.DESK, lambda conn, fx: self._dispatch(conn, fx))
            while True:
                event = await stream.get()
                if event.HasField("offer") and offer_key(event.offer) in delivered:
                    delivered.discard(offer_key(event.offer))
                    continue
                yield event
        finally:
            if self.streams.get(agent_id) is stream:
                del self.streams[agent_id]
                self.disconnected[agent_id] = time.monotonic()

    async def Accept(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("offered",))

        async def apply(conn, fx):
            done = await conn.execute("UPDATE tasks SET status = 'assigned', assigned_at = now(), offer_expires_at = NULL"
                                      " WHERE task_id = $1 AND status = 'offered' AND agent_id = $2", request.task_id, agent_id)
            if done != "UPDATE 1":
                return
            await records.task_event(conn, request.task_id, "accepted", agent_id)
            task = await conn.fetchrow("SELECT context, traceparent FROM tasks WHERE task_id = $1", request.task_id)
            ctx = pb.ConversationContext.FromString(task["context"])
            with self._conversation_span("routing assign", task["traceparent"], agent_id):
                fx.records.append(records.outcome(f"{request.task_id}/assigned", ctx, pb.OUTCOME_KIND_ASSIGNED, agent_id))

        fx = await self.change(f"accept/{uuid.uuid4()}", records.DESK, apply)
        if not fx.records:  # the offer expired or was withdrawn meanwhile
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"the offer of task {request.task_id!r} is no longer yours to accept")
        task = await self.pool.fetchrow("SELECT * FROM tasks WHERE task_id = $1", request.task_id)
        assignment = self._assignment_message(task)
        self._push(agent_id, desk.DeskEvent(assignment=assignment))
        self._assist_follows(agent_id, request.task_id, assignment.context, task["kind"], assignment.assist)
        return desk.AcceptReply(assignment=assignment)

    async def Reject(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("offered",))

        async def apply(conn, fx):
            if await conn.fetchval("SELECT status FROM tasks WHERE task_id = $1 AND agent_id = $2 FOR UPDATE",
                                   request.task_id, agent_id) == "offered":
                await self._withdraw(conn, fx, request.task_id, agent_id, "rejected", declined=True)
                await self._dispatch(conn, fx)

        await self.change(f"reject/{uuid.uuid4()}", records.DESK, apply)
        return desk.RejectReply()

    async def Reply(self, request, context):
        """The message goes to the customer and into the task's context (the next advisor reads it), in one
        transaction with its outbox records."""
        agent_id = await self._authenticate(context)
        if not request.text.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "text is empty")
        if len(request.text) > MAX_REPLY_CHARS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"text is longer than {MAX_REPLY_CHARS} characters")
        await self._own_task(context, agent_id, request.task_id, ("assigned",))
        reply_id = f"{request.task_id}/reply/{uuid.uuid4()}"

        async def apply(conn, fx):
            task = await conn.fetchrow("SELECT context, traceparent FROM tasks WHERE task_id = $1 AND status = 'assigned'"
                                       " AND agent_id = $2 FOR UPDATE", request.task_id, agent_id)
            if task is None:
                return
            ctx = pb.ConversationContext.FromString(task["context"])
            # The customer gets the text as written; the copy kept in the context is redacted like every stored message.
            message = pb.AdvisorMessage(reply_id=reply_id, agent_id=agent_id, text=redact(request.text))
            message.sent_at.GetCurrentTime()
            transcript.append_advisor_message(ctx, message)
            await conn.execute("UPDATE tasks SET context = $2 WHERE task_id = $1", request.task_id, ctx.SerializeToString())
            with self._conversation_span("routing agent reply", task["traceparent"], agent_id):
                fx.records += [cloudevents.reply(cloudevents.REPLY_AGENT, records.SOURCE, reply_id, ctx.conversation_id,
                                                 request.text, ctx.language, agent_id=agent_id),
                               records.outcome(reply_id, ctx, pb.OUTCOME_KIND_AGENT_REPLIED, agent_id)]

        fx = await self.change(reply_id, records.DESK, apply)
        if not fx.records:  # closed or transferred meanwhile
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"task {request.task_id!r} is no longer assigned to you")
        return desk.ReplyReply(reply_id=reply_id)

    async def Transfer(self, request, context):
        agent_id = await self._authenticate(context)
        queue = request.queue.strip().lower()
        if not queue:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "queue (a skill, e.g. billing) is required")
        await self._own_task(context, agent_id, request.task_id, ("assigned",))
        note = redact(request.note)  # stored and shown to the next advisor: redacted like customer text

        async def apply(conn, fx):
            self.places = None  # it waits again
            done = await conn.execute(
                "UPDATE tasks SET status = 'queued', agent_id = NULL, required = $3::jsonb, preferred = '{}', stage = 0,"
                " queued_at = now(), note = $4, declined_by = ARRAY[$2] WHERE task_id = $1 AND status = 'assigned' AND agent_id = $2",
                request.task_id, agent_id, json.dumps({queue: 1}), note)
            if done == "UPDATE 1":
                await records.task_event(conn, request.task_id, "transferred", agent_id, detail=f"to {queue}: {note}")
                await self._release(conn, fx, agent_id, closed=False)
                await self._dispatch(conn, fx)

        await self.change(f"transfer/{uuid.uuid4()}", records.DESK, apply)
        return desk.TransferReply()

    async def Close(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("assigned",))

        async def apply(conn, fx):
            done = await conn.execute(
                "UPDATE tasks SET status = 'closed', closed_at = now(), disposition = $3, resolved = $4"
                " WHERE task_id = $1 AND status = 'assigned' AND agent_id = $2",
                request.task_id, agent_id, request.disposition, request.resolved)
            if done != "UPDATE 1":
                return
            await records.task_event(conn, request.task_id, "closed", agent_id, detail=request.disposition)
            await self._release(conn, fx, agent_id, closed=True)
            task = await conn.fetchrow("SELECT context, traceparent FROM tasks WHERE task_id = $1", request.task_id)
            ctx = pb.ConversationContext.FromString(task["context"])
            with self._conversation_span("routing close", task["traceparent"], agent_id):
                fx.records.append(records.outcome(f"{request.task_id}/closed", ctx, pb.OUTCOME_KIND_CLOSED, agent_id,
                                           disposition=request.disposition, resolved=request.resolved))
                fx.records.append(cloudevents.survey_request(records.SOURCE, f"{request.task_id}/survey",
                                                             ctx.conversation_id, ctx.language))
            await self._dispatch(conn, fx)

        await self.change(f"close/{uuid.uuid4()}", records.DESK, apply)
        self.assists.pop(request.task_id, None)
        return desk.CloseReply()

    async def GetCustomerHistory(self, request, context):
        agent_id = await self._authenticate(context)
        task = await self._own_task(context, agent_id, request.task_id, ("offered", "assigned"))
        reply = desk.HistoryReply()
        for past in await self._history(task["customer_id"], task["conversation_id"]):
            item = reply.conversations.add(conversation_id=past.conversation_id, intent=past.intent, outcome=past.outcome,
                                           summary=past.summary)
            if past.started_at:
                item.started_at.FromDatetime(past.started_at)
        return reply

    async def RecordSuggestionUse(self, request, context):
        agent_id = await self._authenticate(context)
        if request.use not in USE_NAME:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "use must be USED, EDITED or IGNORED")
        task = await self._own_task(context, agent_id, request.task_id, ("offered", "assigned"))
        ctx = pb.ConversationContext.FromString(task["context"])
        assist = await self._assist(request.task_id, ctx, task["kind"])
        suggestion = next((s for s in assist.suggestions if s.suggestion_id == request.suggestion_id), None)
        if suggestion is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no suggestion {request.suggestion_id!r} on task {request.task_id!r}")
        event = ev.AgentEvent(event_id=f"{request.task_id}/{request.suggestion_id}/{agent_id}", agent_id=agent_id,
                              suggestion_feedback=ev.SuggestionFeedback(
                                  task_id=request.task_id, conversation_id=ctx.conversation_id,
                                  suggestion_id=request.suggestion_id, use=request.use, intent=ctx.intent,
                                  language=ctx.language, source=suggestion.source, article_ids=suggestion.article_ids))
        event.at.GetCurrentTime()
        await bus.publish(self.producer, [bus.Record(topics.AGENT_EVENTS, agent_id.encode(), event.SerializeToString(),
                                                     telemetry.inject_headers())])
        return desk.SuggestionUseReply()

    async def _authenticate(self, context) -> str:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if not auth.startswith("Bearer "):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing `authorization: Bearer <token>` metadata")
        agent_id = await self.pool.fetchval(
            "SELECT agent_id FROM agents WHERE token_sha256 = $1 AND state <> 'offline'", _sha256(auth[7:].strip()))
        if agent_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or signed-out token: sign in again")
        return agent_id

    async def _own_task(self, context, agent_id: str, task_id: str, statuses: tuple[str, ...]):
        if not task_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id is required")
        if "\x00" in task_id:  # PostgreSQL text refuses it: a clear status, not UNKNOWN
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id must not contain NUL")
        task = await self.pool.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        if task["agent_id"] != agent_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"task {task_id!r} is not yours")
        if task["status"] not in statuses:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"task {task_id!r} is {task['status']}, not {' or '.join(statuses)}")
        return task

    # --- what the agent sees: context, assist, history ---

    def _offer_message(self, task) -> desk.Offer:
        """The offer as it stands, never waiting for assist: inline when already drafted, else the caller sends it
        with `_assist_follows`."""
        ctx = pb.ConversationContext.FromString(task["context"])
        offer = desk.Offer(task_id=task["task_id"], context=ctx, assist=self._drafted(task["task_id"], ctx, task["kind"]),
                           priority=task["priority"], note=task["note"], callback=task["kind"] == "callback",
                           transcript=transcript_view.transcript(ctx), callback_phone=task["callback_phone"])
        if task["offer_expires_at"] is not None:
            offer.expires_at.FromDatetime(task["offer_expires_at"])
        return offer

    def _assignment_message(self, task) -> desk.Assignment:
        ctx = pb.ConversationContext.FromString(task["context"])
        return desk.Assignment(task_id=task["task_id"], context=ctx, assist=self._drafted(task["task_id"], ctx, task["kind"]),
                               note=task["note"], callback=task["kind"] == "callback",
                               transcript=transcript_view.transcript(ctx), callback_phone=task["callback_phone"])

    def _assist_follows(self, agent_id: str, task_id: str, ctx: pb.ConversationContext, kind: str,
                        sent: desk.AgentAssist) -> None:
        """After an offer, assignment or customer message went out without its assist (`sent` empty: not drafted yet),
        drafts it and pushes it as an AssistUpdate on the same stream. Called after the push: drafting (a query, then
        a thread) never delays the message itself."""
        if self.assistant is None or sent.ByteSize():
            return
        followup = asyncio.create_task(self._push_assist(agent_id, task_id, ctx, kind))
        self.followups.add(followup)  # the loop keeps only weak references to tasks
        followup.add_done_callback(self.followups.discard)

    async def _push_assist(self, agent_id: str, task_id: str, ctx: pb.ConversationContext, kind: str) -> None:
        """Pushes the task's assist once drafted, to the agent still holding the task, once per draft and agent; a
        draft replaced meanwhile by a newer one (a new message) is not pushed: the newer one is, in its turn."""
        job = self._assist_job(task_id, ctx, kind)
        try:
            assist = await asyncio.shield(job[1])
            if not assist.ByteSize() or self.assists.get(task_id) is not job or agent_id in job[2]:
                return
            holder = await self.pool.fetchval(
                "SELECT agent_id FROM tasks WHERE task_id = $1 AND status IN ('offered', 'assigned')", task_id)
        except Exception:  # assist helps the agent; a lost query must not break routing
            log.warning("assist for %s not pushed", task_id, exc_info=True)
            return
        if holder == agent_id and agent_id not in job[2] and self.assists.get(task_id) is job:
            job[2].add(agent_id)
            self._push(agent_id, desk.DeskEvent(assist=desk.AssistUpdate(task_id=task_id, assist=assist)))

    def _drafted(self, task_id: str, ctx: pb.ConversationContext, kind: str) -> desk.AgentAssist:
        """The assist for this version of the task if drafted already, else empty (never waits)."""
        job = self.assists.get(task_id)
        if job is None or job[0] != _assist_version(ctx, kind) or not job[1].done() or job[1].cancelled():
            return desk.AgentAssist()
        return job[1].result()

    def _assist_job(self, task_id: str, ctx: pb.ConversationContext, kind: str):
        """(version, draft future, agents it was pushed to), started once per task, number of turns and kind."""
        version = _assist_version(ctx, kind)
        job = self.assists.get(task_id)
        if job is None or job[0] != version:
            job = (version, asyncio.ensure_future(self._draft(task_id, ctx, kind)), set())
            self.assists[task_id] = job
        return job

    async def _assist(self, task_id: str, ctx: pb.ConversationContext, kind: str = "handoff") -> desk.AgentAssist:
        """Summary and suggestions from relais.routing.assist, drafted once per task, number of turns and kind (a task
        that becomes a callback gets suggestions for calling back, without a new turn). Waits for the draft: never on
        an offer's path (RecordSuggestionUse checks the suggestion against it)."""
        if self.assistant is None:
            return desk.AgentAssist()
        return await asyncio.shield(self._assist_job(task_id, ctx, kind)[1])

    async def _draft(self, task_id: str, ctx: pb.ConversationContext, kind: str) -> desk.AgentAssist:
        try:
            history = await self._history(ctx.customer.id, ctx.conversation_id)
            result = await asyncio.to_thread(self.assistant.assist, ctx, history, kind)
        except Exception:  # assist helps the agent; its failure must not cost them the offer
            log.exception("assist failed for %s", task_id)
            return desk.AgentAssist()
        return desk.AgentAssist(summary=result.summary, history_summary=result.history_summary, suggestions=[
            desk.Suggestion(suggestion_id=s.suggestion_id, text=s.text, article_ids=list(s.article_ids), source=s.source)
            for s in result.suggestions])

    async def _history(self, customer_id: str, conversation_id: str) -> list:
        """The customer's other conversations, newest first: what the bot or an advisor did with each."""
        if not customer_id:
            return []
        rows = await self.pool.fetch(
            "SELECT c.conversation_id, c.created_at, b.handed_off, b.context AS bot_context, t.status, t.disposition,"
            " t.resolved, t.intent,"
            " (SELECT text FROM turns WHERE conversation_id = c.conversation_id ORDER BY seq LIMIT 1) AS first_text"
            " FROM conversations c LEFT JOIN bot_conversations b USING (conversation_id)"
            " LEFT JOIN LATERAL (SELECT status, disposition, resolved, intent FROM tasks WHERE conversation_id = c.conversation_id"
            "   ORDER BY created_at DESC LIMIT 1) t ON true"
            " WHERE c.customer_id = $1 AND c.conversation_id <> $2 ORDER BY c.created_at DESC LIMIT 10",
            customer_id, conversation_id)
        return [_past_contact(r) for r in rows]



def _assist_version(ctx: pb.ConversationContext, kind: str) -> tuple[int, str]:
    return len(ctx.turns) + ctx.omitted_turns, kind  # a bounded context keeps its length


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _past_contact(row):
    from relais.routing.assist import PastContact

    if row["status"] is None:
        outcome = "handed_off" if row["handed_off"] else "bot_answered"
    elif row["status"] == "closed":
        outcome = "resolved" if row["resolved"] else (row["disposition"] or "unresolved")
    else:
        outcome = row["status"] if row["status"] == "abandoned" else "open"
    return PastContact(row["conversation_id"], row["created_at"], row["intent"] or _bot_intent(row["bot_context"]), outcome,
                       (row["first_text"] or "")[:200])


def _bot_intent(context: bytes | None) -> str:
    """What the bot understood of a conversation no advisor had: its last answer's intent, else its turns' classification."""
    from relais.routing.assist import conversation_intent

    if not context:
        return ""
    try:
        ctx = pb.ConversationContext.FromString(context)
    except DecodeError:  # a history line without intent beats no history
        return ""
    answered = [a.intent for a in ctx.bot_attempts if a.intent]
    return answered[-1] if answered else conversation_intent(ctx, guess=False)
