"""Offline checks of the Kubernetes manifests in ``deploy/kubernetes/`` (no cluster needed).

Every document is validated against the Kubernetes JSON schemas bundled with
``kubernetes-validate`` (no network), then checked against the rest of the repo: one Deployment,
PodDisruptionBudget and lag-scaled HorizontalPodAutoscaler per stage worker (derived from the
stage registry, as tests/unit/test_compose.py derives the compose services), the connector as a
StatefulSet whose replica count its pods are told and whose pod names give every replica index,
probes on the health paths the processes serve and on ports the container exposes, the commands
and image of docker-compose.yml, settings names that ``Settings`` accepts, and a Secret with
placeholders only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from streams.settings import Settings, TopicSettings
from streams.stages import registry

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.37.0"  # a version whose schemas kubernetes-validate bundles
_COMPANIONS = {c for entry in registry.STAGES.values() for c in entry.with_stages}
WORKERS = {f"{name}-worker" for name in registry.STAGES if name not in _COMPANIONS}
PROCESSES = WORKERS | {"connector"}
PLACEHOLDERS = {"CHANGE_ME", ""}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


DOCS = _documents()
RESOURCES = [(f, d) for f, d in DOCS if f != "kustomization.yaml"]


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in RESOURCES if d["kind"] == kind}


def _workloads() -> dict[str, dict[str, Any]]:
    """Every process's pod controller: the workers' Deployments and the connector's StatefulSet."""
    return {**_of_kind("Deployment"), **_of_kind("StatefulSet")}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


@pytest.fixture(scope="module")
def compose() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
        "services"
    ]
    return services


@pytest.mark.parametrize(
    ("name", "doc"),
    RESOURCES,
    ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in RESOURCES],
)
def test_schema_valid_offline(name: str, doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def test_kustomization_lists_every_file_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
    assert set(kustomization["resources"]) == files
    assert all(
        d["metadata"]["namespace"] == "newsflow" for _, d in RESOURCES if d["kind"] != "Namespace"
    )


def test_every_process_has_deployment_pdb_and_workers_an_hpa() -> None:
    deployments, pdbs = _workloads(), _of_kind("PodDisruptionBudget")
    hpas = _of_kind("HorizontalPodAutoscaler")
    assert set(_of_kind("Deployment")) == WORKERS
    assert set(_of_kind("StatefulSet")) == {"connector"}
    assert set(deployments) == PROCESSES
    assert set(pdbs) >= PROCESSES
    assert set(hpas) == WORKERS
    for name in PROCESSES:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"{name}: PDB selects no pod of it"


def test_hpa_scales_on_lag_up_to_the_partition_count() -> None:
    partitions = TopicSettings().partitions
    for name, hpa in _of_kind("HorizontalPodAutoscaler").items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"] <= partitions, name
        (metric,) = spec["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == "kafka_consumergroup_lag"
        stage = name.removesuffix("-worker")
        group = metric["external"]["metric"]["selector"]["matchLabels"]["consumergroup"]
        assert group == f"{Settings().faust.app_id}-{stage}", name


def test_connector_replicas_split_the_feeds_by_pod_ordinal() -> None:
    """The pods are told the StatefulSet's replica count, find their index in their pod name,
    and keep their state on a volume of their own (connectors/sharding.py)."""
    from connectors.sharding import Shard, resolve, state_path_for

    sts = _of_kind("StatefulSet")["connector"]
    spec = sts["spec"]
    replicas = spec["replicas"]
    assert replicas >= 2  # the manifests show the split, not a single connector
    env = {e["name"]: e.get("value") for e in _container(sts).get("env", [])}
    assert env["NEWSFLOW_CONNECTOR__REPLICAS"] == str(replicas)
    config = _of_kind("ConfigMap")["newsflow-settings"]["data"]
    assert "NEWSFLOW_CONNECTOR__REPLICA" not in env | config  # from the pod name, per pod
    assert "NEWSFLOW_CONNECTOR__REPLICAS" not in config  # one place to change with replicas
    # Pod names are <statefulset>-<ordinal>; the host name of a StatefulSet pod is its name.
    shards = [resolve(replicas, None, f"{sts['metadata']['name']}-{i}") for i in range(replicas)]
    assert shards == [Shard(i, replicas) for i in range(replicas)]
    # Each pod's state path is on its own claim, mounted at /data.
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in _container(sts)["volumeMounts"]}
    state = Path(config["NEWSFLOW_CONNECTOR__STATE_PATH"])
    for shard in shards:
        assert state_path_for(state, shard).parent == Path(mounts[claim["metadata"]["name"]])
    assert claim["metadata"]["name"] not in {v["name"] for v in spec["template"]["spec"]["volumes"]}
    # A removed replica's feeds are taken over by the others: its volume must not come back
    # stale when the count grows again.
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Delete"
    # Reading the raw topic back at start must not get the pod killed by its liveness probe.
    startup = _container(sts)["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/live"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    # The governing headless Service exists; no autoscaler (the count is in two places).
    service = _of_kind("Service")[spec["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "connector" not in _of_kind("HorizontalPodAutoscaler")


def test_probes_hit_health_paths_on_exposed_ports() -> None:
    for name, deployment in _workloads().items():
        container = _container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        paths = {}
        for probe in ("livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            port = get["port"]
            assert port in ports or port in ports.values(), f"{name} {probe}: port {port}"
            paths[probe] = get["path"]
        assert paths == {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports.values(), name


def test_ports_match_the_settings_the_processes_get() -> None:
    env = _of_kind("ConfigMap")["newsflow-settings"]["data"]
    deployments = _workloads()
    for name in WORKERS:
        ports = [p["containerPort"] for p in _container(deployments[name])["ports"]]
        assert ports == [int(env["NEWSFLOW_FAUST__WEB_PORT"])], name
    ports = [p["containerPort"] for p in _container(deployments["connector"])["ports"]]
    assert ports == [int(env["NEWSFLOW_CONNECTOR__METRICS_PORT"])]
    # Probes come from the kubelet on the pod IP: loopback binding would fail them.
    assert env["NEWSFLOW_FAUST__WEB_HOST"] == env["NEWSFLOW_CONNECTOR__METRICS_HOST"] == "0.0.0.0"


def test_settings_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(_of_kind("ConfigMap")["newsflow-settings"]["data"])
    env.update(_of_kind("Secret")["newsflow-elastic"]["stringData"])
    for key in [k for k in os.environ if k.upper().startswith("NEWSFLOW_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        section = key.removeprefix("NEWSFLOW_").split("__", 1)[0].lower()
        assert section in Settings.model_fields, key  # unknown sections are silently ignored
        monkeypatch.setenv(key, value)
    settings = Settings()  # unknown fields in a known section raise
    assert settings.faust.web_host == "0.0.0.0"


def test_secrets_hold_placeholders_only() -> None:
    secrets = _of_kind("Secret")
    assert secrets, "the Secret template is missing"
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: base64 data could hide a real value"
        for key, value in secret.get("stringData", {}).items():
            assert value in PLACEHOLDERS, f"{name}.{key} is not a placeholder"


def test_image_and_commands_match_compose(compose: dict[str, dict[str, Any]]) -> None:
    for name, deployment in _workloads().items():
        container = _container(deployment)
        assert container["image"] == compose[name]["image"], name
        assert "command" not in container, f"{name}: must keep the image's newsflow entrypoint"
        assert container["args"] == compose[name]["command"], name


def test_pods_run_non_root_with_read_only_root(compose: dict[str, dict[str, Any]]) -> None:
    for name, deployment in _workloads().items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        container = _container(deployment)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/data" in mounts, f"{name}: state directory must be a writable volume"
        resources = container["resources"]
        assert resources["requests"]["memory"] and resources["limits"]["memory"], name


def test_enrich_worker_memory_covers_its_measured_peak() -> None:
    limits = _container(_of_kind("Deployment")["enrich-worker"])["resources"]["limits"]
    assert limits["memory"] == "1536Mi"  # peak RSS 770-840 MB measured (docs/benchmarks.md)
