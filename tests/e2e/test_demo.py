"""`newsflow demo`: the seed article through the real Kafka into the real Elasticsearch."""

from __future__ import annotations

import subprocess
import sys

from streams.settings import Settings
from streams.sinks.elastic import make_client


def test_demo_makes_the_seed_article_searchable(kafka: Settings, elastic: Settings) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "search 'سوريا'" in res.stdout
    article_id = res.stdout.split("\n")[1].split()[0]
    client = make_client(elastic.elastic)
    hits = client.search(index=elastic.elastic.alias, query={"ids": {"values": [article_id]}})
    client.close()
    assert hits["hits"]["total"]["value"] == 1
    source = hits["hits"]["hits"][0]["_source"]
    assert source["language"]["code"] == "ar"
    assert "سوريا" in source["body"] and source["feed"]["id"] == "demo-ar"
