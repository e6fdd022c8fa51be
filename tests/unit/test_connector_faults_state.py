"""A lost or unusable feed-state database does not stop the connector (issue 16.3).

Unusable files (garbage, truncated, a table dropped) are moved aside to ``.corrupt-<time>``
with an error line and replaced by a fresh database; a sound one is kept as it is.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from connectors.feed_state import FeedState, SqliteFeedStateStore


def _written(path: Path, feeds: int = 300) -> None:
    store = SqliteFeedStateStore(path)
    states = [
        FeedState(feed_id=f"f{i}", url=f"https://f{i}.example/", etag=f'"{i}"')
        for i in range(feeds)
    ]
    for st in states:
        st.remember({f"{st.feed_id:0>32}": ("c" * 32, 1_700_000_000.0)}, body_items=1)
    store.save(states, "raw", {0: 7, 1: 9})
    store.close()
    db = sqlite3.connect(path)  # everything into the main file, as after a clean stop
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _truncated(path: Path) -> None:
    _written(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _table_dropped(path: Path) -> None:
    _written(path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE feed_state")
    db.close()


@pytest.mark.parametrize("damage", [_garbage, _truncated, _table_dropped])
def test_unusable_state_is_moved_aside_logged_and_replaced(
    damage: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feed-state.sqlite"
    damage(path)  # type: ignore[operator]
    before = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="newsflow.connector"):
        store = SqliteFeedStateStore(path)
    try:
        assert store.reset_from is not None
        assert store.reset_from.name.startswith("feed-state.sqlite.corrupt-")
        assert store.reset_from.read_bytes() == before  # kept for a post-mortem, unchanged
        (line,) = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
        assert str(path) in line and str(store.reset_from) in line
        # A fresh, working store in its place: the connector goes on.
        assert store.load_all() == {} and store.load_checkpoint("raw") == {}
        store.save([FeedState(feed_id="a", url="https://a.example/")], "raw", {0: 1})
    finally:
        store.close()
    again = SqliteFeedStateStore(path)
    assert again.reset_from is None and set(again.load_all()) == {"a"}
    again.close()


def test_sound_state_and_an_empty_file_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "feed-state.sqlite"
    _written(path)
    store = SqliteFeedStateStore(path)
    assert store.reset_from is None
    assert len(store.load_all()) == 300 and store.load_checkpoint("raw") == {0: 7, 1: 9}
    store.close()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    store = SqliteFeedStateStore(empty)
    assert store.reset_from is None and store.load_all() == {}
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name) == []


def test_one_undecodable_row_costs_only_that_feed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feed-state.sqlite"
    _written(path, feeds=3)
    db = sqlite3.connect(path)
    db.execute("UPDATE feed_state SET doc = ? WHERE feed_id = 'f1'", (b"{not json",))
    db.commit()
    db.close()
    with caplog.at_level(logging.ERROR, logger="newsflow.connector"):
        store = SqliteFeedStateStore(path)
        states = store.load_all()
    store.close()
    assert set(states) == {"f0", "f2"}
    assert any("f1" in r.getMessage() for r in caplog.records)
