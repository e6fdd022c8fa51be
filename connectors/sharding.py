"""Which connector replica polls which feed: the feed list split by a stable hash.

Several connectors can share one feed list (``connector.replicas`` = n, each with its own
``connector.replica`` index 0..n-1). Each feed belongs to exactly one replica, decided from the
feed id alone, so every replica computes the same split without talking to the others.

The split is rendezvous (highest-random-weight) hashing: replica r's weight for a feed is the
first 8 bytes of ``sha256(f"{r}:{feed_id}")`` and the heaviest replica owns the feed. Unlike
``hash % n``, changing n from 3 to 4 moves only the ~1/4 of the feeds the new replica wins (all
of them to it); ``% n`` would move ~3/4 of them (tests/unit/test_connector_sharding.py measures
both). sha256, not Python's ``hash()``: that one is salted per process.

The replica index defaults to the host name's trailing ordinal when it looks like a
StatefulSet pod name (``connector-2`` -> 2), which is how the Kubernetes manifests run it.
Each replica keeps its own state file (``state_path_for``) so that two replicas on one machine
never share one SQLite file; replica 0 keeps the plain ``connector.state_path``, so going from
one connector to several keeps the first one's state.

Pure: no I/O (the host name is passed in).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from connectors.feeds import FeedList

# A StatefulSet pod's name is ``<statefulset name>-<ordinal>`` (a DNS label).
_POD_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-(\d+)$")


class ShardingError(ValueError):
    """Replica settings that cannot give a unique owner to every feed, with the reason."""


def weight(feed_id: str, replica: int) -> int:
    """Replica ``replica``'s stable 64-bit weight for ``feed_id``."""
    digest = hashlib.sha256(f"{replica}:{feed_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner(feed_id: str, replicas: int) -> int:
    """The replica (0..replicas-1) that polls ``feed_id``: the heaviest; ties go to the lowest."""
    if replicas < 1:
        raise ShardingError(f"replicas must be at least 1, got {replicas}")
    if replicas == 1:
        return 0
    best, best_weight = 0, -1
    for r in range(replicas):
        w = weight(feed_id, r)
        if w > best_weight:
            best, best_weight = r, w
    return best


@dataclass(frozen=True, slots=True)
class Shard:
    """Replica ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardingError(f"connector.replicas must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardingError(
                f"connector.replica is {self.index} but connector.replicas is {self.count}: "
                f"the index must be 0..{self.count - 1}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, feed_id: str) -> bool:
        return owner(feed_id, self.count) == self.index

    def select(self, feeds: FeedList) -> FeedList:
        """The part of ``feeds`` this replica polls (the list itself when there is one replica)."""
        if self.count == 1:
            return feeds
        return feeds.model_copy(update={"feeds": tuple(f for f in feeds.feeds if self.owns(f.id))})

    def describe(self, owned: int, total: int) -> str:
        return f"replica {self} owns {owned} of {total} feeds"


def ordinal(hostname: str) -> int | None:
    """The trailing ordinal of a StatefulSet-style pod name (``connector-2`` -> 2), else None."""
    host = hostname.split(".", 1)[0].lower()
    match = _POD_NAME.match(host)
    return int(match.group(1)) if match else None


def resolve(replicas: int, replica: int | None, hostname: str) -> Shard:
    """This process's shard from the settings; ``replica`` None: from the host name.

    With more than one replica and no index, a host name without an ordinal is an error, not
    replica 0: two such processes would both be replica 0 and poll the same feeds twice.
    """
    if replicas == 1:
        return Shard(replica or 0, 1)
    if replica is None:
        replica = ordinal(hostname)
        if replica is None:
            raise ShardingError(
                f"connector.replicas is {replicas} but connector.replica is not set and the "
                f"host name {hostname!r} has no trailing ordinal (like connector-0): set "
                "NEWSFLOW_CONNECTOR__REPLICA to this connector's index"
            )
        if replica >= replicas:
            raise ShardingError(
                f"host {hostname!r} is replica {replica} but connector.replicas is {replicas}: "
                "set NEWSFLOW_CONNECTOR__REPLICAS to the StatefulSet's replica count"
            )
    return Shard(replica, replicas)


def state_path_for(path: Path, shard: Shard) -> Path:
    """The state file of ``shard``: ``path`` for replica 0, ``<stem>.replica-<i><suffix>`` else."""
    if shard.index == 0:
        return path
    return path.with_name(f"{path.stem}.replica-{shard.index}{path.suffix}")


def split(feed_ids: Iterable[str], replicas: int) -> dict[int, list[str]]:
    """Every replica's feed ids (replicas without feeds included, as empty lists)."""
    out: dict[int, list[str]] = {r: [] for r in range(replicas)}
    for feed_id in feed_ids:
        out[owner(feed_id, replicas)].append(feed_id)
    return out
