"""One article as bytes for Kafka: the encoded value, trimmed to the record size limit.

Kept apart from ``producer`` (which needs kafka-python) because parser processes build these
records: their fork server preloads this module, and importing kafka-python there cost about a
third of a second of CPU per run for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.schema.models import RawArticle, encode

_OVERHEAD = 512  # key, headers and record framing, generously


def fit_record(article: RawArticle, limit: int) -> tuple[RawArticle, bytes]:
    """The article and its wire bytes, trimmed to ``limit`` bytes when it does not fit.

    Cuts content (to nothing if need be), then summary, then title; each cut is computed from
    the measured excess in UTF-8 bytes, so a few passes suffice even for multi-byte scripts.
    """
    value = encode(article)
    if len(value) + _OVERHEAD <= limit:
        return article, value
    src = article.source
    fields = {"content": src.content or "", "summary": src.summary, "title": src.title}
    for name in ("content", "summary", "title"):
        for _ in range(8):
            excess = len(value) + _OVERHEAD - limit
            text = fields[name]
            if excess <= 0 or not text:
                break
            data = text.encode("utf-8")
            # JSON escaping makes some characters cost more on the wire than in UTF-8:
            # scale the cut by this text's own wire/raw ratio, with a little slack.
            wire = len(orjson.dumps(text))
            keep = int(len(data) * max(0, wire - excess - 64) / wire)
            keep = min(keep, len(data) - 1)
            fields[name] = data[:keep].decode("utf-8", "ignore").rstrip()
            changed = {
                "content": fields["content"] or None,
                "summary": fields["summary"],
                "title": fields["title"],
                "truncated": True,
            }
            article = article.model_copy(update={"source": src.model_copy(update=changed)})
            value = encode(article)
        if len(value) + _OVERHEAD <= limit:
            return article, value
    raise ValueError(
        f"article {article.article_id} does not fit in {limit} bytes even without text"
    )


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One article as it goes to Kafka: key, encoded value, and whether it was trimmed.

    Built where the article is (a parser process, see ``rss.poller``), so only bytes cross
    the process boundary: unpickling 50 pydantic articles in the polling process cost about
    as much as producing them.
    """

    article_id: str
    feed_id: str
    value: bytes
    trimmed: bool


def wire_record(article: RawArticle, limit: int) -> WireRecord:
    fitted, value = fit_record(article, limit)
    return WireRecord(article.article_id, article.source.feed.feed_id, value, fitted is not article)
