"""The bot's lookup client: opening hours reused for a short time (never a failure), a customer's own data always
asked, and a conversation not sampled called without the tracing interceptor but with its trace context and token."""

import asyncio
from typing import cast

import grpc
import pytest
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from relais.bot import answers
from relais.bot.lookups import OPENING_HOURS_TTL_S, Lookups, connect
from relais.common.grpcserver import TokenInterceptor
from relais.common.pb import conversation_pb2 as pb, lookup_pb2, lookup_pb2_grpc
from relais.common.pb.lookup_pb2_grpc import EnterpriseLookupStub
from relais.lookup.service import EnterpriseLookup

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


class Stub:
    """Records each call (method, request, metadata); answers from `replies`, raising an error in it."""

    def __init__(self, replies):
        self.replies, self.calls = dict(replies), []

    def __getattr__(self, method):
        async def call(request, timeout, metadata=None):
            self.calls.append((method, request, metadata))
            reply = self.replies[method]
            if isinstance(reply, BaseException):
                raise reply
            return reply

        return call


def fake_lookups(traced: Stub, plain: Stub, token: str | None, **options) -> Lookups:
    """Lookups over fake stubs, which answer as EnterpriseLookupStub's would."""
    return Lookups(cast(EnterpriseLookupStub, traced), cast(EnterpriseLookupStub, plain), token, **options)


HOURS = lookup_pb2.OpeningHoursReply(
    site="customer-service",
    days=[lookup_pb2.DayHours(weekday=1, opens="08:00", closes="20:00"), lookup_pb2.DayHours(weekday=7)],
)
REPLIES = {
    "GetOpeningHours": HOURS,
    "GetOrderStatus": lookup_pb2.OrderStatusReply(order_id="CMD-123456", status="shipped"),
    "GetAccountBalance": lookup_pb2.AccountBalanceReply(
        account_masked="FR76 ****", balance_cents=1, currency="EUR", as_of="2026-11-26T08:00:00+00:00"
    ),
}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="down")


def in_trace(sampled: bool | None):
    """The current context of a turn whose conversation is sampled or not (None: no trace at all)."""
    if sampled is None:
        return context.attach(context.Context())
    span_context = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1 if sampled else 0))
    return context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))


@pytest.fixture
def not_sampled():
    token = in_trace(False)
    yield
    context.detach(token)


def test_opening_hours_are_asked_once_within_their_time_then_again(not_sampled):
    plain, clock = Stub(REPLIES), Clock()
    lookups = fake_lookups(Stub(REPLIES), plain, "secret", clock=clock)
    turn = pb.Turn(turn_id="t1", language="fr")
    first = asyncio.run(answers.opening_hours(turn, lookups))
    clock.now += OPENING_HOURS_TTL_S - 0.5
    second = asyncio.run(answers.opening_hours(turn, lookups))
    assert len(plain.calls) == 1
    assert second == first and first.resolved and "lundi 08:00–20:00" in first.text
    clock.now += 1
    asyncio.run(answers.opening_hours(turn, lookups))
    assert len(plain.calls) == 2


def test_a_failed_opening_hours_lookup_is_not_kept(not_sampled):
    plain = Stub({**REPLIES, "GetOpeningHours": unavailable()})
    lookups = fake_lookups(Stub(REPLIES), plain, "secret", clock=Clock())
    turn = pb.Turn(turn_id="t1", language="en")
    failed = asyncio.run(answers.opening_hours(turn, lookups))
    assert not failed.resolved and failed.lookups[0].error == "UNAVAILABLE: down"
    plain.replies["GetOpeningHours"] = HOURS
    answered = asyncio.run(answers.opening_hours(turn, lookups))
    assert answered.resolved and len(plain.calls) == 2


def test_a_customers_order_and_balance_are_asked_every_time(not_sampled):
    plain = Stub(REPLIES)
    lookups = fake_lookups(Stub(REPLIES), plain, "secret", clock=Clock())
    turn = pb.Turn(turn_id="t1", language="en", text="where is CMD-123456", customer=pb.Customer(id="c1"))
    for _ in range(2):
        assert asyncio.run(answers.order_status(turn, lookups)).resolved
        assert asyncio.run(answers.account_balance(turn, lookups)).resolved
    assert [c[0] for c in plain.calls] == ["GetOrderStatus", "GetAccountBalance"] * 2


def test_an_unsampled_conversation_calls_without_the_interceptors_with_its_trace_and_token(not_sampled):
    traced, plain = Stub(REPLIES), Stub(REPLIES)
    asyncio.run(fake_lookups(traced, plain, "secret").GetAccountBalance(lookup_pb2.AccountBalanceRequest(), timeout=2))
    assert not traced.calls
    assert plain.calls[0][2] == (
        ("authorization", "Bearer secret"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
    )


@pytest.mark.parametrize("sampled", [True, None])
def test_a_sampled_conversation_or_a_turn_without_trace_calls_through_the_traced_channel(sampled):
    traced, plain = Stub(REPLIES), Stub(REPLIES)
    token = in_trace(sampled)
    try:
        asyncio.run(fake_lookups(traced, plain, "secret").GetOrderStatus(lookup_pb2.OrderStatusRequest(), timeout=2))
    finally:
        context.detach(token)
    assert not plain.calls and traced.calls[0][2] is None  # the channel's interceptors add the token and the trace


def test_without_a_token_no_authorization_is_sent(not_sampled):
    plain = Stub(REPLIES)
    asyncio.run(fake_lookups(Stub(REPLIES), plain, None).GetOrderStatus(lookup_pb2.OrderStatusRequest(), timeout=2))
    assert [k for k, _ in plain.calls[0][2]] == ["traceparent"]


class HoursPool:
    async def fetch(self, query, *args):
        return [{"weekday": 1, "opens": "09:00", "closes": "18:00"}]


class SeenMetadata(grpc.aio.ServerInterceptor):
    def __init__(self):
        self.seen = []

    async def intercept_service(self, continuation, details):
        self.seen.append(dict(details.invocation_metadata))
        return await continuation(details)


@pytest.fixture
async def protected_lookup():
    """A lookup server that requires the service token "secret" and records each call's metadata."""
    seen = SeenMetadata()
    server = grpc.aio.server(interceptors=[seen, TokenInterceptor({"relais.v1.EnterpriseLookup"}, "secret")])
    lookup_pb2_grpc.add_EnterpriseLookupServicer_to_server(EnterpriseLookup(HoursPool()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", seen
    await server.stop(None)


@pytest.mark.parametrize("sampled", [False, True])
async def test_a_real_call_carries_the_token_and_the_conversations_trace(protected_lookup, sampled):
    addr, seen = protected_lookup
    lookups, close = connect(addr, "secret")
    token = in_trace(sampled)
    try:
        reply = await lookups.GetOpeningHours(lookup_pb2.OpeningHoursRequest(), timeout=5)
    finally:
        context.detach(token)
        await close()
    assert [(d.weekday, d.opens) for d in reply.days] == [(1, "09:00")]
    trace_id, span_id, flags = seen.seen[0]["traceparent"].split("-")[1:]
    assert (int(trace_id, 16), flags) == (TRACE_ID, "01" if sampled else "00")
    if not sampled:  # by hand: the turn's own span; the tracing interceptor would have made a client span
        assert int(span_id, 16) == SPAN_ID


async def test_a_wrong_token_is_refused_on_the_unsampled_path(protected_lookup):
    addr, _ = protected_lookup
    lookups, close = connect(addr, "not-the-token")
    token = in_trace(False)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await lookups.GetOrderStatus(lookup_pb2.OrderStatusRequest(order_id="CMD-1"), timeout=5)
    finally:
        context.detach(token)
        await close()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
