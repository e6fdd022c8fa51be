"""Sample feeds: realistic RSS 2.0 and Atom documents built from text that ships in this repo.

Role in the flow: the publisher's side, in front of the connector (feeds -> ``connectors/`` ->
Kafka). Nothing in the pipeline imports this module; the demo, the tests and the benchmarks do.

- ``rss_document`` / ``atom_document``: pure builders, ``Channel`` + ``Item``\\ s -> bytes, in any
  ASCII-compatible encoding (characters the encoding lacks become character references).
- ``demo_files()`` / ``demo_feed_list()``: the bundled demo feeds (``deploy/feeds/demo/``) and
  their feed list (``deploy/feeds/demo.yaml``). ``python -m connectors.samplefeeds --write
  deploy/feeds/demo`` regenerates them byte for byte (fixed 2026 dates, no randomness); a unit
  test fails when the committed files drift from this module.
- ``synthetic_feed()``: the load generator's feeds, many languages, realistic sizes (titles ~10
  words, summaries ~100, optional ~600-word full text), deterministic in its arguments and fast:
  text comes from a pool loaded and XML-escaped once, so an item costs a few joins.

Text sources, all redistributable (a feed file is redistribution, so the research-use corpora of
``streams/enrich/training/corpora`` -- ANERcorp, CoNLL-2003 -- are never used here):

- NTREX-128 news paragraphs (human translations of the WMT 2019 news test set), CC BY-SA 4.0,
  from ``streams/enrich/training/corpora/langid_dev.jsonl.xz``;
- AQMAR Arabic Wikipedia sentences, CC BY-SA 3.0, from ``.../corpora/ar_aqmar.train.jsonl.xz``;
- the seed article ``deploy/demo/seed-article-ar.txt`` (the project's own sample, quoted for
  demonstration under the terms in ``deploy/demo/PROVENANCE.md``).
"""

from __future__ import annotations

import argparse
import functools
import json
import lzma
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO / "streams" / "enrich" / "training" / "corpora"
NTREX_FILE = CORPORA / "langid_dev.jsonl.xz"
AQMAR_FILE = CORPORA / "ar_aqmar.train.jsonl.xz"
SEED_FILE = REPO / "deploy" / "demo" / "seed-article-ar.txt"
DEMO_DIR = REPO / "deploy" / "feeds" / "demo"
DEMO_HOST = "demo.newsflow.example"  # .example is reserved (RFC 2606): never resolves
DEMO_BASE_URL = "http://127.0.0.1:8765"  # `newsflow feeds serve`'s default address
SEED_SLUG = "turkey-syria-defence-cooperation"  # the slug streams/demo.py uses too

GENERATOR = "newsflow samplefeeds"
NTREX_CREDIT = (
    "NTREX-128 (Microsoft Translator; human translations of the WMT 2019 news test set), "
    "CC BY-SA 4.0"
)
AQMAR_CREDIT = "AQMAR Arabic Wikipedia NER corpus (Mohit et al. 2012), CC BY-SA 3.0"
SEED_CREDIT = (
    "newsflow seed article (deploy/demo/seed-article-ar.txt), news text quoted for testing "
    "and demonstration only"
)

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


# ---- text from the repository ----------------------------------------------------------------

# Scripts written without spaces between words: sizes count characters, not words.
_CHAR_SCRIPTS = frozenset({"zh", "ja", "th"})
_SENTENCE_END = re.compile(r"(?<=[.!?؟。！？۔।])\s+|(?<=[。！？])")
_TRAILING_PUNCT = " \t.,;:،؛。，、．"
# The same for XML-escaped text: never ";", which may end an entity such as "&amp;".
_TRAILING_ESCAPED = " \t.,:،。，、．"


class Paragraph(NamedTuple):
    lang: str
    text: str
    src: str  # NTREX-128:<lang3>:<first line>-<last line>


def _long_token_share(text: str) -> float:
    tokens = text.split()
    return sum(len(t) > 18 for t in tokens) / max(1, len(tokens))


@functools.cache
def ntrex_paragraphs() -> dict[str, tuple[Paragraph, ...]]:
    """NTREX paragraphs by language: well-formed ones only, none sharing a sentence.

    The corpus file holds overlapping 3-line windows of the same documents (775-777 and
    776-778); keeping non-overlapping ones means no sentence appears twice in a feed. A few
    paragraphs lost their spaces in the source (glued words); they are dropped.
    """
    by_lang: dict[str, list[tuple[int, int, Paragraph]]] = {}
    with lzma.open(NTREX_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["length"] != "paragraph":
                continue
            lang, text, src = row["lang"], row["text"].strip(), row["src"]
            if lang not in _CHAR_SCRIPTS and _long_token_share(text) > 0.04:
                continue
            first, _, last = src.rpartition(":")[2].partition("-")
            by_lang.setdefault(lang, []).append(
                (int(first), int(last or first), Paragraph(lang, text, src))
            )
    out: dict[str, tuple[Paragraph, ...]] = {}
    for lang, rows in by_lang.items():
        kept: list[Paragraph] = []
        last_line = -1
        for first, last, para in sorted(rows, key=lambda r: (r[0], r[1])):
            if first > last_line:
                kept.append(para)
                last_line = last
        out[lang] = tuple(kept)
    return out


@functools.cache
def ntrex_shorts() -> dict[str, tuple[str, ...]]:
    """NTREX single sentences by language (headlines among them)."""
    out: dict[str, list[str]] = {}
    with lzma.open(NTREX_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["length"] == "short":
                out.setdefault(row["lang"], []).append(row["text"].strip())
    return {lang: tuple(texts) for lang, texts in out.items()}


def _detokenize(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r"\s+([.,:;!?%)\]}»،؛؟])", r"\1", text)
    return re.sub(r"([(\[{«])\s+", r"\1", text)


@functools.cache
def aqmar_sentences() -> tuple[str, ...]:
    """AQMAR sentences (Arabic Wikipedia) in corpus order, detokenised."""
    with lzma.open(AQMAR_FILE, "rt", encoding="utf-8") as fh:
        return tuple(_detokenize(json.loads(line)["tokens"]) for line in fh if line.strip())


class SeedArticle(NamedTuple):
    title: str
    paragraphs: tuple[str, ...]


def seed_article(path: Path = SEED_FILE) -> SeedArticle:
    """The seed article: the headline is the first line's first clause (up to the Arabic
    comma), exactly as ``streams/demo.py`` titles it; every line is a paragraph."""
    lines = tuple(s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip())
    return SeedArticle(lines[0].split("،")[0].strip()[:300], lines)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def headline(text: str, lang: str, *, max_words: int = 14, max_chars: int = 40) -> str:
    """A headline from the first sentence of ``text``: trailing full stop dropped, long
    sentences cut at a word (at a character for zh/ja) with an ellipsis."""
    first = (sentences(text) or [text])[0].strip()
    if lang in _CHAR_SCRIPTS:
        if len(first) > max_chars:
            return first[:max_chars].rstrip(_TRAILING_PUNCT) + "…"
        return first.rstrip("。．.")
    words = first.split()
    if len(words) > max_words:
        return " ".join(words[:max_words]).rstrip(_TRAILING_PUNCT) + "…"
    return first.rstrip(".")


def slug(title: str, *, max_words: int = 8) -> str:
    """A URL slug: ASCII words for Latin scripts, else the native words percent-encoded (as
    Arabic and Persian sites publish them)."""
    ascii_words = re.findall(
        r"[a-z0-9]+",
        unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower(),
    )
    native = re.findall(r"\w+", title.lower())
    if ascii_words and len(ascii_words) * 2 >= len(native):
        return "-".join(ascii_words[:max_words])
    if native:
        return quote("-".join(native[: max_words - 2]), safe="-")
    return "story"


# ---- the bundled demo feeds ------------------------------------------------------------------


class DemoFeed(NamedTuple):
    feed_id: str
    file: str
    lang: str
    fmt: Literal["rss", "atom"]
    encoding: str
    title: str
    source: Literal["ntrex", "seed+ntrex", "aqmar"]
    items: int
    utc_offset_h: int
    author: str
    categories: tuple[str, str]
    full_text: bool = False  # content:encoded / Atom content
    skip: int = 0  # NTREX paragraphs used by an earlier feed of the same language


DEMO_FEEDS: tuple[DemoFeed, ...] = (
    DemoFeed("demo-ar", "ar.xml", "ar", "rss", "utf-8", "نيوزفلو التجريبي: الأخبار",
             "seed+ntrex", 10, 3, "قسم الأخبار", ("أخبار", "العالم"), full_text=True),
    DemoFeed("demo-ar-1256", "ar-windows-1256.xml", "ar", "rss", "windows-1256",
             "نيوزفلو التجريبي: موجز الأخبار", "ntrex", 11, 3, "قسم الأخبار",
             ("موجز", "العالم"), skip=10),
    DemoFeed("demo-ar-wiki", "ar-wiki.atom", "ar", "atom", "utf-8",
             "نيوزفلو التجريبي: مقتطفات من ويكيبيديا", "aqmar", 10, 3, "ويكيبيديا",
             ("معرفة", "موسوعة")),
    DemoFeed("demo-en", "en.xml", "en", "rss", "utf-8", "newsflow demo: World news",
             "ntrex", 12, 0, "newsdesk@demo.newsflow.example (News desk)", ("News", "World"),
             full_text=True),
    DemoFeed("demo-fr", "fr.atom", "fr", "atom", "utf-8", "newsflow démo : Actualités",
             "ntrex", 12, 2, "La rédaction", ("Actualités", "Monde"), full_text=True),
    DemoFeed("demo-de", "de-iso-8859-1.xml", "de", "rss", "iso-8859-1",
             "newsflow Demo: Nachrichten", "ntrex", 12, 2, "Redaktion", ("Nachrichten", "Welt")),
    DemoFeed("demo-es", "es.xml", "es", "rss", "utf-8", "newsflow demo: Noticias", "ntrex",
             12, 2, "Redacción", ("Noticias", "Mundo")),
    DemoFeed("demo-tr", "tr.xml", "tr", "rss", "utf-8", "newsflow demo: Haberler", "ntrex",
             12, 3, "Haber Merkezi", ("Haberler", "Dünya")),
    DemoFeed("demo-fa", "fa.xml", "fa", "rss", "utf-8", "نیوزفلو نمایشی: اخبار", "ntrex",
             12, 3, "تحریریه", ("اخبار", "جهان")),
    DemoFeed("demo-ru", "ru.xml", "ru", "rss", "utf-8", "newsflow демо: Новости", "ntrex",
             12, 3, "Редакция", ("Новости", "В мире")),
    DemoFeed("demo-zh", "zh.atom", "zh", "atom", "utf-8", "newsflow 演示：新闻", "ntrex",
             12, 8, "编辑部", ("新闻", "国际")),
    DemoFeed("demo-ja", "ja.xml", "ja", "rss", "utf-8", "newsflow デモ：ニュース", "ntrex",
             10, 9, "編集部", ("ニュース", "国際")),
    DemoFeed("demo-he", "he.xml", "he", "rss", "utf-8", "newsflow הדגמה: חדשות", "ntrex",
             10, 3, "מערכת החדשות", ("חדשות", "עולם")),
    DemoFeed("demo-hi", "hi.xml", "hi", "rss", "utf-8", "newsflow डेमो: समाचार", "ntrex",
             10, 5, "समाचार डेस्क", ("समाचार", "दुनिया")),
    DemoFeed("demo-sw", "sw.xml", "sw", "rss", "utf-8", "newsflow onyesho: Habari", "ntrex",
             10, 3, "Dawati la habari", ("Habari", "Dunia")),
)  # fmt: skip


def _credit(feed: DemoFeed) -> str:
    if feed.source == "aqmar":
        return AQMAR_CREDIT
    if feed.source == "seed+ntrex":
        return f"{SEED_CREDIT} (first item); the other items: {NTREX_CREDIT}"
    return NTREX_CREDIT


def _demo_channel(feed: DemoFeed, newest: datetime) -> Channel:
    return Channel(
        title=feed.title,
        link=f"https://{DEMO_HOST}/{feed.lang}/",
        description=(
            f"Demo feed bundled with newsflow ({feed.lang}). Text: {_credit(feed)}. "
            "Links point at the reserved .example domain and never resolve."
        ),
        language=feed.lang,
        feed_id=f"tag:{DEMO_HOST},2026:feed/{feed.feed_id}",
        updated=newest,
        comment=(
            f"newsflow demo feed {feed.feed_id} ({feed.lang}, {feed.fmt}, {feed.encoding}).\n"
            f"Text: {_credit(feed)}.\n"
            "Generated by connectors/samplefeeds.py; do not edit by hand (see PROVENANCE.md)."
        ),
    )


def _paragraph_html(text: str) -> str:
    return "".join(f"<p>{xml_escape(s)}</p>" for s in sentences(text))


def _demo_items(feed: DemoFeed, index: int, taken: set[str]) -> list[Item]:
    tz = timezone(timedelta(hours=feed.utc_offset_h))
    # Fixed 2026 dates, in the past for anyone running this after October 2026, staggered per
    # feed so that feeds do not all share one timeline.
    newest = datetime(2026, 10, 12, 9, 0, tzinfo=tz) + timedelta(minutes=53 * index)
    step = timedelta(minutes=41 + (17 * index) % 60)

    def link_for(title: str, preset: str | None = None) -> str:
        base = preset or slug(title)
        candidate, n = base, 2
        while f"{feed.lang}/{candidate}" in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(f"{feed.lang}/{candidate}")
        return f"https://{DEMO_HOST}/{feed.lang}/{candidate}"

    texts: list[tuple[str, str, str | None]] = []  # (title, summary, content html)
    if feed.source == "aqmar":
        pool = [s for s in aqmar_sentences() if 8 <= len(s.split()) <= 60]
        stride = len(pool) // feed.items
        for n in range(feed.items):
            group = pool[n * stride : n * stride + 4]
            texts.append((headline(group[0], "ar", max_words=9), " ".join(group), None))
    else:
        paras = ntrex_paragraphs()[feed.lang][feed.skip : feed.skip + feed.items]
        if len(paras) < feed.items:
            raise RuntimeError(f"{feed.feed_id}: only {len(paras)} NTREX paragraphs left")
        for p in paras:
            content = _paragraph_html(p.text) if feed.full_text else None
            texts.append((headline(p.text, feed.lang), p.text, content))

    items: list[Item] = []
    if feed.source == "seed+ntrex":
        seed = seed_article()
        items.append(
            Item(
                title=seed.title,
                link=link_for(seed.title, SEED_SLUG),
                summary=seed.paragraphs[0],
                published=newest,
                guid=f"tag:{DEMO_HOST},2026:{feed.feed_id}/seed",
                author=feed.author,
                categories=("سياسة", "تركيا", "سوريا"),
                content_html="".join(f"<p>{xml_escape(p)}</p>" for p in seed.paragraphs),
                enclosure=Enclosure(
                    f"https://{DEMO_HOST}/media/{SEED_SLUG}.jpg", 48213, "image/jpeg"
                ),
            )
        )
    for n, (title, summary, content) in enumerate(texts):
        number = len(items)
        link = link_for(title)
        items.append(
            Item(
                title=title,
                link=link,
                summary=summary,
                published=newest - step * number,
                # Half the feeds use permalink guids, half opaque ids, as real sites do.
                guid=None if index % 2 else f"tag:{DEMO_HOST},2026:{feed.feed_id}/{n + 1}",
                author=feed.author,
                categories=feed.categories[: 1 + number % 2],
                content_html=content,
                enclosure=(
                    Enclosure(f"https://{DEMO_HOST}/media/{feed.feed_id}-{n + 1}.jpg",
                              20000 + 731 * n, "image/jpeg")
                    if number % 3 == 1 else None
                ),
            )
        )  # fmt: skip
    return items


def demo_feed(feed: DemoFeed, index: int, taken: set[str] | None = None) -> bytes:
    items = _demo_items(feed, index, set() if taken is None else taken)
    channel = _demo_channel(feed, max(i.published for i in items))
    build = rss_document if feed.fmt == "rss" else atom_document
    return build(channel, items, encoding=feed.encoding)


def _provenance() -> str:
    lines = [
        "# Demo feeds: where the text comes from",
        "",
        "Generated by `python -m connectors.samplefeeds --write deploy/feeds/demo` (do not edit by",
        "hand; a unit test fails when these files drift from the generator). Served by",
        "`newsflow feeds serve deploy/feeds/demo`; listed in `deploy/feeds/demo.yaml`.",
        "Titles are the first sentence of each text, cut with an ellipsis when long (the seed",
        "article's is its first clause); dates are fixed (2026);",
        f"links point at `https://{DEMO_HOST}/<lang>/<slug>` (`.example` is reserved and never",
        "resolves). Only redistributable text is used: the research-use corpora shipped for NER",
        "training (ANERcorp, CoNLL-2003) are not.",
        "",
        "| file | feed id | lang | format | encoding | items | text from | licence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for feed in DEMO_FEEDS:
        if feed.source == "aqmar":
            src = "AQMAR Arabic Wikipedia NER corpus (`ar_aqmar.train`), 4 sentences per item"
            lic = "CC BY-SA 3.0"
        elif feed.source == "seed+ntrex":
            src = (
                "item 1: the seed article `deploy/demo/seed-article-ar.txt`; "
                f"items 2-{feed.items + 1}: NTREX-128 paragraphs"
            )
            lic = (
                "seed: news text quoted for testing and demonstration only "
                "(see `deploy/demo/PROVENANCE.md`); NTREX: CC BY-SA 4.0"
            )
        else:
            src = "NTREX-128 news paragraphs (`langid_dev`)"
            lic = "CC BY-SA 4.0"
        count = feed.items + (1 if feed.source == "seed+ntrex" else 0)
        lines.append(
            f"| `{feed.file}` | {feed.feed_id} | {feed.lang} | {feed.fmt} | {feed.encoding} "
            f"| {count} | {src} | {lic} |"
        )
    lines += [
        "",
        "## Sources",
        "",
        "- NTREX-128: `MicrosoftTranslator/NTREX@8561f6a622db9edad1217683e5c83daefd8bb2bf`,",
        "  `NTREX-128/newstest2019-ref.*.txt` (human translations of the WMT 2019 news test set),",
        "  CC BY-SA 4.0, via `streams/enrich/training/corpora/langid_dev.jsonl.xz`. Paragraphs",
        "  are three consecutive lines; overlapping windows and paragraphs whose words lost their",
        "  spaces in the source are skipped.",
        "- AQMAR:",
        "  `HussamHallak/AQMAR-Arabic-NERC-Dataset@02afd80a2c645b52e66d00e162cc5d652cbe6ef5`",
        "  (Mohit et al. 2012, Arabic Wikipedia), CC BY-SA 3.0, via",
        "  `streams/enrich/training/corpora/ar_aqmar.train.jsonl.xz` (tokens re-joined).",
        "- Seed article: the newsflow project sample (`deploy/demo/seed-article-ar.txt`); its",
        "  headline is the first line's first clause, as `streams/demo.py` titles it.",
        "",
        "CC BY-SA text stays under its licence: share the feeds with this attribution, and",
        "derivatives under the same licence. Each feed file repeats its source in a header",
        "comment and in the channel description.",
        "",
    ]
    return "\n".join(lines)


def demo_files() -> dict[str, bytes]:
    """Every file of ``deploy/feeds/demo/``: file name -> bytes (feeds and PROVENANCE.md)."""
    taken: set[str] = set()
    files = {feed.file: demo_feed(feed, n, taken) for n, feed in enumerate(DEMO_FEEDS)}
    files["PROVENANCE.md"] = _provenance().encode("utf-8")
    return files


def demo_feed_list(base_url: str = DEMO_BASE_URL) -> str:
    """``deploy/feeds/demo.yaml``: the demo feeds as a feed list, served from ``base_url``."""
    lines = [
        "# newsflow demo feed list: the bundled demo feeds (deploy/feeds/demo/), served locally by",
        "#   newsflow feeds serve deploy/feeds/demo      (http://127.0.0.1:8765/)",
        "# Generated by `python -m connectors.samplefeeds --write deploy/feeds/demo`; edit the",
        "# generator, not this file. Short poll bounds so that the demo moves quickly.",
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
    paras = ntrex_paragraphs()
    shorts = ntrex_shorts()
    pools = {
        lang: _lang_pool(lang, [p.text for p in ps], shorts.get(lang, ()))
        for lang, ps in sorted(paras.items())
        if len(ps) >= 8
    }
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
    words, summaries 85-115 words (a sentence-aligned window of NTREX text, cut with "…"),
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
        description=f"newsflow synthetic load feed {feed_no}, seed {seed}. Text: {NTREX_CREDIT}.",
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
        prog="python -m connectors.samplefeeds",
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
