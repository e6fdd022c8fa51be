"""`newsflow feeds ...` end to end through the real CLI (no Kafka needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.commands.cli import app
from streams.schema.models import RawArticle
from tests.integration.feed_server import FeedServer

RUNNER = CliRunner()
FEED = (
    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>وكالة</title>"
    "<language>ar</language><ttl>30</ttl>"
    "<item><title>خبر أول</title><link>/ar/1?utm_medium=rss</link>"
    "<pubDate>Sat, 28 Nov 2026 10:00:00 +0000</pubDate></item>"
    "<item><title>Bad</title><link>javascript:alert(1)</link></item>"
    "<item><title>خبر ثان</title><link>https://news.example/ar/2</link>"
    "<pubDate>Sat, 28 Nov 2126 10:00:00 +0000</pubDate></item>"
    "</channel></rss>"
).encode()


@pytest.fixture
def feeds_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__STATE_PATH", str(tmp_path / "state.sqlite"))
    return tmp_path / "feeds.yaml"


def run(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.output


def test_add_list_export_import_remove(feeds_file: Path, tmp_path: Path) -> None:
    f = str(feeds_file)
    code, out = run(
        "feeds",
        "add",
        "https://feeds.bbci.co.uk/arabic/rss.xml",
        "-f",
        f,
        "--language",
        "ar",
        "--tag",
        "world",
    )
    assert code == 0 and "added bbci-co-uk-arabic" in out
    code, out = run("feeds", "add", "https://feeds.bbci.co.uk/arabic/rss.xml", "-f", f)
    assert code == 1 and "already in the list" in out
    code, out = run("feeds", "add", "ftp://example.org/x", "-f", f)
    assert code == 1 and "url" in out
    code, out = run("feeds", "list", "-f", f, "--json")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["id"], r["health"], r["language"]) for r in rows] == [
        ("bbci-co-uk-arabic", "pending", "ar")
    ]
    opml = tmp_path / "out.opml"
    assert run("feeds", "export", "-f", f, "-o", str(opml))[0] == 0
    other = tmp_path / "other.yaml"
    code, out = run("feeds", "import", str(opml), "-f", str(other))
    assert code == 0 and "imported 1 feed(s)" in out
    code, out = run("feeds", "remove", "bbci-co-uk-arabic", "-f", f)
    assert code == 0
    code, out = run("feeds", "remove", "bbci-co-uk-arabic", "-f", f)
    assert code == 1 and "no feed with id" in out


def test_check_shows_what_would_be_produced_and_json_is_the_contract() -> None:
    with FeedServer() as server:
        server.set_feed("/f.xml", FEED)
        code, out = run("feeds", "check", server.url("/f.xml"), "--allow-private")
        assert code == 0, out
        assert "items: 2 usable, 1 dropped (link_not_http)" in out
        assert "ttl 1800s" in out
        code, out = run("feeds", "check", server.url("/f.xml"), "--allow-private", "--json")
        assert code == 0
        records = [RawArticle.model_validate_json(x) for x in out.splitlines() if x.startswith("{")]
        assert [r.source.url for r in records] == [
            server.url("/ar/1"),
            "https://news.example/ar/2",
        ]
        assert records[0].source.published_at is not None
        assert records[1].source.published_at is None
        assert (records[1].source.published_at_note or "").startswith("in_future")
        # Without --allow-private the loopback server is refused, and says why.
        code, out = run("feeds", "check", server.url("/f.xml"))
        assert code == 2 and "blocked_address" in out
        assert server.hits["/f.xml"] == 2


def test_check_reads_a_file_and_reports_a_non_feed(tmp_path: Path) -> None:
    page = tmp_path / "page.xml"
    page.write_bytes(b"<!doctype html><html><body>nope</body></html>")
    code, out = run("feeds", "check", str(page))
    assert code == 2 and "not_a_feed" in out
