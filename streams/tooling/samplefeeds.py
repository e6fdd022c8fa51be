"""Sample feeds: realistic RSS 2.0 and Atom documents built from text that ships in this repo.

Role in the flow: the publisher's side, in front of the connector (feeds -> ``connectors/`` ->
Kafka). Nothing in the pipeline imports this module; the demo, the tests and the benchmarks do.

- ``rss_document`` / ``atom_document``: pure builders, ``Channel`` + ``Item``\\ s -> bytes, in any
  ASCII-compatible encoding (characters the encoding lacks become character references).
- ``demo_files()`` / ``demo_feed_list()``: the bundled demo feeds (``deploy/feeds/demo/``), the
  article page behind every item (``deploy/feeds/demo/pages/``, served by the same feed server)
  and their feed list (``deploy/feeds/demo.yaml``). ``python -m streams.tooling.samplefeeds --write
  deploy/feeds/demo`` regenerates them byte for byte (fixed 2026 dates, no randomness); a unit
  test fails when the committed files drift from this module.
- ``synthetic_feed()``: the load generator's feeds, many languages, realistic sizes (titles ~10
  words, summaries ~100, optional ~600-word full text), deterministic in its arguments and fast:
  text comes from a pool loaded and XML-escaped once, so an item costs a few joins.

Text: only what this project wrote. The stories of ``deploy/feeds/demo/stories/*.yaml`` (several
languages, invented people, no real events) feed the demo feeds, their article pages and the
synthetic load feeds; the seed article ``deploy/demo/seed-article-ar.txt`` is quoted for
demonstration under the terms in ``deploy/demo/PROVENANCE.md``. Nothing here reads the development
corpora (``tests/unit/test_no_shared_data.py`` checks that no text of them is in the repository).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Literal, NamedTuple

REPO = Path(__file__).resolve().parents[2]
SEED_FILE = REPO / "deploy" / "demo" / "seed-article-ar.txt"
DEMO_DIR = REPO / "deploy" / "feeds" / "demo"
STORIES_DIR = DEMO_DIR / "stories"
DEMO_HOST = "demo.newsflow.example"  # .example is reserved (RFC 2606): never resolves
DEMO_BASE_URL = "http://127.0.0.1:8765"  # `newsflow feeds serve`'s default address
SEED_SLUG = "turkey-syria-defence-cooperation"  # the slug streams/commands/demo.py uses too

GENERATOR = "newsflow samplefeeds"

# ---- the document model ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    length: int
    type: str


@dataclass(frozen=True, slots=True)
class Item:
    """One story. Text fields are plain text; ``content_html`` is HTML (it is escaped or wrapped
    in CDATA by the builder, never parsed)."""

    title: str
    link: str
    summary: str
    published: datetime  # timezone-aware
    guid: str | None = None  # None: the link, as a permalink guid
    author: str | None = None  # an e-mail address ("a@b.example (Name)") or a byline
    categories: tuple[str, ...] = ()
    content_html: str | None = None
    enclosure: Enclosure | None = None
    updated: datetime | None = None  # Atom <updated>; default: published


@dataclass(frozen=True, slots=True)
class Channel:
    title: str
    link: str  # the publisher's site
    description: str
    language: str  # BCP 47
    feed_id: str | None = None  # Atom <id>; default: self_url, else link
    self_url: str | None = None  # rel="self"
    updated: datetime | None = None  # default: the newest item's date
    generator: str = GENERATOR
    comment: str | None = None  # an XML comment after the declaration (provenance)


# ---- escaping and dates ----------------------------------------------------------------------

# Characters XML 1.0 forbids even as references; corpus text could carry a stray one and a
# single one makes the whole document not well-formed.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_escape(text: str) -> str:
    """Plain text -> XML character data (characters XML forbids are dropped)."""
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(text: str) -> str:
    """Plain text -> a double-quoted attribute value (also fine as character data)."""
    return xml_escape(text).replace('"', "&quot;")


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"feed dates must be timezone-aware, got {when!r}")
    return when


def rfc822(when: datetime) -> str:
    """RSS 2.0 date: ``Mon, 12 Oct 2026 09:00:00 +0300``."""
    return format_datetime(_aware(when))


def rfc3339(when: datetime) -> str:
    """Atom date: ``2026-10-12T09:00:00+03:00`` (``Z`` for UTC), whole seconds."""
    return _aware(when).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _comment(text: str) -> str:
    # "--" may not occur inside a comment, nor may it end with "-".
    body = _ILLEGAL.sub("", text).replace("--", "- -").rstrip("-")
    return f"<!--\n{body}\n-->\n"


def _cdata(html: str) -> str:
    return "<![CDATA[" + html.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class _Esc(NamedTuple):
    """An item with its text already XML-escaped: what the renderers consume. The synthetic
    generator builds these directly from a pre-escaped pool, skipping per-item escaping."""

    title: str
    link: str
    guid: str
    permalink: bool
    published: datetime
    updated: datetime | None
    author: str | None
    author_is_email: bool
    categories: tuple[str, ...]
    summary: str
    content_html: str | None  # HTML, not yet escaped for XML
    enclosure: Enclosure | None


def _escape_item(item: Item) -> _Esc:
    _aware(item.published)
    if item.updated is not None:
        _aware(item.updated)
    guid = item.guid if item.guid is not None else item.link
    author = item.author.strip() if item.author else None
    return _Esc(
        title=xml_escape(item.title),
        link=xml_attr(item.link),
        guid=xml_escape(guid),
        permalink=guid == item.link,
        published=item.published,
        updated=item.updated,
        author=xml_escape(author) if author else None,
        author_is_email=bool(author and re.match(r"^[^\s@]+@[^\s@]+", author)),
        categories=tuple(xml_attr(c) for c in item.categories),
        summary=xml_escape(item.summary),
        content_html=item.content_html,
        enclosure=item.enclosure,
    )


def _xml_text(html: str, cdata: bool) -> str:
    return _cdata(html) if cdata else xml_escape(html)


def _finish(parts: list[str], encoding: str) -> bytes:
    # Characters the encoding lacks become references; the codec name is checked first so a
    # typo fails loudly instead of producing a document that lies about its encoding.
    return "".join(parts).encode(encoding, "xmlcharrefreplace")


def _newest(items: Sequence[_Esc], channel: Channel) -> datetime:
    if channel.updated is not None:
        return _aware(channel.updated)
    dates = [i.updated or i.published for i in items]
    return max(dates) if dates else datetime(2026, 1, 1, tzinfo=UTC)


def _render_rss(channel: Channel, items: Sequence[_Esc], encoding: str) -> bytes:
    cdata = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    out = [f'<?xml version="1.0" encoding="{encoding}"?>\n']
    if channel.comment:
        out.append(_comment(channel.comment))
    out.append(
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n'
        "<channel>\n"
        f"<title>{xml_escape(channel.title)}</title>\n"
        f"<link>{xml_escape(channel.link)}</link>\n"
        f"<description>{xml_escape(channel.description)}</description>\n"
        f"<language>{xml_escape(channel.language)}</language>\n"
        f"<lastBuildDate>{rfc822(_newest(items, channel))}</lastBuildDate>\n"
        f"<generator>{xml_escape(channel.generator)}</generator>\n"
    )
    if channel.self_url:
        out.append(
            f'<atom:link href="{xml_attr(channel.self_url)}" rel="self"'
            ' type="application/rss+xml"/>\n'
        )
    for it in items:
        out.append(f"<item>\n<title>{it.title}</title>\n<link>{it.link}</link>\n")
        if it.permalink:
            out.append(f"<guid>{it.guid}</guid>\n")
        else:
            out.append(f'<guid isPermaLink="false">{it.guid}</guid>\n')
        out.append(f"<pubDate>{rfc822(it.published)}</pubDate>\n")
        if it.author:
            # RSS <author> is an e-mail address; bylines go in dc:creator, as most sites do.
            tag = "author" if it.author_is_email else "dc:creator"
            out.append(f"<{tag}>{it.author}</{tag}>\n")
        for cat in it.categories:
            out.append(f"<category>{cat}</category>\n")
        out.append(f"<description>{it.summary}</description>\n")
        if it.content_html is not None:
            out.append(f"<content:encoded>{_xml_text(it.content_html, cdata)}</content:encoded>\n")
        if it.enclosure is not None:
            enc = it.enclosure
            out.append(
                f'<enclosure url="{xml_attr(enc.url)}" length="{int(enc.length)}"'
                f' type="{xml_attr(enc.type)}"/>\n'
            )
        out.append("</item>\n")
    out.append("</channel>\n</rss>\n")
    return _finish(out, encoding)


def _render_atom(channel: Channel, items: Sequence[_Esc], encoding: str) -> bytes:
    cdata = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    feed_id = channel.feed_id or channel.self_url or channel.link
    out = [f'<?xml version="1.0" encoding="{encoding}"?>\n']
    if channel.comment:
        out.append(_comment(channel.comment))
    out.append(
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{xml_attr(channel.language)}">\n'
        f"<title>{xml_escape(channel.title)}</title>\n"
        f"<subtitle>{xml_escape(channel.description)}</subtitle>\n"
        f"<id>{xml_escape(feed_id)}</id>\n"
        f"<updated>{rfc3339(_newest(items, channel))}</updated>\n"
        f'<link rel="alternate" type="text/html" href="{xml_attr(channel.link)}"/>\n'
    )
    if channel.self_url:
        out.append(
            f'<link rel="self" type="application/atom+xml" href="{xml_attr(channel.self_url)}"/>\n'
        )
    # Atom wants an author on every entry; a feed-level one covers entries without a byline.
    out.append(
        f"<author><name>{xml_escape(channel.title)}</name></author>\n"
        f"<generator>{xml_escape(channel.generator)}</generator>\n"
    )
    for it in items:
        out.append(
            f"<entry>\n<id>{it.guid}</id>\n<title>{it.title}</title>\n"
            f'<link rel="alternate" type="text/html" href="{it.link}"/>\n'
            f"<published>{rfc3339(it.published)}</published>\n"
            f"<updated>{rfc3339(it.updated or it.published)}</updated>\n"
        )
        if it.author:
            name = it.author
            if it.author_is_email and "(" in name and name.endswith(")"):
                name = name[name.index("(") + 1 : -1]
            out.append(f"<author><name>{name}</name></author>\n")
        for cat in it.categories:
            out.append(f'<category term="{cat}"/>\n')
        out.append(f'<summary type="text">{it.summary}</summary>\n')
        if it.content_html is not None:
            out.append(f'<content type="html">{_xml_text(it.content_html, cdata)}</content>\n')
        if it.enclosure is not None:
            enc = it.enclosure
            out.append(
                f'<link rel="enclosure" href="{xml_attr(enc.url)}" length="{int(enc.length)}"'
                f' type="{xml_attr(enc.type)}"/>\n'
            )
        out.append("</entry>\n")
    out.append("</feed>\n")
    return _finish(out, encoding)


def _check_encoding(encoding: str) -> None:
    import codecs

    info = codecs.lookup(encoding)  # LookupError for an unknown name
    if "<?xml".encode(info.name) != b"<?xml":
        raise ValueError(f"{encoding}: only ASCII-compatible encodings are supported")


def rss_document(channel: Channel, items: Iterable[Item], *, encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 document (with content:, dc: and atom: namespaces) in ``encoding``."""
    _check_encoding(encoding)
    return _render_rss(channel, [_escape_item(i) for i in items], encoding)


def atom_document(channel: Channel, items: Iterable[Item], *, encoding: str = "utf-8") -> bytes:
    """An Atom 1.0 document in ``encoding``; ``guid`` (default: the link) becomes ``<id>``."""
    _check_encoding(encoding)
    return _render_atom(channel, [_escape_item(i) for i in items], encoding)


# ---- text written for the demo ---------------------------------------------------------------

# Scripts written without spaces between words: sizes count characters, not words.
_CHAR_SCRIPTS = frozenset({"zh", "ja", "th"})
_SENTENCE_END = re.compile(r"(?<=[.!?؟。！？۔।])\s+|(?<=[。！？])")
# The same for XML-escaped text: never ";", which may end an entity such as "&amp;".
_TRAILING_ESCAPED = " \t.,:،。，、．"


class Story(NamedTuple):
    """One demo story as written in ``deploy/feeds/demo/stories/<feed id>.yaml``: the feed
    carries ``title`` and ``summary``; the article page adds ``body`` (paragraphs naming people,
    organisations and places that the summary does not)."""

    slug: str
    title: str
    summary: str
    body: tuple[str, ...]


@functools.cache
def stories(feed_id: str) -> tuple[Story, ...]:
    import yaml

    data = yaml.safe_load((STORIES_DIR / f"{feed_id}.yaml").read_text(encoding="utf-8"))
    if data.get("feed") != feed_id:
        raise ValueError(f"{feed_id}.yaml describes feed {data.get('feed')!r}")
    return tuple(
        Story(str(s["slug"]), str(s["title"]).strip(), str(s["summary"]).strip(),
              tuple(str(p).strip() for p in s["body"]))
        for s in data["items"]
    )  # fmt: skip


class SeedArticle(NamedTuple):
    title: str
    paragraphs: tuple[str, ...]


def seed_article(path: Path = SEED_FILE) -> SeedArticle:
    """The seed article: the headline is the first line's first clause (up to the Arabic
    comma), exactly as ``streams/commands/demo.py`` titles it; every line is a paragraph."""
    lines = tuple(s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip())
    return SeedArticle(lines[0].split("،")[0].strip()[:300], lines)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


# ---- the bundled demo feeds ------------------------------------------------------------------


class DemoFeed(NamedTuple):
    feed_id: str
    file: str
    lang: str
    fmt: Literal["rss", "atom"]
    encoding: str
    title: str
    utc_offset_h: int
    author: str
    categories: tuple[str, str]
    pages: str  # folder of the article pages under pages/
    seed: bool = False  # the seed article first, with its full text in the feed


DEMO_FEEDS: tuple[DemoFeed, ...] = (
    DemoFeed("demo-ar", "ar.xml", "ar", "rss", "utf-8", "نيوزفلو التجريبي: الأخبار", 3,
             "قسم الأخبار", ("أخبار", "العالم"), "ar", seed=True),
    DemoFeed("demo-ar-1256", "ar-windows-1256.xml", "ar", "rss", "windows-1256",
             "نيوزفلو التجريبي: موجز الأخبار", 3, "قسم الأخبار", ("موجز", "العالم"), "ar-1256"),
    DemoFeed("demo-en", "en.xml", "en", "rss", "utf-8", "newsflow demo: World news", 0,
             "newsdesk@demo.newsflow.example (News desk)", ("News", "World"), "en"),
    DemoFeed("demo-fr", "fr.atom", "fr", "atom", "utf-8", "newsflow démo : Actualités", 2,
             "La rédaction", ("Actualités", "Monde"), "fr"),
    DemoFeed("demo-de", "de-iso-8859-1.xml", "de", "rss", "iso-8859-1",
             "newsflow Demo: Nachrichten", 2, "Redaktion", ("Nachrichten", "Welt"), "de"),
    DemoFeed("demo-es", "es.xml", "es", "rss", "utf-8", "newsflow demo: Noticias", 2,
             "Redacción", ("Noticias", "Mundo"), "es"),
    DemoFeed("demo-tr", "tr.xml", "tr", "rss", "utf-8", "newsflow demo: Haberler", 3,
             "Haber Merkezi", ("Haberler", "Dünya"), "tr"),
    DemoFeed("demo-fa", "fa.xml", "fa", "rss", "utf-8", "نیوزفلو نمایشی: اخبار", 3,
             "تحریریه", ("اخبار", "جهان"), "fa"),
    DemoFeed("demo-ru", "ru.xml", "ru", "rss", "utf-8", "newsflow демо: Новости", 3,
             "Редакция", ("Новости", "В мире"), "ru"),
    DemoFeed("demo-zh", "zh.atom", "zh", "atom", "utf-8", "newsflow 演示：新闻", 8,
             "编辑部", ("新闻", "国际"), "zh"),
)  # fmt: skip

CREDIT = (
    "stories written for newsflow (deploy/feeds/demo/stories/); invented people, no real "
    "events; Apache-2.0 like the rest of newsflow"
)
SEED_CREDIT = (
    "newsflow seed article (deploy/demo/seed-article-ar.txt), news text quoted for testing "
    "and demonstration only"
)


def page_path(feed: DemoFeed, slug: str) -> str:
    """Where the article page of a story sits, relative to ``deploy/feeds/demo/``."""
    return f"pages/{feed.pages}/{slug}.html"


def page_url(feed: DemoFeed, slug: str, base_url: str = DEMO_BASE_URL) -> str:
    """The item link: the article page on the demo feed server (the same server as the feeds,
    so ``newsflow feeds serve deploy/feeds/demo`` serves both)."""
    return f"{base_url.rstrip('/')}/{page_path(feed, slug)}"


def _credit(feed: DemoFeed) -> str:
    return f"{SEED_CREDIT} (first item); the other items: {CREDIT}" if feed.seed else CREDIT


def _demo_channel(feed: DemoFeed, newest: datetime) -> Channel:
    return Channel(
        title=feed.title,
        link=f"{DEMO_BASE_URL}/pages/{feed.pages}/",
        description=(
            f"Demo feed bundled with newsflow ({feed.lang}). Text: {_credit(feed)}. "
            "Item links are article pages served by the demo feed server."
        ),
        language=feed.lang,
        feed_id=f"tag:{DEMO_HOST},2026:feed/{feed.feed_id}",
        updated=newest,
        comment=(
            f"newsflow demo feed {feed.feed_id} ({feed.lang}, {feed.fmt}, {feed.encoding}).\n"
            f"Text: {_credit(feed)}.\n"
            "Generated by streams/tooling/samplefeeds.py; do not edit by hand (see PROVENANCE.md)."
        ),
    )


class _Entry(NamedTuple):
    story: Story
    item: Item


def _demo_entries(feed: DemoFeed, index: int) -> list[_Entry]:
    tz = timezone(timedelta(hours=feed.utc_offset_h))
    # Fixed 2026 dates, in the past for anyone running this after October 2026, staggered per
    # feed so that feeds do not all share one timeline.
    newest = datetime(2026, 10, 12, 9, 0, tzinfo=tz) + timedelta(minutes=53 * index)
    step = timedelta(minutes=41 + (17 * index) % 60)
    out: list[_Entry] = []
    if feed.seed:
        seed = seed_article()
        story = Story(SEED_SLUG, seed.title, seed.paragraphs[0], seed.paragraphs[1:])
        item = Item(
            title=seed.title,
            link=page_url(feed, SEED_SLUG),
            summary=seed.paragraphs[0],
            published=newest,
            guid=f"tag:{DEMO_HOST},2026:{feed.feed_id}/seed",
            author=feed.author,
            categories=("سياسة", "تركيا", "سوريا"),
            # The seed item carries its full text in the feed too (content:encoded), as many
            # publishers do; the other items have only their summary in the feed.
            content_html="".join(f"<p>{xml_escape(p)}</p>" for p in seed.paragraphs),
            enclosure=Enclosure(f"https://{DEMO_HOST}/media/{SEED_SLUG}.jpg", 48213, "image/jpeg"),
        )
        out.append(_Entry(story, item))
    for n, story in enumerate(stories(feed.feed_id)):
        number = len(out)
        link = page_url(feed, story.slug)
        item = Item(
            title=story.title,
            link=link,
            summary=story.summary,
            published=newest - step * number,
            # Half the feeds use permalink guids, half opaque ids, as real sites do.
            guid=None if index % 2 else f"tag:{DEMO_HOST},2026:{feed.feed_id}/{n + 1}",
            author=feed.author,
            categories=feed.categories[: 1 + number % 2],
            enclosure=(
                Enclosure(f"https://{DEMO_HOST}/media/{feed.feed_id}-{n + 1}.jpg",
                          20000 + 731 * n, "image/jpeg")
                if number % 3 == 1 else None
            ),
        )  # fmt: skip
        out.append(_Entry(story, item))
    return out


def demo_feed(feed: DemoFeed, index: int) -> bytes:
    items = [e.item for e in _demo_entries(feed, index)]
    channel = _demo_channel(feed, max(i.published for i in items))
    build = rss_document if feed.fmt == "rss" else atom_document
    return build(channel, items, encoding=feed.encoding)


# ---- the article pages behind the demo items -------------------------------------------------


class _Chrome(NamedTuple):
    """What a news site wraps around an article, in the page's language."""

    site: str
    menu: tuple[str, ...]
    cookie: str
    accept: str
    refuse: str
    share: str
    related: str
    most_read: str
    home: str
    footer: str
    links: tuple[str, ...]  # footer links


_CHROME: dict[str, _Chrome] = {
    "ar": _Chrome("نيوزفلو", ("الرئيسية", "سياسة", "اقتصاد", "ثقافة", "رياضة", "علوم"),
                  "نستخدم ملفات تعريف الارتباط لتحسين تجربتك على موقعنا.", "أوافق", "أرفض",
                  "شارك", "أخبار ذات صلة", "الأكثر قراءة", "الرئيسية",
                  "جميع الحقوق محفوظة لموقع نيوزفلو التجريبي.",
                  ("من نحن", "اتصل بنا", "سياسة الخصوصية", "شروط الاستخدام")),
    "en": _Chrome("newsflow", ("Home", "World", "Business", "Culture", "Sport", "Science"),
                  "We use cookies to improve your experience on our site.", "Accept all",
                  "Reject", "Share", "Related stories", "Most read", "Home",
                  "© 2026 newsflow demo. All rights reserved.",
                  ("About us", "Contact", "Privacy policy", "Terms of use")),
    "fr": _Chrome("newsflow", ("Accueil", "Monde", "Économie", "Culture", "Sports", "Sciences"),
                  "Nous utilisons des cookies pour améliorer votre expérience.", "Tout accepter",
                  "Refuser", "Partager", "À lire aussi", "Les plus lus", "Accueil",
                  "© 2026 newsflow démo. Tous droits réservés.",
                  ("Qui sommes-nous", "Contact", "Confidentialité", "Mentions légales")),
    "de": _Chrome("newsflow", ("Startseite", "Politik", "Wirtschaft", "Kultur", "Sport",
                               "Wissen"),
                  "Wir verwenden Cookies, um Ihr Nutzungserlebnis zu verbessern.",
                  "Alle akzeptieren", "Ablehnen", "Teilen", "Mehr zum Thema", "Meistgelesen",
                  "Startseite", "© 2026 newsflow Demo. Alle Rechte vorbehalten.",
                  ("Über uns", "Kontakt", "Datenschutz", "Impressum")),
    "es": _Chrome("newsflow", ("Portada", "Internacional", "Economía", "Cultura", "Deportes",
                               "Ciencia"),
                  "Utilizamos cookies para mejorar su experiencia en nuestro sitio.",
                  "Aceptar todo", "Rechazar", "Compartir", "Noticias relacionadas",
                  "Lo más leído", "Portada", "© 2026 newsflow demo. Todos los derechos reservados.",
                  ("Quiénes somos", "Contacto", "Privacidad", "Aviso legal")),
    "tr": _Chrome("newsflow", ("Ana Sayfa", "Gündem", "Ekonomi", "Kültür", "Spor", "Bilim"),
                  "Deneyiminizi iyileştirmek için çerezler kullanıyoruz.", "Kabul et",
                  "Reddet", "Paylaş", "İlgili haberler", "En çok okunanlar", "Ana Sayfa",
                  "© 2026 newsflow demo. Tüm hakları saklıdır.",
                  ("Hakkımızda", "İletişim", "Gizlilik politikası", "Kullanım koşulları")),
    "fa": _Chrome("نیوزفلو", ("صفحه اصلی", "سیاسی", "اقتصادی", "فرهنگی", "ورزشی", "علمی"),
                  "ما از کوکی‌ها برای بهبود تجربه شما استفاده می‌کنیم.", "می‌پذیرم", "نمی‌پذیرم",
                  "اشتراک‌گذاری", "اخبار مرتبط", "پربازدیدترین‌ها", "صفحه اصلی",
                  "تمامی حقوق برای نیوزفلو نمایشی محفوظ است.",
                  ("درباره ما", "تماس با ما", "حریم خصوصی", "شرایط استفاده")),
    "ru": _Chrome("newsflow", ("Главная", "Политика", "Экономика", "Культура", "Спорт",
                               "Наука"),
                  "Мы используем файлы cookie, чтобы сайт работал лучше.", "Принять",
                  "Отклонить", "Поделиться", "Читайте также", "Самое читаемое", "Главная",
                  "© 2026 newsflow демо. Все права защищены.",
                  ("О нас", "Контакты", "Конфиденциальность", "Условия использования")),
    "zh": _Chrome("newsflow", ("首页", "国际", "财经", "文化", "体育", "科技"),
                  "我们使用Cookie来改善您的浏览体验。", "全部接受", "拒绝", "分享", "相关新闻",
                  "热门文章", "首页", "© 2026 newsflow 演示 版权所有",
                  ("关于我们", "联系我们", "隐私政策", "使用条款")),
}  # fmt: skip
_RTL = frozenset({"ar", "fa", "he", "ur"})
_SHARE = ("Facebook", "X", "WhatsApp", "Telegram", "E-mail")


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def article_page(feed: DemoFeed, index: int, entry: _Entry, others: Sequence[_Entry]) -> bytes:
    """A realistic news page around one story: cookie banner, header and menu, breadcrumbs,
    byline, share bar, the article (lead = the feed summary, then the body), related links,
    a most-read box and a footer. Two layouts (semantic HTML5 and div soup) alternate by feed;
    the page is encoded like its feed (windows-1256, ISO-8859-1 pages declare it)."""
    ui = _CHROME[feed.lang]
    story, item = entry.story, entry.item
    url = item.link
    direction = "rtl" if feed.lang in _RTL else "ltr"
    published = rfc3339(item.published)
    author = item.author or ui.site
    if "(" in author and author.endswith(")"):
        author = author[author.index("(") + 1 : -1]
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": story.title,
            "datePublished": published,
            "inLanguage": feed.lang,
            "author": {"@type": "Organization", "name": author},
            "publisher": {"@type": "Organization", "name": ui.site},
            "mainEntityOfPage": url,
        },
        ensure_ascii=False,
    ).replace("</", "<\\/")
    charset = feed.encoding
    meta = (
        f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        if index % 2
        else f'<meta charset="{charset}">'
    )
    menu = "".join(
        f'<li><a href="{DEMO_BASE_URL}/pages/{feed.pages}/#s{i}">{_h(m)}</a></li>'
        for i, m in enumerate(ui.menu)
    )
    related = "".join(
        f'<li><a href="{_h(o.item.link)}">{_h(o.story.title)}</a></li>' for o in others[:3]
    )
    most_read = "".join(
        f'<li><span class="rank">{n}</span><a href="{_h(o.item.link)}">{_h(o.story.title)}</a></li>'
        for n, o in enumerate(others[3:6], 1)
    )
    share = "".join(
        f'<a class="share-{s.lower()}" href="#share-{s.lower()}">{_h(s)}</a>' for s in _SHARE
    )
    footer_links = "".join(f'<a href="#f{i}">{_h(t)}</a>' for i, t in enumerate(ui.links))
    paragraphs = "".join(f"<p>{_h(p)}</p>\n" for p in story.body)
    lead = _h(story.summary)
    head = (
        f'<!DOCTYPE html>\n<html lang="{feed.lang}" dir="{direction}">\n<head>\n{meta}\n'
        f"<title>{_h(story.title)} | {_h(ui.site)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="description" content="{lead}">\n'
        f'<link rel="canonical" href="{_h(url)}">\n'
        f'<meta property="og:title" content="{_h(story.title)}">\n'
        f'<meta property="og:type" content="article">\n'
        f'<meta property="article:published_time" content="{published}">\n'
        f'<script type="application/ld+json">{ld}</script>\n'
        "<style>.consent{position:fixed;bottom:0}.share-bar a{margin:0 4px}</style>\n"
        "</head>\n"
    )
    cookie = (
        f'<div id="cookie-consent" class="consent" role="dialog"><p>{_h(ui.cookie)}</p>'
        f'<button type="button">{_h(ui.accept)}</button>'
        f'<button type="button">{_h(ui.refuse)}</button></div>\n'
    )
    crumbs = f'<a href="{DEMO_BASE_URL}/pages/{feed.pages}/">{_h(ui.home)}</a> › ' + _h(
        feed.categories[0]
    )
    if index % 2 == 0:  # semantic HTML5
        body = (
            f"<body>\n{cookie}"
            f'<header class="site-header"><a class="logo" href="/">{_h(ui.site)}</a>\n'
            f'<nav class="main-menu" aria-label="menu"><ul>{menu}</ul></nav></header>\n'
            '<main id="content">\n<article class="story">\n'
            f'<nav class="breadcrumbs">{crumbs}</nav>\n'
            f"<h1>{_h(story.title)}</h1>\n"
            f'<p class="byline"><span class="author">{_h(author)}</span> · '
            f'<time datetime="{published}">{published[:10]}</time></p>\n'
            f'<div class="share-bar"><span>{_h(ui.share)}:</span>{share}</div>\n'
            f'<div class="article-body">\n<p class="lead">{lead}</p>\n{paragraphs}</div>\n'
            "</article>\n"
            f'<aside class="related"><h2>{_h(ui.related)}</h2><ul>{related}</ul></aside>\n'
            f'<aside class="most-read"><h2>{_h(ui.most_read)}</h2><ol>{most_read}</ol></aside>\n'
            "</main>\n"
            f'<footer class="site-footer"><nav>{footer_links}</nav><p>{_h(ui.footer)}</p>'
            "</footer>\n</body>\n</html>\n"
        )
    else:  # the div soup of an older CMS
        body = (
            f'<body class="article-page">\n<div id="wrapper">\n{cookie}'
            f'<div id="top"><div class="logo"><a href="/">{_h(ui.site)}</a></div>\n'
            f'<div id="menu"><ul class="nav">{menu}</ul></div></div>\n'
            f'<div class="path">{crumbs}</div>\n'
            '<div id="main" class="cols">\n<div class="col-main">\n'
            f'<div class="headline"><h1 class="title">{_h(story.title)}</h1></div>\n'
            f'<div class="meta"><span class="by">{_h(author)}</span>'
            f'<span class="date">{published[:16].replace("T", " ")}</span></div>\n'
            f'<div class="share-bar top">{share}</div>\n'
            f'<div class="story-text" itemprop="articleBody">\n<p><strong>{lead}</strong></p>\n'
            f"{paragraphs}</div>\n"
            f'<div class="share-bar bottom"><span>{_h(ui.share)}</span>{share}</div>\n'
            f'<div class="box related"><div class="box-title">{_h(ui.related)}</div>'
            f"<ul>{related}</ul></div>\n</div>\n"
            f'<div class="col-side"><div class="box"><div class="box-title">{_h(ui.most_read)}'
            f"</div><ul>{most_read}</ul></div></div>\n</div>\n"
            f'<div id="footer"><div class="links">{footer_links}</div>'
            f'<div class="copy">{_h(ui.footer)}</div></div>\n</div>\n</body>\n</html>\n'
        )
    return (head + body).encode(charset, "xmlcharrefreplace")


def demo_pages(feed: DemoFeed, index: int) -> dict[str, bytes]:
    entries = _demo_entries(feed, index)
    out = {}
    for n, entry in enumerate(entries):
        others = entries[n + 1 :] + entries[:n]
        out[page_path(feed, entry.story.slug)] = article_page(feed, index, entry, others)
    return out


def _provenance() -> str:
    lines = [
        "# Demo feeds and article pages: where the text comes from",
        "",
        "Generated by `python -m streams.tooling.samplefeeds --write deploy/feeds/demo` from the",
        "stories in `stories/<feed id>.yaml` (do not edit the feeds or pages by hand; a unit test",
        "fails when they drift from the generator). Served by `newsflow feeds serve",
        "deploy/feeds/demo` (the feeds and, under `pages/`, one article page per item, which is",
        "what each item links to); listed in `deploy/feeds/demo.yaml`.",
        "",
        "Every sentence of the stories was written for newsflow: the people are invented and no",
        "story reports a real event (places and organisations are real names, used as a news",
        "story would). No text comes from the development corpora (NTREX-128, AQMAR, WikiANN,",
        "ANERcorp, CoNLL-2003 or any other file of `../shared/data`);",
        "`tests/unit/test_no_shared_data.py` checks that. Licence: Apache-2.0, as newsflow.",
        "The one exception is the seed article (first item of `ar.xml`,",
        f"`pages/ar/{SEED_SLUG}.html`), quoted for testing and demonstration only (see",
        "`deploy/demo/PROVENANCE.md`); its headline is the first line's first clause, as",
        "`streams/commands/demo.py` titles it.",
        "",
        "Each feed item carries a title and a one- or two-sentence summary; its article page adds",
        "body paragraphs naming people, organisations and places the summary does not (the",
        "expected body of a page is its story's `summary` followed by its `body`). Pages wrap the",
        "article in what news sites add: a cookie banner, header and menu, breadcrumbs, byline,",
        "share bar, related links, a most-read box, a footer, JSON-LD `NewsArticle` metadata and",
        "`rel=canonical`; two layouts alternate (HTML5 and div soup), and pages are encoded like",
        "their feed (windows-1256 and ISO-8859-1 pages declare their charset).",
        "",
        "| file | feed id | lang | format | encoding | items | pages |",
        "|---|---|---|---|---|---|---|",
    ]
    for feed in DEMO_FEEDS:
        count = len(stories(feed.feed_id)) + (1 if feed.seed else 0)
        lines.append(
            f"| `{feed.file}` | {feed.feed_id} | {feed.lang} | {feed.fmt} | {feed.encoding} "
            f"| {count} | `pages/{feed.pages}/` |"
        )
    lines.append("")
    return "\n".join(lines)


def demo_files() -> dict[str, bytes]:
    """Every generated file of ``deploy/feeds/demo/`` (relative path -> bytes): the feeds, the
    article pages and PROVENANCE.md (the stories are the source, not generated)."""
    files: dict[str, bytes] = {}
    for n, feed in enumerate(DEMO_FEEDS):
        files[feed.file] = demo_feed(feed, n)
        files.update(demo_pages(feed, n))
    files["PROVENANCE.md"] = _provenance().encode("utf-8")
    return files


def demo_feed_list(base_url: str = DEMO_BASE_URL) -> str:
    """``deploy/feeds/demo.yaml``: the demo feeds as a feed list, served from ``base_url``."""
    lines = [
        "# newsflow demo feed list: the bundled demo feeds (deploy/feeds/demo/), served locally by",
        "#   newsflow feeds serve deploy/feeds/demo      (http://127.0.0.1:8765/)",
        "# Generated by `python -m streams.tooling.samplefeeds --write deploy/feeds/demo`; edit",
        "# the generator, not this file. Short poll bounds so that the demo moves quickly.",
        "allow_private_addresses: true   # the feeds live on 127.0.0.1",
        "feeds:",
    ]
    for feed in DEMO_FEEDS:
        lines += [
            f"  - id: {feed.feed_id}",
            f"    url: {base_url.rstrip('/')}/{feed.file}",
            f"    name: {json.dumps(feed.title, ensure_ascii=False)}",
            f"    language: {feed.lang}",
            "    tags: [demo]",
            "    min_interval_s: 5",
            "    max_interval_s: 60",
            "    enabled: true",
        ]
    return "\n".join(lines) + "\n"


# ---- synthetic feeds for load tests ----------------------------------------------------------

_MASK = (1 << 64) - 1
SYNTH_HOST = "synthetic.newsflow.example"
SYNTH_EPOCH = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
# Arabic is first-class: it gets the largest share of synthetic feeds.
_SYNTH_WEIGHTS = {"ar": 6, "en": 5, "fr": 3, "es": 3, "de": 2, "tr": 2, "fa": 2, "ru": 2, "zh": 2}
_SYNTH_AUTHORS = ("News desk", "Staff reporter", "Wire services", "Correspondent", None)
_SYNTH_TAGS = ("world", "politics", "economy", "science", "culture", "sport", "health")


def _mix(a: int, b: int, c: int) -> int:
    """splitmix64 over three integers: cheap, stable across runs and Python versions
    (``hash()`` of ints is too, but is not well spread; ``random.Random`` per item is slow)."""
    h = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + c * 0x94D049BB133111EB) & _MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
    return h ^ (h >> 31)


class _LangPool(NamedTuple):
    lang: str
    joiner: str  # " ", or "" for zh/ja/th where a "word" is a character
    words: tuple[str, ...]  # XML-escaped
    starts: tuple[int, ...]  # word indices where a sentence starts
    paragraphs: tuple[str, ...]  # XML-escaped, for the full text
    title_len: tuple[int, int]
    summary_len: tuple[int, int]


def _lang_pool(lang: str, paras: Sequence[str], shorts: Sequence[str]) -> _LangPool:
    by_char = lang in _CHAR_SCRIPTS
    words: list[str] = []
    starts: list[int] = []
    for text in [*paras, *shorts]:
        for sentence in sentences(text):
            starts.append(len(words))
            tokens = list(sentence) if by_char else sentence.split()
            words.extend(xml_escape(t) for t in tokens)
    limit = len(words) - (260 if by_char else 130)
    usable = tuple(s for s in starts if s < limit) or (0,)
    return _LangPool(
        lang=lang,
        joiner="" if by_char else " ",
        words=tuple(words),
        starts=usable,
        paragraphs=tuple(xml_escape(p) for p in paras),
        title_len=(16, 30) if by_char else (8, 12),
        summary_len=(150, 230) if by_char else (85, 115),
    )


@functools.cache
def _synthetic_pool() -> tuple[tuple[str, ...], dict[str, _LangPool]]:
    """Per language, the demo stories' text: paragraphs of three stories each (title, summary
    and body), and every sentence of them for titles and summaries."""
    texts: dict[str, list[str]] = {}
    for feed in DEMO_FEEDS:
        for story in stories(feed.feed_id):
            texts.setdefault(feed.lang, []).append(" ".join((story.summary, *story.body)))
    pools = {}
    for lang, stories_text in sorted(texts.items()):
        paras = [" ".join(stories_text[i : i + 3]) for i in range(len(stories_text))]
        pools[lang] = _lang_pool(lang, paras, [])
    langs: list[str] = []
    for lang in pools:
        langs += [lang] * _SYNTH_WEIGHTS.get(lang, 1)
    return tuple(langs), pools


def synthetic_language(feed_no: int, seed: int = 0) -> str:
    """The language ``synthetic_feed(feed_no, ..., seed=seed)`` is written in."""
    langs, _ = _synthetic_pool()
    return langs[_mix(seed, feed_no, 0x1A4E) % len(langs)]


def synthetic_feed(
    feed_no: int, items: int, *, full_text: bool, seed: int, generation: int = 0
) -> bytes:
    """Feed number ``feed_no`` of a synthetic load: ``items`` items, newest first, UTF-8.

    Deterministic in its arguments. The language comes from ``feed_no`` and ``seed`` (a weighted
    mix, Arabic the largest share); one feed in four is Atom, the rest RSS 2.0. Titles are 8-12
    words, summaries 85-115 words (a sentence-aligned window of the demo stories, cut with "…"),
    ``full_text`` adds ~600 words of HTML (content:encoded / Atom content). Item ``k`` is the
    same story whatever the other arguments, so ``generation=g`` is the feed after ``g`` more
    items were published: the window slides, ``g`` new items on top, ``g`` fall off the end.
    Dates start on 2026-01-05 and step 5-60 minutes per item (per feed).
    """
    if items < 0 or generation < 0:
        raise ValueError("items and generation must be >= 0")
    langs, pools = _synthetic_pool()
    feed_hash = _mix(seed, feed_no, 0x1A4E)
    lang = langs[feed_hash % len(langs)]
    pool = pools[lang]
    words, starts, paras, join = pool.words, pool.starts, pool.paragraphs, pool.joiner
    t_lo, t_hi = pool.title_len
    s_lo, s_hi = pool.summary_len
    step = timedelta(minutes=5 + (feed_hash >> 8) % 56)
    atom = (feed_hash >> 20) % 4 == 3
    site = f"https://{SYNTH_HOST}/{lang}/f{feed_no}"
    rendered: list[_Esc] = []
    for k in range(generation + items - 1, generation - 1, -1):
        h = _mix(seed, feed_no, k + 1)
        t0 = starts[h % len(starts)]
        title = join.join(words[t0 : t0 + t_lo + (h >> 7) % (t_hi - t_lo + 1)])
        s0 = starts[(h >> 13) % len(starts)]
        summary = join.join(words[s0 : s0 + s_lo + (h >> 29) % (s_hi - s_lo + 1)]) + "…"
        content = None
        if full_text:
            p0 = (h >> 37) % len(paras)
            count = 6 + (h >> 45) % 3
            content = "".join(f"<p>{paras[(p0 + i) % len(paras)]}</p>" for i in range(count))
        link = f"{site}/s{seed}/{k}"
        author = _SYNTH_AUTHORS[(h >> 50) % len(_SYNTH_AUTHORS)]
        rendered.append(
            _Esc(
                title=title.rstrip(_TRAILING_ESCAPED),
                link=link,
                guid=link,
                permalink=True,
                published=SYNTH_EPOCH + step * k,
                updated=None,
                author=author,
                author_is_email=False,
                categories=(_SYNTH_TAGS[(h >> 54) % len(_SYNTH_TAGS)],),
                summary=summary,
                content_html=content,
                enclosure=(
                    Enclosure(f"https://{SYNTH_HOST}/media/{feed_no}-{k}.jpg", 30000 + h % 90000,
                              "image/jpeg")
                    if h % 3 == 0 else None
                ),
            )
        )  # fmt: skip
    channel = Channel(
        title=f"Synthetic feed {feed_no} ({lang})",
        link=site + "/",
        description=f"newsflow synthetic load feed {feed_no}, seed {seed}. Text: {CREDIT}.",
        language=lang,
        feed_id=f"tag:{SYNTH_HOST},2026:feed/{seed}/{feed_no}",
        updated=SYNTH_EPOCH + step * max(0, generation + items - 1),
    )
    return (_render_atom if atom else _render_rss)(channel, rendered, "utf-8")


# ---- command line ----------------------------------------------------------------------------


def write_demo(directory: Path, feed_list: Path | None) -> list[Path]:
    """(Re)write the demo feeds into ``directory`` and the feed list to ``feed_list``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in demo_files().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)  # unchanged files keep their mtime (and the server's ETag)
            written.append(path)
    if feed_list is not None:
        text = demo_feed_list().encode("utf-8")
        if not feed_list.exists() or feed_list.read_bytes() != text:
            feed_list.write_bytes(text)
            written.append(feed_list)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.tooling.samplefeeds",
        description="Build the demo feeds, or print one synthetic feed.",
    )
    parser.add_argument("--write", type=Path, metavar="DIR", help="write the demo feeds to DIR")
    parser.add_argument(
        "--list",
        type=Path,
        metavar="FILE",
        help="where to write the demo feed list (default: DIR.yaml next to DIR)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files in DIR are not up to date"
    )
    parser.add_argument("--synthetic", type=int, metavar="N", help="print synthetic feed N")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-text", action="store_true")
    args = parser.parse_args(argv)
    if args.synthetic is not None:
        data = synthetic_feed(args.synthetic, args.items, full_text=args.full_text, seed=args.seed)
        sys.stdout.buffer.write(data)
        return 0
    if args.write is None:
        parser.error("give --write DIR (e.g. deploy/feeds/demo) or --synthetic N")
    directory: Path = args.write
    feed_list: Path = args.list or directory.with_name(directory.name + ".yaml")
    if args.check:
        stale = [n for n, d in demo_files().items() if _read(directory / n) != d]
        if _read(feed_list) != demo_feed_list().encode("utf-8"):
            stale.append(str(feed_list))
        for name in stale:
            print(f"out of date: {name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_demo(directory, feed_list):
        print(f"wrote {path}")
    return 0


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
