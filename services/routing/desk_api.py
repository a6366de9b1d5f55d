"""The AgentDesk gRPC API of the routing service, a thin edge given the application (app.Routing): each call checks
its request and its caller, runs the use case, and answers with a reply or a status.

Authorisation: a token per agent, sent as `authorization: Bearer <token>`; only its SHA-256 is stored. An agent
acts only on its own tasks.
"""

from contextlib import aclosing

import grpc

from relais.common.agent_events import SUGGESTION_USES
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc
from relais.common.redact import redact
from relais.routing import records, rules
from relais.routing.app import Routing

MAX_REPLY_CHARS = 4000  # as a customer's message (RELAIS_MAX_TEXT_CHARS)


class AgentDesk(desk_grpc.AgentDeskServicer):
    def __init__(self, app: Routing):
        self.app = app

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
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"skill {skill.skill!r}: level must be 1..{rules.MAX_LEVEL}, got {skill.level}",
                )
            levels[skill.skill.strip().lower()] = skill.level
        capacity = dict(self.app.rules.default_capacity)
        for channel, n in request.capacity.items():
            if channel not in rules.CHANNELS or n < 0:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"capacity: channel must be one of {', '.join(rules.CHANNELS)} with n ≥ 0, got {channel}={n}",
                )
            capacity[channel] = n
        token = await self.app.sign_in(
            agent_id, request.display_name, [lang.strip().lower() for lang in request.languages], levels, capacity
        )
        return desk.SignInReply(token=token)

    async def SignOut(self, request, context):
        await self.app.sign_out(await self._authenticate(context))
        return desk.SignOutReply()

    async def SetState(self, request, context):
        agent_id = await self._authenticate(context)
        wanted = records.STATE_NAME.get(request.state, "")
        if wanted not in rules.SETTABLE_STATES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "an agent sets only AVAILABLE or BREAK (busy and wrap-up are set by routing; SignOut goes offline)",
            )
        return desk.SetStateReply(state=records.STATE_ENUM[await self.app.set_state(agent_id, wanted)])

    async def Subscribe(self, request, context):
        agent_id = await self._authenticate(context)
        # The front end knows it is connected before any event.
        async with aclosing(self.app.events(agent_id, lambda: context.send_initial_metadata(()))) as events:
            async for event in events:
                yield event

    async def Accept(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("offered",))
        assignment = await self.app.accept(agent_id, request.task_id)
        if assignment is None:  # the offer expired or was withdrawn meanwhile
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the offer of task {request.task_id!r} is no longer yours to accept",
            )
        return desk.AcceptReply(assignment=assignment)

    async def Reject(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("offered",))
        await self.app.reject(agent_id, request.task_id)
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
        reply_id = await self.app.reply(agent_id, request.task_id, request.text)
        if reply_id is None:  # closed or transferred meanwhile
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"task {request.task_id!r} is no longer assigned to you"
            )
        return desk.ReplyReply(reply_id=reply_id)

    async def Transfer(self, request, context):
        agent_id = await self._authenticate(context)
        queue = request.queue.strip().lower()
        if not queue:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "queue (a skill, e.g. billing) is required")
        await self._own_task(context, agent_id, request.task_id, ("assigned",))
        # The note is stored and shown to the next advisor: redacted like customer text.
        await self.app.transfer(agent_id, request.task_id, queue, redact(request.note))
        return desk.TransferReply()

    async def Close(self, request, context):
        agent_id = await self._authenticate(context)
        await self._own_task(context, agent_id, request.task_id, ("assigned",))
        await self.app.close_task(agent_id, request.task_id, request.disposition, request.resolved)
        return desk.CloseReply()

    async def GetCustomerHistory(self, request, context):
        agent_id = await self._authenticate(context)
        task = await self._own_task(context, agent_id, request.task_id, ("offered", "assigned"))
        reply = desk.HistoryReply()
        for past in await self.app.history(task["customer_id"], task["conversation_id"]):
            item = reply.conversations.add(
                conversation_id=past.conversation_id, intent=past.intent, outcome=past.outcome, summary=past.summary
            )
            if past.started_at:
                item.started_at.FromDatetime(past.started_at)
        return reply

    async def RecordSuggestionUse(self, request, context):
        agent_id = await self._authenticate(context)
        if request.use not in SUGGESTION_USES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "use must be USED, EDITED or IGNORED")
        task = await self._own_task(context, agent_id, request.task_id, ("offered", "assigned"))
        if not await self.app.suggestion_used(agent_id, task, request.suggestion_id, request.use):
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no suggestion {request.suggestion_id!r} on task {request.task_id!r}"
            )
        return desk.SuggestionUseReply()

    async def _authenticate(self, context) -> str:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if not auth.startswith("Bearer "):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing `authorization: Bearer <token>` metadata")
        agent_id = await self.app.agent_of_token(auth[7:].strip())
        if agent_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or signed-out token: sign in again")
        assert agent_id is not None  # abort raised
        return agent_id

    async def _own_task(self, context, agent_id: str, task_id: str, statuses: tuple[str, ...]):
        if not task_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id is required")
        if "\x00" in task_id:  # PostgreSQL text refuses it: a clear status, not UNKNOWN
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id must not contain NUL")
        task = await self.app.task(task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        if task["agent_id"] != agent_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"task {task_id!r} is not yours")
        if task["status"] not in statuses:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task {task_id!r} is {task['status']}, not {' or '.join(statuses)}",
            )
        return task
