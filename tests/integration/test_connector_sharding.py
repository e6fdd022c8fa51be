"""Connector replicas on one feed list (issue 16.5): real ``newsflow connect`` processes, the
local feed server and the real Kafka broker.

Two long-running connectors (replicas=2, replica 0 and 1) share one list of 24 feeds and one
state path, each feed polled every 1-2 s: every feed is fetched by exactly one of them (the feed
server sees each replica's User-Agent), the one ``connectors.sharding.owner`` names, and every
article reaches the topic exactly once. Then the same list runs on three replicas with one new
and one edited item in every feed: the feeds the new replica won are fetched by it alone, the
old owners drop their state, the others keep theirs (a conditional GET), and the new owner takes
the moved feeds' seen sets from the raw topic, so every feed produces exactly its new item and
its update (with the original first_seen_at), nothing again. Back to one connector: it removes
the retired replicas' state files, takes their feeds over the same way and produces only the
newest item of each feed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.feeds import FeedList, FeedSpec, save_feed_list
from connectors.producer import FEED_HEADER
from connectors.sharding import Shard, owner, state_path_for
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.schema.models import RawArticle, decode
from streams.settings import Settings
from tests.integration.feed_server import FeedServer
from tests.integration.stage_helpers import ROOT, free_port
from tests.integration.test_connector import rss, topic_records

FEEDS = 24
ITEMS = 6
IDS = [f"s{i:02d}" for i in range(FEEDS)]


@pytest.fixture
def env(kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("NEWSFLOW_CONNECTOR__")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSFLOW_TOPICS__NAMESPACE", f"test.{unique}.")
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "3")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__STATE_PATH", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__COMMIT_INTERVAL_S", "0.2")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__PARSE_WORKERS", "0")  # 2 cores shared: light
    # Every feed is polled again every 1-2 s: a feed fetched by a second replica would show.
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__MIN_INTERVAL_S", "1")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__MAX_INTERVAL_S", "2")
    settings = Settings()
    ensure_topics(settings, lambda _m: None, (topics.RAW,))
    return settings


def agent(replica: int) -> str:
    return f"newsflow-test/replica-{replica}"


def start(
    replica: int, replicas: int, feeds: Path, log: Path, port: int
) -> subprocess.Popen[bytes]:
    proc_env = {
        **os.environ,
        "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port),
        "NEWSFLOW_CONNECTOR__REPLICAS": str(replicas),
        "NEWSFLOW_CONNECTOR__REPLICA": str(replica),
        "NEWSFLOW_CONNECTOR__USER_AGENT": agent(replica),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.commands.cli",
                "connect",
                "--feeds",
                str(feeds),
                "--log-format",
                "json",
            ],
            cwd=ROOT,
            env=proc_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_replicas(
    settings: Settings, replicas: int, feeds: Path, logs: Path, want_records: int
) -> tuple[list[list[dict[str, Any]]], list[set[str]]]:
    """``replicas`` long-running connectors until the topic holds ``want_records`` records and
    a little longer (a second fetch of any feed would show then); stopped with SIGTERM.
    Returns each one's JSON log lines and the feeds its /metrics has a health series for."""
    ports = [free_port() for _ in range(replicas)]
    procs = [
        start(r, replicas, feeds, logs / f"r{r}of{replicas}.log", ports[r]) for r in range(replicas)
    ]
    try:
        deadline = time.monotonic() + 90
        while len(topic_records(settings)) < want_records and time.monotonic() < deadline:
            for r, p in enumerate(procs):
                assert p.poll() is None, (logs / f"r{r}of{replicas}.log").read_text()[-3000:]
            time.sleep(0.3)
        time.sleep(3.0)
        metrics_feeds = [feeds_in_metrics(port) for port in ports]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
    out = []
    for r, code in enumerate(codes):
        text = (logs / f"r{r}of{replicas}.log").read_text()
        assert code == 0, text[-3000:]
        out.append([json.loads(x) for x in text.splitlines() if x.startswith("{")])
    return out, metrics_feeds


def feeds_in_metrics(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        s.labels["feed"]
        for family in text_string_to_metric_families(text)
        if family.name == "newsflow_feed_status"
        for s in family.samples
    }


def fetched_by(server: FeedServer) -> dict[str, Counter[str]]:
    """Feed id -> User-Agents of the requests for it (count: fetches)."""
    out: dict[str, Counter[str]] = {i: Counter() for i in IDS}
    for req in server.requests:
        feed_id = req.path.rsplit("/", 1)[-1].removesuffix(".xml")
        ua = next(v for k, v in req.headers.items() if k.lower() == "user-agent")
        out[feed_id][ua] += 1
    return out


def stored_feeds(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT feed_id FROM feed_state")}
    finally:
        db.close()


def test_two_connectors_poll_each_feed_exactly_once_and_three_take_over_cleanly(
    env: Settings, tmp_path: Path
) -> None:
    state = env.connector.state_path
    with FeedServer() as server:
        for n, feed_id in enumerate(IDS):
            server.set_feed(f"/feeds/{feed_id}.xml", rss(n, range(ITEMS)))
        flist = FeedList(
            allow_private_addresses=True,
            feeds=tuple(
                FeedSpec(id=feed_id, url=server.url(f"/feeds/{feed_id}.xml")) for feed_id in IDS
            ),
        )
        path = tmp_path / "feeds.yaml"
        save_feed_list(path, flist)

        # ---- two replicas -------------------------------------------------------------------
        logs, in_metrics = run_replicas(env, 2, path, tmp_path, FEEDS * ITEMS)
        fetches = fetched_by(server)
        for feed_id in IDS:  # fetched, several times, and only by its owner
            assert set(fetches[feed_id]) == {agent(owner(feed_id, 2))}, feed_id
        assert min(sum(c.values()) for c in fetches.values()) >= 2
        owned = Counter(owner(i, 2) for i in IDS)
        assert sorted(owned.values()) == [9, 15]  # both replicas have work on these ids
        for r in range(2):
            msgs = [x["msg"] for x in logs[r]]
            assert f"replica {r}/2 owns {owned[r]} of {FEEDS} feeds" in msgs
            # Per-feed series only for its own feeds: summed over replicas, each feed once.
            assert in_metrics[r] == {i for i in IDS if owner(i, 2) == r}
        records = topic_records(env)
        keys = Counter(rec.key for rec in records)
        assert len(keys) == FEEDS * ITEMS and max(keys.values()) == 1  # all, once each
        per_feed = Counter(dict(rec.headers)[FEED_HEADER].decode() for rec in records)
        assert per_feed == Counter(dict.fromkeys(IDS, ITEMS))
        # Each replica's own state file, holding only its own feeds.
        files = [state_path_for(state, Shard(r, 2)) for r in range(2)]
        assert files == [state, state.with_name("state.replica-1.sqlite")]
        for r, file in enumerate(files):
            assert stored_feeds(file) == {i for i in IDS if owner(i, 2) == r}

        # ---- three replicas: one new and one edited item in every feed ----------------------
        server.reset_counts()
        for n, feed_id in enumerate(IDS):
            server.set_feed(f"/feeds/{feed_id}.xml", rss(n, range(-1, ITEMS), edited={3}))
        moved = {i for i in IDS if owner(i, 3) != owner(i, 2)}
        assert len(moved) == 8 and {owner(i, 3) for i in moved} == {2}
        want = len(records) + 2 * FEEDS
        logs, in_metrics = run_replicas(env, 3, path, tmp_path, want)
        fetches = fetched_by(server)
        for feed_id in IDS:
            assert set(fetches[feed_id]) == {agent(owner(feed_id, 3))}, feed_id
            first = next(q for q in server.requests if q.path == f"/feeds/{feed_id}.xml")
            conditional = {k.lower() for k in first.headers} & {
                "if-none-match",
                "if-modified-since",
            }
            # Kept state: a conditional request; the validators of a moved feed stayed behind.
            assert bool(conditional) == (feed_id not in moved), feed_id
        after = topic_records(env)
        assert len(after) == want
        keys = Counter(rec.key for rec in after)
        assert len(keys) == FEEDS * (ITEMS + 1)  # nothing missing
        versions: dict[bytes, list[RawArticle]] = {}
        for rec in after:
            versions.setdefault(rec.key, []).append(decode(RawArticle, rec.value))
        updated = {k: v for k, v in versions.items() if len(v) > 1}
        # Twice: only the edited item of each feed, moved or not; nothing produced again.
        assert len(updated) == FEEDS and max(keys.values()) == 2
        assert {v[0].source.feed.feed_id for v in updated.values()} == set(IDS)
        for old, new in updated.values():
            assert new.source.summary.endswith("Corrected.")
            assert new.source.first_seen_at == old.source.first_seen_at
        (taken,) = [x["msg"] for x in logs[2] if "taken over" in x["msg"]]
        assert f"{len(moved)} feed(s) without state here; {len(moved)} of them taken over" in taken
        assert f"({len(moved) * ITEMS} record(s) read back" in taken
        dropped = [x["msg"] for r in (0, 1) for x in logs[r] if "dropped the state" in x["msg"]]
        assert sum(int(m.split("dropped the state of ")[1].split()[0]) for m in dropped) == 8
        for r in range(3):
            file = state_path_for(state, Shard(r, 3))
            assert stored_feeds(file) == {i for i in IDS if owner(i, 3) == r}
            assert in_metrics[r] == {i for i in IDS if owner(i, 3) == r}

        # ---- back to one connector: one more new item in every feed -------------------------
        server.reset_counts()
        for n, feed_id in enumerate(IDS):
            server.set_feed(f"/feeds/{feed_id}.xml", rss(n, range(-2, ITEMS), edited={3}))
        gained = {i for i in IDS if owner(i, 3) != 0}
        want = len(after) + FEEDS
        logs, in_metrics = run_replicas(env, 1, path, tmp_path, want)
        fetches = fetched_by(server)
        assert all(set(fetches[i]) == {agent(0)} for i in IDS)
        final = topic_records(env)
        assert len(final) == want
        keys = Counter(rec.key for rec in final)
        assert len(keys) == FEEDS * (ITEMS + 2) and max(keys.values()) == 2  # nothing again
        msgs = [x["msg"] for x in logs[0]]
        assert any("removed the state files of retired replicas" in m for m in msgs)
        assert f"replica 0/1: {len(gained)} feed(s) without state here; {len(gained)} of them" in (
            " ".join(msgs)
        )
        assert not list(state.parent.glob("state.replica-*"))
        assert stored_feeds(state) == set(IDS) == in_metrics[0]
