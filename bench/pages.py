"""Article pages behind the synthetic load feeds, for the whole-pipeline benchmark (full text).

``streams.tooling.samplefeeds.synthetic_feed`` links item ``k`` of feed ``n`` to
``https://synthetic.newsflow.example/<lang>/f<n>/s<seed>/<k>``. The benchmark's load generator
rewrites that prefix to its own address (``<base>/pages/``), and ``PageStore`` answers those
paths with a page made on demand (deterministic in ``(feed, k, seed)``, never stored: 10k
pages of 30-120 KB would not fit in the generator's memory budget).

A page is a realistic news page, not a bare article: ``<head>`` with meta tags, JSON-LD
``NewsArticle``, ``rel=canonical``, a block of inline CSS and the inline scripts of a modern
site (consent, analytics, a hydration state blob), a cookie banner, header and mega-menu,
breadcrumbs, byline, share bar, the article (lead = the item's summary, then 6-8 paragraphs of
the same stories ``synthetic_feed(full_text=True)`` would carry, a figure with a caption, an
inline "read also" link), a teaser grid of other stories, a most-read box, a comment thread
and a footer link farm. The page's total size is drawn per item between 30 and 120 KB (most
of it boilerplate, as on real news sites); the article itself is 5-9 KB of text. Every word
comes from the demo stories written for newsflow (``deploy/feeds/demo/stories/``) and the
page chrome of ``streams.tooling.samplefeeds``; nothing from ``../shared/data``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from streams.commands.feedserver import _Entry, _MemStore
from streams.tooling.samplefeeds import (
    _CHROME,
    _RTL,
    _SHARE,
    _SYNTH_AUTHORS,
    SYNTH_EPOCH,
    SYNTH_HOST,
    _mix,
    _synthetic_pool,
    rfc3339,
    synthetic_language,
)

SYNTH_PREFIX = f"https://{SYNTH_HOST}/".encode()
MIN_BYTES, MAX_BYTES = 30_000, 120_000
# A site's stylesheet, inlined (the same on every page).
_CSS = "".join(
    f".c{i}{{margin:{i % 7}px {i % 5}px;padding:{i % 3}px;"
    f"color:#{(i * 2654435761) % 0xFFFFFF:06x}}}"
    for i in range(120)
)
_PATH = re.compile(r"^pages/([a-z]{2})/f(\d+)/s(\d+)/(\d+)$")


def localise(feed: bytes, base_url: str) -> bytes:
    """A synthetic feed whose item links point at ``base_url``'s page server."""
    return feed.replace(SYNTH_PREFIX, f"{base_url.rstrip('/')}/pages/".encode())


def _words(lang: str, h: int, lo: int, hi: int) -> str:
    _, pools = _synthetic_pool()
    pool = pools[lang]
    start = pool.starts[h % len(pool.starts)]
    return pool.joiner.join(pool.words[start : start + lo + (h >> 11) % (hi - lo + 1)])


def _title(lang: str, h: int) -> str:
    _, pools = _synthetic_pool()
    lo, hi = pools[lang].title_len
    return _words(lang, h, lo, hi).rstrip(" .,:،。，、．")


def article_page(feed_no: int, k: int, seed: int, url: str) -> bytes:
    """The page of item ``k`` of synthetic feed ``feed_no`` (see the module doc), UTF-8."""
    _, pools = _synthetic_pool()
    lang = synthetic_language(feed_no, seed)
    pool = pools[lang]
    ui = _CHROME[lang]
    h = _mix(seed, feed_no, k + 1)  # the item's hash, as synthetic_feed draws it
    feed_hash = _mix(seed, feed_no, 0x1A4E)
    title = _title(lang, h)
    s_lo, s_hi = pool.summary_len
    lead = _words(lang, h >> 13, s_lo, s_hi)
    p0 = (h >> 37) % len(pool.paragraphs)
    paras = [pool.paragraphs[(p0 + i) % len(pool.paragraphs)] for i in range(6 + (h >> 45) % 3)]
    published = rfc3339(SYNTH_EPOCH + timedelta(minutes=5 + (feed_hash >> 8) % 56) * k)
    author = _SYNTH_AUTHORS[(h >> 50) % len(_SYNTH_AUTHORS)] or ui.site
    target = MIN_BYTES + _mix(seed, k, feed_no) % (MAX_BYTES - MIN_BYTES)
    site = url.rsplit("/", 2)[0]
    direction = "rtl" if lang in _RTL else "ltr"

    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "datePublished": published,
            "inLanguage": lang,
            "author": {"@type": "Person", "name": author},
            "publisher": {"@type": "Organization", "name": ui.site},
            "mainEntityOfPage": url,
        },
        ensure_ascii=False,
    ).replace("</", "<\\/")
    css = _CSS
    head = (
        f'<!DOCTYPE html>\n<html lang="{lang}" dir="{direction}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title} | {ui.site}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="description" content="{lead[:200]}">\n'
        f'<link rel="canonical" href="{url}">\n'
        f'<meta property="og:title" content="{title}">\n'
        '<meta property="og:type" content="article">\n'
        f'<meta property="article:published_time" content="{published}">\n'
        f'<script type="application/ld+json">{ld}</script>\n<style>{css}</style>\n'
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        "gtag('js',new Date());gtag('config','G-NEWSFLOW');</script>\n</head>\n"
    )
    menu = "".join(f'<li><a href="{site}/#s{i}">{m}</a></li>' for i, m in enumerate(ui.menu))
    mega = "".join(
        f'<li><a href="{site}/topic/{i}">{_words(lang, _mix(h, i, 3), 1, 3)}</a></li>'
        for i in range(36)
    )
    share = "".join(f'<a class="share-{s.lower()}" href="#share-{s}">{s}</a>' for s in _SHARE)
    other = [(k + 1 + j * 7) for j in range(40)]
    read_also = _title(lang, _mix(seed, feed_no, other[0] + 1))
    body_paras = [f"<p>{p}</p>\n" for p in paras]
    body_paras.insert(
        2, f'<p class="read-also"><a href="{site}/s{seed}/{other[0]}">{read_also}</a></p>\n'
    )
    figure = (
        f'<figure class="lead-image"><img src="{site}/media/{feed_no}-{k}.jpg" alt="" '
        f'width="1200" height="675"><figcaption>{_words(lang, h >> 3, 8, 14)}</figcaption>'
        "</figure>\n"
    )
    article = (
        f'<main id="content">\n<article class="story">\n'
        f'<nav class="breadcrumbs"><a href="{site}/">{ui.home}</a> › {ui.menu[1 + h % 5]}</nav>\n'
        f"<h1>{title}</h1>\n"
        f'<p class="byline"><span class="author">{author}</span> · '
        f'<time datetime="{published}">{published[:10]}</time></p>\n'
        f'<div class="share-bar"><span>{ui.share}:</span>{share}</div>\n{figure}'
        f'<div class="article-body">\n<p class="lead">{lead}</p>\n{"".join(body_paras)}</div>\n'
        f'<div class="share-bar bottom">{share}</div>\n</article>\n'
    )
    most_read = "".join(
        f'<li><a href="{site}/s{seed}/{n}">{_title(lang, _mix(seed, feed_no, n + 1))}</a></li>'
        for n in other[1:6]
    )
    comments = "".join(
        f'<li class="comment"><span class="user">reader{(h >> i) % 997}</span>'
        f"<p>{_words(lang, _mix(h, i, 5), 10, 25)}</p></li>"
        for i in range(4)
    )
    footer = "".join(
        f'<a href="{site}/p/{i}">{ui.links[i % len(ui.links)]} {i}</a>' for i in range(30)
    )
    top = (
        f'<body class="article-page">\n<div id="cookie-consent" class="consent" role="dialog">'
        f"<p>{ui.cookie}</p><button>{ui.accept}</button><button>{ui.refuse}</button></div>\n"
        f'<header class="site-header"><a class="logo" href="{site}/">{ui.site}</a>\n'
        f'<nav class="main-menu"><ul>{menu}</ul><ul class="mega">{mega}</ul></nav></header>\n'
    )
    tail = (
        f'<aside class="most-read"><h2>{ui.most_read}</h2><ol>{most_read}</ol></aside>\n'
        f'<section class="comments"><h2>4</h2><ol>{comments}</ol></section>\n'
        f'</main>\n<footer class="site-footer"><nav>{footer}</nav><p>{ui.footer}</p></footer>\n'
    )
    fixed = len((head + top + article + tail).encode())
    # The rest up to the drawn size: teaser cards of other stories (text an extractor must
    # drop) and the site's hydration state blob (what scripts render client-side).
    teasers: list[str] = []
    size, n = fixed, 0
    while size < fixed + (target - fixed) // 2 and n < len(other) - 6:
        other_k = other[6 + n]
        card = (
            f'<div class="card c{n % 120}"><a href="{site}/s{seed}/{other_k}">'
            f'<img src="{site}/media/t{other_k}.jpg" alt="" loading="lazy">'
            f"<h3>{_title(lang, _mix(seed, feed_no, other_k + 1))}</h3></a>"
            f"<p>{_words(lang, _mix(h, n, 7), 20, 40)}</p></div>\n"
        )
        teasers.append(card)
        size += len(card.encode())
        n += 1
    grid = f'<section class="related"><h2>{ui.related}</h2>\n{"".join(teasers)}</section>\n'
    kickers = [_words(lang, _mix(h, j, 11), 2, 5).replace("\\", "") for j in range(16)]
    state_items = []
    i = 0
    while size < target:
        text = (
            f'{{"id":"{feed_no}-{k}-{i}","slot":"ad-{i % 9}","kicker":"{kickers[i % 16]}",'
            f'"href":"{site}/s{seed}/{k + 100 + i}","w":{300 + i % 3 * 100}}}'
        )
        state_items.append(text)
        size += len(text.encode()) + 1
        i += 1
    state = f'<script>window.__STATE__={{"slots":[{",".join(state_items)}]}};</script>\n'
    return (head + top + article + grid + tail + state + "</body>\n</html>\n").encode()


class PageStore(_MemStore):
    """The feeds in memory (``put`` as usual) plus every article page, made on request."""

    def get(self, name: str) -> _Entry | None:
        match = _PATH.match(name)
        if match is None:
            return super().get(name)
        lang, feed_no, seed, k = match.group(1), *map(int, match.groups()[1:])
        if synthetic_language(feed_no, seed) != lang:
            return None
        url = f"{self._base_url}/{name}"
        # ".html": the entry sniffs its Content-Type from the name (text/html; charset=utf-8).
        return _Entry(name + ".html", article_page(feed_no, k, seed, url), time.time(), None)

    _base_url = ""

    def serve_at(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")
