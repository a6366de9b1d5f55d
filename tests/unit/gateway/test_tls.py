"""TLS at both ends: the gateway serves HTTPS from RELAIS_TLS_CERT / RELAIS_TLS_KEY (a client certificate required
with RELAIS_TLS_CLIENT_CA) and calls the services over TLS with RELAIS_TLS_CA."""

import ssl

import aiohttp
import grpc
import pytest
from aiohttp import web

from infra.ports import free_port
from relais.common import grpcserver
from relais.gateway.connect import Proxy, route_table
from relais.gateway.service import make_app, make_upstreams, ssl_context
from tests.unit.gateway.test_proxy import analytics_handler


async def serve_gateway(monkeypatch, certs, mutual: bool):
    """A TLS Analytics upstream and a gateway in front of it, both configured from the environment."""
    monkeypatch.setenv("RELAIS_TLS_CERT", str(certs["server.pem"]))
    monkeypatch.setenv("RELAIS_TLS_KEY", str(certs["server.key"]))
    monkeypatch.setenv("RELAIS_TLS_CA", str(certs["ca.pem"]))
    upstream = grpc.aio.server()
    upstream.add_generic_rpc_handlers((analytics_handler(),))
    port = upstream.add_secure_port("127.0.0.1:0", grpcserver.server_credentials())
    await upstream.start()
    monkeypatch.setenv("ANALYTICS_GRPC_ADDR", f"127.0.0.1:{port}")
    if mutual:  # the gateway asks its HTTP clients for a certificate signed by this CA
        monkeypatch.setenv("RELAIS_TLS_CLIENT_CA", str(certs["ca.pem"]))
    routes = route_table()
    upstreams = make_upstreams({"relais.v1.Analytics"})
    runner = web.AppRunner(make_app(Proxy(routes, upstreams), None))
    await runner.setup()
    http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port, ssl_context=ssl_context()).start()
    return upstream, runner, upstreams, f"https://127.0.0.1:{http_port}"


async def stop(upstream, runner, upstreams):
    await runner.cleanup()
    for u in upstreams.values():
        for channel in u.channels:
            await channel.close()
    await upstream.stop(None)


async def test_https_in_front_of_a_tls_upstream(monkeypatch, certs):
    upstream, runner, upstreams, url = await serve_gateway(monkeypatch, certs, mutual=False)
    try:
        client_tls = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/relais.v1.Analytics/GetKpis",
                json={},
                headers={"Authorization": "Bearer secret"},
                ssl=client_tls,
            ) as answer:
                assert answer.status == 200 and (await answer.json())["currency"] == "EUR"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # not trusted without the CA
                await http.get(f"{url}/healthz")
    finally:
        await stop(upstream, runner, upstreams)


async def test_mutual_tls_refuses_a_client_without_a_certificate(monkeypatch, certs):
    upstream, runner, upstreams, url = await serve_gateway(monkeypatch, certs, mutual=True)
    try:
        async with aiohttp.ClientSession() as http:
            without = ssl.create_default_context(cafile=str(certs["ca.pem"]))
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"{url}/healthz", ssl=without) as answer:
                    await answer.read()
            with_cert = ssl.create_default_context(cafile=str(certs["ca.pem"]))
            with_cert.load_cert_chain(str(certs["client.pem"]), str(certs["client.key"]))
            async with http.get(f"{url}/healthz", ssl=with_cert) as answer:
                assert answer.status == 200
    finally:
        await stop(upstream, runner, upstreams)
