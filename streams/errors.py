"""What the pipeline does next with a failure; third-party errors are translated to these.

- ``DropArticle``: skip the record and count it (e.g. nothing to enrich, a stale duplicate).
- ``RetryableError``: try again in place with capped backoff; the partition waits, nothing is
  skipped (e.g. Elasticsearch unavailable, 429).
- ``PoisonArticle``: the record can never succeed as it is; dead-letter it with its original
  bytes (e.g. not valid contract JSON, rejected by the mapping).
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of the errors that name the pipeline's next step."""


class DropArticle(PipelineError):
    pass


class RetryableError(PipelineError):
    pass


class PoisonArticle(PipelineError):
    pass
