"""docker-compose.yml and its configs under infra/ (Jaeger 2, Prometheus and its alert rules, Grafana and the
"relais" dashboard, the gateway, the health checks, the TLS overlay), read as files: this machine has no Docker
engine. Where the Compose plugin exists, `docker compose config` validates them as well."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
TLS_OVERLAY = ROOT / "infra" / "compose" / "tls.yml"

# The metric names issue 15 publishes (relais.common.metrics); histograms add _bucket, _sum and _count.
CONTRACT_METRICS = {
    "relais_records_processed_total",
    "relais_consumer_lag_records",
    "relais_handoffs_total",
    "relais_bot_answers_total",
    "relais_queue_waiting_tasks",
    "relais_queue_oldest_wait_seconds",
    "relais_agents",
    "relais_offers_total",
    "relais_dead_letters_total",
}
CONTRACT_HISTOGRAMS = {"relais_handler_duration_seconds", "relais_batch_records"}
METRICS_PORT = 9464
# The relais processes compose runs, each one's gRPC (or HTTP) port and the variable that sets it.
RELAIS_SERVICES = {
    "intake": ("INTAKE_GRPC_ADDR", 50051),
    "classifier": ("CLASSIFIER_GRPC_ADDR", 50052),
    "bot": ("BOT_GRPC_ADDR", 50053),
    "routing": ("ROUTING_GRPC_ADDR", 50054),
    "routing-standby": ("ROUTING_GRPC_ADDR", 50064),
    "analytics": ("ANALYTICS_GRPC_ADDR", 50055),
    "lookup": ("LOOKUP_GRPC_ADDR", 50056),
    "gateway": ("RELAIS_HTTP_ADDR", 8080),
}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}


def load(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose():
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts of repository files."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def mounted(service: dict, container_path: str) -> Path:
    """The repository file mounted at `container_path` (or inside a mounted directory)."""
    for target, source in bind_mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / os.path.relpath(container_path, target)
    raise AssertionError(f"nothing is mounted at {container_path}")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, aggregations, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, Grafana's $__rate_interval among them
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def is_contract_metric(name: str) -> bool:
    if name in CONTRACT_METRICS or name == "up" or name.startswith("process_"):
        return True
    return any(
        name == f"{histogram}_{suffix}" for histogram in CONTRACT_HISTOGRAMS for suffix in ("bucket", "sum", "count")
    )


def test_the_metric_name_reader_sees_metrics_only():
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(relais_handler_duration_seconds_bucket{service="bot"}'
        "[$__rate_interval]))) > 0.5 and on (service) up offset 5m"
    )
    assert metric_names(expr) == {"relais_handler_duration_seconds_bucket", "up"}
    assert not is_contract_metric("relais_queue_length")
    assert is_contract_metric("relais_batch_records_count") and is_contract_metric("process_open_fds")


def test_jaeger_is_version_2_configured_from_infra(services):
    jaeger = services["jaeger"]
    match = re.fullmatch(r"jaegertracing/jaeger:(\d+)\.(\d+)\.(\d+)", jaeger["image"])
    assert match and match.group(1) == "2", jaeger["image"]
    assert "all-in-one" not in COMPOSE.read_text()  # Jaeger 1's image
    (config_flag,) = [arg for arg in jaeger["command"] if arg.startswith("--config=")]
    config = load(mounted(jaeger, config_flag.removeprefix("--config=")))
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317") and protocols["http"]["endpoint"].endswith(":4318")
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"].endswith(":16686")
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["jaeger_storage_exporter"]
    published = {port.rsplit(":", 1)[-1] for port in jaeger["ports"]}
    assert {"16686", "4317", "4318"} <= published


def test_every_image_is_pinned(services):
    for name, service in services.items():
        image = service["image"]
        if image == "relais:local":
            assert "build" in service, name
            continue
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+(\.\d+)*", tag), f"{name}: {image} is not pinned to a release"


def test_the_relais_processes_are_the_expected_ones_with_the_metrics_and_tracing_environment(services):
    relais = {
        name: service
        for name, service in services.items()
        if service.get("command", [])[:2] == ["python", "-m"] and service["command"][2].startswith("relais.")
    }
    assert set(relais) == set(RELAIS_SERVICES)
    for name, service in relais.items():
        env = service["environment"]
        assert env["RELAIS_METRICS_ADDR"] == f"0.0.0.0:{METRICS_PORT}", name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", name
        assert env["OTEL_SERVICE_NAME"].startswith("relais-"), name
        variable, port = RELAIS_SERVICES[name]
        assert env[variable] == f"0.0.0.0:{port}", name


def test_the_gateway_serves_http_on_8080_and_reaches_the_services_by_name(services):
    gateway = services["gateway"]
    assert gateway["command"] == ["python", "-m", "relais.gateway"]
    assert gateway["environment"]["RELAIS_HTTP_ADDR"] == "0.0.0.0:8080"
    assert "127.0.0.1:8080:8080" in gateway["ports"]
    for variable, target in [
        ("ROUTING_GRPC_ADDR", "routing:50054"),
        ("ROUTING_STANDBY_GRPC_ADDR", "routing-standby:50064"),
        ("ANALYTICS_GRPC_ADDR", "analytics:50055"),
        ("LOOKUP_GRPC_ADDR", "lookup:50056"),
    ]:
        assert gateway["environment"][variable] == target
        assert target.split(":")[0] in services


def test_every_relais_process_has_a_health_check_through_the_probe(services):
    probe = ROOT / "infra" / "compose" / "healthcheck.py"
    assert probe.is_file()
    for name, (_, port) in RELAIS_SERVICES.items():
        check = services[name]["healthcheck"]
        if name == "routing-standby":  # NOT_SERVING until it takes over: never "healthy" (see the file)
            assert check == {"disable": True}
            continue
        expected = ["--http", str(port)] if name == "gateway" else [str(port)]
        assert check["test"] == ["CMD", "python", "infra/compose/healthcheck.py", *expected], name
        assert check["interval"] and check["retries"] >= 1, name
    assert services["prometheus"]["healthcheck"]["test"]


def test_prometheus_scrapes_every_relais_process_and_loads_the_alert_rules(services):
    prometheus = services["prometheus"]
    (config_flag,) = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    config = load(mounted(prometheus, config_flag.removeprefix("--config.file=")))
    targets = {
        target for job in config["scrape_configs"] for group in job["static_configs"] for target in group["targets"]
    }
    for name in RELAIS_SERVICES:
        assert f"{name}:{METRICS_PORT}" in targets, f"{name} is not scraped"
    assert "jaeger:8888" in targets
    for rule_file in config["rule_files"]:
        assert mounted(prometheus, rule_file).is_file(), rule_file


def alert_rules(services) -> list[dict]:
    prometheus = services["prometheus"]
    (config_flag,) = [arg for arg in prometheus["command"] if arg.startswith("--config.file=")]
    config = load(mounted(prometheus, config_flag.removeprefix("--config.file=")))
    return [
        rule
        for rule_file in config["rule_files"]
        for group in load(mounted(prometheus, rule_file))["groups"]
        for rule in group["rules"]
    ]


def test_the_alert_rules_cover_lag_growing_oldest_wait_dead_letters_and_a_process_down(services):
    rules = alert_rules(services)
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["labels"]["severity"] and rule["annotations"]["summary"]
    expressions = [" ".join(rule["expr"].split()) for rule in rules]

    def any_rule(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in expressions)

    # lag: above a threshold AND increasing over 5 minutes
    assert any_rule(
        r"relais_consumer_lag_records\) > \d+ and .*(delta|deriv|increase)\(relais_consumer_lag_records\[5m\]"
    )
    assert any_rule(r"relais_queue_oldest_wait_seconds\) > \d+")
    assert any_rule(r"increase\(relais_dead_letters_total\[\w+\]\)\) > 0")
    assert "up == 0" in expressions


def test_every_metric_in_the_dashboard_and_the_alerts_is_a_contract_name(services, dashboard):
    used = {name for rule in alert_rules(services) for name in metric_names(rule["expr"])}
    used |= {name for target in dashboard_targets(dashboard) for name in metric_names(target["expr"])}
    assert used, "no metric found"
    assert {name for name in used if not is_contract_metric(name)} == set()


@pytest.fixture(scope="module")
def grafana(services):
    return services["grafana"]


@pytest.fixture(scope="module")
def dashboard(grafana):
    providers = load(mounted(grafana, "/etc/grafana/provisioning/dashboards/dashboards.yml"))["providers"]
    (provider,) = providers
    return json.loads((mounted(grafana, provider["options"]["path"]) / "relais.json").read_text())


def dashboard_targets(dashboard) -> list[dict]:
    return [target for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_grafana_provisions_the_prometheus_and_jaeger_datasources_the_dashboard_uses(grafana, dashboard):
    datasources = load(mounted(grafana, "/etc/grafana/provisioning/datasources/datasources.yml"))["datasources"]
    by_type = {source["type"]: source for source in datasources}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    uids = {source["uid"] for source in datasources}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted(grafana, home).is_file()


def test_the_relais_dashboard_is_valid_and_shows_what_an_sre_watches(dashboard):
    assert dashboard["title"] == "relais" and dashboard["uid"] == "relais"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat"} and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() and target["refId"] for target in panel["targets"]), panel["title"]
    exprs = [" ".join(target["expr"].split()) for target in dashboard_targets(dashboard)]

    def shown(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert shown(r'rate\(relais_records_processed_total\{[^}]*service="intake"[^}]*topic="relais.contact-events.v1"')
    assert shown(r"relais_consumer_lag_records")
    assert shown(r"by \(reason\) \(rate\(relais_handoffs_total")
    assert shown(r"relais_queue_waiting_tasks") and shown(r"relais_queue_oldest_wait_seconds")
    assert shown(r"by \(state\) \(relais_agents\)")
    assert shown(r"relais_dead_letters_total")
    assert shown(r"histogram_quantile\(0\.99, .*relais_handler_duration_seconds_bucket")


def test_every_repository_file_compose_mounts_or_runs_exists(services):
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_the_tls_overlay_turns_tls_on_for_every_relais_process(services):
    overlay = load(TLS_OVERLAY)["services"]
    assert set(overlay) == set(RELAIS_SERVICES)
    for name, service in overlay.items():
        env = service["environment"]
        # What the servers listen with and what the health probe trusts and presents (infra/compose/healthcheck.py).
        for variable in ("RELAIS_TLS_CERT", "RELAIS_TLS_KEY", "RELAIS_TLS_CA", "RELAIS_TLS_CLIENT_CERT"):
            assert env[variable].startswith("/run/relais/certs/"), (name, variable)
        assert any(volume.endswith(":/run/relais/certs:ro") for volume in service["volumes"]), name


def docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    return [docker, "compose"] if probe.returncode == 0 else None


def test_docker_compose_config_accepts_the_files():
    command = docker_compose()
    if command is None:
        pytest.skip("no `docker compose` (Docker's Compose plugin) here: the checks above read the files instead")
    env = {**os.environ, "RELAIS_UID": str(os.getuid())}
    for files in (["-f", str(COMPOSE)], ["-f", str(COMPOSE), "-f", str(TLS_OVERLAY)]):
        result = subprocess.run(
            [*command, *files, "config", "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
