"""What an agent is shown: offers and assignments as they stand (context, transcript, note), the assist (summary and
suggestions, relais.routing.assist) drafted once per task version and pushed when ready, the customer's history; and
a committed transaction's effects delivered to the agents' streams. An offer never waits for its assist."""

import asyncio
import logging

from google.protobuf.message import DecodeError

from relais.common import logs
from relais.common.pb import agent_desk_pb2 as desk, conversation_pb2 as pb
from relais.routing import records, store, transcript_view
from relais.routing.memory import AssistJob, Memory
from relais.routing.unit import Effects

log = logging.getLogger(__name__)


def offer_key(offer: desk.Offer) -> tuple[str, int, int]:
    """One offer of a task: a re-offer of the same task (after a reject, a transfer, a timeout) has another expiry."""
    return offer.task_id, offer.expires_at.seconds, offer.expires_at.nanos


class DeskView:
    def __init__(self, pool, memory: Memory, assistant=None):
        self.pool, self.memory, self.assistant = pool, memory, assistant
        self.followups: set[asyncio.Task] = set()  # assists being drafted to follow their offer or message

    async def deliver(self, fx: Effects) -> None:
        """After a commit: the desk events, then the offers (each as it stands now), then the assists to follow."""
        for agent_id, event in fx.pushes:
            self.memory.push(agent_id, event)
        for task_id in fx.offers:
            task = await store.task(self.pool, task_id)
            if task is None or task["status"] != "offered":
                continue
            with records.conversation_span("routing offer", task["traceparent"], task["agent_id"]):
                offer = self.offer_message(task)  # never waits for assist: it follows when not drafted yet
                self.memory.push(task["agent_id"], desk.DeskEvent(offer=offer))
            logs.event(
                log, "offered", agent_id=task["agent_id"], conversation_id=task["conversation_id"], task_id=task_id
            )
            self.assist_follows(task["agent_id"], task_id, offer.context, task["kind"], offer.assist)
        for agent_id, task_id, context, kind in fx.assists:
            self.assist_follows(agent_id, task_id, context, kind, self._drafted(task_id, context, kind))

    def offer_message(self, task) -> desk.Offer:
        """The offer as it stands, never waiting for assist: inline when already drafted, else the caller sends it
        with `assist_follows`."""
        ctx = pb.ConversationContext.FromString(task["context"])
        offer = desk.Offer(
            task_id=task["task_id"],
            context=ctx,
            assist=self._drafted(task["task_id"], ctx, task["kind"]),
            priority=task["priority"],
            note=task["note"],
            callback=task["kind"] == "callback",
            transcript=transcript_view.transcript(ctx),
            callback_phone=task["callback_phone"],
        )
        if task["offer_expires_at"] is not None:
            offer.expires_at.FromDatetime(task["offer_expires_at"])
        return offer

    def assignment_message(self, task) -> desk.Assignment:
        ctx = pb.ConversationContext.FromString(task["context"])
        return desk.Assignment(
            task_id=task["task_id"],
            context=ctx,
            assist=self._drafted(task["task_id"], ctx, task["kind"]),
            note=task["note"],
            callback=task["kind"] == "callback",
            transcript=transcript_view.transcript(ctx),
            callback_phone=task["callback_phone"],
        )

    def assist_follows(
        self, agent_id: str, task_id: str, ctx: pb.ConversationContext, kind: str, sent: desk.AgentAssist
    ) -> None:
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
        assists = self.memory.assists
        try:
            assist = await asyncio.shield(job[1])
            if not assist.ByteSize() or assists.get(task_id) is not job or agent_id in job[2]:
                return
            holder = await store.holder(self.pool, task_id)
        except Exception:  # assist helps the agent; a lost query must not break routing
            log.warning("assist for %s not pushed", task_id, exc_info=True)
            return
        if holder == agent_id and agent_id not in job[2] and assists.get(task_id) is job:
            job[2].add(agent_id)
            self.memory.push(agent_id, desk.DeskEvent(assist=desk.AssistUpdate(task_id=task_id, assist=assist)))

    def _drafted(self, task_id: str, ctx: pb.ConversationContext, kind: str) -> desk.AgentAssist:
        """The assist for this version of the task if drafted already, else empty (never waits)."""
        job = self.memory.assists.get(task_id)
        if job is None or job[0] != _assist_version(ctx, kind) or not job[1].done() or job[1].cancelled():
            return desk.AgentAssist()
        return job[1].result()

    def _assist_job(self, task_id: str, ctx: pb.ConversationContext, kind: str) -> AssistJob:
        """(version, draft future, agents it was pushed to), started once per task, number of turns and kind."""
        version = _assist_version(ctx, kind)
        job = self.memory.assists.get(task_id)
        if job is None or job[0] != version:
            job = (version, asyncio.ensure_future(self._draft(task_id, ctx, kind)), set())
            self.memory.assists[task_id] = job
        return job

    async def assist(self, task_id: str, ctx: pb.ConversationContext, kind: str = "handoff") -> desk.AgentAssist:
        """Summary and suggestions from relais.routing.assist, drafted once per task, number of turns and kind (a task
        that becomes a callback gets suggestions for calling back, without a new turn). Waits for the draft: never on
        an offer's path (RecordSuggestionUse checks the suggestion against it)."""
        if self.assistant is None:
            return desk.AgentAssist()
        return await asyncio.shield(self._assist_job(task_id, ctx, kind)[1])

    async def _draft(self, task_id: str, ctx: pb.ConversationContext, kind: str) -> desk.AgentAssist:
        try:
            history = await self.history(ctx.customer.id, ctx.conversation_id)
            result = await asyncio.to_thread(self.assistant.assist, ctx, history, kind)
        except Exception:  # assist helps the agent; its failure must not cost them the offer
            log.exception("assist failed for %s", task_id)
            return desk.AgentAssist()
        return desk.AgentAssist(
            summary=result.summary,
            history_summary=result.history_summary,
            suggestions=[
                desk.Suggestion(
                    suggestion_id=s.suggestion_id, text=s.text, article_ids=list(s.article_ids), source=s.source
                )
                for s in result.suggestions
            ],
        )

    async def history(self, customer_id: str, conversation_id: str) -> list:
        """The customer's other conversations, newest first: what the bot or an advisor did with each."""
        if not customer_id:
            return []
        return [_past_contact(r) for r in await store.history(self.pool, customer_id, conversation_id)]


def _assist_version(ctx: pb.ConversationContext, kind: str) -> tuple[int, str]:
    return len(ctx.turns) + ctx.omitted_turns, kind  # a bounded context keeps its length


def _past_contact(row):
    from relais.routing.assist import PastContact

    if row["status"] is None:
        outcome = "handed_off" if row["handed_off"] else "bot_answered"
    elif row["status"] == "closed":
        outcome = "resolved" if row["resolved"] else (row["disposition"] or "unresolved")
    else:
        outcome = row["status"] if row["status"] == "abandoned" else "open"
    return PastContact(
        row["conversation_id"],
        row["created_at"],
        row["intent"] or _bot_intent(row["bot_context"]),
        outcome,
        (row["first_text"] or "")[:200],
    )


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
