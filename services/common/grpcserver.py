"""gRPC servers and channels with standard health checking, reflection, tracing and access control.

Access (docs/security.md, "Access"):
- TLS: with RELAIS_TLS_CERT and RELAIS_TLS_KEY (PEM files) every server listens with TLS, and with
  RELAIS_TLS_CLIENT_CA it also requires a client certificate signed by that CA (mTLS). Clients use TLS
  when RELAIS_TLS_CA is set (plus RELAIS_TLS_CLIENT_CERT / RELAIS_TLS_CLIENT_KEY for mTLS).
- Service token: what PROTECTED names (the Lookup, Analytics and LiveView services, AgentDesk's SignIn) answers only
  calls carrying `authorization: Bearer <RELAIS_SERVICE_TOKEN>`; anything else is UNAUTHENTICATED. A server
  without a token configured refuses every such call (fail closed). Health and reflection stay open.
"""

import asyncio
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor

from relais.common.config import SERVICE_TOKEN_ENV, service_token
from relais.common.lease import Fenced

log = logging.getLogger(__name__)

Register = Callable[[grpc.aio.Server], object]  # what it returns is ignored

# The APIs that only our own services (and operators holding the token) may call.
# Whole services, or one method ("service/Method"). SignIn: only the agents' front end, which authenticated the
# agent, may open a session for an agent id; the agent then acts with the token SignIn returns.
PROTECTED = frozenset(
    {"relais.v1.Analytics", "relais.v1.EnterpriseLookup", "relais.v1.AgentDesk/SignIn", "relais.v1.LiveView"}
)

_FROM_ENV = object()


class AccessError(RuntimeError):
    """The TLS settings are incomplete or unreadable."""


def _read(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise AccessError(f"{name}={path}: cannot read ({error.strerror})") from None


def server_credentials(env: Mapping[str, str] | None = None) -> grpc.ServerCredentials | None:
    """TLS credentials from RELAIS_TLS_CERT / RELAIS_TLS_KEY (+ RELAIS_TLS_CLIENT_CA for mTLS); None: plaintext."""
    env = os.environ if env is None else env
    cert, key = env.get("RELAIS_TLS_CERT", "").strip(), env.get("RELAIS_TLS_KEY", "").strip()
    client_ca = env.get("RELAIS_TLS_CLIENT_CA", "").strip()
    if not cert and not key:
        if client_ca:
            raise AccessError("RELAIS_TLS_CLIENT_CA is set without RELAIS_TLS_CERT and RELAIS_TLS_KEY")
        return None
    if not (cert and key):
        raise AccessError("TLS needs both RELAIS_TLS_CERT and RELAIS_TLS_KEY (PEM files); only one is set")
    pair = [(_read(key, "RELAIS_TLS_KEY"), _read(cert, "RELAIS_TLS_CERT"))]
    if client_ca:
        return grpc.ssl_server_credentials(
            pair, root_certificates=_read(client_ca, "RELAIS_TLS_CLIENT_CA"), require_client_auth=True
        )
    return grpc.ssl_server_credentials(pair)


def channel_credentials(env: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """Client TLS credentials from RELAIS_TLS_CA (+ RELAIS_TLS_CLIENT_CERT / _KEY); None: plaintext."""
    env = os.environ if env is None else env
    ca = (env.get("RELAIS_TLS_CA") or "").strip()
    if not ca:
        return None
    cert, key = (env.get("RELAIS_TLS_CLIENT_CERT") or "").strip(), (env.get("RELAIS_TLS_CLIENT_KEY") or "").strip()
    if bool(cert) != bool(key):
        raise AccessError("a client certificate needs both RELAIS_TLS_CLIENT_CERT and RELAIS_TLS_CLIENT_KEY")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "RELAIS_TLS_CA"),
        private_key=_read(key, "RELAIS_TLS_CLIENT_KEY") if key else None,
        certificate_chain=_read(cert, "RELAIS_TLS_CLIENT_CERT") if cert else None,
    )


def token_metadata(token: str | None) -> list[tuple[str, str]]:
    """The call metadata that authenticates a service call."""
    return [("authorization", f"Bearer {token}")] if token else []


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls to `services` (a service's name, or "service/Method" for one method) without
    `authorization: Bearer <token>` with UNAUTHENTICATED."""

    def __init__(self, services: Iterable[str], token: str | None):
        self.services = frozenset(services)
        self.token = token.encode() if token else None

    def check(self, service: str, metadata) -> str | None:
        """Why the call is refused, or None."""
        if self.token is None:
            return f"{service} refuses every call: {SERVICE_TOKEN_ENV} is not set on the server"
        values = [value for key, value in (metadata or ()) if key == "authorization"]
        if not values:
            return f"{service} needs a service token: send 'authorization: Bearer <{SERVICE_TOKEN_ENV}>'"
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", "replace")
        scheme, _, presented = value.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return f"{service}: the authorization header must be 'Bearer <{SERVICE_TOKEN_ENV}>'"
        if not hmac.compare_digest(presented.strip().encode(), self.token):
            return f"{service}: invalid service token"
        return None

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method.lstrip("/")
        service = method.split("/", 1)[0]
        if service not in self.services and method not in self.services:
            return await continuation(handler_call_details)
        problem = self.check(service if service in self.services else method, handler_call_details.invocation_metadata)
        handler = await continuation(handler_call_details)
        if problem is None or handler is None:
            return handler
        return _refusing(handler, problem)


def _refusing(handler: grpc.RpcMethodHandler, problem: str) -> grpc.RpcMethodHandler:
    async def refuse(_request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    serdes = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **serdes)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **serdes)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **serdes)
    return grpc.unary_unary_rpc_method_handler(refuse, **serdes)


class Gate(grpc.aio.ServerInterceptor):
    """Calls to `services` while closed (a standby) end with UNAVAILABLE and the reason (where the active process
    is); closing it also ends the streams open on them, so their clients go to the process that serves now. A call
    that meets Fenced (the lease lost mid-call) ends the same way."""

    def __init__(self, services: Iterable[str]):
        self.services = frozenset(services)
        self.reason: str | None = None  # None: open
        self._closed: asyncio.Event | None = None

    def closed_event(self) -> asyncio.Event:
        if self._closed is None:
            self._closed = asyncio.Event()
        return self._closed

    def open(self) -> None:
        self.reason = None
        self.closed_event().clear()

    def close(self, reason: str) -> None:
        self.reason = reason
        self.closed_event().set()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.lstrip("/").split("/", 1)[0] not in self.services:
            return handler
        return _gated(handler, self)


def _gated(handler: grpc.RpcMethodHandler, gate: Gate) -> grpc.RpcMethodHandler:
    async def refuse(context, reason: str | None = None):
        await context.abort(grpc.StatusCode.UNAVAILABLE, reason or gate.reason or "standby: not serving")

    serdes = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.response_streaming:
        inner = handler.unary_stream if not handler.request_streaming else handler.stream_stream

        async def stream(request, context):
            if gate.reason is not None:
                await refuse(context)
            events = inner(request, context).__aiter__()
            closed = asyncio.ensure_future(gate.closed_event().wait())
            step = None
            try:
                while True:
                    step = asyncio.ensure_future(events.__anext__())
                    done, _ = await asyncio.wait({step, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if step not in done:  # this process steps down: the client goes to the active one
                        await refuse(context)
                    try:
                        event = step.result()
                    except StopAsyncIteration:
                        return
                    yield event
            except Fenced as error:
                await refuse(context, f"{gate.reason or 'standby'} ({error})")
            finally:  # the client left, or the gate closed: the handler's own clean-up runs (its `finally`)
                closed.cancel()
                if step is not None and not step.done():
                    step.cancel()
                    await asyncio.gather(step, return_exceptions=True)
                await events.aclose()

        make = (
            grpc.unary_stream_rpc_method_handler
            if not handler.request_streaming
            else grpc.stream_stream_rpc_method_handler
        )
        return make(stream, **serdes)
    inner = handler.unary_unary if not handler.request_streaming else handler.stream_unary

    async def unary(request, context):
        if gate.reason is not None:
            await refuse(context)
        try:
            return await inner(request, context)
        except Fenced as error:
            await refuse(context, f"{gate.reason or 'standby'} ({error})")

    make = (
        grpc.unary_unary_rpc_method_handler if not handler.request_streaming else grpc.stream_unary_rpc_method_handler
    )
    return make(unary, **serdes)


class GrpcServer:
    """A started aio server; `services` are the full names it serves (for health and reflection).

    `require_token`: the services whose calls need the service token (default: those of PROTECTED it
    serves); `token`: the token (default RELAIS_SERVICE_TOKEN); `credentials`: TLS server credentials
    (default from RELAIS_TLS_*; None for plaintext).
    """

    def __init__(
        self,
        addr: str,
        services: list[str],
        register: Register | None = None,
        *,
        require_token: Iterable[str] | None = None,
        token=_FROM_ENV,
        credentials=_FROM_ENV,
        gated: bool = False,
    ):
        self.addr = addr
        self.services = services
        # `gated`: a service with an active and a standby process; the gate refuses its calls while standby.
        self.gate = Gate(services) if gated else None
        protected = (
            {p for p in PROTECTED if p.split("/")[0] in services} if require_token is None else set(require_token)
        )
        if token is _FROM_ENV:
            token = service_token()
        if protected and not token:
            log.warning(
                "%s is not set: every call to %s is refused (UNAUTHENTICATED)",
                SERVICE_TOKEN_ENV,
                ", ".join(sorted(protected)),
            )
        interceptors = [aio_server_interceptor()]
        if protected:
            interceptors.append(TokenInterceptor(protected, token))
        if self.gate is not None:
            interceptors.append(self.gate)
        self.server = grpc.aio.server(interceptors=interceptors)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if register:
            register(self.server)
        names = [*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        self.credentials = server_credentials() if credentials is _FROM_ENV else credentials
        if self.credentials is None:
            self.port = self.server.add_insecure_port(addr)
        else:
            self.port = self.server.add_secure_port(addr, self.credentials)
        self.tls = self.credentials is not None

    async def start(self) -> None:
        # grpc's health servicer reports the server as SERVING from the start; we say so only
        # once Kafka and the database are connected.
        await self.set_serving(False)
        await self.server.start()

    async def set_serving(self, serving: bool = True) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.services]:
            await self.health.set(name, status)

    async def stop(self, grace: float = 5) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


class _Token:
    def __init__(self, token: str):
        self.metadata = tuple(token_metadata(token))

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in self.metadata:
            if key not in metadata:
                metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _UnaryUnaryToken(_Token, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _UnaryStreamToken(_Token, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _StreamUnaryToken(_Token, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


class _StreamStreamToken(_Token, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


def token_interceptors(token: str | None) -> list:
    """Client interceptors adding `authorization: Bearer <token>` to every call (none without a token)."""
    if not token:
        return []
    return [kind(token) for kind in (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken, _StreamStreamToken)]


# gRPC's own retries, for idempotent reads: UNAVAILABLE (a server restarting, its database reconnecting) is tried
# again with backoff, within the call's deadline.
RETRY_UNAVAILABLE = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def channel(
    addr: str,
    token: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    trace: bool = True,
    retry_unavailable: bool = False,
) -> grpc.aio.Channel:
    """A client channel to one of our servers: TLS when RELAIS_TLS_CA is set (in `env`, default the
    process environment), the service `token` on every call when given, the trace context when `trace`,
    UNAVAILABLE retried when `retry_unavailable` (only for services whose calls are all idempotent)."""
    interceptors = [*(aio_client_interceptors() if trace else []), *token_interceptors(token)]
    options = [("grpc.service_config", RETRY_UNAVAILABLE)] if retry_unavailable else []
    credentials = channel_credentials(env)
    if credentials is None:
        return grpc.aio.insecure_channel(addr, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(addr, credentials, options=options, interceptors=interceptors)


def sync_channel(addr: str, env: Mapping[str, str] | None = None) -> grpc.Channel:
    """A blocking channel (health probes), TLS when RELAIS_TLS_CA is set in `env`."""
    credentials = channel_credentials(env)
    return grpc.insecure_channel(addr) if credentials is None else grpc.secure_channel(addr, credentials)
