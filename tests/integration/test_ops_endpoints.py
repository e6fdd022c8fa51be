"""Every worker serves /metrics, /health/live and /health/ready; lag and progress are real."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.commands.bootstrap import ensure_topics
from streams.schema import encode
from streams.settings import Settings
from streams.topics import STAGES
from tests.conftest import make_raw, promtool_check_metrics
from tests.integration import stage_helpers as h


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def sample(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_enrich_worker_reports_progress_lag_and_readiness(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = h.isolated_env(kafka, unique, tmp_path)
    env["NEWSFLOW_OPS__LAG_INTERVAL_S"] = "1"
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    base = f"http://127.0.0.1:{env['NEWSFLOW_FAUST__WEB_PORT']}"
    topic = STAGES["enrich"]["input"].topic_name(settings.topics)
    now = datetime.now(UTC)
    raws = [make_raw(i, title="Turkey and Syria sign a deal in Ankara", now=now) for i in range(7)]
    h.produce(settings, topic, [(r.article_id.encode(), encode(r)) for r in raws])
    with h.worker("enrich", env, tmp_path / "enrich.log") as proc:

        def alive() -> None:
            assert proc.poll() is None, (tmp_path / "enrich.log").read_text()[-3000:]

        assert h.wait_for(lambda: get(base + "/health/live")[0] == 200, 90, alive)
        metrics = ""

        def caught_up() -> bool:
            nonlocal metrics
            metrics = get(base + "/metrics")[1]
            done = sample(metrics, "newsflow_articles_total", stage="enrich", outcome="enriched")
            lags = [
                sample(
                    metrics, "newsflow_consumer_lag", stage="enrich", topic=topic, partition=str(p)
                )
                for p in range(3)
            ]
            return done == 7 and lags == [0.0, 0.0, 0.0]

        assert h.wait_for(caught_up, 60, alive), [
            x for x in metrics.splitlines() if "lag" in x or "articles_total" in x
        ]
        assert (
            sample(metrics, "newsflow_enrich_seconds_count", component="language", language="all")
            or 0
        ) >= 7
        assert (
            sample(metrics, "newsflow_enrich_seconds_count", component="entities", language="en")
            or 0
        ) >= 7
        assert (
            sample(metrics, "newsflow_stage_last_progress_timestamp_seconds", stage="enrich") or 0
        ) >= time.time() - 60
        promtool_check_metrics(metrics)
        status, body = get(base + "/health/ready")
        report = json.loads(body)
        assert status == 200 and report["ready"] is True and report["lag"] == 0
        assert report["problems"] == {}
