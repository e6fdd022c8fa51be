"""Static checks of the production-like Docker stack (no Docker needed).

Parses ``docker-compose.yml``, the ``Dockerfile`` and ``deploy/monitoring/prometheus.yml`` and
checks that they agree with each other and with ``streams.settings``: pinned third-party images
(Kafka and Elasticsearch/Kibana at the ``InfraSettings`` versions), published ports, health
checks, dependencies, named volumes, and that every ``NEWSFLOW_*`` variable is one the settings
object accepts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import InfraSettings, Settings
from streams.stages import registry

ROOT = Path(__file__).resolve().parents[2]
# One compose service per stage that runs in a worker process of its own (the registry's
# companions, e.g. the dead-letter indexer, ride along with another worker).
_COMPANIONS = {c for entry in registry.STAGES.values() for c in entry.with_stages}
WORKERS = {f"{name}-worker" for name in registry.STAGES if name not in _COMPANIONS}
OURS = {"bootstrap", "connector"} | WORKERS
THIRD_PARTY = {"kafka", "elasticsearch", "kibana", "prometheus", "grafana"}
# service -> port published on the host (same number inside the container)
PUBLISHED = {"elasticsearch": 9200, "kibana": 5601, "prometheus": 9090, "grafana": 3000}


def _load(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return _load("docker-compose.yml")["services"]


def _infra_default(field: str) -> str:
    return InfraSettings.model_fields[field].default


def _image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else ""


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build ``Settings`` from exactly ``env``; raise ``ValueError`` for an unknown variable."""
    for key in [k for k in os.environ if k.upper().startswith("NEWSFLOW_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        # pydantic-settings silently ignores an unknown *section*; an unknown field inside a
        # known section is rejected by the section's extra="forbid".
        section = key.removeprefix("NEWSFLOW_").split("__", 1)[0].lower()
        if section not in Settings.model_fields:
            raise ValueError(f"{key}: no settings section {section!r}")
        monkeypatch.setenv(key, value)
    return Settings()


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = (OURS | THIRD_PARTY) - services.keys()
    assert not missing, f"missing services: {sorted(missing)}"


def test_ours_are_built_from_this_repo(services: dict[str, dict[str, Any]]) -> None:
    for name in OURS:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == "newsflow:latest", name


def test_third_party_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        tag = _image_tag(service["image"])
        assert tag and tag != "latest", f"{name}: unpinned image {service['image']}"


def test_versions_match_infra_settings(services: dict[str, dict[str, Any]]) -> None:
    kafka, es = _infra_default("kafka_version"), _infra_default("es_version")
    assert _image_tag(services["kafka"]["image"]) == kafka
    assert _image_tag(services["elasticsearch"]["image"]) == es
    assert _image_tag(services["kibana"]["image"]) == es


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, port in PUBLISHED.items():
        mappings = [str(p).split(":")[-2:] for p in services[name].get("ports", [])]
        assert [str(port), str(port)] in mappings, f"{name}: {port} not published"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in (THIRD_PARTY - {"grafana", "prometheus"}) | WORKERS:
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"


def test_depends_on_targets_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target in service.get("depends_on", []):  # list or mapping: iterates names
            assert target in services, f"{name} depends on unknown service {target}"
    for name in OURS - {"bootstrap"}:
        condition = services[name]["depends_on"]["bootstrap"]["condition"]
        assert condition == "service_completed_successfully", name


def test_named_volumes_are_declared() -> None:
    compose = _load("docker-compose.yml")
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                source = volume.get("source", "") if volume.get("type") == "volume" else ""
            else:
                source = volume.split(":", 1)[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name}: volume {source} is not declared"


def test_newsflow_env_vars_are_accepted_by_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in services.items():
        env = {k: v for k, v in _environment(service).items() if k.startswith("NEWSFLOW_")}
        try:
            _settings_from(env, monkeypatch)
        except ValueError as exc:
            pytest.fail(f"{name}: environment rejected by Settings: {exc}")
    worker_env = _environment(services["enrich-worker"])
    settings = _settings_from(
        {k: v for k, v in worker_env.items() if k.startswith("NEWSFLOW_")}, monkeypatch
    )
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert str(settings.faust.datadir) == "/data/faust"


@pytest.mark.parametrize("bad", ["NEWSFLOW_KAFKA__NOPE", "NEWSFLOW_NOPE__FIELD"])
def test_unknown_env_var_is_rejected(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        _settings_from({bad: "1"}, monkeypatch)


def test_dockerfile_runs_as_non_root_and_ships_deploy() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "Dockerfile has no USER line"
    assert users[-1].split(":")[0] not in {"root", "0"}
    # The image installs the wheel (the path tests/e2e/test_wheel.py runs); from deploy/ only
    # the connector's default feed list is copied, as configuration.
    assert re.search(r"^RUN\s+pip wheel --no-deps\b", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY\s+deploy/feeds/starter\.yaml\s+/app/deploy/feeds/", dockerfile, re.M)
    assert not re.search(r"^COPY\s+(--\S+\s+)*deploy/?\s", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["newsflow"]' in dockerfile


def test_prometheus_targets_are_compose_services(services: dict[str, dict[str, Any]]) -> None:
    config = _load("deploy/monitoring/prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    hosts = {target.rsplit(":", 1)[0] for target in targets}
    assert hosts <= services.keys(), hosts - services.keys()
    for worker in WORKERS:
        port = _environment(services[worker])["NEWSFLOW_FAUST__WEB_PORT"]
        assert f"{worker}:{port}" in targets, f"{worker} is not scraped on its web port"


def test_connector_runs_connect_with_durable_state_and_is_scraped(
    services: dict[str, dict[str, Any]],
) -> None:
    connector = services["connector"]
    assert connector["command"] == ["connect"]
    env = _environment(connector)
    assert env["NEWSFLOW_CONNECTOR__FEEDS_FILE"].startswith("/app/deploy/feeds/")
    assert (ROOT / env["NEWSFLOW_CONNECTOR__FEEDS_FILE"].removeprefix("/app/")).is_file()
    state_dir = env["NEWSFLOW_CONNECTOR__STATE_PATH"].rsplit("/", 1)[0]
    assert any(v.endswith(f":{state_dir}") for v in connector["volumes"])
    config = _load("deploy/monitoring/prometheus.yml")
    targets = {
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    assert f"connector:{env['NEWSFLOW_CONNECTOR__METRICS_PORT']}" in targets
