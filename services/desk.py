"""`relais desk`: a console client of the AgentDesk gRPC API, to try the human side from a terminal.

    relais desk --agent alice --languages fr,en --skills billing:3,orders:2,conflict_handling

Offers, assignments and customer messages are printed as they come (the conversation as it happened, the time
left to accept), and the summary and suggestions with their articles as soon as routing drafted them ("#N
suggestions:", after the offer or message); you type one command a line (`help` lists them).
Tasks are numbered #1, #2, ... in the order they reach you. When the stream drops (routing restarted, or its
active process died and the standby took over), the desk subscribes again with its token, with back-off, to
whichever of routing's addresses (ROUTING_GRPC_ADDR, ROUTING_STANDBY_GRPC_ADDR) serves, and signs in again if
routing no longer knows the token.
Parsing and rendering are plain functions (tests/unit/console/test_desk.py).
"""

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from relais.common import grpcserver
from relais.common.pb import (
    agent_desk_pb2 as desk,
    agent_desk_pb2_grpc as desk_grpc,
    agent_events_pb2 as ev,
    conversation_pb2 as pb,
)

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
    "help": (0, 0),
    "quit": (0, 0),
    "accept": (0, 1),
    "reject": (0, None),
    "reply": (2, None),
    "use": (2, 2),
    "edit": (3, None),
    "ignore": (2, 2),
    "transfer": (2, None),
    "close": (1, 3),
    "history": (1, 1),
    "show": (1, 1),
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
    """ "billing:3,orders" -> billing at level 3, orders at level 1."""
    skills = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, level = item.partition(":")
        if level and not level.isdigit():
            raise UsageError(f"skill {item!r}: the level is a number, e.g. billing:3")
        skills.append(desk.SkillLevel(skill=name.strip().lower(), level=int(level or 1)))
    return skills


def parse_capacity(text: str) -> dict[str, int]:
    """ "chat:3,voice:1" -> {"chat": 3, "voice": 1}."""
    capacity = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        channel, _, n = item.partition(":")
        if not n.isdigit():
            raise UsageError(f"capacity {item!r}: expected channel:number, e.g. chat:3")
        capacity[channel.strip().lower()] = int(n)
    return capacity


REMIND_SECONDS = 5  # an offer still open this close to its expiry is announced again


def render_context(context: pb.ConversationContext) -> str:
    return (
        f"  customer {context.customer.id or '?'} ({context.customer.tier or 'standard'}), {context.language},"
        f" intent {context.intent or 'unknown'}, reason {pb.HandoffReason.Name(context.reason).removeprefix('HANDOFF_REASON_')}"
    )


def render_transcript(lines, now: datetime, tz: tzinfo | None = None) -> list[str]:
    """The transcript routing built (one line per message, lookup or gap), with local times: HH:MM today, else dd/mm HH:MM."""
    today = now.astimezone(tz).date()
    rendered = []
    for line in lines:
        when = ""
        if line.HasField("at"):
            at = line.at.ToDatetime(tzinfo=timezone.utc).astimezone(tz)
            when = at.strftime("%H:%M " if at.date() == today else "%d/%m %H:%M ")
        who = {"advisor": f"advisor {line.agent_id}>".replace(" >", ">"), "lookup": "lookup:", "system": ""}.get(
            line.speaker, f"{line.speaker}>"
        )
        rendered.append(f"  {when}{who} {line.text}" if who else f"  {line.text}")
    return rendered


def countdown(expires_at: datetime | None, now: datetime) -> str:
    """The time left on an offer, e.g. "accept within 17 s"."""
    if expires_at is None:
        return ""
    left = int((expires_at - now).total_seconds())
    if left <= 0:
        return "expired"
    return f"accept within {left} s" if left < 120 else f"accept within {left // 60} min {left % 60:02d} s"


def _expiry(offer: desk.Offer) -> datetime | None:
    return offer.expires_at.ToDatetime(tzinfo=timezone.utc) if offer.HasField("expires_at") else None


def render_assist(assist: desk.AgentAssist) -> list[str]:
    lines = []
    if assist.summary:
        lines.append(f"  summary: {assist.summary}")
    if assist.history_summary:
        lines.append(f"  history: {assist.history_summary}")
    for k, s in enumerate(assist.suggestions, 1):
        lines.append(f"  suggestion {k} [{', '.join(s.article_ids) or 'no article'}; {s.source}]: {s.text}")
    return lines


def render_event(n: int, event: desk.DeskEvent, now: datetime | None = None, full: bool = True) -> str:
    """One desk event as the agent reads it; `full`: an assignment with its transcript (not right after the offer)."""
    now = now or datetime.now(timezone.utc)
    kind = event.WhichOneof("event")
    if kind == "offer":
        o = event.offer
        left = countdown(_expiry(o), now)
        callback = f" (callback: call {o.callback_phone})" if o.callback_phone else " (callback)" if o.callback else ""
        head = f"#{n} OFFER{callback} priority {o.priority} — accept {n} or reject {n}" + (f" ({left})" if left else "")
        return "\n".join(
            [
                head,
                render_context(o.context),
                *render_transcript(o.transcript, now),
                *([f"  note: {o.note}"] if o.note else []),
                *render_assist(o.assist),
            ]
        )
    if kind == "assignment":
        a = event.assignment
        body = [render_context(a.context), *render_transcript(a.transcript, now)] if full else []
        return "\n".join([f"#{n} ASSIGNED to you", *body, *([f"  note: {a.note}"] if a.note else [])])
    if kind == "customer_message":
        m = event.customer_message
        return "\n".join([f"#{n} customer> {m.turn.text}", *render_assist(m.assist)[-3:]])
    if kind == "assist":  # drafted after its offer or message: shown under the task's number
        return "\n".join([f"#{n} suggestions:", *render_assist(event.assist.assist)])
    if kind == "offer_withdrawn":
        return f"#{n} offer withdrawn ({event.offer_withdrawn.reason})"
    return f"#{n} {kind}"


@dataclass
class Tasks:
    """Task ids by the short numbers the agent types, and for each: the last assist, offer or assignment, state
    (offered, assigned, closed, withdrawn (reason), rejected) and the messages since."""

    ids: list[str] = field(default_factory=list)
    assists: dict[str, desk.AgentAssist] = field(default_factory=dict)
    events: dict[str, desk.DeskEvent] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    since: dict[str, list[desk.TranscriptLine]] = field(default_factory=dict)
    reminded: set[tuple[str, datetime]] = field(default_factory=set)

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

    def seen(self, event: desk.DeskEvent, now: datetime | None = None) -> tuple[int, str]:
        kind = event.WhichOneof("event")
        body = getattr(event, kind)
        task_id = body.task_id
        n = self.number(task_id)
        if hasattr(body, "assist") and (body.assist.summary or body.assist.suggestions):
            self.assists[task_id] = body.assist
        full = self.states.get(task_id) not in ("offered", "accepted")  # not right after its offer: a re-delivery
        if kind in ("offer", "assignment"):
            self.events[task_id], self.since[task_id] = event, []
            self.states[task_id] = "offered" if kind == "offer" else "assigned"
        elif kind == "customer_message":
            line = desk.TranscriptLine(speaker="customer", text=body.turn.text)
            if body.turn.HasField("sent_at"):
                line.at.CopyFrom(body.turn.sent_at)
            self.since.setdefault(task_id, []).append(line)
        elif kind == "offer_withdrawn":
            self.states[task_id] = f"withdrawn ({body.reason})"
        return n, render_event(n, event, now, full)

    def sent(self, task_id: str, text: str, now: datetime) -> None:
        line = desk.TranscriptLine(speaker="advisor", text=text)
        line.at.FromDatetime(now)
        self.since.setdefault(task_id, []).append(line)

    def show(self, task_id: str, now: datetime | None = None) -> str:
        """The task as it stands: an open offer with its time left; otherwise its state, never as an offer."""
        now = now or datetime.now(timezone.utc)
        n, event, state = self.number(task_id), self.events.get(task_id), self.states.get(task_id, "")
        if event is None:
            return f"#{n} {state or 'nothing to show'}"
        if state == "offered":
            return render_event(n, event, now)
        body = getattr(event, event.WhichOneof("event"))
        return "\n".join(
            [
                f"#{n} {state}",
                render_context(body.context),
                *render_transcript([*body.transcript, *self.since.get(task_id, [])], now),
                *render_assist(self.assists.get(task_id, body.assist)),
            ]
        )

    def reminders(self, now: datetime) -> list[str]:
        """Open offers about to expire, each announced once."""
        due = []
        for task_id, event in self.events.items():
            expiry = _expiry(event.offer) if event.HasField("offer") else None
            if (
                self.states.get(task_id) == "offered"
                and expiry
                and (task_id, expiry) not in self.reminded
                and 0 < (expiry - now).total_seconds() <= REMIND_SECONDS
            ):
                self.reminded.add((task_id, expiry))
                due.append(f"#{self.number(task_id)} offer: {countdown(expiry, now)} (accept {self.number(task_id)})")
        return due


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
        if reply.assignment.assist.ByteSize():  # else not drafted yet: it follows on the stream
            tasks.assists[task_id] = reply.assignment.assist
        if tasks.states.get(task_id) == "offered":  # its assignment on the stream has not come yet
            tasks.states[task_id] = "accepted"
        say(f"#{tasks.number(task_id)} is yours")
    elif name == "reject":
        task_id = tasks.task_id(args[0] if args else None)
        await stub.Reject(desk.RejectRequest(task_id=task_id, reason=args[1] if len(args) > 1 else ""), metadata=auth)
        tasks.states[task_id] = "rejected"
        say(f"#{tasks.number(task_id)} rejected")
    elif name in ("reply", "use", "edit"):
        task_id = tasks.task_id(args[0])
        suggestion = tasks.suggestion(task_id, args[1]) if name != "reply" else None
        if suggestion is None:  # reply
            text = args[1]
        else:
            text = suggestion.text if name == "use" else args[2]
        await stub.Reply(desk.ReplyRequest(task_id=task_id, text=text), metadata=auth)
        tasks.sent(task_id, text, datetime.now(timezone.utc))
        if suggestion is not None:
            use = ev.SUGGESTION_USE_USED if name == "use" else ev.SUGGESTION_USE_EDITED
            await stub.RecordSuggestionUse(
                desk.SuggestionUseRequest(task_id=task_id, suggestion_id=suggestion.suggestion_id, use=use),
                metadata=auth,
            )
        say(f"sent to #{tasks.number(task_id)}")
    elif name == "ignore":
        task_id = tasks.task_id(args[0])
        suggestion = tasks.suggestion(task_id, args[1])
        await stub.RecordSuggestionUse(
            desk.SuggestionUseRequest(
                task_id=task_id, suggestion_id=suggestion.suggestion_id, use=ev.SUGGESTION_USE_IGNORED
            ),
            metadata=auth,
        )
        say("noted")
    elif name == "transfer":
        task_id = tasks.task_id(args[0])
        queue, _, note = args[1].partition(" ")
        await stub.Transfer(desk.TransferRequest(task_id=task_id, queue=queue, note=note), metadata=auth)
        tasks.states[task_id] = f"transferred to {queue}"
        say(f"#{tasks.number(task_id)} transferred to {queue}")
    elif name == "close":
        task_id = tasks.task_id(args[0])
        disposition = args[1] if len(args) > 1 else "resolved"
        resolved = not (len(args) > 2 and args[2].lower() == "unresolved")
        await stub.Close(desk.CloseRequest(task_id=task_id, disposition=disposition, resolved=resolved), metadata=auth)
        tasks.states[task_id] = f"closed ({disposition})"
        say(f"#{tasks.number(task_id)} closed ({disposition})")
    elif name == "history":
        reply = await stub.GetCustomerHistory(desk.HistoryRequest(task_id=tasks.task_id(args[0])), metadata=auth)
        say(
            "\n".join(
                f"  {c.started_at.ToDatetime():%Y-%m-%d %H:%M} {c.conversation_id}: {c.intent or '?'}, {c.outcome}"
                f" — {c.summary}"
                for c in reply.conversations
            )
            or "  no previous conversation"
        )
    elif name == "show":
        say(tasks.show(tasks.task_id(args[0])))
    return True


BACKOFF_SECONDS = (0.5, 1, 2, 4, 5)  # between attempts to subscribe again; then every 5 s


def addresses(*values: str | None) -> list[str]:
    """Routing's processes from ROUTING_GRPC_ADDR and ROUTING_STANDBY_GRPC_ADDR, each possibly a comma-separated list."""
    found = []
    for value in values:
        for addr in (value or "").split(","):
            if addr.strip() and addr.strip() not in found:
                found.append(addr.strip())
    return found


async def serving_address(addrs: list[str], timeout: float = 1) -> str | None:
    """The first of routing's processes whose AgentDesk reports SERVING (the active one; a standby reports
    NOT_SERVING), None when none does now."""
    for addr in addrs:
        async with grpcserver.channel(addr, trace=False) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=AGENT_DESK), timeout=timeout
                )
            except grpc.aio.AioRpcError:
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return addr
    return None


AGENT_DESK = desk.DESCRIPTOR.services_by_name["AgentDesk"].full_name


@dataclass
class Session:
    """The agent's session: signed in by this front end with the service token; `auth` carries its token.
    `addr`: routing's address, or several (comma-separated: the active process and the standby)."""

    addr: str
    request: desk.SignInRequest
    service_token: str | None
    channel: grpc.aio.Channel | None = None
    stub: desk_grpc.AgentDeskStub | None = None
    auth: list[tuple[str, str]] = field(default_factory=list)
    current: str = ""  # the address in use

    @property
    def agent_desk(self) -> desk_grpc.AgentDeskStub:
        """The stub on the channel in use (connect first)."""
        if self.stub is None:
            raise RuntimeError("not connected: connect first")
        return self.stub

    async def connect(self) -> None:
        """A new channel (TLS when RELAIS_TLS_CA is set) to the routing process that serves now, else to the one in
        use: one that lost its server waits out its own growing back-off (up to 2 min) before trying again, a new
        one tries at once."""
        addrs = addresses(self.addr)
        if len(addrs) > 1:
            self.current = await serving_address(addrs) or self.current or addrs[0]
        else:
            self.current = addrs[0]
        old, self.channel = self.channel, grpcserver.channel(self.current, trace=False)
        self.stub = desk_grpc.AgentDeskStub(self.channel)
        if old is not None:
            await old.close()

    async def sign_in(self) -> None:
        reply = await self.agent_desk.SignIn(self.request, metadata=grpcserver.token_metadata(self.service_token))
        self.auth = [("authorization", f"Bearer {reply.token}")]


async def follow(session: Session, tasks: Tasks, say) -> None:
    """Prints desk events as they come. When the stream drops (routing stopped or restarted), subscribes again with
    the same token after a back-off — routing then re-delivers what the agent holds — and signs in again if
    routing refuses the token (the agent was signed out meanwhile)."""
    attempt = 0
    while True:
        call = session.agent_desk.Subscribe(desk.SubscribeRequest(), metadata=session.auth)
        try:
            await call.initial_metadata()
            if not call.done():  # routing took the stream (it sends its headers first; a refused call ends at once)
                if attempt:
                    say("reconnected")
                attempt = 0
            async for event in call:
                say(tasks.seen(event)[1])
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                try:
                    await session.sign_in()
                    say("routing no longer knew this session (signed out while away): signed in again")
                    continue
                except grpc.aio.AioRpcError as refused:
                    say(f"! signing in again failed: {refused.code().name}: {refused.details()}")
        finally:
            call.cancel()
        if attempt == 0:
            say("connection to routing lost: reconnecting…")
        await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
        await session.connect()
        attempt += 1


async def remind(tasks: Tasks, say) -> None:
    """Says when an open offer is about to expire."""
    while True:
        await asyncio.sleep(1)
        for line in tasks.reminders(datetime.now(timezone.utc)):
            say(line)


async def run(
    addr: str,
    agent_id: str,
    name: str,
    languages: list[str],
    skills: list[desk.SkillLevel],
    capacity: dict[str, int],
    lines=None,
    say=print,
    service_token: str | None = None,
) -> None:
    """Signs in, prints desk events as they come, runs typed commands until `quit` or end of input.

    This console is a front end: it signs the agent in with the service token (docs/security.md, "Agents")."""
    session = Session(
        addr,
        desk.SignInRequest(
            agent_id=agent_id, display_name=name, languages=languages, skill_levels=skills, capacity=capacity
        ),
        service_token,
    )
    await session.connect()
    try:
        await session.sign_in()
        say(
            f"signed in as {agent_id} ({', '.join(languages)}; "
            f"{', '.join(f'{s.skill}:{s.level}' for s in skills) or 'no skill'}). Type `help`."
        )
        tasks = Tasks()
        background = [asyncio.create_task(follow(session, tasks, say)), asyncio.create_task(remind(tasks, say))]
        lines = lines or stdin_lines()
        try:
            async for line in lines:
                try:
                    command = parse_command(line)
                    if command is not None and not await execute(session.agent_desk, session.auth, tasks, command, say):
                        break
                except UsageError as error:
                    say(f"? {error}")
                except grpc.aio.AioRpcError as error:
                    say(f"! {error.code().name}: {error.details()}")
        finally:
            for task in background:
                task.cancel()
            try:
                await session.agent_desk.SignOut(desk.SignOutRequest(), metadata=session.auth)
                say("signed out")
            except grpc.aio.AioRpcError as error:
                say(f"! not signed out: {error.code().name}: {error.details()}")
    finally:
        if session.channel is not None:  # connected above
            await session.channel.close()


async def stdin_lines():
    """The lines typed on standard input, read without blocking the event loop (the desk's and `relais chat`'s)."""
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
        routing = ",".join(addresses(endpoints["ROUTING_GRPC_ADDR"], endpoints.get("ROUTING_STANDBY_GRPC_ADDR")))
        asyncio.run(
            run(
                routing,
                args.agent,
                args.name or args.agent,
                languages,
                skills,
                capacity,
                service_token=endpoints.get("RELAIS_SERVICE_TOKEN") or None,
            )
        )
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()} (is relais up? `make up`)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
