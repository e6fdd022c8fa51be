"""``newsflow feeds check``: fetch (or read) one feed, parse it, show what would be produced.

Uses the connector's own fetch, parse and normalisation code, so what it shows is what
``newsflow connect`` would send; nothing is sent to Kafka and no state is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.feeds import FeedSpec
from connectors.rss.digest import new_state, to_raw_article
from connectors.rss.parse import parse_feed
from connectors.rss.poller import fetch_limits
from connectors.rss.types import ParsedFeed
from connectors.terminal import for_terminal
from streams.net.fetch import Fetcher
from streams.net.types import FetchResult
from streams.schema.models import RawArticle
from streams.settings import ConnectorSettings


@dataclass(slots=True)
class CheckReport:
    target: str
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    articles: list[RawArticle] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def lines(self) -> list[str]:
        """The report for a terminal: nothing a server sent is printed raw (``for_terminal``)."""
        return [for_terminal(line) for line in self._lines()]

    def _lines(self) -> list[str]:
        out = [f"feed: {self.target}"]
        f = self.fetched
        if f is not None:
            out.append(
                f"http: {f.http_status} {f.status}, {f.bytes_compressed} bytes on the wire, "
                f"{f.elapsed_s:.2f}s, content-type {f.content_type}"
            )
            if f.url != self.target:
                out.append(f"answered by: {f.url}" + (" (permanent)" if f.permanent_url else ""))
            out.append(
                f"validators: etag={f.validators.etag} last-modified="
                f"{f.validators.last_modified} max-age={f.cache_max_age_s}"
            )
        p = self.parsed
        if p is not None:
            m = p.meta
            out.append(f"title: {m.title}  language: {m.language}  bozo: {p.bozo}")
            if m.ttl_s or m.update_period_s or m.skip_hours or m.skip_days:
                out.append(
                    f"schedule hints: ttl {m.ttl_s}s, update period {m.update_period_s}s, "
                    f"skip hours {sorted(m.skip_hours)}, skip days {sorted(m.skip_days)}"
                )
            out.append(
                f"items: {len(p.items)} usable"
                + ("".join(f", {n} dropped ({r})" for r, n in p.dropped.items()))
            )
        for a in self.articles:
            s = a.source
            when = s.published_at.isoformat() if s.published_at else f"- ({s.published_at_note})"
            out.append(f"- {s.title[:100]!r}")
            out.append(f"    {s.url or '(no link, guid ' + str(s.guid) + ')'}  published {when}")
        return out


async def check(
    conf: ConnectorSettings,
    target: str,
    *,
    allow_private: bool = False,
    base_url: str | None = None,
    language: str | None = None,
) -> CheckReport:
    report = CheckReport(target)
    now = time.time()
    path = Path(target)
    if "://" not in target and path.is_file():
        body, base, content_type = path.read_bytes(), base_url or "", None
    else:
        async with Fetcher(user_agent=conf.user_agent, limits=fetch_limits(conf)) as fetcher:
            fetched = await fetcher.fetch(target, None, allow_private=allow_private)
        report.fetched = fetched
        if fetched.status != "ok":
            report.error = for_terminal(
                f"{fetched.error or fetched.status}: {fetched.error_message or ''}"
            )
            return report
        body, base, content_type = fetched.body or b"", fetched.url, fetched.content_type
    parsed = parse_feed(
        body,
        base_url=base,
        now=datetime.fromtimestamp(now, UTC),
        content_type=content_type,
        language=language,
    )
    report.parsed = parsed
    report.warnings = [for_terminal(w) for w in parsed.warnings]
    if parsed.error and not parsed.items:
        report.error = parsed.error
        return report
    # Built without validation: a file being checked has no http URL to validate.
    feed = FeedSpec.model_construct(
        id="check",
        url=target,
        name=parsed.meta.title,
        language=language,
        country=None,
        tags=(),
        min_interval_s=None,
        max_interval_s=None,
        enabled=True,
    )
    state = new_state(feed)
    fetched_at = datetime.fromtimestamp(now, UTC)
    report.articles = [
        to_raw_article(i, feed, state, fetched_at, round(now, 3)) for i in parsed.items
    ]
    return report
