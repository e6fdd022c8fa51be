"""Which Elasticsearch answers are an operator's problem (wait, never dead-letter) and which are
the article's (issue 14.9). End to end: tests/integration/test_delivery_refusals.py."""

from __future__ import annotations

import json

import pytest

from streams.sinks.elastic import WriteResult, refusal

BLOCK_403 = {
    "type": "cluster_block_exception",
    "reason": "index [x] blocked by: [FORBIDDEN/8/index write (api)];",
}
FLOOD_429 = {
    "type": "cluster_block_exception",
    "reason": "index [x] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
    "watermark, index has read-only-allow-delete block];",
}
UNAUTHORIZED = {
    "type": "security_exception",
    "reason": "action [indices:data/write/bulk[s]] is unauthorized",
}
MAPPING = {"type": "document_parsing_exception", "reason": "failed to parse field [count]"}


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (403, BLOCK_403, "write_block"),
        (429, FLOOD_429, "write_block"),
        (401, {"type": "security_exception", "reason": "unable to authenticate"}, "credentials"),
        (403, UNAUTHORIZED, "privileges"),
        (400, MAPPING, None),
        (429, {"type": "es_rejected_execution_exception", "reason": "queue full"}, None),
        (503, {"type": "unavailable_shards_exception", "reason": "primary shard inactive"}, None),
    ],
)
def test_refusals_are_told_from_the_articles_faults(
    status: int, error: dict[str, str], reason: str | None
) -> None:
    result = WriteResult("a", "i", ok=False, status=status, error=json.dumps(error))
    assert refusal(status, json.dumps(error)) == reason
    assert result.refused == reason
    # Refusals and 429/5xx wait and retry; only the article's own faults may be dead-lettered.
    assert result.retryable is (reason is not None or status == 429 or status >= 500)


def test_a_written_item_is_never_refused() -> None:
    assert WriteResult("a", "i", ok=True, status=201).refused is None
