"""Settings from the environment: a bad one is named, with the form it expects, before a service starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relais.common.config import SETTINGS, ConfigError, Settings, check_environment, grpc_addr, setting
from relais.common.runtime import pid_file_path

ROOT = Path(__file__).resolve().parents[3]

BAD = [  # (variable, value, the one line)
    ("RELAIS_RETENTION_DAYS", "abc", "RELAIS_RETENTION_DAYS: expected a number of days, got 'abc'"),
    ("RELAIS_RETENTION_DAYS", "-5", "RELAIS_RETENTION_DAYS: expected a number of days ≥ 0, got '-5'"),
    ("RELAIS_RETENTION_DAYS", "nan", "RELAIS_RETENTION_DAYS: expected a number of days, got 'nan'"),
    ("RELAIS_BATCH", "maybe", "RELAIS_BATCH: expected one of on, off, got 'maybe'"),
    ("RELAIS_MAX_TEXT_CHARS", "4k", "RELAIS_MAX_TEXT_CHARS: expected a whole number of characters, got '4k'"),
    ("RELAIS_MAX_TEXT_CHARS", "0", "RELAIS_MAX_TEXT_CHARS: expected a whole number of characters ≥ 1, got '0'"),
    ("RELAIS_LOG_LEVEL", "loud", "RELAIS_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'"),
    ("RELAIS_RETENTION_DAYS", "90d", "RELAIS_RETENTION_DAYS: expected a number of days, got '90d'"),
    (
        "RELAIS_SERVICE_LEVEL_TARGET",
        "80",
        "RELAIS_SERVICE_LEVEL_TARGET: expected a fraction from 0 to 1, e.g. 0.8, got '80'",
    ),
    ("RELAIS_ALERT_WINDOW", "week", "RELAIS_ALERT_WINDOW: expected one of hour, day, got 'week'"),
    ("RELAIS_ROUTING_TICK_SECONDS", "0", "RELAIS_ROUTING_TICK_SECONDS: expected a number of seconds > 0, got '0'"),
    (
        "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS",
        "0.01",
        "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS: expected a number of seconds ≥ 0.1, got '0.01'",
    ),
    (
        "RELAIS_ROUTING_OVERFLOW_SECONDS",
        "60;180",
        "RELAIS_ROUTING_OVERFLOW_SECONDS: expected comma-separated numbers of seconds ≥ 0, e.g. 60,180, got '60;180'",
    ),
    (
        "RELAIS_ROUTING_RULES",
        "/no/such/rules.yaml",
        "RELAIS_ROUTING_RULES: expected the path of an existing file, got '/no/such/rules.yaml'",
    ),
    (
        "RELAIS_KNOWLEDGE_DIR",
        "/no/such/dir",
        "RELAIS_KNOWLEDGE_DIR: expected the path of an existing directory, got '/no/such/dir'",
    ),
    (
        "RELAIS_ASSIST_LLM_URL",
        "localhost:8080",
        "RELAIS_ASSIST_LLM_URL: expected an http:// or https:// URL, got 'localhost:8080'",
    ),
    (
        "KAFKA_BOOTSTRAP_SERVERS",
        "127.0.0.1:19092,broker:port",
        "KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port...], e.g. 127.0.0.1:19092, got '127.0.0.1:19092,broker:port'",
    ),
    (
        "KAFKA_SECURITY_PROTOCOL",
        "TLS",
        "KAFKA_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'",
    ),
    (
        "DATABASE_URL",
        "relais@localhost",
        "DATABASE_URL: expected postgresql://user:password@host:port/database, got 'relais@localhost'",
    ),
    ("BOT_GRPC_ADDR", "127.0.0.1", "BOT_GRPC_ADDR: expected host:port, e.g. 127.0.0.1:50051, got '127.0.0.1'"),
    (
        "ROUTING_GRPC_ADDR",
        "127.0.0.1:70000",
        "ROUTING_GRPC_ADDR: expected host:port, e.g. 127.0.0.1:50051, got '127.0.0.1:70000'",
    ),
]


@pytest.mark.parametrize("name, value, line", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_setting_is_named_with_its_expected_form(name, value, line):
    with pytest.raises(ConfigError) as error:
        check_environment({name: value})
    assert str(error.value) == line


GOOD = [
    ("RELAIS_RETENTION_DAYS", "0", 0.0),
    ("RELAIS_RETENTION_DAYS", " 12.5 ", 12.5),
    ("RELAIS_BATCH", "OFF", "off"),
    ("RELAIS_LOG_LEVEL", "debug", "DEBUG"),
    ("RELAIS_MAX_TEXT_CHARS", "8000", 8000),
    ("RELAIS_ROUTING_OVERFLOW_SECONDS", "2,4", (2.0, 4.0)),
    ("KAFKA_BOOTSTRAP_SERVERS", "kafka", "kafka"),  # Kafka's port 9092, as the compose file has it
    ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092", "k1:9092,k2:9092"),
    ("DATABASE_URL", "postgres://relais:pw@db:5432/relais", "postgres://relais:pw@db:5432/relais"),
    ("INTAKE_GRPC_ADDR", "0.0.0.0:50051", "0.0.0.0:50051"),
    ("INTAKE_GRPC_ADDR", "[::1]:50051", "[::1]:50051"),
]


@pytest.mark.parametrize("name, value, parsed", GOOD, ids=[f"{n}={v}" for n, v, _ in GOOD])
def test_good_settings_are_read_as_their_type(name, value, parsed):
    check_environment({name: value})
    assert setting(name, None, {name: value}) == parsed


def test_unset_or_blank_settings_take_the_default():
    assert setting("RELAIS_RETENTION_DAYS", 20.0, {}) == 20.0
    assert setting("RELAIS_RETENTION_DAYS", 20.0, {"RELAIS_RETENTION_DAYS": "  "}) == 20.0
    check_environment(
        {"RELAIS_RETENTION_DAYS": "", "RELAIS_SOMETHING_NEW": "whatever"}
    )  # unknown names are not ours to judge


def test_every_bad_setting_is_named_on_one_line():
    with pytest.raises(ConfigError) as error:
        check_environment({"RELAIS_RETENTION_DAYS": "abc", "DATABASE_URL": "nope"})
    assert "\n" not in str(error.value)
    assert "RELAIS_RETENTION_DAYS: expected" in str(error.value) and "DATABASE_URL: expected" in str(error.value)


def test_a_database_password_is_not_shown():
    with pytest.raises(ConfigError) as error:
        check_environment({"DATABASE_URL": "postgresql://relais:s3cret@db:port/relais"})
    assert "s3cret" not in str(error.value) and "postgresql://relais:***@db:port/relais" in str(error.value)


def test_the_settings_every_service_reads_are_checked(monkeypatch):
    monkeypatch.setenv("RELAIS_MAX_TEXT_CHARS", "lots")
    with pytest.raises(ConfigError, match="RELAIS_MAX_TEXT_CHARS: expected a whole number"):
        Settings.from_env("bot")
    monkeypatch.setenv("RELAIS_MAX_TEXT_CHARS", "100")
    monkeypatch.setenv("BOT_GRPC_ADDR", "127.0.0.1:50063")
    assert Settings.from_env("bot").max_text_chars == 100 and grpc_addr("bot") == "127.0.0.1:50063"


def test_the_variables_the_code_reads_have_a_form():
    """A setting read with float()/int() somewhere in services/ without a form here would end in a traceback."""
    for name in (
        "RELAIS_RETENTION_DAYS",
        "RELAIS_RETENTION_DAYS",
        "RELAIS_RETENTION_CHECK_SECONDS",
        "RELAIS_RECONTACT_DAYS",
        "RELAIS_SERVICE_LEVEL_SECONDS",
        "RELAIS_SERVICE_LEVEL_TARGET",
        "RELAIS_ALERT_SECONDS",
        "RELAIS_ALERT_SETTLE_SECONDS",
        "RELAIS_STAFFING_INTERVAL_MINUTES",
        "RELAIS_ROUTING_TICK_SECONDS",
        "RELAIS_ASSIST_LLM_TIMEOUT_S",
        "RELAIS_ROUTING_OVERFLOW_SECONDS",
    ):
        assert name in SETTINGS


# --- a service process: one line, status 2, before it connects to anything ---


def start_service(service: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "KAFKA_")) and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", f"relais.{service}"], env=base | env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "service, name, value, line",
    [
        ("bot", "RELAIS_RETENTION_DAYS", "abc", "RELAIS_RETENTION_DAYS: expected a number of days, got 'abc'"),
        (
            "intake",
            "DATABASE_URL",
            "localhost/relais",
            "DATABASE_URL: expected postgresql://user:password@host:port/database, got 'localhost/relais'",
        ),
        (
            "routing",
            "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS",
            "soon",
            "RELAIS_ROUTING_OFFER_TIMEOUT_SECONDS: expected a number of seconds, got 'soon'",
        ),
        (
            "lookup",
            "RELAIS_LOG_LEVEL",
            "loud",
            "RELAIS_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        ),
    ],
)
def test_a_service_with_a_bad_setting_exits_2_with_one_line(tmp_path, service, name, value, line):
    done = start_service(service, {name: value}, tmp_path)
    assert done.returncode == 2 and done.stderr == line + "\n" and done.stdout == ""


# --- pid files (make status / make down see a process started by hand) ---


def test_a_process_started_by_the_stack_uses_the_pid_file_it_was_given(tmp_path):
    assert (
        pid_file_path(
            "routing",
            "127.0.0.1:50064",
            {"RELAIS_PID_FILE": str(tmp_path / "routing-standby.pid"), "RELAIS_RUN_DIR": str(tmp_path)},
        )
        == tmp_path / "routing-standby.pid"
    )


def test_a_process_started_by_hand_names_its_pid_file_by_service_and_port(tmp_path, monkeypatch):
    assert pid_file_path("bot", "127.0.0.1:50063", {"RELAIS_RUN_DIR": str(tmp_path)}) == tmp_path / "bot-50063.pid"
    assert pid_file_path("bot", "127.0.0.1:0", {"RELAIS_RUN_DIR": str(tmp_path)}) == tmp_path / f"bot-{os.getpid()}.pid"
    monkeypatch.chdir(tmp_path)
    assert pid_file_path("bot", "127.0.0.1:50063", {}) is None  # outside a state directory: none
    (tmp_path / ".relais" / "run").mkdir(parents=True)
    assert pid_file_path("bot", "127.0.0.1:50063", {}) == Path(".relais/run/bot-50063.pid")
