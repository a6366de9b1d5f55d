"""The compose health probe (infra/compose/healthcheck.py) against real local servers: a relais gRPC server
(relais.common.grpcserver) and an HTTP /healthz, each plaintext, with TLS and with mutual TLS. The probe runs
as the containers run it, a separate process, so the servers keep serving on this test's event loop."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path

from aiohttp import web

from relais.common import grpcserver

ROOT = Path(__file__).resolve().parents[3]
PROBE = ROOT / "infra" / "compose" / "healthcheck.py"
TLS_VARIABLES = (
    "RELAIS_TLS_CERT",
    "RELAIS_TLS_KEY",
    "RELAIS_TLS_CA",
    "RELAIS_TLS_CLIENT_CA",
    "RELAIS_TLS_CLIENT_CERT",
    "RELAIS_TLS_CLIENT_KEY",
)


def server_env(certs, mutual=False):
    env = {"RELAIS_TLS_CERT": str(certs["server.pem"]), "RELAIS_TLS_KEY": str(certs["server.key"])}
    if mutual:
        env["RELAIS_TLS_CLIENT_CA"] = str(certs["ca.pem"])
    return env


def client_env(certs, client_certificate=False):
    env = {"RELAIS_TLS_CA": str(certs["ca.pem"])}
    if client_certificate:
        env |= {"RELAIS_TLS_CLIENT_CERT": str(certs["client.pem"]), "RELAIS_TLS_CLIENT_KEY": str(certs["client.key"])}
    return env


async def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Runs the probe as compose does; (exit code, what it printed)."""
    process_env = {k: v for k, v in os.environ.items() if k not in TLS_VARIABLES} | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        *args,
        cwd=ROOT,
        env=process_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def start_grpc(env) -> grpcserver.GrpcServer:
    server = grpcserver.GrpcServer(
        "127.0.0.1:0", ["relais.v1.Analytics"], token="probe-test-token", credentials=grpcserver.server_credentials(env)
    )
    await server.start()
    await server.set_serving(True)
    return server


async def test_a_plaintext_server_is_healthy_while_serving_and_unhealthy_once_stopping():
    server = await start_grpc({})
    try:
        code, output = await probe(str(server.port))
        assert (code, output.strip()) == (0, f"127.0.0.1:{server.port}: SERVING")
        await server.set_serving(False)
        code, output = await probe(f"127.0.0.1:{server.port}")
        assert code == 1 and "NOT_SERVING" in output
    finally:
        await server.stop(0)


async def test_a_tls_server_is_probed_over_tls_when_the_ca_is_set(certs):
    server = await start_grpc(server_env(certs))
    try:
        code, output = await probe(str(server.port), env=server_env(certs) | client_env(certs))
        assert code == 0 and "SERVING" in output, output
        # What the probe did before it knew TLS: a plaintext call, refused.
        code, output = await probe(str(server.port))
        assert code == 1 and "UNAVAILABLE" in output, output
        # The server's own variables without the CA: said as a setting missing, not as a server down.
        code, output = await probe(str(server.port), env=server_env(certs))
        assert code == 1 and "RELAIS_TLS_CA" in output, output
    finally:
        await server.stop(0)


async def test_a_mutual_tls_server_is_probed_with_the_client_certificate(certs):
    env = server_env(certs, mutual=True)
    server = await start_grpc(env)
    try:
        code, output = await probe(str(server.port), env=env | client_env(certs, client_certificate=True))
        assert code == 0 and "SERVING" in output, output
        code, output = await probe(str(server.port), env=env | client_env(certs))
        assert code == 1 and "UNAVAILABLE" in output, output
    finally:
        await server.stop(0)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def start_http(ssl_context: ssl.SSLContext | None, with_healthz: bool = True) -> tuple[web.AppRunner, int]:
    app = web.Application()
    if with_healthz:
        app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


def http_server_context(certs, mutual=False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    if mutual:
        context.load_verify_locations(certs["ca.pem"])
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_the_http_probe_reads_healthz_in_plaintext_and_over_tls(certs):
    runner, port = await start_http(None)
    try:
        code, output = await probe("--http", str(port))
        assert code == 0 and f"http://127.0.0.1:{port}/healthz: 200" in output, output
    finally:
        await runner.cleanup()
    runner, port = await start_http(http_server_context(certs))
    try:
        code, output = await probe("--http", str(port), env=server_env(certs) | client_env(certs))
        assert code == 0 and f"https://127.0.0.1:{port}/healthz: 200" in output, output
        code, output = await probe("--http", str(port), env=server_env(certs))
        assert code == 1 and "RELAIS_TLS_CA" in output, output
    finally:
        await runner.cleanup()


async def test_the_http_probe_presents_the_client_certificate_to_a_mutual_tls_server(certs):
    runner, port = await start_http(http_server_context(certs, mutual=True))
    try:
        env = server_env(certs, mutual=True)
        code, output = await probe("--http", str(port), env=env | client_env(certs, client_certificate=True))
        assert code == 0, output
        code, output = await probe("--http", str(port), env=env | client_env(certs))
        assert code == 1, output
    finally:
        await runner.cleanup()


async def test_a_404_or_a_closed_port_is_unhealthy_and_bad_usage_says_how():
    runner, port = await start_http(None, with_healthz=False)
    try:
        code, output = await probe("--http", str(port))
        assert code == 1 and f"http://127.0.0.1:{port}/healthz: 404" in output, output
    finally:
        await runner.cleanup()  # the port is free again: nothing listens
    code, output = await probe("--http", str(port))
    assert code == 1 and f"127.0.0.1:{port}" in output, output
    code, output = await probe("not-a-port")
    assert code == 2 and "healthcheck.py" in output, output
