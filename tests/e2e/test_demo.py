"""`newsflow demo` (what `make demo` runs): bundled feeds through the real processes.

Runs in its own namespace, index alias, consumer groups and connector state, so it proves
the whole path from a clean start: every produced article searchable, the Arabic seed article
found by an Arabic query with its entities. The smoke variant (`--smoke`) is checked too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from streams.commands.feeds_demo import SEED_ID
from streams.settings import Settings
from streams.sinks.elastic import make_client
from streams.tooling import samplefeeds
from tests.integration.stage_helpers import ROOT, free_port


def _env(unique: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NEWSFLOW_TOPICS__NAMESPACE": f"test.{unique}.",
        "NEWSFLOW_ELASTIC__ALIAS": f"test-articles-{unique}",
        "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"test-articles-v1-{unique}",
        "NEWSFLOW_FAUST__APP_ID": f"test-{unique}",
        "NEWSFLOW_FAUST__WEB_PORT": str(free_port()),
        "NEWSFLOW_CONNECTOR__STATE_PATH": str(tmp_path / "state.sqlite"),
    }


def test_demo_runs_the_bundled_feeds_through_the_pipeline(
    kafka: Settings, elastic: Settings, unique: str, tmp_path: Path
) -> None:
    env = _env(unique, tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    out = res.stdout
    line = next(x for x in out.splitlines() if x.startswith("this run:"))
    produced = int(line.split()[2])
    # Every item of every bundled feed, each with its own link (81 today: 10 feeds, 9 languages).
    items = sum(
        len(samplefeeds._demo_entries(feed, n)) for n, feed in enumerate(samplefeeds.DEMO_FEEDS)
    )
    assert produced == items and f"{produced} searchable" in line
    assert "0 missing, 0 duplicated" in line
    assert "search 'سوريا'" in out and "make down" in out
    # Full text: the extract stage fetched the article pages, and enrichment found entities in
    # the bodies that the feeds' summaries lack (per language, English among them).
    extract_line = next(x for x in out.splitlines() if x.startswith("extract:"))
    assert f"extract: {produced} forwarded" in extract_line, extract_line
    fetched_ok = re.search(r"\bok (\d+)", extract_line)
    assert fetched_ok and int(fetched_ok.group(1)) >= produced * 0.9, extract_line
    body_line = next(x for x in out.splitlines() if x.startswith("entities only in body:"))
    assert int(body_line.split()[4]) > 0, body_line
    assert "[en] entities only in body:" in out
    client = make_client(elastic.elastic)
    try:
        alias = env["NEWSFLOW_ELASTIC__ALIAS"]
        client.indices.refresh(index=alias)
        assert client.count(index=alias)["count"] == produced
        seed = client.search(index=alias, query={"ids": {"values": [SEED_ID]}})["hits"]["hits"]
        with_body = client.count(index=alias, query={"term": {"extraction.status": "ok"}})
        assert with_body["count"] >= produced * 0.9, (with_body, extract_line)
    finally:
        client.close()
    assert len(seed) == 1
    src = seed[0]["_source"]
    assert src["language"]["code"] == "ar" and src["feed"]["id"] == "demo-ar"
    # names as written (contract 1.3), not the matching keys (انقره)
    assert "أنقرة" in src["entities"]["location"] and "سوريا" in src["entities"]["location"]
    assert "country:TR" in src["entity_ids"]
    assert "search '--entity Turkey'" in out
    assert (ROOT / "deploy" / "feeds" / "demo.yaml").is_file()


def test_smoke_demo_makes_the_seed_article_searchable(
    kafka: Settings, elastic: Settings, unique: str, tmp_path: Path
) -> None:
    env = _env(unique, tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "demo", "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "search 'سوريا'" in res.stdout
    assert SEED_ID in res.stdout
    assert "the Arabic seed article among them" in res.stderr  # search --entity Turkey (progress)
