"""A real Prometheus scrapes a real connector: metrics, alert rules and dashboard queries.

Local feed server -> ``newsflow connect`` (subprocess, real Kafka, 1-2 s poll intervals) ->
``/metrics`` -> Prometheus (tests/integration/prometheus_harness.py: the production scrape jobs
and rule files, targets replaced, 1 s scrape/evaluation). Checked through Prometheus' HTTP API:
the connector's series exist and move, the alert rules loaded and evaluate without error on real
series, and every query of the Grafana dashboards and of the alerts runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml

from streams.settings import Settings
from tests.integration import stage_helpers as h
from tests.integration.feed_server import FeedServer
from tests.integration.prometheus_harness import (
    Prometheus,
    free_port,
    require_prometheus,
    running_prometheus,
)
from tests.unit.test_grafana_dashboard import ALL_EXPRS
from tests.unit.test_monitoring_rules import RULES, alert_rules, with_grafana_defaults

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR_SERIES = [
    "newsflow_feed_polls_total",
    "newsflow_feed_status",
    'newsflow_articles_total{stage="connector"}',
    "newsflow_feed_fetch_seconds_bucket",
    "newsflow_stage_last_progress_timestamp_seconds",
]
# Not required: newsflow_ready, which streams/ops.py sets only when /health/ready is requested.


def rss(feed: int, items: range) -> bytes:
    entries = "".join(
        f"<item><title>{escape(f'Story {n} of feed {feed}')}</title>"
        f"<link>https://news.example/{feed}/{n}</link><guid>g-{feed}-{n}</guid>"
        f"<description>Summary {n}.</description></item>"
        for n in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Feed {feed}</title><link>https://news.example/{feed}/</link>{entries}"
        "</channel></rss>"
    ).encode()


@pytest.fixture
def workers(
    elastic: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, int]]:
    """The enrich and index workers of the test's namespace, each with its web port."""
    require_prometheus()
    env = h.isolated_env(elastic, unique, tmp_path)
    env["NEWSFLOW_OPS__LAG_INTERVAL_S"] = "1"
    h.bootstrap_isolated(h.settings_for(env, monkeypatch))
    ports = {"enrich": int(env["NEWSFLOW_FAUST__WEB_PORT"]), "index": free_port()}
    index_env = {
        **env,
        "NEWSFLOW_FAUST__WEB_PORT": str(ports["index"]),
        "NEWSFLOW_FAUST__DATADIR": str(tmp_path / "faust-index"),
    }
    extract_env = {  # the connector's articles reach enrichment through the extract stage
        **env,
        "NEWSFLOW_FAUST__WEB_PORT": str(free_port()),
        "NEWSFLOW_FAUST__DATADIR": str(tmp_path / "faust-extract"),
        "NEWSFLOW_EXTRACT__FETCH_PAGES": "false",
    }
    with (
        h.worker("enrich", env, tmp_path / "enrich.log"),
        h.worker("index", index_env, tmp_path / "index.log"),
        h.worker("extract", extract_env, tmp_path / "extract.log"),
    ):
        yield ports


@pytest.fixture
def connector(
    kafka: Settings, unique: str, tmp_path: Path, workers: dict[str, int]
) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """``newsflow connect`` over two good feeds and a missing one (404: error polls)."""
    require_prometheus()  # before the connector starts: a skip should cost nothing
    port = free_port()
    env = {
        **os.environ,
        "NEWSFLOW_TOPICS__NAMESPACE": f"test.{unique}.",
        "NEWSFLOW_TOPICS__PARTITIONS": "3",
        "NEWSFLOW_CONNECTOR__STATE_PATH": str(tmp_path / "state.sqlite"),
        "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port),
        "NEWSFLOW_CONNECTOR__MIN_INTERVAL_S": "1",
        "NEWSFLOW_CONNECTOR__MAX_INTERVAL_S": "2",
        "NEWSFLOW_CONNECTOR__COMMIT_INTERVAL_S": "0.2",
    }
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(5)))
        server.set_feed("/feeds/1.xml", rss(1, range(3)))
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(
            yaml.safe_dump(
                {
                    "allow_private_addresses": True,  # the feed server is on 127.0.0.1
                    "feeds": [
                        {"id": "f0", "url": server.url("/feeds/0.xml"), "language": "en"},
                        {"id": "f1", "url": server.url("/feeds/1.xml"), "language": "en"},
                        {"id": "gone", "url": server.url("/feeds/gone.xml")},
                    ],
                }
            ),
            encoding="utf-8",
        )
        log = tmp_path / "connect.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams.commands.cli", "connect", "--feeds", str(feeds)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield port, proc, log
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise
            assert code == 0, log.read_text()[-2000:]


def _alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    assert proc.poll() is None, "connector exited: " + log.read_text()[-2000:]


def _moving(prom: Prometheus) -> bool:
    return any(s.value > 0 for s in prom.query("increase(newsflow_feed_polls_total[30s])"))


def test_prometheus_scrapes_the_pipeline_evaluates_rules_and_dashboard_queries(
    connector: tuple[int, subprocess.Popen[bytes], Path],
    workers: dict[str, int],
    tmp_path: Path,
) -> None:
    port, proc, log = connector
    started = time.monotonic()
    targets = {
        "newsflow-connector": f"127.0.0.1:{port}",
        "newsflow-enrich": f"127.0.0.1:{workers['enrich']}",
        "newsflow-index": f"127.0.0.1:{workers['index']}",
    }
    with running_prometheus(targets, tmp_path / "prom") as prom:
        # The rule files of prometheus.yml are loaded, every alert of alerts.yml is there.
        loaded = {
            rule["name"]
            for group in prom.rule_groups()
            for rule in group["rules"]
            if rule["type"] == "alerting"
        }
        assert loaded == {rule["alert"] for rule in alert_rules()}, RULES

        missing: set[str] = set(CONNECTOR_SERIES)

        def scraped() -> bool:
            _alive(proc, log)
            missing.intersection_update(prom.missing_series(missing))
            return not missing

        try:
            prom.wait_for(scraped, 30, "the connector's series")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; missing: {sorted(missing)}") from None
        prom.wait_for(lambda: _moving(prom), 20, "increase(newsflow_feed_polls_total[30s]) > 0")

        (up,) = prom.query('up{job="newsflow-connector"}')
        assert up.value == 1
        # No target label collides with the metrics' own `stage` label.
        articles = prom.query('newsflow_articles_total{stage="connector",outcome="new"}')
        assert articles and "exported_stage" not in articles[0].labels
        (ready,) = prom.query('newsflow_ready{process="connector"}')  # kept fresh by scrapes
        assert ready.value == 1
        prom.wait_for(
            lambda: sum(s.value for s in prom.query('newsflow_articles_total{outcome="new"}')) == 8,
            15,
            "the 8 new articles counted",
        )
        # Downstream: the workers' series, scraped from their own web ports, move too.
        prom.wait_for(
            lambda: (
                sum(
                    s.value
                    for s in prom.query('newsflow_articles_total{stage="index",outcome="indexed"}')
                )
                == 8
            ),
            60,
            "the 8 articles enriched and indexed",
        )
        assert {s.labels["job"] for s in prom.query("up == 1")} >= set(targets)
        lags = prom.query("newsflow_consumer_lag")
        assert {s.labels["stage"] for s in lags} == {"enrich", "index"}
        # Each target is scraped on its own schedule: the enrich worker's last scrape may predate
        # its last batch even when the index worker's already shows the articles indexed.
        for query in (
            "newsflow_end_to_end_seconds_count > 0",
            'newsflow_enrich_seconds_count{component="entities"} > 0',
            "newsflow_bulk_seconds_count > 0",
        ):
            prom.wait_for(lambda q=query: bool(prom.query(q)), 20, query)
        status = {
            s.labels["feed"]: s.labels["status"] for s in prom.query("newsflow_feed_status == 1")
        }
        assert set(status) == {"f0", "f1", "gone"}
        assert status["gone"] == "failing" and status["f0"] in {"ok", "not-modified"}
        errors = prom.query('newsflow_feed_polls_total{result="error"}')
        assert {s.labels["feed"] for s in errors} == {"gone"}
        assert errors[0].labels["error"]  # the error class

        # Every rule has been evaluated on these series without an error.
        def evaluated() -> list[dict[str, object]]:
            rules = [r for g in prom.rule_groups() for r in g["rules"]]
            bad = [r for r in rules if r["health"] == "err"]
            assert not bad, [(r["name"], r.get("lastError")) for r in bad]
            return rules if all(r["health"] == "ok" for r in rules) else []

        prom.wait_for(evaluated, 10, "every rule evaluated")

        # Every dashboard and alert query runs (Grafana's $__rate_interval as a duration).
        for _where, expr in ALL_EXPRS:
            prom.query(with_grafana_defaults(expr))  # raises PrometheusError with the reason
        for rule in alert_rules():
            prom.query(rule["expr"])
        # The connector-backed panels show data.
        for expr in (
            "sum by (status) (newsflow_feed_status)",
            "max by (feed) (newsflow_feed_consecutive_failures)",
            "max by (feed, status) (newsflow_feed_status == 1)",
            "time() - max by (feed) (newsflow_feed_last_new_item_timestamp_seconds)",
            'sum by (outcome) (rate(newsflow_articles_total{stage="connector"}[5m]))',
        ):
            on_dashboards = [with_grafana_defaults(e) for _w, e in ALL_EXPRS]
            assert any(expr in e for e in on_dashboards), f"not on a dashboard any more: {expr}"
            assert prom.query(with_grafana_defaults(expr)), f"no data: {expr}"
        _alive(proc, log)
    assert time.monotonic() - started < 90
