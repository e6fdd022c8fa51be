"""html_to_text: no markup, no script, sane whitespace, RTL marks kept, caps respected, fast."""

from __future__ import annotations

import time

import pytest

from connectors.rss.text import clean_short, html_to_text, truncate_text

BIG = 10_000


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("Line one<br>Line two<br/>Line three<BR />", "Line one\nLine two\nLine three"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>", "a b\nc"),
        ("<h2>Title</h2>Body", "Title\nBody"),
        ('<a href="https://x.example/">link</a> and <b>bold</b>', "link and bold"),
        ("<div><p>Nested</p></div>", "Nested"),
        ("Caf&eacute; &amp; cr&egrave;me&nbsp;br&ucirc;l&eacute;e", "Café & crème brûlée"),
        ("&#8220;quoted&#8221; &#x2014; dash", "\u201cquoted\u201d \u2014 dash"),
        ("a<!-- hidden -->b", "ab"),
        ("<![CDATA[x]]>y", "y"),
        ("<?php echo 1; ?>text", "text"),
        ("<custom-element>kept text</custom-element>", "kept text"),
        # double-escaped markup (common in RSS) is stripped once more
        ("&lt;p&gt;Double&lt;/p&gt;&lt;p&gt;escaped&lt;/p&gt;", "Double\n\nescaped"),
        # ...whatever the tag name: once unescaped, "<post>" cannot be told from markup, and
        # browsers read unknown names such as <image> as elements (issue 14.10)
        ("Second &lt;post&gt; about &lt;T&gt;", "Second about"),
        (
            "&amp;lt;image src=x onerror=alert(1)&amp;gt;ok",
            "&lt;image src=x onerror=alert(1)&gt;ok",
        ),
        ("Styling the &lt;select&gt; element", "Styling the element"),
        # deeper escaping stays literal text
        ("&amp;lt;b&amp;gt;", "&lt;b&gt;"),
    ],
)
def test_markup_to_text(html: str, expected: str) -> None:
    assert html_to_text(html, BIG) == expected


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert('x')</script>ok",
        "<SCRIPT type='text/javascript'>alert(document.cookie)</SCRIPT >ok",
        "<script>if (a < b && c > d) { alert(1) }</script>ok",
        '<img src="x" onerror="alert(1)">ok',
        "<img src=x onerror=alert(1)>ok",
        "<img alt=\"a > b\" onerror='alert(1)'>ok",
        '<a href="javascript:alert(1)" onclick="alert(2)">ok</a>',
        "<svg onload=alert(1)><script>alert(2)</script></svg>ok",
        "<style>body { background: url(javascript:alert(1)) }</style>ok",
        '<iframe src="javascript:alert(1)">alert</iframe>ok',
        '<object data="javascript:alert(1)">alert</object>ok',
        "<noscript>alert</noscript><template>alert</template>ok",
        "&lt;script&gt;alert(1)&lt;/script&gt;ok",
        "&lt;img src=x onerror=alert(1)&gt;ok",
        "ok<script>alert(1)",  # unclosed: swallows the rest
        'ok<img src="x" onerror="alert(1)"',  # cut off at the end
        "<body onload=alert(1)>ok</body>",
        # issue 14.10: escaped twice in the feed (the XML parser removes one level)
        "&lt;image src=x onerror=alert(1)&gt;ok",
        "&lt;x-widget onclick=alert(1)&gt;ok&lt;/x-widget&gt;",
        # a tag that appears only once another one is removed
        "<<b>img src=x onerror=alert(1)>ok",
        "&lt;<b>img src=x onerror=alert(1)&gt;ok",
        "<<<b>b>img src=x onerror=alert(1)>ok",
        "<\x00img src=x onerror=alert(1)>ok",  # a tag once the control character goes
        "&lt;\x07img src=x onerror=alert(1)&gt;ok",
    ],
)
def test_scripts_and_handlers_never_survive(html: str) -> None:
    text = html_to_text(html, BIG)
    assert text == "ok"
    for bad in ("alert", "onerror", "onload", "onclick", "javascript", "<"):
        assert bad not in text


def test_plain_text_passes_through() -> None:
    plain = "Rates rise 0.5% as 3 < 4 and 5 > 2; AT&T, R&D, a -> b, x<y then"
    assert html_to_text(plain, BIG) == plain
    assert html_to_text("  spaced   out \t text  ", BIG) == "spaced out text"
    assert html_to_text("already clean", BIG) == "already clean"


def test_whitespace_is_collapsed_to_one_blank_line() -> None:
    text = "a\r\n\r\n\r\n\r\nb \t c\u00a0\u00a0d\u2003e\n   \n   \nf\u2028g"
    assert html_to_text(text, BIG) == "a\n\nb c d e\n\nf\ng"
    assert html_to_text("<p> </p><p>\n</p><p>x</p><p></p>", BIG) == "x"


def test_control_characters_and_overrides_removed() -> None:
    text = "a\x00b\x07c\x1bd\x7fe\x9ff\ufeffg\u202eh\u202di"
    assert html_to_text(text, BIG) == "abcdefghi"


def test_rtl_marks_and_joiners_are_kept() -> None:
    # Persian needs ZWNJ (U+200C) inside words; RLM/LRM/ALM order mixed-direction titles.
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    mixed = "\u200fCOVID-19 \u0641\u064a \u0645\u0635\u0631\u200e \u061c(2024)"
    joined = "\u0915\u094d\u200d\u0937"  # ZWJ in Devanagari
    embedded = (
        "\u202b\u0639\u0631\u0628\u064a\u202c text \u2067\u05e2\u05d1\u05e8\u05d9\u05ea\u2069"
    )
    for text in (persian, mixed, joined, embedded):
        assert html_to_text(text, BIG) == text
    assert html_to_text(f"<p>{persian}</p>", BIG) == persian


def test_nfc_normalisation() -> None:
    decomposed = "Cafe\u0301 \u0627\u0653"  # e + combining acute; alef + madda above
    assert html_to_text(decomposed, BIG) == "Café \u0622"


def test_cut_at_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon"
    assert html_to_text(text, 16) == "alpha beta gamma"
    assert html_to_text(text, 15) == "alpha beta"
    assert html_to_text(text, 1000) == text
    # a space too far back (more than half the cap, or 200 chars) is not worth it: hard cut
    assert html_to_text("ab " + "c" * 20, 10) == "ab " + "c" * 7
    long_word = "word " + "x" * 500
    assert html_to_text(long_word, 400) == long_word[:400]


def test_cut_without_spaces_is_hard_but_keeps_combining_marks() -> None:
    thai = "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22" * 10
    assert html_to_text(thai, 20) == thai[:20]
    # fatha (U+064E) belongs to the letter before it: never split from it
    voweled = "\u0643\u064e\u062a\u064e\u0628\u064e" * 5
    cut = html_to_text(voweled, 5)
    assert len(cut) <= 5 and voweled.startswith(cut)
    assert cut[-1] == "\u064e"


def test_truncate_text() -> None:
    assert truncate_text("short", 10) == "short"
    assert truncate_text("one two three", 9) == "one two"
    assert truncate_text("abc", 0) == ""


def test_degenerate_inputs() -> None:
    assert html_to_text("", 10) == ""
    assert html_to_text("text", 0) == ""
    assert html_to_text("<p></p>", 10) == ""
    assert html_to_text("   ", 10) == ""
    assert html_to_text("&", 10) == "&"
    assert html_to_text("<", 10) == "<"


def test_clean_short() -> None:
    assert clean_short("  Jane\n Doe ", 300) == "Jane Doe"
    assert clean_short("<b>Jane</b>", 300) == "Jane"
    assert clean_short("", 300) is None
    assert clean_short(None, 300) is None
    assert clean_short(42, 300) is None
    assert clean_short("<p></p>", 300) is None
    assert clean_short("very long category", 9) == "very long"


@pytest.mark.parametrize(
    "hostile",
    [
        "<" * 200_000,
        "<a " * 100_000,
        '<a b="' * 50_000,
        "<a b='x' " * 50_000,
        "<script>" * 50_000,
        "<!--" * 50_000,
        "&" * 200_000,
        "&#" * 100_000,
        "<a b=c " * 50_000 + ">",
        '<a "' * 50_000,
        '<a b="' + "<a " * 100_000,
        "<x " * 100_000,
        "<p>" + "x" * 5_000_000 + "</p>",
        "word " * 1_000_000,
        "\u0645\u0631\u062d\u0628\u0627 " * 500_000,
    ],
    ids=lambda s: f"{s[:8]!r}x{len(s)}",
)
def test_hostile_and_huge_inputs_are_fast(hostile: str) -> None:
    started = time.perf_counter()
    text = html_to_text(hostile, 20_000)
    assert time.perf_counter() - started < 1.0
    assert len(text) <= 20_000
