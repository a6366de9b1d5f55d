"""The gateway's wiring: one aiohttp server on RELAIS_HTTP_ADDR (default 127.0.0.1:18080) serving

- `POST /<package>.<Service>/<Method>`: every relais gRPC API in the Connect protocol (relais.gateway.connect);
- `POST /events`: the HTTP intake of CloudEvents (relais.gateway.events);
- `GET /desk`, `GET /wallboard` and their assets (services/gateway/static/, also under /static/);
- `GET /healthz`: 200 while serving.

Upstreams: AgentDesk and LiveView on routing (ROUTING_GRPC_ADDR, then ROUTING_STANDBY_GRPC_ADDR when the first
answers UNAVAILABLE), Analytics on ANALYTICS_GRPC_ADDR, EnterpriseLookup on LOOKUP_GRPC_ADDR; over TLS when
RELAIS_TLS_CA is set. HTTPS with RELAIS_TLS_CERT / RELAIS_TLS_KEY (and a client certificate required with
RELAIS_TLS_CLIENT_CA, as the gRPC servers do).

CORS: pages served here are same-origin and need none. Pages served elsewhere may call the gateway from the origins
listed in RELAIS_HTTP_CORS_ORIGINS (comma-separated, or `*`): their requests and preflights get the CORS headers,
the request headers a preflight asks for allowed as asked (Authorization, Connect-*, ce-*...).
"""

import asyncio
import logging
import ssl
from pathlib import Path

from aiohttp import web

from relais.common import grpcserver
from relais.common.config import DEFAULT_PORTS, Settings, env, grpc_addr, setting
from relais.common.runtime import serve
from relais.gateway.connect import Proxy, Upstream, not_found, route_table
from relais.gateway.events import MAX_REQUEST_BYTES, EventIntake

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGES = {"/desk": "desk.html", "/wallboard": "wallboard.html"}
DEFAULT_HTTP_ADDR = f"127.0.0.1:{DEFAULT_PORTS['gateway']}"
CORS_ORIGINS_ENV = "RELAIS_HTTP_CORS_ORIGINS"

# Which process serves each gRPC service (by the relais service whose <NAME>_GRPC_ADDR says where).
UPSTREAM_OF = {
    "relais.v1.AgentDesk": "routing",
    "relais.v1.LiveView": "routing",
    "relais.v1.Analytics": "analytics",
    "relais.v1.EnterpriseLookup": "lookup",
}
# Services with an active process and standbys: tried in this order.
STANDBYS = {"routing": "ROUTING_STANDBY_GRPC_ADDR"}


def upstream_addresses(service: str) -> list[str]:
    """The addresses of `service`'s processes: its <SERVICE>_GRPC_ADDR, then its standbys' (comma-separated)."""
    found = []
    for value in (grpc_addr(service), env(STANDBYS[service], "") if service in STANDBYS else ""):
        for addr in value.split(","):
            if addr.strip() and addr.strip() not in found:
                found.append(addr.strip())
    return found


def make_upstreams(services) -> dict[str, Upstream]:
    """An Upstream per gRPC service of the route table, channels shared by services on the same process."""
    channels, upstreams = {}, {}
    for service in sorted(set(services)):
        if service not in UPSTREAM_OF:
            log.warning(
                "%s has no upstream in relais.gateway.service.UPSTREAM_OF: its calls answer unimplemented", service
            )
            continue
        addrs = upstream_addresses(UPSTREAM_OF[service])
        for addr in addrs:
            if addr not in channels:
                channels[addr] = grpcserver.channel(addr)  # TLS when RELAIS_TLS_CA is set
        upstreams[service] = Upstream(addrs, [channels[addr] for addr in addrs])
    return upstreams


def cors_origins(raw: str | None = None) -> frozenset[str]:
    raw = env(CORS_ORIGINS_ENV, "") if raw is None else raw
    return frozenset(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


def cors_middleware(origins: frozenset[str]):
    """CORS for the configured origins: preflights answered here, the other answers given the CORS headers."""

    def allowed(request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin and ("*" in origins or origin in origins):
            return origin
        return None

    @web.middleware
    async def middleware(request: web.Request, handler):
        origin = allowed(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if origin is None:
                return web.Response(status=403, text="origin not allowed (RELAIS_HTTP_CORS_ORIGINS)")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", ""),
                    "Access-Control-Max-Age": "7200",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "*"
            response.headers["Vary"] = "Origin"
        return response

    return middleware


@web.middleware
async def connect_not_found(request: web.Request, handler):
    """A POST to an unknown path is a call of an unknown procedure: Connect's `unimplemented`, HTTP 404."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        if request.method != "POST":
            raise
        return await not_found(request)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "serving"})


# Content types by extension (RFC 9239's text/javascript for modules); others as the mimetypes module guesses.
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


def static_response(relative: str) -> web.FileResponse:
    """A file of STATIC_DIR (never outside it), revalidated on each load so a new version shows at once."""
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or path.name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound(text=f"{relative}: no such file in the gateway's pages")
    headers = {"Cache-Control": "no-cache"}
    if path.suffix in CONTENT_TYPES:
        headers["Content-Type"] = CONTENT_TYPES[path.suffix]
    return web.FileResponse(path, headers=headers)


def page(name: str):
    async def serve_page(_request: web.Request) -> web.StreamResponse:
        return static_response(name)

    return serve_page


async def static_file(request: web.Request) -> web.StreamResponse:
    """A page's asset, at the root (a page at /desk that loads ./desk.js asks for /desk.js) or under /static/."""
    return static_response(request.match_info["name"])


def make_app(proxy: Proxy, intake: EventIntake | None, origins: frozenset[str] = frozenset()) -> web.Application:
    app = web.Application(middlewares=[cors_middleware(origins), connect_not_found], client_max_size=MAX_REQUEST_BYTES)
    proxy.add_routes(app)
    if intake is not None:
        app.router.add_post("/events", intake.handle)
    app.router.add_get("/healthz", healthz)
    for route, name in PAGES.items():
        app.router.add_get(route, page(name))
    app.router.add_get("/static/{name:.+}", static_file)
    app.router.add_get("/{name:[^/]+}", static_file)
    return app


def ssl_context() -> ssl.SSLContext | None:
    """HTTPS from RELAIS_TLS_CERT / RELAIS_TLS_KEY (a client certificate required with RELAIS_TLS_CLIENT_CA), with
    the gRPC servers' checks and messages; None: plain HTTP."""
    import os

    if grpcserver.server_credentials() is None:  # raises AccessError naming what is missing or unreadable
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.environ["RELAIS_TLS_CERT"].strip(), os.environ["RELAIS_TLS_KEY"].strip())
    client_ca = os.environ.get("RELAIS_TLS_CLIENT_CA", "").strip()
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def run(settings: Settings, stop: asyncio.Event) -> None:
    addr = setting("RELAIS_HTTP_ADDR", DEFAULT_HTTP_ADDR)
    host, port = addr.rsplit(":", 1)
    context = ssl_context()
    routes = route_table()
    upstreams = make_upstreams(route.service for route in routes.values())
    intake = EventIntake(settings.kafka_bootstrap, settings.max_text_chars)
    intake.start()
    app = make_app(Proxy(routes, upstreams), intake, cors_origins())
    # handler_cancellation: a stream's handler is cancelled when its client goes, which cancels the upstream call.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=context)
        await site.start()
        log.info(
            "serving %d procedures of %d services, /events, /desk, /wallboard on %s://%s",
            len(routes),
            len(upstreams),
            "https" if context else "http",
            addr,
        )
        await stop.wait()
    finally:
        await runner.cleanup()  # open streams are cancelled, their upstream calls with them
        await intake.stop()
        for channel in {id(c): c for u in upstreams.values() for c in u.channels}.values():
            await channel.close()


def main() -> None:
    serve("gateway", run)


if __name__ == "__main__":
    main()
