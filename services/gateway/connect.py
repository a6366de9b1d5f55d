"""The Connect protocol (connectrpc.com/docs/protocol) for every relais gRPC API, proxied to the gRPC services.

The routes come from the protobuf descriptors of relais.common.pb (every `*_pb2` module, every service, every
method): a new .proto file or method is served once its code is generated, without code here. Each call is made
upstream with grpc.aio's generic calls, the message (de)serialised by its own class.

- Unary: `POST /<package>.<Service>/<Method>`, `Content-Type: application/json` (or `application/proto`); the
  answer is the response message, or a Connect error `{"code": "...", "message": "..."}` with the HTTP status the
  spec maps its gRPC code to.
- Server streaming: `Content-Type: application/connect+json` (or `+proto`), the request as one envelope; the
  answer is one envelope per message, written as it arrives, then the end-of-stream envelope (`{}` or
  `{"error": {...}}`). The upstream call is cancelled when the HTTP client goes away.
- Client and bidirectional streaming (none in relais yet) answer `unimplemented`; gRPC-Web is not served.
- `Authorization` is passed on as gRPC metadata, nothing added or removed: the services enforce their tokens.
- JSON: protobuf's canonical mapping (camelCase or original field names read, unknown fields ignored as Connect
  clients expect; answers with the camelCase JSON names, default values omitted).
"""

import gzip
import importlib
import json
import logging
import pkgutil
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from multidict import MultiMapping

from relais.common import pb as pb_package

log = logging.getLogger(__name__)

# --- the route table, from the descriptors ---


@dataclass(frozen=True)
class Route:
    service: str  # full name, e.g. relais.v1.Analytics
    method: str  # e.g. GetKpis
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"


def file_descriptors() -> list:
    """The file descriptor of every generated module of relais.common.pb."""
    names = sorted(m.name for m in pkgutil.iter_modules(pb_package.__path__) if m.name.endswith("_pb2"))
    return [importlib.import_module(f"{pb_package.__name__}.{name}").DESCRIPTOR for name in names]


def route_table(files: Iterable | None = None) -> dict[str, Route]:
    """Path -> route, for every method of every service the descriptors declare."""
    routes = {}
    for file in file_descriptors() if files is None else files:
        for service in file.services_by_name.values():
            for method in service.methods:
                route = Route(
                    service=service.full_name,
                    method=method.name,
                    request=GetMessageClass(method.input_type),
                    response=GetMessageClass(method.output_type),
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                )
                routes[route.path] = route
    return routes


# --- errors ---

# gRPC code -> (Connect code, HTTP status), as the Connect spec maps them ("Error Codes").
CODES: dict[grpc.StatusCode, tuple[str, int]] = {
    grpc.StatusCode.CANCELLED: ("canceled", 499),
    grpc.StatusCode.UNKNOWN: ("unknown", 500),
    grpc.StatusCode.INVALID_ARGUMENT: ("invalid_argument", 400),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    grpc.StatusCode.NOT_FOUND: ("not_found", 404),
    grpc.StatusCode.ALREADY_EXISTS: ("already_exists", 409),
    grpc.StatusCode.PERMISSION_DENIED: ("permission_denied", 403),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    grpc.StatusCode.FAILED_PRECONDITION: ("failed_precondition", 400),
    grpc.StatusCode.ABORTED: ("aborted", 409),
    grpc.StatusCode.OUT_OF_RANGE: ("out_of_range", 400),
    grpc.StatusCode.UNIMPLEMENTED: ("unimplemented", 501),
    grpc.StatusCode.INTERNAL: ("internal", 500),
    grpc.StatusCode.UNAVAILABLE: ("unavailable", 503),
    grpc.StatusCode.DATA_LOSS: ("data_loss", 500),
    grpc.StatusCode.UNAUTHENTICATED: ("unauthenticated", 401),
}


class ConnectError(Exception):
    """A call's failure as Connect tells it; `status` overrides the code's HTTP status (404 for an unknown path)."""

    def __init__(self, code: grpc.StatusCode, message: str, status: int | None = None, metadata=()):
        super().__init__(message)
        self.code, self.message, self.metadata = code, message, metadata
        self.status = status or CODES[code][1]

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> "ConnectError":
        return cls(error.code(), error.details() or "", metadata=error.trailing_metadata() or ())

    def body(self) -> dict:
        body = {"code": CODES[self.code][0]}
        if self.message:
            body["message"] = self.message
        return body

    def response(self) -> web.Response:
        headers = metadata_headers(self.metadata)
        return web.json_response(self.body(), status=self.status, headers=headers)


# --- metadata ---

# Headers never passed on as metadata, nor taken from it: HTTP's, gRPC's and Connect's own.
RESERVED = ("grpc-", "connect-", ":")
RESERVED_NAMES = {"content-type", "content-length", "content-encoding", "te", "user-agent", "authorization"}


def request_metadata(headers: MultiMapping[str]) -> list[tuple[str, str]]:
    """What the gRPC call carries from the HTTP request: the caller's credentials, as they came."""
    return [("authorization", value) for value in headers.getall("Authorization", [])] if headers else []


def metadata_headers(metadata, prefix: str = "") -> dict[str, str]:
    """A call's response metadata as HTTP headers (text values only; `prefix` "Trailer-" for a unary trailer)."""
    headers = {}
    for key, value in metadata or ():
        if key.endswith("-bin") or key.startswith(RESERVED) or key in RESERVED_NAMES or not isinstance(value, str):
            continue
        headers[f"{prefix}{key}"] = value
    return headers


def timeout_of(headers: Mapping[str, str]) -> float | None:
    """Connect-Timeout-Ms (at most 10 digits) in seconds; None without it."""
    raw = headers.get("Connect-Timeout-Ms")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise ConnectError(
            grpc.StatusCode.INVALID_ARGUMENT, f"Connect-Timeout-Ms: expected 1 to 10 digits, got {raw!r}"
        )
    return int(raw) / 1000


# --- codecs and envelopes ---

JSON, PROTO = "json", "proto"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode(codec: str, data: bytes, message_type: type[Message]) -> Message:
    """The request message from its JSON or binary form; INVALID_ARGUMENT saying what is wrong."""
    message = message_type()
    try:
        if codec == PROTO:
            message.ParseFromString(data)
        elif data.strip():
            json_format.Parse(data.decode("utf-8"), message, ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, RecursionError) as error:
        what = "JSON" if codec == JSON else "binary protobuf"
        raise ConnectError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a {message_type.DESCRIPTOR.full_name} in {what}: {error}",
        ) from None
    return message


def encode(codec: str, message: Message) -> bytes:
    if codec == PROTO:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message), ensure_ascii=False, separators=(",", ":")).encode()


FLAG_COMPRESSED, FLAG_END_STREAM = 0x01, 0x02
HEADER = struct.Struct(">BI")


def envelope(payload: bytes, flags: int = 0) -> bytes:
    """One Connect (and gRPC-Web) frame: a flag byte, the payload's length (4 bytes, big-endian), the payload."""
    return HEADER.pack(flags, len(payload)) + payload


def unframe(data: bytes) -> list[tuple[int, bytes]]:
    """The (flags, payload) of each envelope in `data`; ValueError when it is not a whole number of envelopes."""
    frames, at = [], 0
    while at < len(data):
        if len(data) - at < HEADER.size:
            raise ValueError(f"{len(data) - at} bytes left: an envelope's header is 5 bytes")
        flags, length = HEADER.unpack_from(data, at)
        at += HEADER.size
        if len(data) - at < length:
            raise ValueError(f"an envelope announces {length} bytes, {len(data) - at} follow")
        frames.append((flags, data[at : at + length]))
        at += length
    return frames


def end_of_stream(error: ConnectError | None = None, metadata=()) -> bytes:
    """The end-of-stream envelope: `{}` for success, else the error; trailing metadata as lists of values."""
    body: dict = {}
    if error is not None:
        body["error"] = error.body()
    trailers: dict[str, list[str]] = {}
    for key, value in metadata_headers(metadata).items():
        trailers.setdefault(key, []).append(value)
    if trailers:
        body["metadata"] = trailers
    return envelope(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), FLAG_END_STREAM)


UNARY_TYPES = {"application/json": JSON, "application/proto": PROTO}
STREAM_TYPES = {"application/connect+json": JSON, "application/connect+proto": PROTO}


def codec_of(route: Route, content_type: str | None) -> str:
    media = media_type(content_type)
    accepted = STREAM_TYPES if route.server_streaming else UNARY_TYPES
    if media not in accepted:
        raise ConnectError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{route.path} is a {'server-streaming' if route.server_streaming else 'unary'} call: send Content-Type "
            f"{' or '.join(accepted)}, not {media or 'none'!r}",
            status=415,
        )
    return accepted[media]


def stream_request(route: Route, codec: str, body: bytes, encoding: str) -> Message:
    """The one request message of a server-streaming call from its envelope (gzip-compressed when flagged)."""
    try:
        frames = unframe(body)
    except ValueError as error:
        raise ConnectError(grpc.StatusCode.INVALID_ARGUMENT, f"malformed envelope: {error}") from None
    if len(frames) != 1:
        raise ConnectError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{route.path} takes exactly one request message, got {len(frames)}"
        )
    flags, payload = frames[0]
    if flags & FLAG_COMPRESSED:
        if encoding != "gzip":
            raise ConnectError(
                grpc.StatusCode.INTERNAL, f"compressed message with Connect-Content-Encoding {encoding or 'identity'!r}"
            )
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError) as error:
            raise ConnectError(grpc.StatusCode.INVALID_ARGUMENT, f"bad gzip message: {error}") from None
    return decode(codec, payload, route.request)


# --- upstreams ---


class Upstream:
    """A service's gRPC processes, in order of preference: an active process and its standbys. A call that meets
    UNAVAILABLE before any answer goes to the next; the one that answered is tried first from then on."""

    def __init__(self, addrs: list[str], channels: list[grpc.aio.Channel]):
        self.addrs, self.channels = addrs, channels
        self.preferred = 0

    def in_order(self) -> list[int]:
        return [(self.preferred + i) % len(self.channels) for i in range(len(self.channels))]

    async def open_call(self, route: Route, message: Message, metadata, timeout):
        """`route`'s call on the first process that does not refuse it with UNAVAILABLE, the preferred first, and
        its initial metadata (a unary call's arrive with its answer); the last process's call, however it ended."""
        for n, index in enumerate(self.in_order()):
            channel = self.channels[index]
            multicallable = channel.unary_stream if route.server_streaming else channel.unary_unary
            call = multicallable(
                route.path,
                request_serializer=route.request.SerializeToString,
                response_deserializer=route.response.FromString,
            )(message, metadata=metadata, timeout=timeout)
            initial = await call.initial_metadata()  # the call answered (a stream is open), or it already ended
            if call.done() and await call.code() == grpc.StatusCode.UNAVAILABLE and n + 1 < len(self.channels):
                continue  # refused before any answer (a standby, or a process gone): the next process
            self.preferred = index
            return call, initial
        raise AssertionError("an upstream has at least one channel")


class Proxy:
    """The aiohttp handlers of the Connect routes, calling `upstreams` (service full name -> Upstream)."""

    def __init__(self, routes: dict[str, Route], upstreams: dict[str, Upstream]):
        self.routes, self.upstreams = routes, upstreams

    def add_routes(self, app: web.Application) -> None:
        for path in self.routes:
            app.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        route = self.routes[request.path]
        try:
            if route.client_streaming:
                raise ConnectError(
                    grpc.StatusCode.UNIMPLEMENTED, f"{route.path}: client streaming is not served over HTTP/1.1"
                )
            codec = codec_of(route, request.headers.get("Content-Type"))
            timeout = timeout_of(request.headers)
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            return ConnectError(grpc.StatusCode.RESOURCE_EXHAUSTED, error.text or "request too large").response()
        except ConnectError as error:
            return error.response()
        metadata = request_metadata(request.headers)
        if route.server_streaming:
            return await self.server_stream(request, route, codec, body, metadata, timeout)
        return await self.unary(route, codec, body, metadata, timeout)

    def upstream(self, route: Route) -> Upstream:
        upstream = self.upstreams.get(route.service)
        if upstream is None:
            raise ConnectError(grpc.StatusCode.UNIMPLEMENTED, f"{route.service} has no upstream in this gateway")
        return upstream

    async def unary(self, route: Route, codec: str, body: bytes, metadata, timeout) -> web.Response:
        try:
            message = decode(codec, body, route.request)
            call, initial = await self.upstream(route).open_call(route, message, metadata, timeout)
            try:
                reply = await call
            except grpc.aio.AioRpcError as error:
                raise ConnectError.of(error) from None
            headers = metadata_headers(initial) | metadata_headers(await call.trailing_metadata(), "Trailer-")
            content_type = "application/json" if codec == JSON else "application/proto"
            return web.Response(body=encode(codec, reply), content_type=content_type, headers=headers)
        except ConnectError as error:
            return error.response()

    async def server_stream(
        self, request: web.Request, route: Route, codec: str, body: bytes, metadata, timeout
    ) -> web.StreamResponse:
        try:
            message = stream_request(route, codec, body, request.headers.get("Connect-Content-Encoding", ""))
            upstream = self.upstream(route)
        except ConnectError as error:  # a stream's error, even before it starts: HTTP 200, then end-of-stream
            return web.Response(body=end_of_stream(error), content_type=f"application/connect+{codec}")
        call: grpc.aio.UnaryStreamCall | None = None
        try:
            call, initial = await upstream.open_call(route, message, metadata, timeout)
            response = web.StreamResponse(
                headers={"Content-Type": f"application/connect+{codec}", **metadata_headers(initial)}
            )
            try:
                await response.prepare(request)  # headers out now: the client knows the stream is open
                failed = None
                try:
                    async for reply in call:
                        await response.write(envelope(encode(codec, reply)))
                except grpc.aio.AioRpcError as failure:
                    failed = ConnectError.of(failure)
                await response.write(end_of_stream(failed, await call.trailing_metadata()))
                await response.write_eof()
            except ConnectionResetError:  # the client left: nothing more to tell it
                log.debug("%s: the HTTP client left", route.path)
            return response
        finally:  # the HTTP client went away (the handler is cancelled) or writing to it failed
            if call is not None and not call.done():
                call.cancel()


async def not_found(request: web.Request) -> web.Response:
    """An unknown path under a Connect-looking POST: 404 with the Connect error `unimplemented`."""
    return ConnectError(
        grpc.StatusCode.UNIMPLEMENTED, f"no such procedure: {request.method} {request.path}", status=404
    ).response()
