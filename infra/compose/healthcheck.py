"""Health probe for the container health checks (docker-compose.yml).

    python infra/compose/healthcheck.py 50051              # gRPC health of 127.0.0.1:50051
    python infra/compose/healthcheck.py lookup:50056
    python infra/compose/healthcheck.py --http 8080        # GET http(s)://127.0.0.1:8080/healthz (the gateway)

TLS as the server in the same container has it (docs/security.md, "TLS"): with RELAIS_TLS_CA set, the probe
speaks TLS, trusts that CA and presents RELAIS_TLS_CLIENT_CERT / RELAIS_TLS_CLIENT_KEY when they are set
(mutual TLS); without it, plaintext. A server with TLS on (RELAIS_TLS_CERT) but no RELAIS_TLS_CA to verify it
is reported as the configuration error it is, not as a server that does not answer.

Exits 0 when the server answers SERVING (HTTP: 200), 1 when it is unreachable, not serving or the TLS settings
are incomplete, 2 on bad usage. A relais service starts its gRPC server only after it has connected to
PostgreSQL and Kafka, and reports NOT_SERVING once it starts to stop (relais.common.worker,
relais.common.grpcserver).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from relais.common.grpcserver import AccessError, channel_credentials

TIMEOUT_SECONDS = 3


class ProbeError(RuntimeError):
    """The probe cannot be made as configured (TLS settings)."""


def _setting(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _require_ca_when_tls(env: Mapping[str, str]) -> bool:
    """Whether the probe uses TLS; a server with TLS and nothing to verify it with is an error."""
    if _setting(env, "RELAIS_TLS_CA"):
        return True
    if _setting(env, "RELAIS_TLS_CERT"):
        raise ProbeError(
            "RELAIS_TLS_CERT is set (the server listens with TLS) but RELAIS_TLS_CA, the CA the probe trusts, is not"
        )
    return False


def check_grpc(target: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """(serving, what to print) for the standard gRPC health of `target`'s overall service."""
    credentials = channel_credentials(env) if _require_ca_when_tls(env) else None
    channel = grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS
            )
        except grpc.RpcError as error:
            return False, f"{target}: {error.code().name} {error.details() or ''}".rstrip()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def _ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=_setting(env, "RELAIS_TLS_CA"))
    cert, key = _setting(env, "RELAIS_TLS_CLIENT_CERT"), _setting(env, "RELAIS_TLS_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise ProbeError("a client certificate needs both RELAIS_TLS_CLIENT_CERT and RELAIS_TLS_CLIENT_KEY")
    if cert:
        context.load_cert_chain(cert, key)
    return context


def check_http(target: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """(serving, what to print) for GET /healthz on `target` (https when the probe uses TLS)."""
    tls = _require_ca_when_tls(env)
    url = f"{'https' if tls else 'http'}://{target}/healthz"
    try:
        context = _ssl_context(env) if tls else None
    except (OSError, ssl.SSLError) as error:
        raise ProbeError(f"TLS settings: {error}") from None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"{url}: {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"{url}: {reason}"


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    http = bool(argv) and argv[0] == "--http"
    args = argv[1:] if http else argv
    if len(args) != 1 or not (":" in args[0] or args[0].isdigit()):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target = args[0] if ":" in args[0] else f"127.0.0.1:{args[0]}"
    try:
        serving, report = (check_http if http else check_grpc)(target, env)
    except (ProbeError, AccessError) as error:
        print(f"{target}: {error}", file=sys.stderr)
        return 1
    print(report, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
