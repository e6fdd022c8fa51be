"""What the pipeline does next with a failure; third-party errors are translated to these.

- ``RetryableError``: try again in place with capped backoff (``settings.retry``); the
  partition waits, nothing is skipped. Raised by the Elasticsearch sink for 429/5xx/unreachable
  (``streams.sinks.elastic``) and by a stage's ``process`` for a transient failure of the whole
  batch; the stage runner (``streams.stages.runner``) retries it.
- ``PoisonArticle``: the record can never succeed as it is; the runner dead-letters it with its
  original bytes. Raised by the Elasticsearch sink for a request the cluster refuses as such
  (4xx other than 429) and for items the mapping rejects, and by the enrich stage for an output
  record too large for its topic.

There is no "drop" error: no stage skips an article today. Every record ends a stage in exactly
one counted outcome (``newsflow_articles_total{stage,outcome}``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator


class PipelineError(Exception):
    """Base of the errors that name the pipeline's next step."""


class RetryableError(PipelineError):
    pass


class PoisonArticle(PipelineError):
    pass


def backoff_delays(initial_s: float, max_s: float) -> Iterator[float]:
    """How long to wait before each retry of a ``RetryableError``: capped exponential backoff
    with full jitter, endless (retries never give up; the partition waits)."""
    delay = initial_s
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(max_s, delay * 2)
