"""The feed list split across connector replicas (connectors/sharding.py): stable, balanced,
minimal movement when the replica count changes, and the replica index from a pod name."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from connectors.feeds import FeedList, FeedSpec
from connectors.sharding import (
    Shard,
    ShardingError,
    ordinal,
    owner,
    resolve,
    split,
    state_path_for,
    weight,
)
from streams.settings import ConnectorSettings

IDS = [f"feed-{i:04d}" for i in range(1000)]


def test_owner_is_stable_across_processes() -> None:
    """Not Python's salted hash(): another interpreter (another PYTHONHASHSEED) agrees."""
    here = [owner(i, 5) for i in IDS[:50]]
    code = (
        "from connectors.sharding import owner;"
        "print(','.join(str(owner(f'feed-{i:04d}', 5)) for i in range(50)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert [int(x) for x in out.strip().split(",")] == here


def test_weights_are_the_documented_sha256_prefix() -> None:
    import hashlib

    assert weight("bbc-arabic", 2) == int.from_bytes(
        hashlib.sha256(b"2:bbc-arabic").digest()[:8], "big"
    )
    # A pinned value: changing the hash would silently move every feed of a running deployment.
    assert [owner(i, 4) for i in ("bbc-arabic", "aljazeera", "le-monde", "feed-0001")] == [
        0,
        0,
        0,
        2,
    ]


def test_every_feed_has_exactly_one_owner_and_the_split_is_balanced() -> None:
    for n in (2, 3, 4, 7):
        parts = split(IDS, n)
        assert sorted(x for ids in parts.values() for x in ids) == sorted(IDS)
        for r, ids in parts.items():
            assert all(Shard(r, n).owns(i) for i in ids)
            assert not any(Shard(other, n).owns(i) for other in range(n) if other != r for i in ids)
            # Within 20 % of an even share (1000 ids: the binomial spread is ~3-5 %).
            assert abs(len(ids) - 1000 / n) <= 0.2 * 1000 / n, (n, r, len(ids))


def test_going_from_three_to_four_replicas_moves_a_quarter_all_to_the_new_one() -> None:
    """Rendezvous hashing: only the feeds the new replica wins move. Measured on these 1,000
    ids: 249 move (ideal 250), every one of them to replica 3; ``sha256 % n`` would move 759."""
    before = {i: owner(i, 3) for i in IDS}
    after = {i: owner(i, 4) for i in IDS}
    moved = [i for i in IDS if before[i] != after[i]]
    assert {after[i] for i in moved} == {3}
    assert len(moved) == 249
    modulo_moved = sum(
        1
        for i in IDS
        if weight(i, 0) % 3 != weight(i, 0) % 4  # the plain modulo split, for comparison
    )
    assert modulo_moved == 759
    # Shrinking back moves the same feeds home.
    assert all(owner(i, 3) == before[i] for i in moved)


def test_shard_select_keeps_only_its_feeds_and_one_replica_keeps_all() -> None:
    flist = FeedList(feeds=tuple(FeedSpec(id=i, url=f"https://x.example/{i}") for i in IDS[:40]))
    assert Shard(0, 1).select(flist) is flist
    parts = [Shard(r, 3).select(flist) for r in range(3)]
    assert sorted(f.id for p in parts for f in p.feeds) == sorted(IDS[:40])
    assert Counter(len(p.feeds) for p in parts).total() == 3
    assert all(p.allow_private_addresses == flist.allow_private_addresses for p in parts)
    assert Shard(1, 3).describe(len(parts[1].feeds), 40) == (
        f"replica 1/3 owns {len(parts[1].feeds)} of 40 feeds"
    )


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("connector-0", 0),
        ("connector-12", 12),
        ("newsflow-connector-3.connector.newsflow.svc.cluster.local", 3),
        ("connector", None),
        ("3f2a9c1d0e7b", None),  # a docker container id
        ("my-laptop", None),
        ("-1", None),
        ("", None),
    ],
)
def test_ordinal_from_statefulset_pod_names(host: str, want: int | None) -> None:
    assert ordinal(host) == want


def test_resolve() -> None:
    assert resolve(1, None, "whatever-7") == Shard(0, 1)  # one replica: the host is irrelevant
    assert resolve(3, None, "connector-2") == Shard(2, 3)
    assert resolve(3, 1, "connector-2") == Shard(1, 3)  # an explicit index wins
    with pytest.raises(ShardingError, match="no trailing ordinal"):
        resolve(2, None, "3f2a9c1d0e7b")
    with pytest.raises(ShardingError, match="REPLICAS to the StatefulSet"):
        resolve(3, None, "connector-3")
    with pytest.raises(ShardingError, match=r"must be 0\.\.1"):
        resolve(2, 2, "x")
    with pytest.raises(ShardingError, match=r"must be 0\.\.0"):
        resolve(1, 1, "x")


def test_state_path_per_replica() -> None:
    path = Path("/data/feed-state.sqlite")
    assert state_path_for(path, Shard(0, 1)) == path
    assert state_path_for(path, Shard(0, 3)) == path  # scaling out keeps replica 0's state
    assert state_path_for(path, Shard(2, 3)) == Path("/data/feed-state.replica-2.sqlite")
    assert len({state_path_for(path, Shard(r, 5)) for r in range(5)}) == 5


def test_settings_fields() -> None:
    conf = ConnectorSettings()
    assert (conf.replicas, conf.replica) == (1, None)
    assert ConnectorSettings(replicas=4, replica=3).replica == 3
    with pytest.raises(ValueError):
        ConnectorSettings(replicas=0)
    with pytest.raises(ValueError):
        ConnectorSettings(replica=-1)


def test_connector_keeps_only_its_feeds_at_start_and_after_a_reload(tmp_path: Path) -> None:
    """The poller applies the selection to the list it starts with and to every reload: a
    replica has no state (so no schedule, no polls, no feed metrics) for other replicas' feeds."""
    from typing import Any, cast

    from connectors.feed_state import SqliteFeedStateStore
    from connectors.feeds import save_feed_list
    from connectors.rss.poller import Connector

    def listed(n: int) -> FeedList:
        return FeedList(feeds=tuple(FeedSpec(id=i, url=f"https://x.example/{i}") for i in IDS[:n]))

    path = tmp_path / "feeds.yaml"
    save_feed_list(path, listed(30))
    shard = Shard(1, 3)
    store = SqliteFeedStateStore(tmp_path / "state.sqlite")
    try:
        producer = cast(Any, None)  # not used before a poll
        connector = Connector(
            ConnectorSettings(), listed(30), store, producer, feeds_path=path, select=shard.select
        )
        assert set(connector.states) == {i for i in IDS[:30] if shard.owns(i)}
        assert connector.summary.feeds_total == len(connector.states) < 30
        save_feed_list(path, listed(60))
        connector._reload_feeds()
        assert set(connector.states) == {i for i in IDS[:60] if shard.owns(i)}
        assert {f.id for f in connector.feeds.feeds} == set(connector.states)
        unsplit = Connector(ConnectorSettings(), listed(30), store, producer)
        assert len(unsplit.states) == 30
    finally:
        store.close()
