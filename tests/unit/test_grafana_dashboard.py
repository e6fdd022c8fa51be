"""The Grafana dashboards (deploy/monitoring/grafana/provisioning/dashboards/) without a Grafana.

Checked: the provider file points Grafana at the dashboards' directory as compose mounts it;
each dashboard is valid JSON with a stable uid, unique panel ids and a grid without overlaps;
every panel and query uses the provisioned Prometheus datasource by its uid; every PromQL
expression reads only metrics of the catalogue (tests/unit/test_monitoring_rules.py) or ``up``,
with their labels and known label values; and the panels asked for are there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_monitoring_rules import catalogue_problems, parse_promql

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "monitoring" / "grafana" / "provisioning"
DATASOURCES = PROVISIONING / "datasources" / "prometheus.yml"
PROVIDERS = PROVISIONING / "dashboards" / "newsflow.yml"
EXPECTED = {"newsflow-pipeline", "newsflow-feeds", "newsflow-latency"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def datasource_uid() -> str:
    (source,) = [d for d in _yaml(DATASOURCES)["datasources"] if d["type"] == "prometheus"]
    uid: str = source["uid"]
    return uid


def container_to_repo(path: str) -> Path:
    """A path inside the Grafana container -> the repository path compose mounts there."""
    grafana = _yaml(ROOT / "docker-compose.yml")["services"]["grafana"]
    for volume in grafana["volumes"]:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source.startswith(".") and (path == target or path.startswith(target + "/")):
            return ROOT / source / path[len(target) :].lstrip("/")
    raise AssertionError(f"{path} is not inside a directory compose mounts into grafana")


def dashboard_dir() -> Path:
    (provider,) = _yaml(PROVIDERS)["providers"]
    return container_to_repo(provider["options"]["path"])


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(dashboard_dir().glob("*.json"))
    }


DASHBOARDS = dashboards()


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels") or [])


def exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query of a dashboard, template variables included."""
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets") or []:
            yield (
                f"{board['uid']} panel {panel['id']} ({panel['title']}) {target['refId']}",
                target["expr"],
            )
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            yield (
                f"{board['uid']} variable {var['name']}",
                (query if isinstance(query, str) else query["query"]),
            )


ALL_EXPRS = [item for board in DASHBOARDS.values() for item in exprs(board)]


# --- provisioning ----------------------------------------------------------------------------


def test_provider_file_points_at_the_dashboards() -> None:
    (provider,) = _yaml(PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False  # the files are the truth; edit them, not the UI
    assert dashboard_dir().is_dir()
    assert {board["uid"] for board in DASHBOARDS.values()} == EXPECTED


def test_the_datasource_has_a_stable_uid() -> None:
    assert datasource_uid() == "prometheus"


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_structure(name: str) -> None:
    board = DASHBOARDS[name]
    assert board["uid"] == name.removesuffix(".json")
    assert board["title"].startswith("newsflow — ")
    assert "newsflow" in board["tags"]
    assert board.get("id") is None  # provisioned dashboards get their id from Grafana
    assert isinstance(board["schemaVersion"], int)
    panels = list(all_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:  # top level: rows and panels of open rows share the grid
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{name}: {panel['title']} overlaps another panel"
                cells.add((x, y))
    for panel in panels:
        assert panel.get("title"), f"{name}: panel {panel['id']} has no title"
        if panel["type"] != "row":
            assert panel.get("targets"), f"{name}: {panel['title']} has no query"
            assert panel.get("description"), f"{name}: {panel['title']} has no description"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), f"{name}: {panel['title']} duplicate refIds"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_uses_the_provisioned_datasource(name: str) -> None:
    expected = {"type": "prometheus", "uid": datasource_uid()}
    board = DASHBOARDS[name]
    assert "__inputs" not in board, "an export for import, not a provisioned dashboard"
    for panel in all_panels(board["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == expected, f"{name}: {panel['title']}"
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, f"{name}: {panel['title']}"
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            assert var["datasource"] == expected, f"{name}: variable {var['name']}"


@pytest.mark.parametrize(("where", "expr"), ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_queries_use_only_catalogue_metrics(where: str, expr: str) -> None:
    assert not catalogue_problems(expr), where


# --- content ---------------------------------------------------------------------------------


def _board(uid: str) -> dict[str, Any]:
    (board,) = [b for b in DASHBOARDS.values() if b["uid"] == uid]
    return board


def _text(uid: str) -> str:
    return "\n".join(expr for _where, expr in exprs(_board(uid)))


def _series(uid: str) -> set[str]:
    return {s.name for _where, expr in exprs(_board(uid)) for s in parse_promql(expr).selectors}


def test_pipeline_overview() -> None:
    text = _text("newsflow-pipeline")
    assert "sum by (stage, outcome)" in text and "newsflow_articles_total" in text
    assert "sum by (stage) (newsflow_consumer_lag)" in text
    assert "newsflow_dead_letters_total" in text
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(newsflow_end_to_end_seconds_bucket" in (
            text
        )


def test_feeds_dashboard() -> None:
    board = _board("newsflow-feeds")
    assert "sum by (status) (newsflow_feed_status)" in _text("newsflow-feeds")
    (table,) = [p for p in all_panels(board["panels"]) if p["type"] == "table"]
    table_series = {s.name for t in table["targets"] for s in parse_promql(t["expr"]).selectors}
    assert {
        "newsflow_feed_consecutive_failures",
        "newsflow_feed_last_new_item_timestamp_seconds",
        "newsflow_feed_status",
    } <= table_series
    assert all(t.get("instant") and t.get("format") == "table" for t in table["targets"])
    assert {"newsflow_feed_polls_total", "newsflow_feed_fetch_bytes_total"} <= _series(
        "newsflow-feeds"
    )


def test_latency_dashboard() -> None:
    text = _text("newsflow-latency")
    assert "newsflow_feed_fetch_seconds_bucket" in text
    assert "sum by (le, component, language) (rate(newsflow_enrich_seconds_bucket" in text
    assert "newsflow_bulk_seconds_bucket" in text


def test_every_catalogue_metric_is_on_some_dashboard() -> None:
    from tests.unit.test_monitoring_rules import CATALOGUE, series_metric

    shown = set()
    for _where, expr in ALL_EXPRS:
        for selector in parse_promql(expr).selectors:
            entry = series_metric(selector.name)
            if entry is not None:
                shown.add(entry[0])
    assert set(CATALOGUE) - shown == set()


def test_full_text_panels() -> None:
    """Issue 15: extraction outcomes, fetch and extraction latency, hosts in backoff, and the
    feeds whose pages fail, on the pipeline dashboard."""
    text = _text("newsflow-pipeline")
    assert "sum by (outcome) (rate(newsflow_extract_pages_total" in text
    assert "sum by (le, host_class) (rate(newsflow_extract_fetch_seconds_bucket" in text
    assert "sum by (le) (rate(newsflow_extract_text_seconds_bucket" in text
    assert "sum(newsflow_extract_hosts_in_backoff)" in text
    assert 'newsflow_extract_feed_pages_total{result="failed"}' in text
    assert "newsflow-extract" in text  # its scrape target is watched with the others


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as a recording rule, Grafana's interval
    variables replaced by durations)."""
    from tests.conftest import require_tool
    from tests.unit.test_monitoring_rules import with_grafana_defaults

    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:query_{n}", "expr": with_grafana_defaults(expr)}
        for n, (_where, expr) in enumerate(ALL_EXPRS)
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
