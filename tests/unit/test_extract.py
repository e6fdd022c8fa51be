"""Page extraction (streams/extract): decoding, statuses, metadata, bounds, the scorer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from streams.extract import ExtractLimits, extract
from streams.extract.decode import decode_html, normalise_label
from streams.extract.evaluate import load_pages, page_f1
from streams.extract.score import score_text, tokens

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "pages"

ARTICLE = (
    "<p>The harbour authority confirmed on Monday that the northern quay will be rebuilt over "
    "the next two summers, after divers found the old timber piles badly rotten.</p>"
    "<p>Fishing boats will moor at the southern breakwater while the work goes on, and the "
    "council has promised that the weekly market on the quay will move only a few metres.</p>"
    "<p>The project is expected to cost eleven million and will be paid for by the port.</p>"
)


def page(body: str = ARTICLE, head: str = "", html_attrs: str = 'lang="en"') -> bytes:
    return (
        f"<!DOCTYPE html><html {html_attrs}><head><title>Quay to be rebuilt</title>{head}</head>"
        f"<body><nav><a href='/'>Home</a><a href='/news'>News</a></nav><article>"
        f"<h1>Quay to be rebuilt</h1>{body}</article><footer>© Example</footer></body></html>"
    ).encode()


# ------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("label", "codec"),
    [("ISO-8859-1", "cp1252"), ("gb2312", "gb18030"), ("UTF8", "utf-8"), ("bogus", None)],
)
def test_labels_map_as_browsers_do(label: str, codec: str | None) -> None:
    assert normalise_label(label) == codec


def test_bom_wins_over_meta() -> None:
    data = b"\xef\xbb\xbf<meta charset='windows-1251'>" + "Привет".encode()
    d = decode_html(data)
    assert (d.source, d.encoding) == ("bom", "utf-8")
    assert "Привет" in d.text


def test_http_header_charset_wins_over_meta() -> None:
    data = "<meta charset='utf-8'><p>مرحبا بالعالم</p>".encode("cp1256")
    d = decode_html(data, {"content-type": "text/html; charset=windows-1256"})
    assert d.source == "http"
    assert "مرحبا بالعالم" in d.text


def test_meta_charset_windows_1256() -> None:
    data = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
    data += "<p>افتتاح محطة جديدة لتحلية المياه</p>"
    d = decode_html(data.encode("cp1256"))
    assert d.source == "meta"
    assert "محطة جديدة" in d.text


def test_mislabelled_utf8_is_read_as_utf8() -> None:
    data = "<meta charset='windows-1251'><p>日本語のテキスト</p>".encode()
    assert "日本語" in decode_html(data).text


def test_undeclared_cyrillic_is_detected() -> None:
    text = "В Самаре открыли движение по новому мосту через Волгу. " * 20
    d = decode_html(f"<html><body><p>{text}</p></body></html>".encode("cp1251"))
    assert d.source == "detected"
    assert "новому мосту" in d.text


def test_mojibake_is_repaired_in_the_text() -> None:
    body = ARTICLE.replace("harbour authority", "autorité portuaire « élue »")
    data = page(body).decode("utf-8").encode("utf-8").decode("cp1252").encode("utf-8")
    result = extract(data, "https://example.org/a")
    assert result.status == "ok"
    assert "autorité portuaire « élue »" in result.text
    assert "Ã©" not in result.text


def test_persian_zero_width_non_joiner_survives() -> None:
    body = "".join(
        f"<p>{s}</p>"
        for s in [
            "این بخش هفت کیلومتر طول دارد و شش ایستگاه را در بر می‌گیرد و کار ریل‌گذاری ادامه دارد.",
            "او افزود که با راه‌اندازی این خط، روزانه حدود هشتاد هزار نفر از مترو استفاده می‌کنند.",
            "شورای شهر اعلام کرده است که بخشی از درآمد عوارض نوسازی به مترو اختصاص می‌یابد.",
        ]
    )
    result = extract(page(body, html_attrs='lang="fa" dir="rtl"'), None)
    assert "می‌گیرد" in result.text
    assert result.page_language == "fa"


# ------------------------------------------------------------------------------ statuses


def test_ok_page_has_text_title_language() -> None:
    result = extract(page(), "https://example.org/quay")
    assert result.status == "ok"
    assert "timber piles" in result.text
    assert "Home" not in result.text
    assert result.title == "Quay to be rebuilt"
    assert result.chars == len(result.text)
    assert result.page_language == "en"


def test_not_html() -> None:
    assert extract(b"%PDF-1.7 ...", None).status == "not_html"
    assert extract(page(), None, {"Content-Type": "image/png"}).status == "not_html"


def test_empty_page() -> None:
    assert extract(b"<html><body><nav>Home</nav></body></html>", None).status == "empty"
    assert extract(b"", None).status == "empty"


def test_paywall_from_json_ld_is_blocked_and_carries_no_text() -> None:
    ld = (
        '<script type="application/ld+json">{"@type":"NewsArticle","headline":"x",'
        '"isAccessibleForFree":false}</script>'
    )
    body = "<p>Households will see their bills rise by five per cent in April.</p>"
    body += '<div class="paywall"><p>Subscribe to continue reading.</p></div>'
    result = extract(page(body, ld), None)
    assert result.status == "blocked"
    assert result.text == ""
    assert "paywall" in (result.reason or "")


def test_full_article_with_cookie_banner_is_not_blocked() -> None:
    banner = '<div class="cookie-consent"><p>We use cookies and partners for ads.</p></div>'
    assert extract(page(ARTICLE + banner), None).status == "ok"


def test_short_cjk_news_article_with_cookie_banner_is_not_blocked() -> None:
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "新大桥合龙"}
    story = (
        "<article><h1>新大桥合龙</h1><p>江城一座新的跨江大桥主桥今天成功合龙，预计明年春季通车。</p>"
        "<p>总工程师说，大桥将连接两岸的新城区，通车后去机场的时间将缩短二十分钟。</p>"
        "<p>省交通厅表示，施工期间没有发生安全事故，桥面铺装和照明工程将在年底前完成。</p></article>"
    )
    banner = (
        '<div id="cookie-consent" class="consent"><p>我们使用Cookie来改善您的浏览体验，'
        "并与合作伙伴共享数据用于个性化广告。</p><button>全部接受</button><button>拒绝</button></div>"
        '<footer><a href="/privacy">隐私政策</a> <a href="/cookies">Cookie设置</a></footer>'
    )
    html = (
        "<html lang='zh'><head><title>新大桥合龙</title>"
        f"<script type='application/ld+json'>{json.dumps(ld, ensure_ascii=False)}</script>"
        f"</head><body>{banner}{story}</body></html>"
    )
    result = extract(html.encode(), None)
    assert result.status == "ok", result.reason
    assert "总工程师" in result.text


def test_cookie_wall_is_blocked() -> None:
    wall = (
        "<html lang='en'><head><title>Privacy settings</title></head><body>"
        "<div id='sp_message_container'><h1>Before you continue</h1><p>We and our partners "
        "use cookies to store and access information on your device for personalised ads and "
        "content, ad and content measurement. You can change your consent and privacy "
        "choices at any time.</p><button>Accept all</button><button>Reject</button>"
        "</div></body></html>"
    )
    assert extract(wall.encode(), None).status == "blocked"


def test_unexpected_error_is_a_status_not_an_exception() -> None:
    result = extract(None, None)  # type: ignore[arg-type]
    assert result.status == "extract_failed"


# ------------------------------------------------------------------------------ metadata


def test_canonical_and_amp() -> None:
    amp = page(head='<link rel="canonical" href="/2025/quay">', html_attrs='amp lang="en"')
    result = extract(amp, "https://example.org/2025/quay/amp")
    assert result.canonical_url == "https://example.org/2025/quay"
    assert "amp" in result.flags
    regular = page(head='<link rel="amphtml" href="https://example.org/2025/quay/amp">')
    assert extract(regular, "https://example.org/2025/quay").amp_url.endswith("/amp")  # type: ignore[union-attr]


def test_json_ld_date_author_image_in_graph() -> None:
    ld = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Example"},
            {
                "@type": "NewsArticle",
                "headline": "Quay to be rebuilt",
                "datePublished": "2025-03-14T08:45:00+01:00",
                "author": [{"@type": "Person", "name": "Maggie Thornton"}],
                "image": {"@type": "ImageObject", "url": "https://img.example.org/q.jpg"},
            },
        ],
    }
    head = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    result = extract(page(head=head), None)
    assert result.published_at is not None
    assert result.published_at.isoformat() == "2025-03-14T08:45:00+01:00"
    assert result.date_method == "json-ld"
    assert result.authors == ["Maggie Thornton"]
    assert result.image == "https://img.example.org/q.jpg"


def test_localised_date_in_page_text() -> None:
    body = '<div class="date">11 mars 2025 à 10h15</div>' + ARTICLE
    result = extract(page(body, html_attrs='lang="fr"'), None)
    assert result.published_at is not None
    assert result.published_at.date().isoformat() == "2025-03-11"


def test_chinese_date_in_page_text() -> None:
    body = '<div class="info">2025年12月26日 10:00 来源：本报</div>' + ARTICLE
    result = extract(page(body), None)
    assert result.published_at is not None
    assert result.published_at.date().isoformat() == "2025-12-26"


def test_short_chinese_article_in_heavy_markup_is_read_as_cjk() -> None:
    paras = [
        "今年暑期，省博物馆首次在每周五和周六延长开放至晚上九点，夜场门票开售后很快被预约一空。",
        "馆方统计显示，夜场观众中十八岁至三十五岁的年轻人占七成以上。许多人下班后结伴而来。",
        "负责人表示，将根据观众反馈，考虑在节假日期间继续保留夜间开放。",
    ]
    styles = "".join(f".c{i}{{margin:{i}px}}" for i in range(400))  # markup outweighs the text
    html = (
        f"<html lang='zh'><head><style>{styles}</style></head><body><article><h1>博物馆夜场</h1>"
        f"<p class='byline'>记者 刘洋 · 2025年07月19日</p><div class='article-body'>"
        + "".join(f"<p>{p}</p>" for p in paras)
        + "</div></article></body></html>"
    )
    result = extract(html.encode(), None)
    assert result.text.splitlines() == paras  # one line per paragraph, no byline


def test_credit_lines_closing_the_body_are_cut() -> None:
    body = ARTICLE + "<p>（责任编辑：周晓）</p><p>Copyright © 2025 Example Courier</p>"
    result = extract(page(body), None)
    assert result.text.splitlines()[-1].startswith("The project is expected")
    kept = ARTICLE + "<p>Editor: this line is not a credit pattern and stays in the body.</p>"
    assert extract(page(kept), None).text.endswith("stays in the body.")


def test_live_blog_and_multi_page_flags() -> None:
    ld = '<script type="application/ld+json">{"@type":"LiveBlogPosting","headline":"x"}</script>'
    assert "live_blog" in extract(page(head=ld), None).flags
    pager = '<div class="pagination">Page 1 / 3 <a href="?p=2">Next</a></div>'
    assert "multi_page" in extract(page(ARTICLE + pager), None).flags


# -------------------------------------------------------------------------------- bounds


def test_fifty_megabyte_page_is_refused_fast() -> None:
    huge = b"<html><body><p>" + b"word " * (10 * 2**20) + b"</p></body></html>"
    started = time.perf_counter()
    result = extract(huge, None)
    assert result.status == "too_large"
    assert time.perf_counter() - started < 1.0


def test_million_node_page_is_cut_with_bounded_time() -> None:
    data = page(ARTICLE + "<i>x</i>" * 1_000_000)
    started = time.perf_counter()
    result = extract(data, None, limits=ExtractLimits(max_tags=20_000))
    elapsed = time.perf_counter() - started
    assert "truncated" in result.flags
    assert "timber piles" in result.text
    assert elapsed < 20  # generous: the machine is shared; unbounded takes minutes


# -------------------------------------------------------------------------------- scorer


def test_tokens_split_cjk_per_character() -> None:
    assert tokens("高铁 新线 opened, 2025!") == ["高", "铁", "新", "线", "opened", "2025"]


def test_score_text() -> None:
    assert score_text("a b c d", "a b c d").f1 == 1.0
    s = score_text("a b x", "a b c d")
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(0.5)
    assert score_text("", "").f1 == 1.0
    assert score_text("a", "").f1 == 0.0


def test_page_f1_scores_status_for_blocked_pages() -> None:
    assert page_f1("blocked", "", {"status": "blocked"}) == 1.0
    assert page_f1("ok", "text", {"status": "blocked"}) == 0.0
    assert page_f1("empty", "", {"status": "ok", "body": "text"}) == 0.0


def test_page_set_is_complete() -> None:
    pages = load_pages(PAGES)
    langs = {p.lang for p in pages}
    assert len(pages) >= 40
    assert {"ar", "fa", "tr", "ru", "zh", "en", "fr", "de", "es"} <= langs


@pytest.mark.parametrize(
    "name",
    ["ar/mahattat-tahliya", "ru/most-cherez-volgu", "fr/vendanges-precoces", "de/cookie-wall"],
)
def test_fixture_pages_extract_as_expected(name: str) -> None:
    html = (PAGES / f"{name}.html").read_bytes()
    exp = json.loads((PAGES / f"{name}.json").read_text(encoding="utf-8"))
    result = extract(html, exp["url"], exp.get("headers"))
    assert result.status == exp["status"]
    assert page_f1(result.status, result.text, exp) >= 0.95
