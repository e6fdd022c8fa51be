"""Prometheus metrics of newsflow (``newsflow_*``); every article ends a stage in one outcome."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
