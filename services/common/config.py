"""Configuration from the environment, with the loopback defaults `make up` uses."""

import os
from dataclasses import dataclass

# Fixed default ports of the local stack (README, "Ports").
DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_DATABASE_URL = "postgresql://relais:relais@127.0.0.1:15432/relais"
DEFAULT_GRPC_PORTS = {
    "intake": 50051,
    "classifier": 50052,
    "bot": 50053,
    "routing": 50054,
    "analytics": 50055,
    "lookup": 50056,
}


def env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def grpc_addr(service: str) -> str:
    """Where `service`'s gRPC server listens, e.g. ROUTING_GRPC_ADDR=127.0.0.1:50054."""
    return env(f"{service.upper()}_GRPC_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}")


@dataclass(frozen=True)
class Settings:
    service: str
    kafka_bootstrap: str
    database_url: str
    grpc_addr: str
    max_text_chars: int
    consumer_group: str  # RELAIS_CONSUMER_GROUP: a new group (and an empty database) replays the log

    @classmethod
    def from_env(cls, service: str) -> "Settings":
        return cls(
            service=service,
            kafka_bootstrap=env("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA),
            database_url=env("DATABASE_URL", DEFAULT_DATABASE_URL),
            grpc_addr=grpc_addr(service),
            max_text_chars=int(env("RELAIS_MAX_TEXT_CHARS", "4000")),
            consumer_group=env("RELAIS_CONSUMER_GROUP", f"relais-{service}"),
        )


# --- access (README, "Access") ---

SERVICE_TOKEN_ENV = "RELAIS_SERVICE_TOKEN"


def service_token(environ: dict[str, str] | None = None) -> str | None:
    """The shared token our services present to (and require on) the Lookup and Analytics APIs."""
    value = (os.environ if environ is None else environ).get(SERVICE_TOKEN_ENV, "").strip()
    return value or None


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names it."""


def kafka_security(environ: dict[str, str] | None = None) -> dict:
    """aiokafka keyword arguments (producer, consumer, admin) for a secured cluster, from the environment:

    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    KAFKA_SASL_MECHANISM      PLAIN (default with SASL), SCRAM-SHA-256 or SCRAM-SHA-512
    KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD
    KAFKA_SSL_CAFILE          the CA that signed the brokers' certificates (default: the system's)
    KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE, KAFKA_SSL_KEY_PASSWORD   a client certificate (mutual TLS)
    """
    e = os.environ if environ is None else environ

    def get(name: str) -> str:
        return (e.get(name) or "").strip()

    protocol = (get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol}: expected one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}")
    if protocol == "PLAINTEXT":
        return {}
    options: dict = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        mechanism = (get("KAFKA_SASL_MECHANISM") or "PLAIN").upper()
        if mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM={mechanism}: expected one of {', '.join(KAFKA_SASL_MECHANISMS)}")
        username, password = get("KAFKA_SASL_USERNAME"), e.get("KAFKA_SASL_PASSWORD") or ""
        if not username or not password:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        options |= {"sasl_mechanism": mechanism, "sasl_plain_username": username, "sasl_plain_password": password}
    if protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        certfile, keyfile = get("KAFKA_SSL_CERTFILE") or None, get("KAFKA_SSL_KEYFILE") or None
        if certfile is None and keyfile is not None:
            raise ConfigError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
        options["ssl_context"] = create_ssl_context(
            cafile=get("KAFKA_SSL_CAFILE") or None, certfile=certfile, keyfile=keyfile,
            password=e.get("KAFKA_SSL_KEY_PASSWORD") or None,
        )
    return options
