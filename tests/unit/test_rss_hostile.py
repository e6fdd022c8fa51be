"""Hostile and broken feed bodies (issue 14.4, 14.6, 14.11, 14.12), all generated here.

- 14.4: wrong charsets and double encoding are repaired, undecodable bodies are not indexed.
- 14.6: every cut of a field sets ``source.truncated`` and is counted.
- 14.11: huge feeds are capped before feedparser parses them.
- 14.12: DOCTYPE/ENTITY declarations never reach a parser, however they are disguised.
"""

from __future__ import annotations

import random
import resource
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from connectors.feeds import FeedSpec
from connectors.rss import parse_job
from connectors.rss.digest import digest_fetch, new_state
from connectors.rss.parse import parse_feed
from connectors.rss.poller import count_digest
from connectors.rss.schedule import SchedulePolicy
from connectors.rss.text import html_to_text
from connectors.rss.types import ParsedFeed, ParseLimits
from streams.net.types import FetchResult, Validators

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
BASE = "https://hostile.example.net/feed.xml"
ARABIC = "مرحبا بكم في نشرة الأخبار من القاهرة وبيروت"
FRENCH = "Élection présidentielle : le résultat définitif est annoncé à l’été, ça démarre"
RUSSIAN = "Правительство объявило новый план по транспорту"
# ZWNJ and an ellipsis: three-byte UTF-8 whose cp1256 reading starts with "â", a Latin-1 letter
PERSIAN = "می‌خواهم بدانم چه شد… «خبر فوری»"


def _rss(
    titles: list[str],
    *,
    encoding: str = "utf-8",
    declared: str = "utf-8",
    language: str | None = None,
    description: str = "",
) -> bytes:
    lang = f"<language>{language}</language>" if language else ""
    items = "".join(
        f"<item><title>{t}</title><link>https://hostile.example.net/{i}</link>"
        f"<description>{description or t}</description></item>"
        for i, t in enumerate(titles)
    )
    text = (
        f'<?xml version="1.0" encoding="{declared}"?>\n<rss version="2.0"><channel>'
        f"<title>Feed</title><link>https://hostile.example.net/</link>{lang}{items}"
        "</channel></rss>"
    )
    return text.encode(encoding)


def _parse(body: bytes, content_type: str | None = None, **kw: object) -> ParsedFeed:
    return parse_feed(body, base_url=BASE, now=NOW, content_type=content_type, **kw)  # type: ignore[arg-type]


# ---- 14.4 charsets ------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ar", None])
@pytest.mark.parametrize("content_type", ["application/rss+xml; charset=utf-8", None])
def test_arabic_sent_as_windows_1256_but_declared_utf8(
    language: str | None, content_type: str | None
) -> None:
    body = _rss([ARABIC, ARABIC[::-1]], encoding="cp1256", language=language)
    parsed = _parse(body, content_type)
    assert [i.title for i in parsed.items] == [ARABIC, ARABIC[::-1]]
    assert "ãÑÍÈÇ" not in parsed.items[0].title
    assert any(w.startswith("charset: cp1256") for w in parsed.warnings), parsed.warnings


def test_latin1_french_declared_utf8_is_not_read_as_a_central_european_charset() -> None:
    body = _rss([FRENCH], encoding="cp1252")
    parsed = _parse(body, "text/xml; charset=UTF-8")
    assert parsed.items[0].title == FRENCH  # iso-8859-2/windows-1250 turn "è" into "č"


def test_russian_in_windows_1251_with_the_operator_hint() -> None:
    body = _rss([RUSSIAN], encoding="cp1251")
    parsed = _parse(body, "application/xml; charset=utf-8", language="ru")
    assert parsed.items[0].title == RUSSIAN


@pytest.mark.parametrize(
    ("text", "codepage"),
    [(ARABIC, "cp1256"), (PERSIAN, "cp1256"), (FRENCH, "cp1252"), (RUSSIAN, "cp1251")],
)
def test_double_encoded_utf8_is_repaired(text: str, codepage: str) -> None:
    mojibake = text.encode("utf-8").decode(codepage, "replace")
    assert mojibake != text  # "ظ…ط±ط­ط¨ط§", "Ã‰lection", "РџСЂР°РІ"
    parsed = _parse(_rss([mojibake]))
    assert parsed.items[0].title == text
    assert parsed.items[0].summary == text


def test_a_few_broken_bytes_in_utf8_keep_the_rest_as_utf8() -> None:
    body = _rss([ARABIC, RUSSIAN, FRENCH])
    body = body.replace(ARABIC.encode() + b"</title>", ARABIC.encode() + b"\xff</title>")
    parsed = _parse(body)
    assert parsed.items[0].title == ARABIC + "\ufffd"
    assert [i.title for i in parsed.items[1:]] == [RUSSIAN, FRENCH]
    assert "invalid_utf8_replaced: 1" in parsed.warnings


def test_correct_text_is_left_alone() -> None:
    texts = [ARABIC, FRENCH, RUSSIAN, "Ça coûte 5 €", "日本語のニュース", "Привет, РФ и СССР"]
    parsed = _parse(_rss(texts))
    assert [i.title for i in parsed.items] == texts
    latin = FRENCH.replace("’", "'")
    parsed = _parse(_rss([latin], encoding="iso-8859-1", declared="iso-8859-1"))
    assert parsed.items[0].title == latin


def test_undecodable_body_is_not_indexed() -> None:
    rng = random.Random(14)
    noise = bytes(rng.randrange(256) for _ in range(400))
    body = _rss(["x"]).replace(b"<title>x</title>", b"<title>" + noise + b"</title>")
    parsed = _parse(body, "application/xml; charset=utf-8")
    assert parsed.error == "undecodable" and parsed.items == []
    assert any(w.startswith("undecodable: not utf-8") for w in parsed.warnings)


# ---- 14.6 truncation ----------------------------------------------------------------------

FEED = FeedSpec(id="h", url=BASE)
POLICY = SchedulePolicy(min_interval_s=60, max_interval_s=3600)


def _digest(body: bytes):  # type: ignore[no-untyped-def]
    fetched = FetchResult(
        status="ok", url=BASE, http_status=200, body=body, validators=Validators()
    )
    return digest_fetch(
        FEED,
        new_state(FEED),
        fetched,
        sent=None,
        now=NOW.timestamp(),
        policy=POLICY,
        rng=random.Random(1),
    )


def test_a_2mb_content_cut_to_the_cap_sets_truncated_and_is_counted() -> None:
    words = ("كلمة " * 400_000)[:2_000_000]  # 2 MB of text
    body = (
        _rss(["Short"], description="Short summary")
        .replace(
            b"</description>",
            b"</description><content:encoded><![CDATA[<p>" + words.encode() + b"</p>]]>"
            b"</content:encoded>",
        )
        .replace(
            b'<rss version="2.0">',
            b'<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        )
    )
    digest = _digest(body)
    (article,) = digest.articles
    assert article.source.content is not None
    assert len(article.source.content) <= ParseLimits().max_content_chars
    assert article.source.truncated is True
    assert digest.truncated == {"content": 1}
    # counted once delivered (the poller's accounting after Kafka's acks)
    before = REGISTRY.get_sample_value("newsflow_feed_items_truncated_total", {"field": "content"})
    count_digest(digest, FEED.id)
    after = REGISTRY.get_sample_value("newsflow_feed_items_truncated_total", {"field": "content"})
    assert (after or 0) - (before or 0) == 1
    # the record-size trim in the parser process counts too
    job_digest, records = parse_job.digest_job(
        FEED,
        new_state(FEED),
        FetchResult(status="ok", url=BASE, http_status=200, body=body, validators=Validators()),
        None,
        NOW.timestamp(),
        POLICY,
        200_000,
        1,
    )
    assert records[0].trimmed
    assert job_digest.truncated == {"content": 1, "record_size": 1}


def test_every_cut_sets_the_flag_and_an_untouched_item_does_not() -> None:
    long_title = "headline " * 1000  # 9,000 chars > 2,000
    many_authors = "".join(f"<author>a{i}@x.example (Author {i})</author>" for i in range(30))
    body = _rss([long_title, "Authors", "Fits"]).replace(
        b"<title>Authors</title>", b"<title>Authors</title>" + many_authors.encode()
    )
    digest = _digest(body)
    flags = {a.source.title[:9]: a.source.truncated for a in digest.articles}
    assert flags == {"headline ": True, "Authors": True, "Fits": False}
    assert digest.truncated == {"title": 1, "authors": 1}
    small = ParseLimits(max_authors=2, max_categories=1, max_short_chars=5)
    cats = "<category>one</category><category>two</category>"
    parsed = _parse(
        _rss(["t"]).replace(b"<title>t</title>", b"<title>t</title>" + cats.encode()),
        limits=small,
    )
    assert parsed.items[0].truncated == ("categories",)
    parsed = _parse(
        _rss(["t"]).replace(b"<title>t</title>", b"<title>t</title><author>Longname</author>"),
        limits=small,
    )
    assert parsed.items[0].truncated == ("authors",)


# ---- 14.12 declarations -------------------------------------------------------------------

_SECRET = "EXPANDED-ENTITY"


def _with_doctype(prolog: str = "", root_encoding: str = "utf-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{root_encoding}"?>{prolog}'
        f'<!DOCTYPE rss [<!ENTITY secret "{_SECRET}">]>'
        '<rss version="2.0"><channel><title>x</title><item><title>a &secret; b</title>'
        "<link>https://hostile.example.net/1</link></item></channel></rss>"
    )


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("plain", _with_doctype().encode()),
        ("long prolog", _with_doctype("<!-- c -->" * 300).encode()),
        ("prolog of PIs", _with_doctype("<?pi x?>\n" * 500).encode()),
        ("utf-16 without BOM", _with_doctype(root_encoding="utf-16").encode("utf-16-le")),
        ("utf-16 with BOM", _with_doctype(root_encoding="utf-16").encode("utf-16")),
        ("EBCDIC", _with_doctype(root_encoding="cp037").encode("cp037")),
        ("lower-case", _with_doctype().replace("<!DOCTYPE", "<!DOCTYPE ").encode()),
    ],
)
def test_entity_declarations_never_reach_the_parser(name: str, body: bytes) -> None:
    parsed = _parse(body)
    titles = [i.title for i in parsed.items]
    assert not any(_SECRET in t for t in titles), (name, titles)
    assert "entity_declarations_removed" in parsed.warnings, (name, parsed.warnings)


# ---- 14.11 amplification ------------------------------------------------------------------


def test_a_huge_plain_title_is_capped_before_any_work() -> None:
    title = "word " * 4_000_000  # 20 MB: str.split made 4 million strings (~300 MB) first
    tracemalloc.start()
    try:
        text = html_to_text(title, 2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text) <= 2000
    assert peak < 2_000_000, f"{peak / 1e6:.0f} MB for a 2,000-character title"


def test_a_feed_of_many_tiny_entries_is_capped_before_feedparser() -> None:
    n = 100_000
    items = "".join(
        f"<item><title>t{i}</title><link>https://m.example/{i}</link></item>" for i in range(n)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>M</title>{items}'
        "<ttl>60</ttl></channel></rss>"
    ).encode()
    started = time.process_time()
    parsed = _parse(body)
    cpu = time.process_time() - started
    assert len(parsed.items) == 1000
    assert parsed.items[-1].title == "t999"
    assert parsed.dropped == {"over_max_items": n - 1000}
    assert parsed.meta.ttl_s == 3600  # what follows the items survives the cut
    assert not parsed.bozo  # the cut document is still well-formed
    assert cpu < 2.0, f"{cpu:.1f} s CPU (all of feedparser on 100,000 entries: ~12 s)"


def test_atom_entries_are_capped_too() -> None:
    entries = "".join(
        f"<entry><title>e{i}</title><link href='https://m.example/e{i}'/><id>urn:e{i}</id></entry>"
        for i in range(30)
    )
    body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>{entries}</feed>'.encode()
    parsed = _parse(body, limits=ParseLimits(max_items=5))
    assert [i.title for i in parsed.items] == [f"e{i}" for i in range(5)]
    assert parsed.dropped == {"over_max_items": 25} and not parsed.bozo


def _rlimit_as() -> int:
    return resource.getrlimit(resource.RLIMIT_AS)[0]


def test_parser_processes_have_memory_and_cpu_limits() -> None:
    ctx = parse_job.parser_context()
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=parse_job.exit_with_parent) as pool:
        limit = pool.submit(_rlimit_as).result(timeout=60)
        assert limit != resource.RLIM_INFINITY
        assert limit < 4 * parse_job.PARSE_MEMORY_BYTES
        # more memory than allowed: the task fails, the worker survives
        with pytest.raises(MemoryError):
            pool.submit(bytearray, 2 * parse_job.PARSE_MEMORY_BYTES).result(timeout=60)
        assert pool.submit(_rlimit_as).result(timeout=60) == limit
    with ProcessPoolExecutor(
        1, mp_context=ctx, initializer=parse_job.limit_worker, initargs=(1 << 30, 1)
    ) as pool:
        spin = "sum(i for i in range(10**10))"
        with pytest.raises(parse_job.ParseCpuExceeded):
            pool.submit(parse_job.within_budget, eval, spin).result(timeout=60)
        assert pool.submit(parse_job.within_budget, eval, "1 + 1").result(timeout=60) == 2


def test_arabic_misread_upstream_is_relabelled_with_the_language() -> None:
    misread = ARABIC.encode("cp1256").decode("cp1252")  # "ãÑÍÈÇ ..." already in valid UTF-8
    french = "Élection présidentielle à Paris"
    parsed = _parse(_rss([misread, french], language="ar"))
    assert [i.title for i in parsed.items] == [ARABIC, french]
    # without a language nothing says the Latin-1 letters are wrong
    assert _parse(_rss([misread])).items[0].title == misread


@pytest.mark.parametrize("content_type", ["text/xml; charset=windows-1256", None])
def test_utf8_arabic_declared_windows_1256_is_read_as_utf8(content_type: str | None) -> None:
    # "the reverse": read as declared it gave "ظ…ط±ط­ط¨ط§"
    body = _rss([ARABIC], encoding="utf-8", declared="windows-1256")
    parsed = _parse(body, content_type)
    assert parsed.items[0].title == ARABIC
    assert "charset: utf-8 (declared windows-1256)" in parsed.warnings
