"""Each feed of a list with its health, read from the saved state (no polling, no writes).

Used by `newsflow feeds list` and `newsflow status`; the health rules are in
``rss/schedule.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.feed_state import FeedState, SqliteFeedStateStore
from connectors.feeds import FeedList
from connectors.rss.poller import schedule_policy
from connectors.rss.schedule import HEALTH_ORDER, health
from connectors.sharding import Shard, owner, state_path_for
from connectors.terminal import for_terminal
from streams.settings import ConnectorSettings


def _states_in(path: Path) -> dict[str, FeedState]:
    if not path.exists():
        return {}
    store = SqliteFeedStateStore(path)
    try:
        return store.load_all()
    finally:
        store.close()


def saved_states(conf: ConnectorSettings) -> dict[str, FeedState]:
    """Every feed's saved state; with several replicas, each from its owner's state file (the
    files this machine has: on Kubernetes each pod sees only its own)."""
    if conf.replicas == 1:
        return _states_in(conf.state_path)
    states: dict[str, FeedState] = {}
    for r in range(conf.replicas):
        path = state_path_for(conf.state_path, Shard(r, conf.replicas))
        states.update(
            (fid, st) for fid, st in _states_in(path).items() if owner(fid, conf.replicas) == r
        )
    return states


def feed_rows(
    conf: ConnectorSettings, feeds: FeedList, now: float | None = None
) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    states = saved_states(conf)
    policy = schedule_policy(conf)

    def age(moment: float | None) -> float | None:
        return None if moment is None else round(now - moment, 1)

    rows: list[dict[str, Any]] = []
    for feed in feeds.feeds:
        st = states.get(feed.id)
        rows.append(
            {
                "id": feed.id,
                "url": feed.url,
                "enabled": feed.enabled,
                "language": feed.language,
                "health": health(st, now, policy) if feed.enabled else "disabled",
                "last_new_item_age_s": age(st.last_new_item_at) if st else None,
                "last_poll_age_s": age(st.last_poll_at) if st else None,
                "interval_s": round(st.interval_s, 1) if st and st.interval_s else None,
                "failures": st.consecutive_failures if st else 0,
                "last_error": for_terminal(st.last_error)
                if st and st.consecutive_failures
                else None,
                "produced": st.produced if st else 0,
                "replica": owner(feed.id, conf.replicas),  # the connector replica polling it
            }
        )
    return rows


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Enabled feeds, dead before failing before stale ..., the longest silent first."""
    enabled = [r for r in rows if r["enabled"]]
    return sorted(
        enabled,
        key=lambda r: (HEALTH_ORDER.index(r["health"]), -(r["last_new_item_age_s"] or 0)),
    )
