"""The whole-pipeline benchmark's article pages (bench/pages.py): sizes, paths, and that the
product's extractor finds the article in them (not the teasers, comments or scripts)."""

from __future__ import annotations

import re

from bench.pages import MAX_BYTES, MIN_BYTES, PageStore, article_page, localise
from streams.extract import extract
from streams.tooling.samplefeeds import synthetic_feed, synthetic_language

BASE = "http://127.0.0.1:8999"


def _url(feed_no: int, k: int, seed: int = 7) -> str:
    return f"{BASE}/pages/{synthetic_language(feed_no, seed)}/f{feed_no}/s{seed}/{k}"


def test_pages_are_news_sized_and_deterministic() -> None:
    sizes = [len(article_page(f, k, 7, _url(f, k))) for f in range(6) for k in range(5)]
    assert all(MIN_BYTES <= n <= MAX_BYTES + 2000 for n in sizes), sizes
    assert max(sizes) - min(sizes) > 30_000  # drawn over the range, not one size
    assert article_page(3, 4, 7, _url(3, 4)) == article_page(3, 4, 7, _url(3, 4))


def test_feed_links_point_at_the_page_server() -> None:
    feed = localise(synthetic_feed(2, 3, full_text=False, seed=7), BASE).decode()
    for k in range(3):
        assert _url(2, k) in feed
    assert "synthetic.newsflow.example/" not in feed.replace("tag:synthetic", "")


def test_store_serves_html_pages_and_404s_the_rest() -> None:
    store = PageStore({"f0.xml": b"<rss/>"}, None)
    store.serve_at(BASE)
    path = _url(1, 2).removeprefix(BASE + "/")
    entry = store.get(path)
    assert entry is not None
    assert entry.content_type == "text/html; charset=utf-8"
    assert store.get("f0.xml") is not None
    assert store.get("robots.txt") is None  # no robots.txt: everything allowed
    wrong_lang = "zz" if not path.startswith("pages/zz") else "yy"
    assert store.get(f"pages/{wrong_lang}/f1/s7/2") is None


def test_extractor_finds_the_article_not_the_boilerplate() -> None:
    for feed_no in range(4):
        url = _url(feed_no, 1)
        page = article_page(feed_no, 1, 7, url)
        got = extract(page, url, {"content-type": "text/html; charset=utf-8"})
        assert got.status == "ok", (feed_no, got.reason)
        assert got.text is not None
        assert 1500 < len(got.text) < 12_000  # the article, not 30-120 KB of page
        assert "window.__STATE__" not in got.text
        assert not re.search(r"reader\d", got.text)  # the comment thread's user names
