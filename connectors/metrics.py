"""Prometheus metrics of the connector: ``newsflow_feed_*`` plus the shared article counter.

Per-feed series carry the feed id as label (feed lists are thousands, not millions, of feeds).
Outcomes of articles use the pipeline-wide ``newsflow_articles_total{stage="connector"}``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.metrics import ARTICLES, RETRIES

__all__ = [
    "ARTICLES",
    "FEED_DROPPED",
    "FEED_FAILURES",
    "FEED_FETCH_BYTES",
    "FEED_FETCH_SECONDS",
    "FEED_LAST_NEW_ITEM",
    "FEED_LAST_SUCCESS",
    "FEED_MEAN_GAP",
    "FEED_POLLS",
    "FEED_STATUS",
    "FEED_TRUNCATED",
    "RECORDS_HELD",
    "RETRIES",
]

FEED_POLLS = Counter(
    "newsflow_feed_polls_total",
    "Feed polls by result: new, no_new, not_modified, unchanged_body, error (with error class).",
    ["feed", "result", "error"],
)
FEED_LAST_SUCCESS = Gauge(
    "newsflow_feed_last_success_timestamp_seconds",
    "When the feed last answered with a usable body or 304.",
    ["feed"],
)
FEED_LAST_NEW_ITEM = Gauge(
    "newsflow_feed_last_new_item_timestamp_seconds",
    "When a poll of the feed last found a new item.",
    ["feed"],
)
FEED_MEAN_GAP = Gauge(
    "newsflow_feed_mean_new_gap_seconds",
    "The feed's usual time between polls that found new items (EWMA).",
    ["feed"],
)
FEED_FAILURES = Gauge(
    "newsflow_feed_consecutive_failures", "Consecutive failed polls of the feed.", ["feed"]
)
FEED_STATUS = Gauge(
    "newsflow_feed_status",
    "1 for the feed's current health (ok, not-modified, failing, stale, dead, pending).",
    ["feed", "status"],
)
FEED_FETCH_BYTES = Counter(
    "newsflow_feed_fetch_bytes_total", "Bytes received from feeds (on the wire).", ["feed"]
)
FEED_FETCH_SECONDS = Histogram(
    "newsflow_feed_fetch_seconds",
    "Time of one feed fetch, redirects and body included.",
    ["result"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
FEED_DROPPED = Counter(
    "newsflow_feed_items_dropped_total",
    "Feed entries not turned into articles, by reason (link_not_http, no_link, ...).",
    ["reason"],
)
FEED_TRUNCATED = Counter(
    "newsflow_feed_items_truncated_total",
    "Articles produced with a field cut to its cap (source.truncated is true), by field: "
    "title, summary, content, authors, categories, enclosures, guid, record_size.",
    ["field"],
)
RECORDS_HELD = Gauge(
    "newsflow_connector_records_held",
    "Records the connector produced that Kafka has not confirmed yet (kept to re-send them; "
    "their feeds' state is saved once they are confirmed). At connector.max_held_records, "
    "due polls are deferred.",
)
