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
