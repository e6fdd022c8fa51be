"""Property-based and hostile-output checks of the connector's cleaning (issue 14.10, "Also").

Bounded (200 examples, no deadline) so the suite stays fast; each property can fail:
- html_to_text: no live markup in the output, whatever the input (an HTML tokenizer finds no
  tag, comment or declaration in it);
- canonical_url: idempotent, and only http(s) within the length bound;
- enclosures are checked and canonicalised like links;
- nothing a server sends reaches a terminal raw (for_terminal).
"""

from __future__ import annotations

import html.parser
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.rss.parse import parse_feed
from connectors.rss.text import html_to_text
from connectors.rss.urls import canonical_url
from connectors.terminal import for_terminal

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Markup(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.found.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        self.found.append(f"</{tag}>")

    def handle_comment(self, data: str) -> None:
        self.found.append("<!--")

    def handle_decl(self, decl: str) -> None:
        self.found.append("<!decl")

    def handle_pi(self, data: str) -> None:
        self.found.append("<?")

    def unknown_decl(self, data: str) -> None:
        self.found.append("<![")


def live_markup(text: str) -> list[str]:
    parser = _Markup()
    parser.feed(text)
    parser.close()
    # "</", "<!", "<?" left dangling at the end would swallow what a page puts after the text
    dangling = [m for m in ("</", "<!", "<?") if m in text]
    return parser.found + dangling


_PIECES = st.sampled_from(
    [
        "<", ">", "</", "/", "=", '"', "'", " ", "&", ";", "amp", "lt", "gt", "&lt;", "&gt;",
        "&amp;lt;", "&amp;gt;", "#60", "#x3c", "img", "image", "b", "p", "script", "svg",
        "x-widget", "onerror", "alert(1)", "src", "!--", "-->", "!DOCTYPE", "?", "\n", "é", "ع",
    ]
)  # fmt: skip
_MARKUPISH = st.lists(_PIECES, max_size=30).map("".join)


@BOUNDED
@given(st.one_of(_MARKUPISH, st.text(max_size=200)))
def test_html_to_text_never_outputs_live_markup(raw: str) -> None:
    text = html_to_text(raw, 5000)
    assert live_markup(text) == [], (raw, text)
    assert len(text) <= 5000


def test_the_reported_payloads_are_dead() -> None:
    for raw in (
        "&lt;image src=x onerror=alert(1)&gt;",  # `&amp;lt;...` in the XML
        "<<b>img src=x onerror=alert(1)>",
        "&lt;<b>svg onload=alert(1)&gt;",
        "<x<b>>y onclick=alert(1)>",
    ):
        assert live_markup(html_to_text(raw, 1000)) == [], raw


_URL_PART = st.sampled_from(
    [
        "http://", "https://", "HTTP://", "javascript:", "//", "x.example", "EXAMPLE.org", ":80",
        ":443", ":8080", "/", "a", "%41", "%2f", "%zz", "?", "&", "=", "utm_source=x", "id=1",
        "#", "#!/r", "..", ".", " ", "\t", "é", "ü.example", "[::1]", "@", "user:pw@", "%",
    ]
)  # fmt: skip


@BOUNDED
@given(
    st.lists(_URL_PART, max_size=14).map("".join), st.sampled_from([None, "https://b.example/d/f"])
)
def test_canonical_url_is_idempotent_and_http_only(href: str, base: str | None) -> None:
    url = canonical_url(href, base, max_chars=200)
    if url is None:
        return
    assert url.startswith(("http://", "https://"))
    assert len(url) <= 200
    assert canonical_url(url, max_chars=200) == url, (href, url)
    assert canonical_url(url, base, max_chars=200) == url


def test_enclosure_urls_are_checked_and_canonicalised() -> None:
    links = [
        "javascript:alert(1)",
        "ftp://media.example/a.mp3",
        "https://bad host.example/a.mp3",
        "https://" + "a" * 70 + ".example/a.mp3",  # DNS label over 63
        "https://media.example/" + "x" * 5000 + ".mp3",
        "HTTPS://Media.Example:443/a%7e b.mp3?utm_source=rss&sig=1#frag",
    ]
    enclosures = "".join(f'<enclosure url="{u}" type="audio/mpeg" length="1"/>' for u in links)
    body = (
        '<rss version="2.0"><channel><title>E</title><item><title>x</title>'
        f"<link>https://media.example/1</link>{enclosures}</item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, base_url="https://media.example/feed", now=datetime.now(UTC))
    assert [e.url for e in parsed.items[0].enclosures] == ["https://media.example/a~%20b.mp3?sig=1"]


def test_terminal_output_has_no_escape_sequences() -> None:
    hostile = '"\x1b]0;pwned\x07\x1b[2J"\x9b31m\u202egnp.exe\r\nNext'
    shown = for_terminal(hostile)
    assert not any(c in shown for c in "\x1b\x07\x9b\u202e\r\n")
    assert "\\x1b" in shown and "\\u202e" in shown
    assert for_terminal("مرحبا 日本 café\tok") == "مرحبا 日本 café\tok"
    assert for_terminal(None) == ""


def test_feeds_check_prints_no_server_escape_sequence() -> None:
    from connectors.rss.check import CheckReport
    from streams.net.types import FetchResult, Validators

    report = CheckReport(
        "https://t.example/feed",
        fetched=FetchResult(
            status="ok",
            url="https://t.example/\x1b[2Jfeed",
            http_status=200,
            content_type="application/rss+xml\x1b]8;;https://evil.example\x07",
            validators=Validators(etag='"v1\x1b[31m"', last_modified="Mon\x9b2J"),
        ),
    )
    text = "\n".join(report.lines())
    assert not any(c in text for c in "\x1b\x07\x9b"), text
    assert '"v1\\x1b[31m"' in text
