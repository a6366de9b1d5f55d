"""Configuration from the environment, with the loopback defaults `make up` uses.

Every setting a service reads is checked at start-up (`check_environment`, called by runtime.serve): a bad value
stops the process with one line naming the variable and the expected form, before anything connects.
"""

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Fixed default ports of the local stack (docs/operations.md, "Ports"): the services' defaults and what `make up` uses.
DEFAULT_GRPC_PORTS = {
    "intake": 50051,
    "classifier": 50052,
    "bot": 50053,
    "routing": 50054,
    "analytics": 50055,
    "lookup": 50056,
}
DEFAULT_PORTS = {
    "kafka": 19092,
    "kafka_controller": 19093,
    "postgres": 15432,
    **DEFAULT_GRPC_PORTS,
    "routing-standby": 50064,
    "gateway": 18080,  # relais.gateway's HTTP port (RELAIS_HTTP_ADDR)
}
# Each process's Prometheus /metrics port (RELAIS_METRICS_ADDR): 19100 + the last two digits of its gRPC port.
# Like the broker's and the database's, below Linux's ephemeral range (32768-60999): a port in that range can be
# the local end of another process's outgoing connection when this one starts (make up's routing twice found
# 50154 taken, with nothing listening on it).
DEFAULT_METRICS_PORTS = {
    **{service: 19100 + port % 100 for service, port in DEFAULT_GRPC_PORTS.items()},
    "routing-standby": 19164,
    "gateway": 19180,
}
DEFAULT_KAFKA = f"127.0.0.1:{DEFAULT_PORTS['kafka']}"
DEFAULT_DATABASE_URL = f"postgresql://relais:relais@127.0.0.1:{DEFAULT_PORTS['postgres']}/relais"


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names it."""


# --- the form of each setting ---


@dataclass(frozen=True)
class Form:
    """What a setting must look like: `expected` completes "NAME: expected ..."; `parse` raises ValueError, or
    Narrower for a value of the right form out of range."""

    expected: str
    parse: Callable[[str], object]


class Narrower(ValueError):
    """The value has the form but not the range: its message is the narrower expectation."""


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError()
    return value


def number(unit: str, minimum: float = 0, *, above: bool = False) -> Form:
    """A decimal number of `unit` (e.g. "milliseconds"), ≥ minimum (> minimum when `above`)."""
    expected = f"a number of {unit}"

    def parse(raw: str) -> float:
        value = _finite(raw)
        if value < minimum or (above and value == minimum):
            raise Narrower(f"{expected} {'>' if above else '≥'} {minimum:g}")
        return value

    return Form(expected, parse)


def whole(unit: str, minimum: int = 0) -> Form:
    expected = f"a whole number of {unit}"

    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise Narrower(f"{expected} ≥ {minimum}")
        return value

    return Form(expected, parse)


def fraction() -> Form:
    def parse(raw: str) -> float:
        value = _finite(raw)
        if not 0 <= value <= 1:
            raise ValueError()
        return value

    return Form("a fraction from 0 to 1, e.g. 0.8", parse)


def one_of(*choices: str) -> Form:
    def parse(raw: str) -> str:
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise ValueError()

    return Form(f"one of {', '.join(choices)}", parse)


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


def _host_port(raw: str) -> str:
    match = _HOST_PORT.match(raw)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError()
    return raw


def address() -> Form:
    return Form("host:port, e.g. 127.0.0.1:50051", _host_port)


def metrics_address() -> Form:
    """RELAIS_METRICS_ADDR: host:port (port 0: any free port), or off."""

    def parse(raw: str) -> str | None:
        if raw.lower() == "off":
            return None
        match = _HOST_PORT.match(raw)
        if not match or not 0 <= int(match.group(2)) < 65536:
            raise ValueError()
        return raw

    return Form("host:port (port 0: any free one) or off, e.g. 127.0.0.1:19151", parse)


def bootstrap_servers() -> Form:
    def parse(raw: str) -> str:
        for server in raw.split(","):
            server = server.strip()
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", server):  # a bare host: Kafka's port 9092
                _host_port(server)
        return raw

    return Form("host:port[,host:port...], e.g. 127.0.0.1:19092", parse)


def database_url() -> Form:
    def parse(raw: str) -> str:
        url = urlsplit(raw)
        if url.scheme not in ("postgresql", "postgres") or not url.hostname or not url.path.strip("/"):
            raise ValueError()
        _ = url.port  # raises ValueError when the port is not a number
        return raw

    return Form("postgresql://user:password@host:port/database", parse)


def http_url() -> Form:
    def parse(raw: str) -> str:
        url = urlsplit(raw)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError()
        _ = url.port  # raises ValueError when the port is not a number
        return raw

    return Form("an http:// or https:// URL", parse)


def numbers(unit: str) -> Form:
    def parse(raw: str) -> tuple[float, ...]:
        values = tuple(_finite(part) for part in raw.split(","))
        if any(value < 0 for value in values):
            raise ValueError()
        return values

    return Form(f"comma-separated numbers of {unit} ≥ 0, e.g. 60,180", parse)


def existing(kind: str) -> Form:
    """A path to an existing file ("file") or directory ("directory")."""

    def parse(raw: str) -> str:
        path = Path(raw)
        if not (path.is_dir() if kind == "directory" else path.is_file()):
            raise ValueError()
        return raw

    return Form(f"the path of an existing {kind}", parse)


def region_codes() -> Form:
    """Regions libphonenumber knows (relais.common.redact: whose national phone formats are redacted)."""

    def parse(raw: str) -> tuple[str, ...]:
        import phonenumbers

        codes = tuple(dict.fromkeys(code.strip().upper() for code in raw.split(",")))
        if not all(code in phonenumbers.SUPPORTED_REGIONS for code in codes):
            raise ValueError()
        return codes

    return Form("comma-separated ISO 3166 region codes, e.g. FR,BE,GB,US", parse)


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SERVICES = tuple(DEFAULT_GRPC_PORTS)

# Every setting with a form to check; free text (tokens, group names, the LLM model's name) has none.
SETTINGS: dict[str, Form] = {
    "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers(),
    "KAFKA_SECURITY_PROTOCOL": one_of(*KAFKA_SECURITY_PROTOCOLS),
    "KAFKA_SASL_MECHANISM": one_of(*KAFKA_SASL_MECHANISMS),
    "KAFKA_SSL_CAFILE": existing("file"),
    "KAFKA_SSL_CERTFILE": existing("file"),
    "KAFKA_SSL_KEYFILE": existing("file"),
    "DATABASE_URL": database_url(),
    **{f"{service.upper()}_GRPC_ADDR": address() for service in SERVICES},
    "ROUTING_STANDBY_GRPC_ADDR": address(),
    "RELAIS_ADVERTISED_ADDR": address(),
    "RELAIS_HTTP_ADDR": address(),
    "RELAIS_HEALTH_SECONDS": number("seconds", above=True),
    "RELAIS_STOP_SECONDS": number("seconds", above=True),
    "RELAIS_LOG_LEVEL": one_of(*LOG_LEVELS),
    "RELAIS_LOG_FORMAT": one_of("text", "json"),
    "RELAIS_MAX_TEXT_CHARS": whole("characters", 1),
    "RELAIS_PHONE_REGIONS": region_codes(),
    "RELAIS_BATCH": one_of("on", "off"),
    "RELAIS_EVENT_LOOP": one_of("uvloop", "asyncio"),
    "RELAIS_RETENTION_DAYS": number("days"),
    "RELAIS_RETENTION_CHECK_SECONDS": number("seconds", above=True),
    "RELAIS_RECONTACT_DAYS": number("days"),
    "RELAIS_SERVICE_LEVEL_SECONDS": number("seconds"),
    "RELAIS_SERVICE_LEVEL_TARGET": fraction(),
    "RELAIS_ALERT_WINDOW": one_of("hour", "day"),
    "RELAIS_ALERT_SECONDS": number("seconds", above=True),
    "RELAIS_ALERT_SETTLE_SECONDS": number("seconds"),
    "RELAIS_STAFFING_INTERVAL_MINUTES": number("minutes", above=True),
    "RELAIS_COST_MODEL": existing("file"),
    "RELAIS_ROUTING_RULES": existing("file"),
    "RELAIS_ROUTING_TICK_SECONDS": number("seconds", above=True),
    "RELAIS_ROUTING_AGING_SECONDS_PER_POINT": number("seconds", 0.001),
    "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS": number("seconds", 0.1),
    "RELAIS_ROUTING_WRAP_UP_SECONDS": number("seconds"),
    "RELAIS_ROUTING_QUEUE_UPDATE_SECONDS": number("seconds", 0.1),
    "RELAIS_ROUTING_CALLBACK_ABOVE_SECONDS": number("seconds"),
    "RELAIS_ROUTING_DEFAULT_HANDLE_SECONDS": number("seconds", 1),
    "RELAIS_ROUTING_RECONNECT_SECONDS": number("seconds", 1),
    "RELAIS_ROUTING_OVERFLOW_SECONDS": numbers("seconds"),
    "RELAIS_KNOWLEDGE_DIR": existing("directory"),
    "RELAIS_ASSIST_LLM_URL": http_url(),
    "RELAIS_ASSIST_LLM_TIMEOUT_S": number("seconds", above=True),
    "RELAIS_TRACE_SQL": one_of("on", "off"),
    "RELAIS_METRICS_ADDR": metrics_address(),
    # The OpenTelemetry SDK's own samplers (it only warns on others and samples everything).
    "OTEL_TRACES_SAMPLER": one_of(
        "always_on",
        "always_off",
        "parentbased_always_on",
        "parentbased_always_off",
        "traceidratio",
        "parentbased_traceidratio",
    ),
    "OTEL_TRACES_SAMPLER_ARG": fraction(),
}


def _raw(name: str, environ: Mapping[str, str] | None) -> str:
    return ((os.environ if environ is None else environ).get(name) or "").strip()


def parse_setting(name: str, raw: str, form: Form | None = None):
    """`raw` read as setting `name`'s form; ConfigError "NAME: expected <form>, got '<raw>'" when it does not fit."""
    form = form or SETTINGS[name]
    try:
        return form.parse(raw)
    except Narrower as error:
        raise ConfigError(f"{name}: expected {error}, got {_shown(raw)!r}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: expected {form.expected}, got {_shown(raw)!r}") from None


def _shown(raw: str) -> str:
    """The value as an error message may show it: a URL's password masked."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", raw)


def setting(name: str, default, environ: Mapping[str, str] | None = None, form: Form | None = None):
    """Setting `name` read and checked where it is used; `default` (already typed) when unset or blank."""
    raw = _raw(name, environ)
    return parse_setting(name, raw, form) if raw else default


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Every known setting that is set has its form; ConfigError names the bad ones (one line)."""
    problems = []
    for name in SETTINGS:
        raw = _raw(name, environ)
        if raw:
            try:
                parse_setting(name, raw)
            except ConfigError as error:
                problems.append(str(error))
    if problems:
        raise ConfigError("; ".join(problems))


def env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def grpc_addr(service: str) -> str:
    """Where `service`'s gRPC server listens, e.g. ROUTING_GRPC_ADDR=127.0.0.1:50054."""
    name = f"{service.upper()}_GRPC_ADDR"
    return setting(name, f"127.0.0.1:{DEFAULT_PORTS[service]}", form=SETTINGS.get(name, address()))


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
            kafka_bootstrap=setting("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA),
            database_url=setting("DATABASE_URL", DEFAULT_DATABASE_URL),
            grpc_addr=grpc_addr(service),
            max_text_chars=setting("RELAIS_MAX_TEXT_CHARS", 4000),
            consumer_group=env("RELAIS_CONSUMER_GROUP", f"relais-{service}"),
        )


# --- access (docs/security.md, "Access") ---

SERVICE_TOKEN_ENV = "RELAIS_SERVICE_TOKEN"


def service_token(environ: dict[str, str] | None = None) -> str | None:
    """The shared token our services present to (and require on) the Lookup and Analytics APIs."""
    value = (os.environ if environ is None else environ).get(SERVICE_TOKEN_ENV, "").strip()
    return value or None


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
            cafile=get("KAFKA_SSL_CAFILE") or None,
            certfile=certfile,
            keyfile=keyfile,
            password=e.get("KAFKA_SSL_KEY_PASSWORD") or None,
        )
    return options
