"""``extract(html, url, headers)``: one page's bytes -> main text + metadata + a status.

Pure work layer: no I/O, no Kafka, no faust. The extract stage calls this after fetching; the
``newsflow extract`` command and ``make eval`` call the very same function.

Steps and the budget that bounds each:
1. Refuse what is not an HTML page (``not_html``: a non-HTML Content-Type, or binary bytes).
2. Refuse pages over ``max_bytes`` (``too_large``) without parsing them; pages with more than
   ``max_tags`` tags are cut at that tag before parsing (flag ``truncated``), so a million-node
   page costs what a ``max_tags`` page costs.
3. Decode (``decode.decode_html``: BOM, HTTP charset, meta charset, UTF-8, detection).
4. Parse once with lxml; read metadata (``metadata.read_metadata``) from that tree.
5. Main text with trafilatura (chosen by measurement: ``streams/extract/evaluate.py``), comments
   excluded, tables kept; when it finds too little, its recall mode and then the publisher's
   JSON-LD ``articleBody`` are tried. Mojibake in the text and title is repaired with ftfy.
6. Decide the status: ``blocked`` for paywall and cookie-consent interstitials, ``empty`` when
   fewer than ``min_chars`` remain, else ``ok``. Any unexpected error is ``extract_failed``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from streams.extract.blocked import blocked_reason
from streams.extract.container import mark_article_body
from streams.extract.decode import decode_html
from streams.extract.prefilter import (
    demote_minor_articles,
    drop_ad_slots,
    drop_card_groups,
    drop_comment_threads,
    drop_inserts,
    drop_link_farms,
    strip_never_content,
)

__all__ = ["EXTRACTOR_VERSION", "ExtractLimits", "Extraction", "Status", "extract"]

Status = Literal["ok", "empty", "blocked", "too_large", "extract_failed", "not_html"]
EXTRACTOR_VERSION: Final = "trafilatura-2.3.1+nf5"

_HTML_TYPES: Final = ("text/html", "application/xhtml", "text/plain", "application/xml", "text/xml")
_BINARY_MAGIC: Final = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b")
_XML_DECL: Final = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_BLANKS: Final = re.compile(r"[ \t\u00a0\u200b\u3000]+")


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    max_bytes: int = 10 * 1024 * 1024  # larger pages are refused unparsed
    max_tags: int = 30_000  # pages with more tags are cut here before parsing (~5x a big page)
    min_chars: int = 80  # less main text than this is "empty"


@dataclass(slots=True)
class Extraction:
    status: Status
    text: str = ""
    title: str | None = None
    method: str = ""
    chars: int = 0
    canonical_url: str | None = None
    amp_url: str | None = None
    page_language: str | None = None
    published_at: datetime | None = None
    date_method: str = ""
    authors: list[str] = field(default_factory=list)
    image: str | None = None
    flags: list[str] = field(default_factory=list)
    encoding: str | None = None
    reason: str | None = None  # why blocked / failed / refused, one short line
    elapsed_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["published_at"] = self.published_at.isoformat() if self.published_at else None
        return out


def _not_html(data: bytes, headers: Mapping[str, str] | None) -> str | None:
    if headers:
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        main = ctype.split(";")[0].strip().lower()
        if main and not main.startswith(_HTML_TYPES) and not main.endswith("+xml"):
            return f"content type {main}"
    head = data[:1024].lstrip()
    if head.startswith(_BINARY_MAGIC):
        return "binary content"
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary content"
    return None


def _cut_tags(data: bytes, max_tags: int) -> bytes | None:
    """The page cut before its ``max_tags``-th tag, or None when it has fewer tags."""
    if len(data) - len(data.replace(b"<", b"")) <= max_tags:  # twice as fast as bytes.count
        return None
    pos = -1
    for _ in range(max_tags):
        pos = data.find(b"<", pos + 1)
    return data[:pos]


def _fix_text(text: str) -> str:
    from ftfy import TextFixerConfig, fix_text
    from ftfy.badness import is_bad

    if not text or not is_bad(text):
        return text
    config = TextFixerConfig(
        unescape_html=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        normalization=None,
    )
    return fix_text(text, config)


def _tidy(text: str, title: str | None) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    # The headline is metadata, not body: drop it when the extractor kept it as first line.
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]
    # Credit lines closing the body (Chinese portals sign every story "（责任编辑：X）",
    # "来源：X", "记者：X"; most sites end with a copyright line) are not the story.
    while len(lines) > 1 and len(lines[-1]) <= _MAX_CREDIT and _CREDIT_LINE.match(lines[-1]):
        lines.pop()
    return "\n".join(lines)


_MAX_CREDIT: Final = 60
_CREDIT_LINE: Final = re.compile(
    r"[（(\[]?\s*(?:责任编辑|责编|编辑|来源|本文来源|记者|作者|通讯员|校对|审核)\s*[：:]"
    r"|(?:copyright\b|©|\(c\)\s*\d{4})",
    re.I,
)


# trafilatura drops characters that are not "printable" (Unicode Cf), and with them the
# zero-width non-joiner that Persian (and Kurdish, Urdu, Hindi...) write inside words: it would
# turn "می‌شود" into "میشود". They travel through extraction as rare printable stand-ins.
_JOINERS: Final = {"\u200c": "\U0001d100", "\u200d": "\U0001d101"}
_CJK_RE: Final = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_TABLE_LINE: Final = re.compile(r"^\|.*\|$", re.M)


def _is_cjk(tree: Any, page: str) -> bool:
    """Whether the page is written in Chinese, Japanese or Korean (a word per character).

    A sample of the whole page's source finds big pages; a short article's few hundred
    characters drown in its markup, so the text left after the prefilter is read too.
    """
    if len(_CJK_RE.findall(page[:200_000:7])) > 200:
        return True
    body = tree.find("body")
    text = "".join((body if body is not None else tree).text_content().split())[:20_000]
    return len(_CJK_RE.findall(text)) > 0.3 * len(text) > 0


def _config(cjk: bool) -> Any:
    """trafilatura's settings; CJK text carries a word per character, so its size floors shrink."""
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    if cjk:
        config.set("DEFAULT", "MIN_EXTRACTED_SIZE", str(_MIN_SIZE_CJK))
    return config


_CONFIGS: dict[bool, Any] = {}
_MIN_SIZE: Final = 250  # trafilatura's MIN_EXTRACTED_SIZE
_MIN_SIZE_CJK: Final = 80
# trafilatura 2.3.1's stage-4 "recall escalation" thresholds (trafilatura/core.py).
_ESCALATE_BELOW: Final = 3000
_ESCALATE_SHARE: Final = 0.2
_ESCALATE_ACCEPT: Final = 1.5


def _own_escalation() -> None:
    """Switch off trafilatura's built-in recall escalation; ``_main_text`` decides it instead.

    trafilatura 2.3.1 re-runs the whole extraction in recall mode when the text it found is
    under 3000 characters and under a fifth of the page's text, measured by converting the
    whole page to text once more. On link-heavy pages (mega-menus, footers, "most read"
    lists: most news pages) that fires for almost every article and finds nothing more, at
    about half the cost of the page. It has no option for this, only module constants, read at
    call time; setting its length cap to 0 for the whole process is thread-safe (the value
    never changes again). ``evaluate --compare`` scores its trafilatura candidates before the
    product's first page, so they run as the library ships.
    """
    import trafilatura.core

    trafilatura.core.ESCALATION_MAX_LENGTH = 0


_OPTIONS: dict[tuple[bool, bool, bool], Any] = {}


def _options(cjk: bool, recall: bool, tables: bool) -> Any:
    """trafilatura's ``Extractor`` for these settings, built once (it reads its config file
    section value by value: a few hundred microseconds per page when built per call)."""
    key = (cjk, recall, tables)
    options = _OPTIONS.get(key)
    if options is None:
        from trafilatura.settings import Extractor

        config = _CONFIGS.get(cjk)
        if config is None:
            _own_escalation()
            config = _CONFIGS[cjk] = _config(cjk)
        options = _OPTIONS[key] = Extractor(
            config=config,
            output_format="txt",
            fast=True,  # no readability/justext fallbacks inside: measured slower, no better here
            recall=recall,
            comments=False,
            tables=tables,
            images=False,
            dedup=False,
            with_metadata=False,
        )
    return options


def _trafilatura(tree: Any, url: str | None, *, cjk: bool, recall: bool, tables: bool) -> str:
    from copy import copy

    import trafilatura

    options = copy(_options(cjk, recall, tables))  # per call: it carries the page's URL
    options.url = url
    options.source = url
    text = trafilatura.extract(tree, url=url, options=options)
    return text or ""


def _layout_tables(tree: Any) -> bool:
    """Whether the page is laid out with tables (a table holding headings, paragraphs or tables)."""
    for table in tree.iter("table"):
        for _ in table.iter("h1", "h2", "table", "p", "iframe"):
            if _ is not table:
                return True
    return False


def _prose_chars(tree: Any) -> int:
    """Characters of the page's visible text outside links (whitespace runs count as one).

    The measure for "did the first pass miss most of the article?": menus, footers and related
    link lists can make a page's text ten times its article, but that text is link text, and
    a recall pass would only pull more of it in.
    """
    body = tree.find("body")
    if body is None:
        body = tree
    everything = len(" ".join(body.text_content().split()))
    linked = len(" ".join(" ".join(body.xpath(".//a//text()")).split()))
    return max(0, everything - linked)


def _main_text(tree: Any, url: str | None, cjk: bool) -> tuple[str, str]:
    tables = True
    text = _trafilatura(tree, url, cjk=cjk, recall=False, tables=tables)
    method = "trafilatura"
    if _TABLE_LINE.search(text) and _layout_tables(tree):
        # Layout tables come back as table rows repeating the page: read paragraphs only.
        tables = False
        plain = _trafilatura(tree, url, cjk=cjk, recall=False, tables=tables)
        if len(plain) >= 0.2 * len(text):
            text, method = plain, "trafilatura-notables"
    min_size = _MIN_SIZE_CJK if cjk else _MIN_SIZE
    if len(text) < (100 if cjk else 250):
        # Too little for an article: recall mode, kept when it finds more.
        recall = _trafilatura(tree, url, cjk=cjk, recall=True, tables=tables)
        if len(recall) > len(text):
            text, method = recall, "trafilatura-recall"
    elif len(text) < _ESCALATE_BELOW and len(text) < _ESCALATE_SHARE * _prose_chars(tree):
        # trafilatura's own stage-4 escalation (same thresholds and acceptance), with the page
        # measured without its link text; see ``_trafilatura`` for why it is ours.
        recall = _trafilatura(tree, url, cjk=cjk, recall=True, tables=tables)
        if len(recall) >= min_size and len(recall) > _ESCALATE_ACCEPT * len(text):
            text, method = recall, "trafilatura-recall"
    return text, method


def extract(
    html: bytes,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    limits: ExtractLimits | None = None,
) -> Extraction:
    """Extract one page; never raises (every failure is a status)."""
    started = time.perf_counter()
    limits = limits or ExtractLimits()
    try:
        result = _extract(html, url, headers, limits)
    except Exception as exc:  # noqa: BLE001 - the contract: every failure is a status
        result = Extraction(status="extract_failed", reason=f"{type(exc).__name__}: {exc}"[:300])
    result.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return result


_LOCAL: Final = threading.local()


def _parser() -> Any:
    """This thread's HTML parser (lxml parsers must not be shared between threads).

    ``lxml.html``'s own parser picks each element's Python class with a Python callback
    (special classes for forms and inputs), run for every element the extraction touches:
    a tenth of the time on big pages. Every element here is a plain ``HtmlElement`` (all that
    trafilatura and we use), chosen in C.
    """
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        from lxml import etree
        from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction

        parser = etree.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement,
                comment=HtmlComment,
                pi=HtmlProcessingInstruction,
                entity=HtmlEntity,
            )
        )
        _LOCAL.parser = parser
    return parser


def _extract(
    data: bytes, url: str | None, headers: Mapping[str, str] | None, limits: ExtractLimits
) -> Extraction:
    from lxml.html import document_fromstring

    from streams.extract.dates import find_page_date
    from streams.extract.metadata import read_metadata

    why = _not_html(data, headers)
    if why:
        return Extraction(status="not_html", reason=why)
    if len(data) > limits.max_bytes:
        return Extraction(
            status="too_large", reason=f"{len(data)} bytes > {limits.max_bytes} bytes"
        )
    flags: list[str] = []
    cut = _cut_tags(data, limits.max_tags)
    if cut is not None:
        data = cut
        flags.append("truncated")
    decoded = decode_html(data, headers)
    text_in = _XML_DECL.sub("", decoded.text, count=1)
    joiners = {k: v for k, v in _JOINERS.items() if k in text_in and v not in text_in}
    for k, v in joiners.items():
        text_in = text_in.replace(k, v)
    if not text_in.strip():
        return Extraction(status="empty", reason="no content", encoding=decoded.encoding)
    try:
        tree = document_fromstring(text_in, parser=_parser())
    except ValueError as exc:
        return Extraction(status="empty", reason=f"unparseable: {exc}"[:200])
    meta = read_metadata(tree, url)
    if meta.next_page or _has_pagination(tree):
        flags.append("multi_page")
    published, date_method = meta.published_at, meta.date_method
    if published is None and meta.page_language:
        published, date_method = find_page_date(tree, meta.page_language)
    strip_never_content(tree)
    drop_comment_threads(tree)
    drop_link_farms(tree)
    drop_card_groups(tree)
    drop_ad_slots(tree)
    drop_inserts(tree)
    demote_minor_articles(tree)
    mark_article_body(tree)

    cjk = _is_cjk(tree, text_in)
    text, method = _main_text(tree, url, cjk)
    if len(text) < 250 and meta.ld_body and len(meta.ld_body) > len(text):
        text, method = meta.ld_body, "json-ld"
    for k, v in joiners.items():
        text = text.replace(v, k)
        meta.title = meta.title.replace(v, k) if meta.title else None
        meta.authors = [a.replace(v, k) for a in meta.authors]
    title = _fix_text(meta.title) if meta.title else None
    text = _tidy(_fix_text(text), title)

    if published is None and meta.page_language is None:
        # Undeclared language: read localised dates in the language the body is written in.
        published, date_method = find_page_date(tree, _guess_language(text))
    if "liveblogposting" in meta.ld_types:
        flags.append("live_blog")
    if meta.is_amp:
        flags.append("amp")
    canonical = meta.canonical_url
    result = Extraction(
        status="ok",
        text=text,
        title=title,
        method=method,
        chars=len(text),
        canonical_url=canonical,
        amp_url=meta.amp_url,
        page_language=meta.page_language,
        published_at=published,
        date_method=date_method,
        authors=meta.authors,
        image=meta.image,
        flags=flags,
        encoding=decoded.encoding,
    )
    reason = blocked_reason(tree, text, meta, title)
    if reason is not None:
        # An interstitial's text is not the article's: it must never be indexed as such.
        result.status, result.reason = "blocked", reason
        result.text, result.chars = "", 0
    elif len(text) < limits.min_chars:
        result.status, result.reason = "empty", f"{len(text)} characters of main text"
    return result


def _guess_language(text: str) -> str | None:
    """The body's language when the page declares none (only to read localised dates)."""
    if len(text) < 40:
        return None
    import py3langid  # type: ignore[import-untyped]

    code, _ = py3langid.classify(text[:2000])
    return str(code)


_PAGINATION: Final = re.compile(r"pagination|pager|page-numbers|paging", re.I)
_PAGE_OF: Final = re.compile(r"\b1\s*(?:/|of|von|de|из|из|sur)\s*([2-9]|\d{2})\b", re.I)


def _has_pagination(tree: Any) -> bool:
    """A numbered pager for the article itself ("1 / 3", "Page 1 of 3" + a next-page link)."""
    for el in tree.iter("div", "nav", "ul", "p"):
        cls = f"{el.get('class', '')} {el.get('id', '')}"
        # every word the pattern knows holds "pag": a substring test first (regex per block)
        if "pag" not in cls.lower() or not _PAGINATION.search(cls):
            continue
        text = " ".join(el.text_content().split())
        if len(text) < 200 and _PAGE_OF.search(text):
            return True
    return False
