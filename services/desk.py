"""`relais desk`: a console client of the AgentDesk gRPC API, to try the human side from a terminal.

    relais desk --agent alice --languages fr,en --skills billing:3,orders:2,conflict_handling

Offers, assignments and customer messages are printed as they come (context, summary, suggestions with
their articles); you type one command a line (`help` lists them). Tasks are numbered #1, #2, ... in the
order they reach you. Parsing and rendering are plain functions (tests/unit/test_desk.py).
"""

import asyncio
import sys
from dataclasses import dataclass, field

import grpc

from relais.common import grpcserver
from relais.common.pb import agent_desk_pb2 as desk, agent_desk_pb2_grpc as desk_grpc, agent_events_pb2 as ev
from relais.common.pb import conversation_pb2 as pb

HELP = """commands (N: task number, K: suggestion number):
  accept [N]                  take the offer (default: the latest)
  reject [N] [reason]         let it go to the next agent
  reply N TEXT                send TEXT to the customer
  use N K                     send suggestion K as is (recorded as used)
  edit N K TEXT               send TEXT instead of suggestion K (recorded as edited)
  ignore N K                  record suggestion K as ignored
  transfer N QUEUE [NOTE]     back to the queue of skill QUEUE, with a note for the next agent
  close N [DISPOSITION] [unresolved]
  history N                   the customer's previous conversations
  show N                      the task's context and assist again
  state available|break
  quit"""
ARITY = {  # command -> (minimum, maximum) arguments; None: the rest of the line is free text
    "help": (0, 0), "quit": (0, 0), "accept": (0, 1), "reject": (0, None), "reply": (2, None), "use": (2, 2),
    "edit": (3, None), "ignore": (2, 2), "transfer": (2, None), "close": (1, 3), "history": (1, 1), "show": (1, 1),
    "state": (1, 1),
}


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...] = ()


FREE_TEXT = {"reply": 1, "edit": 2, "transfer": 1, "reject": 1}  # the argument from which the line is free text


def parse_command(line: str) -> Command | None:
    """One typed line as a command; None for an empty line; UsageError with a hint otherwise."""
    words = line.split()
    if not words:
        return None
    name = words[0].lower()
    if name not in ARITY:
        raise UsageError(f"unknown command {name!r}: type `help`")
    args = line.split(None, FREE_TEXT[name] + 1)[1:] if name in FREE_TEXT else words[1:]
    low, high = ARITY[name]
    if len(args) < low or (high is not None and len(args) > high):
        raise UsageError(f"{name}: wrong number of arguments; type `help`")
    return Command(name, tuple(a.strip() for a in args))


def parse_skills(text: str) -> list[desk.SkillLevel]:
    """"billing:3,orders" -> billing at level 3, orders at level 1."""
    skills = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, level = item.partition(":")
        if level and not level.isdigit():
            raise UsageError(f"skill {item!r}: the level is a number, e.g. billing:3")
        skills.append(desk.SkillLevel(skill=name.strip().lower(), level=int(level or 1)))
    return skills


def parse_capacity(text: str) -> dict[str, int]:
    """"chat:3,voice:1" -> {"chat": 3, "voice": 1}."""
    capacity = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, n = item.partition(":")
        if not n.isdigit():
            raise UsageError(f"capacity {item!r}: expected channel:number, e.g. chat:3")
        capacity[channel.strip().lower()] = int(n)
    return capacity


def render_context(context: pb.ConversationContext) -> list[str]:
    lines = [f"  customer {context.customer.id or '?'} ({context.customer.tier or 'standard'}), {context.language},"
             f" intent {context.intent or 'unknown'}, reason {pb.HandoffReason.Name(context.reason).removeprefix('HANDOFF_REASON_')}"]
    for turn in context.turns:
        mood = "angry " if turn.classification.sentiment.anger else "distressed " if turn.classification.sentiment.distress else ""
        lines.append(f"  {mood}customer> {turn.text}")
    lines += [f"  lookup {l.name}: {dict(l.result) if l.ok else l.error}" for l in context.lookups]
    lines += [f"  bot> {a.reply_text}" for a in context.bot_attempts if a.reply_text]
    return lines


def render_assist(assist: desk.AgentAssist) -> list[str]:
    lines = []
    if assist.summary:
        lines.append(f"  summary: {assist.summary}")
    if assist.history_summary:
        lines.append(f"  history: {assist.history_summary}")
    for k, s in enumerate(assist.suggestions, 1):
        lines.append(f"  suggestion {k} [{', '.join(s.article_ids) or 'no article'}; {s.source}]: {s.text}")
    return lines


def render_event(n: int, event: desk.DeskEvent) -> str:
    kind = event.WhichOneof("event")
    if kind == "offer":
        o = event.offer
        head = f"#{n} OFFER{' (callback)' if o.callback else ''} priority {o.priority} — accept {n} or reject {n}"
        return "\n".join([head, *render_context(o.context), *([f"  note: {o.note}"] if o.note else []), *render_assist(o.assist)])
    if kind == "assignment":
        a = event.assignment
        return "\n".join([f"#{n} ASSIGNED to you", *([f"  note: {a.note}"] if a.note else [])])
    if kind == "customer_message":
        m = event.customer_message
        return "\n".join([f"#{n} customer> {m.turn.text}", *render_assist(m.assist)[-3:]])
    if kind == "offer_withdrawn":
        return f"#{n} offer withdrawn ({event.offer_withdrawn.reason})"
    return f"#{n} {kind}"


@dataclass
class Tasks:
    """Task ids by the short numbers the agent types, and the last assist seen for each."""
    ids: list[str] = field(default_factory=list)
    assists: dict[str, desk.AgentAssist] = field(default_factory=dict)
    events: dict[str, desk.DeskEvent] = field(default_factory=dict)

    def number(self, task_id: str) -> int:
        if task_id not in self.ids:
            self.ids.append(task_id)
        return self.ids.index(task_id) + 1

    def task_id(self, number: str | None) -> str:
        if number is None:
            if not self.ids:
                raise UsageError("no task yet")
            return self.ids[-1]
        if not number.lstrip("#").isdigit() or not 1 <= int(number.lstrip("#")) <= len(self.ids):
            raise UsageError(f"no task #{number.lstrip('#')}")
        return self.ids[int(number.lstrip("#")) - 1]

    def suggestion(self, task_id: str, k: str) -> desk.Suggestion:
        suggestions = self.assists.get(task_id, desk.AgentAssist()).suggestions
        if not k.isdigit() or not 1 <= int(k) <= len(suggestions):
            raise UsageError(f"no suggestion {k} on this task")
        return suggestions[int(k) - 1]

    def seen(self, event: desk.DeskEvent) -> tuple[int, str]:
        body = getattr(event, event.WhichOneof("event"))
        n = self.number(body.task_id)
        if hasattr(body, "assist") and (body.assist.summary or body.assist.suggestions):
            self.assists[body.task_id] = body.assist
        if event.HasField("offer"):
            self.events[body.task_id] = event
        return n, render_event(n, event)


async def execute(stub, auth, tasks: Tasks, command: Command, say) -> bool:
    """Runs one command against the API; False to quit."""
    name, args = command.name, command.args
    if name == "quit":
        return False
    if name == "help":
        say(HELP)
    elif name == "state":
        state = {"available": ev.AGENT_STATE_AVAILABLE, "break": ev.AGENT_STATE_BREAK}.get(args[0].lower())
        if state is None:
            raise UsageError("state is available or break")
        reply = await stub.SetState(desk.SetStateRequest(state=state), metadata=auth)
        say(f"state: {ev.AgentState.Name(reply.state).removeprefix('AGENT_STATE_').lower()}")
    elif name == "accept":
        task_id = tasks.task_id(args[0] if args else None)
        reply = await stub.Accept(desk.AcceptRequest(task_id=task_id), metadata=auth)
        tasks.assists[task_id] = reply.assignment.assist
        say(f"#{tasks.number(task_id)} is yours")
    elif name == "reject":
        task_id = tasks.task_id(args[0] if args else None)
        await stub.Reject(desk.RejectRequest(task_id=task_id, reason=args[1] if len(args) > 1 else ""), metadata=auth)
        say(f"#{tasks.number(task_id)} rejected")
    elif name in ("reply", "use", "edit"):
        task_id = tasks.task_id(args[0])
        suggestion = tasks.suggestion(task_id, args[1]) if name != "reply" else None
        text = {"reply": lambda: args[1], "use": lambda: suggestion.text, "edit": lambda: args[2]}[name]()
        await stub.Reply(desk.ReplyRequest(task_id=task_id, text=text), metadata=auth)
        if suggestion is not None:
            use = ev.SUGGESTION_USE_USED if name == "use" else ev.SUGGESTION_USE_EDITED
            await stub.RecordSuggestionUse(desk.SuggestionUseRequest(task_id=task_id, suggestion_id=suggestion.suggestion_id,
                                                                     use=use), metadata=auth)
        say(f"sent to #{tasks.number(task_id)}")
    elif name == "ignore":
        task_id = tasks.task_id(args[0])
        suggestion = tasks.suggestion(task_id, args[1])
        await stub.RecordSuggestionUse(desk.SuggestionUseRequest(task_id=task_id, suggestion_id=suggestion.suggestion_id,
                                                                 use=ev.SUGGESTION_USE_IGNORED), metadata=auth)
        say("noted")
    elif name == "transfer":
        task_id = tasks.task_id(args[0])
        queue, _, note = args[1].partition(" ")
        await stub.Transfer(desk.TransferRequest(task_id=task_id, queue=queue, note=note), metadata=auth)
        say(f"#{tasks.number(task_id)} transferred to {queue}")
    elif name == "close":
        task_id = tasks.task_id(args[0])
        disposition = args[1] if len(args) > 1 else "resolved"
        resolved = not (len(args) > 2 and args[2].lower() == "unresolved")
        await stub.Close(desk.CloseRequest(task_id=task_id, disposition=disposition, resolved=resolved), metadata=auth)
        say(f"#{tasks.number(task_id)} closed ({disposition})")
    elif name == "history":
        reply = await stub.GetCustomerHistory(desk.HistoryRequest(task_id=tasks.task_id(args[0])), metadata=auth)
        say("\n".join(f"  {c.started_at.ToDatetime():%Y-%m-%d %H:%M} {c.conversation_id}: {c.intent or '?'}, {c.outcome}"
                      f" — {c.summary}" for c in reply.conversations) or "  no previous conversation")
    elif name == "show":
        task_id = tasks.task_id(args[0])
        event = tasks.events.get(task_id)
        say(render_event(tasks.number(task_id), event) if event else "nothing to show")
    return True


async def run(addr: str, agent_id: str, name: str, languages: list[str], skills: list[desk.SkillLevel],
              capacity: dict[str, int], lines=None, say=print, service_token: str | None = None) -> None:
    """Signs in, prints desk events as they come, runs typed commands until `quit` or end of input.

    This console is a front end: it signs the agent in with the service token (README, "Access")."""
    async with grpcserver.channel(addr, trace=False) as channel:  # TLS when RELAIS_TLS_CA is set
        stub = desk_grpc.AgentDeskStub(channel)
        token = (await stub.SignIn(desk.SignInRequest(agent_id=agent_id, display_name=name, languages=languages,
                                                      skill_levels=skills, capacity=capacity),
                                   metadata=grpcserver.token_metadata(service_token))).token
        auth = [("authorization", f"Bearer {token}")]
        say(f"signed in as {agent_id} ({', '.join(languages)}; "
            f"{', '.join(f'{s.skill}:{s.level}' for s in skills) or 'no skill'}). Type `help`.")
        tasks = Tasks()
        stream = stub.Subscribe(desk.SubscribeRequest(), metadata=auth)

        async def show_events():
            async for event in stream:
                say(tasks.seen(event)[1])

        reader = asyncio.create_task(show_events())
        lines = lines or _stdin_lines()
        try:
            async for line in lines:
                try:
                    command = parse_command(line)
                    if command is not None and not await execute(stub, auth, tasks, command, say):
                        break
                except UsageError as error:
                    say(f"? {error}")
                except grpc.aio.AioRpcError as error:
                    say(f"! {error.code().name}: {error.details()}")
        finally:
            reader.cancel()
            await stub.SignOut(desk.SignOutRequest(), metadata=auth)
            say("signed out")


async def _stdin_lines():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line


def desk_cli(args, endpoints: dict[str, str]) -> int:
    try:
        skills, capacity = parse_skills(args.skills), parse_capacity(args.capacity)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    try:
        asyncio.run(run(endpoints["ROUTING_GRPC_ADDR"], args.agent, args.name or args.agent, languages, skills, capacity,
                        service_token=endpoints.get("RELAIS_SERVICE_TOKEN") or None))
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()} (is relais up? `make up`)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
