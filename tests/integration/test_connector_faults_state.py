"""Feed-state database lost or corrupt under the running pipeline (issue 16.3), end to end.

Real processes (``tests/e2e/pipeline.py``: connector, extract, enrich and index workers) on the
shared stack, synthetic feeds served locally. Between generations of the feeds the connector
is stopped, its state file deleted or damaged (garbage bytes, cut in half, a table dropped),
and started again: it must log the damage, move the file aside, start from a fresh database,
take the feeds' seen sets back from the raw topic (``connectors.handoff.adopt``) and poll every
feed again, producing only the items that are new. Should anything be produced again, article
ids are stable (``connectors/rss/identity.py``) and it lands on the documents the index holds:
in the end the index holds exactly the ids of every body served, each in ONE document.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streams import topics
from streams.settings import Settings
from tests.e2e.pipeline import Pipeline, pipeline, wait_until

pytestmark = pytest.mark.timeout(600)


def _lost(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(16384))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _table_dropped(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TABLE feed_state")
    db.close()


DAMAGES: list[tuple[str, Callable[[Path], None]]] = [
    ("lost", _lost),
    ("garbage", _garbage),
    ("truncated", _truncated),
    ("table dropped", _table_dropped),
]


def _produced(pipe: Pipeline) -> int:
    return pipe.end_offsets(topics.RAW)


def test_feed_state_lost_or_corrupt_repolls_without_duplicate_documents(
    kafka: Settings, elastic: Settings, unique: str, tmp_path: Path
) -> None:
    feeds, items = 6, 8
    t0 = time.monotonic()
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=kafka.kafka.bootstrap_servers,
        elastic_url=elastic.elastic.url,
        feeds=feeds,
        items=items,
        seed=7,
    ) as pipe:
        state = Path(pipe.env["NEWSFLOW_CONNECTOR__STATE_PATH"])
        pipe.start()
        pipe.wait_fetched()
        wait_until("generation 0 produced", lambda: _produced(pipe) >= feeds * items, 60)
        report: list[str] = []
        for generation, (name, damage) in enumerate(DAMAGES, start=1):
            before = _produced(pipe)
            assert pipe.procs["connector"].stop() == 0, pipe.procs["connector"].tail()
            assert state.exists()
            damage(state)
            pipe.restart("connector")
            # The fresh database knows no feed: each is polled again at once; its seen set
            # came back from the raw topic, so only this generation's new item is produced.
            pipe.publish(generation)
            pipe.wait_fetched()
            want = before + feeds
            wait_until(
                f"generation {generation} produced after the state was {name}",
                lambda: _produced(pipe) >= want,  # noqa: B023 - called within this iteration
                60,
                pipe.alive,
            )
            time.sleep(3)  # anything produced twice would show now
            log = pipe.procs["connector"].tail(400)
            assert "taken over from the raw topic" in log, log
            aside = sorted(p.name for p in tmp_path.glob("feed-state.sqlite.corrupt-*"))
            if name == "lost":
                assert "unusable" not in log
                assert aside == []
            else:
                assert f"feed state {state} is unusable" in log, log
                assert len(aside) == generation - 1, aside  # one more file kept aside
            report.append(f"{name}: +{_produced(pipe) - before} records")
        expected = pipe.expected_ids()
        assert len(expected) == feeds * (items + len(DAMAGES))
        verdict = pipe.wait_settled(expected, timeout_s=240)
        assert verdict.ok, f"{verdict.summary()}\n{pipe.logs()}"
        keys = Counter(m.key for m in pipe.read_topic(topics.RAW))
        print(
            f"[{time.monotonic() - t0:.0f}s] {'; '.join(report)}; {len(expected)} ids, "
            f"{sum(keys.values())} raw records ({sum(keys.values()) - len(keys)} re-produced), "
            f"{sum(verdict.index.by_id.values())} documents, duplicated "
            f"{len(verdict.duplicated)}, rewritten {verdict.index.rewritten}"
        )
        assert not verdict.duplicated and sum(verdict.index.by_id.values()) == len(expected)
        assert sum(keys.values()) == len(keys) == len(expected)  # nothing produced twice
