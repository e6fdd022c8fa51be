"""Prometheus metrics of newsflow (``newsflow_*``); every article ends a stage in one outcome."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ARTICLES = Counter(
    "newsflow_articles_total",
    "Articles that finished a stage, by outcome (exactly one outcome per article and stage).",
    ["stage", "outcome"],
)
DEAD_LETTERS = Counter(
    "newsflow_dead_letters_total",
    "Records dead-lettered, by stage and error class.",
    ["stage", "error"],
)
RETRIES = Counter(
    "newsflow_retries_total", "In-place retries, by stage and reason.", ["stage", "reason"]
)
BATCH_SECONDS = Histogram(
    "newsflow_batch_seconds",
    "Time to process one batch, by stage.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)

# ---- operations: lag, progress, latency (see streams/ops.py) --------------------------------

CONSUMER_LAG = Gauge(
    "newsflow_consumer_lag",
    "Records between a stage's committed offset and the end of its input partition.",
    ["stage", "topic", "partition"],
)
STAGE_PROGRESS = Gauge(
    "newsflow_stage_last_progress_timestamp_seconds",
    "When the stage last finished a batch (connector: saved a poll).",
    ["stage"],
)
READY = Gauge("newsflow_ready", "1 when the process is ready (see /health/ready).", ["process"])
END_TO_END = Histogram(
    "newsflow_end_to_end_seconds",
    "From first_seen_at (connector) to indexed in Elasticsearch.",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5, 10, 30, 60, 300, 900, 3600),
)
ENRICH_SECONDS = Histogram(
    "newsflow_enrich_seconds",
    "Enrichment time per article, by component (language, entities) and language.",
    ["component", "language"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
BULK_SECONDS = Histogram(
    "newsflow_bulk_seconds",
    "Time to settle one bulk batch in Elasticsearch, retries included.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
)
BULK_ITEMS = Counter(
    "newsflow_bulk_items_total",
    "Bulk items by outcome: indexed, retried (429/5xx, retried in place), rejected (DLQ).",
    ["outcome"],
)
ELASTIC_REFUSED = Gauge(
    "newsflow_elastic_writes_refused",
    "1 while Elasticsearch refuses the stage's writes for a reason an operator must fix: "
    "credentials (401), privileges (403), write_block (index.blocks.write or flood-stage "
    "read-only). The articles wait and are retried, never dead-lettered.",
    ["stage", "reason"],
)

# ---- dependencies: credentials and the Kafka cluster (see streams/ops.py, streams/diagnose.py)

AUTH_FAILURES = Counter(
    "newsflow_auth_failures_total",
    "Failed attempts to talk to a dependency because of our credentials: authentication "
    "(wrong SASL user/password, API key or password: 401) or authorization (Kafka ACL, 403). "
    "/health/ready names the credential and the variables that set it.",
    ["dependency", "reason"],
)
for _dependency in ("kafka", "elasticsearch"):  # every series exists at 0, so increase() works
    for _reason in ("authentication", "authorization"):
        AUTH_FAILURES.labels(_dependency, _reason)
KAFKA_BROKERS = Gauge(
    "newsflow_kafka_brokers",
    "Brokers in the Kafka cluster metadata at the last sample (the lag sampler's view).",
)
UNDER_REPLICATED = Gauge(
    "newsflow_kafka_under_replicated_partitions",
    "Partitions of a newsflow topic whose in-sync replicas are fewer than their replicas "
    "(a broker is down or lagging): with min.insync.replicas 2 of 3, one more loss stops "
    "acks=all writes.",
    ["topic"],
)
OFFLINE_PARTITIONS = Gauge(
    "newsflow_kafka_offline_partitions",
    "Partitions of a newsflow topic without a leader: nobody can read or write them.",
    ["topic"],
)

# ---- the extract stage (full text) ----------------------------------------------------------
# host_class is bounded on purpose (never a raw host name): same_site = the page is on the
# feed's own site (same registrable domain, approximated), cross_site = another site (an
# aggregator's feed), none = no http(s) link. Per-feed series use the feed id from the feed
# list, as the connector's newsflow_feed_* metrics do.

EXTRACT_PAGES = Counter(
    "newsflow_extract_pages_total",
    "Articles through the extract stage by outcome (= extraction.status: ok, skipped, "
    "robots_denied, timeout, http_4xx, blocked, ...) and host_class (same_site, cross_site, "
    "none): exactly one per forwarded article.",
    ["outcome", "host_class"],
)
EXTRACT_FEED_PAGES = Counter(
    "newsflow_extract_feed_pages_total",
    "Articles through the extract stage per feed by result: ok (full text), failed (a page "
    "was wanted but gave no usable text, whatever the reason), skipped (no page wanted: "
    "skipped, no_url).",
    ["feed", "result"],
)
EXTRACT_FETCH_SECONDS = Histogram(
    "newsflow_extract_fetch_seconds",
    "Time to fetch one article page (queueing for the host, robots.txt and backoff included), "
    "by host_class.",
    ["host_class"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
EXTRACT_TEXT_SECONDS = Histogram(
    "newsflow_extract_text_seconds",
    "Time to extract the main text and metadata of one fetched page.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
EXTRACT_HOSTS_BACKOFF = Gauge(
    "newsflow_extract_hosts_in_backoff",
    "Hosts the extract worker is backing off from after a 429/503 answer (refreshed every "
    "few seconds).",
)
