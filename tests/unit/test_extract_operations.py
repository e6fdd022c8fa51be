"""Operating the extract stage without services: the bounded ``host_class`` label, the per-feed
result, and the FULL TEXT part of `newsflow status` read from a real Prometheus exposition.

The exposition is written by prometheus_client from collectors with the stage's metric names,
labels and buckets (a private registry, so nothing leaks into the process-wide one) and read
back through the same parser `newsflow status` uses on a worker's /metrics.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import streams.metrics as m
from streams.commands import status
from streams.stages.extract import NOT_WANTED, feed_result, host_class, site_of


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.example.org/news/1.html", "example.org"),
        ("http://News.BBC.co.uk:8080/a", "bbc.co.uk"),
        ("https://www.abc.net.au/news/x", "abc.net.au"),
        ("https://lemonde.fr./x", "lemonde.fr"),
        ("https://example.com", "example.com"),
        ("http://127.0.0.1:8765/pages/ar/x.html", "127.0.0.1"),
        ("http://[::1]:80/x", "::1"),
        ("http://localhost:8000/x", "localhost"),
        ("tag:velmora.example,2026:4", None),
        ("ftp://example.org/x", None),
        ("https://", None),
        ("http://[::1/x", None),  # unparseable
    ],
)
def test_site_of(url: str, site: str | None) -> None:
    assert site_of(url) == site


def test_host_class_is_bounded_and_means_the_feeds_own_site() -> None:
    feed = "https://feeds.example.org/world.rss"
    assert host_class("https://www.example.org/a.html", feed) == "same_site"
    assert host_class("https://example.org/a.html", feed) == "same_site"
    assert host_class("https://www.other.net/a.html", feed) == "cross_site"
    assert host_class("https://example.org.evil.com/a.html", feed) == "cross_site"
    assert host_class("tag:example.org,2026:1", feed) == "none"
    assert host_class("http://127.0.0.1:9/x", "http://127.0.0.1:8765/en.xml") == "same_site"


def test_feed_result_splits_wanted_pages_into_ok_and_failed() -> None:
    assert feed_result("ok") == "ok"
    for status_ in NOT_WANTED:
        assert feed_result(status_) == "skipped"
    for status_ in ("blocked", "robots_denied", "timeout", "http_4xx", "backoff", "empty"):
        assert feed_result(status_) == "failed"


def test_quantile_interpolates_like_prometheus() -> None:
    inf = float("inf")
    buckets = [(0.1, 0.0), (1.0, 10.0), (2.0, 20.0), (inf, 20.0)]
    assert status.quantile(0.5, buckets) == pytest.approx(1.0)
    assert status.quantile(0.25, buckets) == pytest.approx(0.55)
    assert status.quantile(0.95, buckets) == pytest.approx(1.9)
    assert status.quantile(0.99, [(1.0, 1.0), (inf, 10.0)]) == 1.0  # +Inf: highest bound
    assert status.quantile(0.5, [(1.0, 0.0), (inf, 0.0)]) is None
    assert status.quantile(0.5, []) is None


def _samples(registry: CollectorRegistry) -> status.Samples:
    out: status.Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _like(metric: object) -> dict[str, object]:
    """name, documentation and labels of one of the stage's collectors."""
    return {
        "name": metric._name,  # type: ignore[attr-defined]
        "documentation": "copy",
        "labelnames": metric._labelnames,  # type: ignore[attr-defined]
    }


def test_extract_view_and_its_lines_from_an_exposition() -> None:
    reg = CollectorRegistry()
    pages = Counter(**_like(m.EXTRACT_PAGES), registry=reg)  # type: ignore[arg-type]
    feeds = Counter(**_like(m.EXTRACT_FEED_PAGES), registry=reg)  # type: ignore[arg-type]
    fetch = Histogram(
        **_like(m.EXTRACT_FETCH_SECONDS),  # type: ignore[arg-type]
        buckets=m.EXTRACT_FETCH_SECONDS._upper_bounds,
        registry=reg,
    )
    text = Histogram(
        **_like(m.EXTRACT_TEXT_SECONDS),  # type: ignore[arg-type]
        buckets=m.EXTRACT_TEXT_SECONDS._upper_bounds,
        registry=reg,
    )
    backoff = Gauge(**_like(m.EXTRACT_HOSTS_BACKOFF), registry=reg)  # type: ignore[arg-type]
    for outcome, cls, n in (
        ("ok", "same_site", 6),
        ("ok", "cross_site", 2),
        ("timeout", "same_site", 1),
        ("http_4xx", "cross_site", 1),
        ("skipped", "none", 3),
    ):
        pages.labels(outcome, cls).inc(n)
    feeds.labels("good", "ok").inc(8)
    feeds.labels("bad", "failed").inc(2)
    feeds.labels("bad", "skipped").inc(3)
    feeds.labels("mixed", "ok").inc(3)
    feeds.labels("mixed", "failed").inc(1)
    for seconds in (0.2, 0.2, 0.2, 0.7, 0.7, 0.7, 0.7, 3.0, 3.0, 6.0):
        fetch.labels("same_site" if seconds < 3 else "cross_site").observe(seconds)
    for seconds in (0.02, 0.02, 0.03, 0.04):
        text.observe(seconds)
    backoff.set(2)

    view = status.extract_view(_samples(reg))
    assert view["outcomes"] == {"http_4xx": 1, "ok": 8, "skipped": 3, "timeout": 1}
    assert view["host_classes"] == {"cross_site": 3, "none": 3, "same_site": 7}
    assert view["fetch"]["count"] == 10 and view["fetch"]["mean_s"] == pytest.approx(1.54)
    assert view["fetch"]["p50_s"] == pytest.approx(0.5 + 0.5 * (5 - 3) / 4)  # in (0.5, 1]
    assert view["fetch"]["p95_s"] == pytest.approx(5 + 5 * 0.5)  # in (5, 10]
    assert view["extract"]["count"] == 4 and 0.01 < view["extract"]["p50_s"] <= 0.025
    assert view["hosts_in_backoff"] == 2
    assert view["failing_feeds"] == [
        {"feed": "bad", "ok": 0, "failed": 2, "failure_ratio": 1.0},
        {"feed": "mixed", "ok": 3, "failed": 1, "failure_ratio": 0.25},
    ]

    lines = status.render_extract(view)
    assert lines[0].startswith("FULL TEXT")
    assert "  outcomes    http_4xx 1  ok 8  skipped 3  timeout 1" in lines
    assert any(
        x.startswith("  fetch       10 pages  mean 1.5s  p50 750ms  p95 7.5s") for x in lines
    )
    assert "  hosts in backoff  2" in lines
    assert any("bad" in x and "2/2 pages failed (100%)" in x for x in lines)
    assert status.render_extract({}) == []


def test_an_idle_extract_worker_shows_no_figures() -> None:
    view = status.extract_view({("newsflow_extract_hosts_in_backoff", ()): 0.0})
    assert view["outcomes"] == {} and view["fetch"]["count"] == 0
    assert view["fetch"]["p95_s"] is None and view["failing_feeds"] == []
    assert "outcomes    none yet" in status.render_extract(view)[1]
