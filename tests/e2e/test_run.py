"""`newsflow run` long-running under its supervisor, observed with `newsflow status --json`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.feeds import load_feed_list, save_feed_list
from streams.commands.feedserver import FeedDirServer
from streams.settings import Settings
from streams.tooling import samplefeeds
from tests.integration.stage_helpers import ROOT, free_port

DEMO = ROOT / "deploy" / "feeds" / "demo"


def test_run_supervises_the_pipeline_and_status_shows_it(
    kafka: Settings, elastic: Settings, unique: str, tmp_path: Path
) -> None:
    web = free_port()
    env = {
        **os.environ,
        "NEWSFLOW_TOPICS__NAMESPACE": f"test.{unique}.",
        "NEWSFLOW_ELASTIC__ALIAS": f"test-articles-{unique}",
        "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"test-articles-v1-{unique}",
        "NEWSFLOW_FAUST__APP_ID": f"test-{unique}",
        "NEWSFLOW_FAUST__WEB_PORT": str(web),
        "NEWSFLOW_CONNECTOR__METRICS_PORT": str(free_port()),
        "NEWSFLOW_CONNECTOR__STATE_PATH": str(tmp_path / "state.sqlite"),
        "NEWSFLOW_OPS__LAG_INTERVAL_S": "1",
    }
    with FeedDirServer(DEMO) as server:
        flist = load_feed_list(ROOT / "deploy" / "feeds" / "demo.yaml")
        moved = [
            f.model_copy(update={"url": f.url.replace("http://127.0.0.1:8765", server.base_url)})
            for f in flist.feeds
        ]
        feeds = tmp_path / "feeds.yaml"
        save_feed_list(feeds, flist.model_copy(update={"feeds": tuple(moved)}))
        items = sum(
            len(samplefeeds._demo_entries(feed, n)) for n, feed in enumerate(samplefeeds.DEMO_FEEDS)
        )
        env["NEWSFLOW_CONNECTOR__FEEDS_FILE"] = str(feeds)
        log = tmp_path / "run.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams.commands.cli", "run"],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            status: dict = {}
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                res = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "streams.commands.cli",
                        "status",
                        "--json",
                        "--sample-s",
                        "0.5",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                status = json.loads(res.stdout)
                docs = status["elasticsearch"].get("documents", 0)
                lags = [s["lag"] for s in status["kafka"].get("stages", [])]
                settled = len(lags) == 3 and not any(lags)  # extract, enrich, index
                if docs >= items and settled and all(p["up"] for p in status["processes"]):
                    break
                time.sleep(2)
            else:
                pytest.fail(f"pipeline did not settle: {status}\n{log.read_text()[-3000:]}")
            assert all(p["health"]["ready"] for p in status["processes"]), status["processes"]
            assert {f["health"] for f in status["feeds"]} <= {"ok", "not-modified"}
            assert len(status["feeds"]) == len(moved)
            raw = next(t for t in status["kafka"]["topics"] if t["topic"].endswith("raw.v1"))
            assert raw["records"] == status["elasticsearch"]["documents"] == items
            # The extract worker counted every article once, whatever became of its page (the
            # items link to pages on the demo's usual port, which this test does not serve).
            assert sum(status["extract"]["outcomes"].values()) == items, status["extract"]
            assert sum(status["extract"]["host_classes"].values()) == items
            human = subprocess.run(
                [sys.executable, "-m", "streams.commands.cli", "status", "--sample-s", "0.5"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            ).stdout
            assert "PROCESSES" in human and "ELASTICSEARCH" in human and "FULL TEXT" in human
            assert re.search(r"FEEDS  (ok|not-modified) \d+", human), human
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
    assert code == 0, log.read_text()[-3000:]
    assert "stopping" in log.read_text()
