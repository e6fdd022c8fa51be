"""Records over the size limit are trimmed and flagged, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.producer import fit_record
from streams.schema.models import FeedRef, RawArticle, Source, encode

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def article(title: str = "t", summary: str = "s", content: str | None = None) -> RawArticle:
    return RawArticle(
        article_id="a" * 32,
        source=Source(
            feed=FeedRef(feed_id="f", url="https://a.example/feed"),
            url="https://a.example/x",
            title=title,
            summary=summary,
            content=content,
            fetched_at=NOW,
            first_seen_at=NOW,
        ),
    )


def test_small_records_pass_untouched() -> None:
    a = article(content="short")
    fitted, value = fit_record(a, 100_000)
    assert fitted is a and value == encode(a)


@pytest.mark.parametrize("unit", ["x", "س", "\U0001f4f0", '"'])  # 1-4 UTF-8 bytes, JSON escapes
def test_content_is_cut_first_to_fit(unit: str) -> None:
    a = article(summary="summary " * 50, content=unit * 300_000)
    fitted, value = fit_record(a, 100_000)
    assert len(value) <= 100_000
    assert fitted.source.truncated is True
    assert fitted.source.summary == a.source.summary  # untouched: content was enough
    assert fitted.source.content and a.source.content.startswith(fitted.source.content)
    assert len(value) > 90_000  # cut near the limit, not to nothing
    assert RawArticle.model_validate_json(value) == fitted


def test_summary_is_cut_when_content_is_not_enough() -> None:
    a = article(summary="ملخص " * 3000, content="c" * 50_000)
    fitted, value = fit_record(a, 12_000)
    assert len(value) <= 12_000
    assert fitted.source.content is None and fitted.source.truncated
    assert a.source.summary.startswith(fitted.source.summary) and fitted.source.summary
