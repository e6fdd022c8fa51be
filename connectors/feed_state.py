"""Durable per-feed state of the connector, behind a small store protocol.

The poller reads every feed's state at start and writes a poll's new state only after Kafka
confirmed delivery of everything that poll produced (at-least-once: a crash in between repeats
the poll, it never skips an article). The default store is one SQLite file (WAL), one row per
feed holding a JSON document, written in one transaction per commit batch.

A lost or unusable file must not stop the connector. Missing: a fresh database, every feed is
polled from scratch and its articles produced again (same ids, ``rss.identity``: the index
writes them over the documents it holds, one document per id). Unusable -- not a database,
truncated, failing ``PRAGMA quick_check``, one of our tables missing from a database that has
others -- the file and its ``-wal``/``-shm`` companions are moved aside to
``<name>.corrupt-<UTC time>`` (kept for a post-mortem), the reason is logged as an error, and
a fresh database takes its place. A row whose JSON no longer decodes costs only that feed's
state (logged, skipped). A store that starts with no feed state at all says so (``fresh``):
`newsflow connect` then takes the feeds' seen sets back from the raw topic
(``connectors.handoff.adopt``), so only what is really new is produced again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger("newsflow.connector")

# Bounded seen set: enough to remember every item of a busy feed's last few bodies without
# letting 10,000 feeds grow without limit. Keys and hashes are shortened to 16 hex chars
# (64 bits: a collision within one feed's window is negligible).
SEEN_MIN = 200
SEEN_MAX = 2000


@dataclass(slots=True)
class FeedState:
    feed_id: str
    url: str  # where we fetch now: the list URL, or where a permanent redirect sent us
    list_url: str = ""  # the URL in the feed list when ``url`` was set (list edits reset it)
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    trust_validators: bool = True
    validator_strikes: int = 0  # unconditional checks that caught a 304 hiding new items
    polls_since_unconditional: int = 0
    interval_s: float | None = None
    next_poll_at: float = 0.0  # epoch seconds; 0 = due now
    last_poll_at: float | None = None
    first_polled_at: float | None = None
    last_result: str | None = None  # new | no_new | not_modified | unchanged_body | error
    last_http_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    failing_since: float | None = None
    last_success_at: float | None = None
    last_new_item_at: float | None = None
    publisher_min_s: float | None = None  # the feed's own minimum: ttl / sy:updatePeriod / max-age
    skip_hours: list[int] = field(default_factory=list)  # from the feed: RSS skipHours (UTC)
    skip_days: list[int] = field(default_factory=list)  # RSS skipDays, 0 = Monday
    mean_new_gap_s: float | None = None  # EWMA of the time between polls that found new items
    polls: int = 0
    produced: int = 0
    # short article id -> (short content hash, first_seen_at epoch). first_seen_at must survive
    # updates: it picks the article's monthly index, so an update has to land on the same one.
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    def remember(self, items: Mapping[str, tuple[str, float]], body_items: int | None) -> None:
        """Add ``article_id -> (content_hash, first_seen)``, keeping the newest within the bound."""
        for key, (digest, first_seen) in items.items():
            short = key[:16]
            self.seen.pop(short, None)
            self.seen[short] = (digest[:16], first_seen)
        # None (recovery: the body is unknown) keeps as much as the hard bound allows.
        bound = SEEN_MAX if body_items is None else min(SEEN_MAX, max(SEEN_MIN, 3 * body_items))
        excess = len(self.seen) - bound
        if excess > 0:
            for key in list(self.seen)[:excess]:  # dicts keep insertion order: oldest first
                del self.seen[key]

    def seen_entry(self, article_id: str) -> tuple[str, float] | None:
        return self.seen.get(article_id[:16])

    def copy(self) -> FeedState:
        return replace(
            self,
            seen=dict(self.seen),
            skip_hours=list(self.skip_hours),
            skip_days=list(self.skip_days),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> FeedState:
        raw: dict[str, Any] = orjson.loads(data)
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in raw.items() if k in known})  # tolerate older/newer rows
        state.seen = {k: (v[0], float(v[1])) for k, v in state.seen.items()}
        return state


class FeedStateStore(Protocol):
    def load_all(self) -> dict[str, FeedState]: ...

    def save(
        self,
        states: Iterable[FeedState],
        topic: str = "",
        checkpoint: Mapping[int, int] | None = None,
    ) -> None: ...

    def load_checkpoint(self, topic: str) -> dict[int, int]: ...

    def close(self) -> None: ...


class SqliteFeedStateStore:
    """One SQLite file; ``save`` is one transaction, so a crash leaves the last good state."""

    TABLES = ("feed_state", "checkpoint")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.reset_from: Path | None = None  # where an unusable file was moved, if it was
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            self.reset_from = _move_aside(path)
            log.error(
                "feed state %s is unusable (%s): moved aside to %s; starting from an empty "
                "state, so every feed is polled afresh and its articles produced again (same "
                "ids: the index keeps one document each)",
                path,
                exc,
                self.reset_from,
            )
            self._db = self._open(path)
        # No feed state at all (a new, lost or replaced file): what was produced before is
        # still in the raw topic, and ``connectors.handoff.adopt`` can take it back.
        self.fresh = self._db.execute("SELECT 1 FROM feed_state LIMIT 1").fetchone() is None

    @classmethod
    def _open(cls, path: Path) -> sqlite3.Connection:
        existed = path.exists() and path.stat().st_size > 0
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            if existed:
                _check(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS feed_state "
                "(feed_id TEXT PRIMARY KEY, doc BLOB NOT NULL)"
            )
            # Per partition of the raw topic: the offset after the last record whose poll's
            # state is saved here. Records beyond it were delivered by a run that died before
            # saving; the next run reads them back instead of producing them again.
            db.execute(
                "CREATE TABLE IF NOT EXISTS checkpoint (topic TEXT NOT NULL, part INTEGER NOT "
                "NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (topic, part))"
            )
        except BaseException:
            db.close()
            raise
        return db

    def load_all(self) -> dict[str, FeedState]:
        rows = self._db.execute("SELECT feed_id, doc FROM feed_state").fetchall()
        out: dict[str, FeedState] = {}
        for feed_id, doc in rows:
            try:
                out[feed_id] = FeedState.from_json(doc)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                log.error(
                    "feed state of %s in %s does not decode (%s): that feed starts afresh",
                    feed_id,
                    self.path,
                    exc,
                )
        return out

    def load_checkpoint(self, topic: str) -> dict[int, int]:
        rows = self._db.execute(
            "SELECT part, next_offset FROM checkpoint WHERE topic = ?", (topic,)
        ).fetchall()
        return {int(part): int(offset) for part, offset in rows}

    def save(
        self,
        states: Iterable[FeedState],
        topic: str = "",
        checkpoint: Mapping[int, int] | None = None,
    ) -> None:
        rows = [(s.feed_id, s.to_json()) for s in states]
        if not rows and not checkpoint:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO feed_state (feed_id, doc) VALUES (?, ?) "
                "ON CONFLICT(feed_id) DO UPDATE SET doc = excluded.doc",
                rows,
            )
            self._db.executemany(
                "INSERT INTO checkpoint (topic, part, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT(topic, part) DO UPDATE SET next_offset = "
                "max(next_offset, excluded.next_offset)",
                [(topic, part, offset) for part, offset in (checkpoint or {}).items()],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def delete(self, feed_id: str) -> None:
        self._db.execute("DELETE FROM feed_state WHERE feed_id = ?", (feed_id,))

    def close(self) -> None:
        self._db.close()


def _check(db: sqlite3.Connection) -> None:
    """Raise ``sqlite3.DatabaseError`` unless ``db`` is a sound database holding our tables.

    An existing file without any table of ours is accepted (an empty file, or one created by
    a version that had not written yet); one with some tables but not all lost a table.
    """
    result = db.execute("PRAGMA quick_check").fetchone()
    if result is None or result[0] != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {result[0] if result else None}")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    ours = set(SqliteFeedStateStore.TABLES)
    if tables and not ours <= tables:
        raise sqlite3.DatabaseError(f"table(s) missing: {', '.join(sorted(ours - tables))}")
    for table in ours & tables:
        db.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()  # noqa: S608 - our own names


def _move_aside(path: Path) -> Path:
    """Rename ``path`` (and its WAL companions) to ``<name>.corrupt-<UTC time>``; the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(target.with_name(target.name + suffix))
    return target
