"""streams/extract/prefilter.py: what is cut before trafilatura, and what must never be."""

from __future__ import annotations

from typing import Any

from lxml.html import document_fromstring

from streams.extract import extract
from streams.extract.prefilter import (
    demote_minor_articles,
    drop_ad_slots,
    drop_card_groups,
    drop_comment_threads,
    drop_inserts,
    drop_link_farms,
)

PROSE = (
    "<p>The harbour authority confirmed on Monday that the northern quay will be rebuilt over the "
    "next two summers, after divers found the old timber piles badly rotten and unsafe.</p>"
    "<p>Fishing boats will moor at the southern breakwater while the work goes on, and the "
    "council has promised that the weekly market on the quay will move only a few metres.</p>"
)
FARM = '<div class="most-read"><ul>' + "".join(
    f'<li><a href="/a/{i}">Headline number {i} of the day</a></li>' for i in range(30)
) + "</ul></div>"  # fmt: skip


def tree(body: str) -> Any:
    return document_fromstring(f"<html><body>{body}</body></html>")


def test_link_farm_is_cut_and_the_article_stays() -> None:
    t = tree(f"<article><h1>Quay</h1>{PROSE}</article>{FARM}")
    assert drop_link_farms(t) == 1
    text = t.text_content()
    assert "Headline number" not in text
    assert "timber piles" in text


def test_block_with_prose_between_links_is_kept() -> None:
    block = "<div>" + "".join(
        f'<p>Read <a href="/r/{i}">report {i}</a> which says the quay timber is rotten and must '
        f"be replaced before winter storms arrive.</p>"
        for i in range(12)
    ) + "</div>"  # fmt: skip
    t = tree(PROSE + block)
    assert drop_link_farms(t) == 0


def test_document_listing_one_link_per_paragraph_is_kept() -> None:
    listing = "<div>" + "".join(f'<p><a href="/d/{i}">Minutes {i}</a></p>' for i in range(12))
    t = tree(PROSE + listing + "</div>")
    assert drop_link_farms(t) == 0


def test_page_that_is_only_links_is_left_whole() -> None:
    t = tree(FARM)
    assert drop_link_farms(t) == 0
    assert "Headline number 3" in t.text_content()


def test_tail_text_after_a_farm_survives() -> None:
    t = tree(f"<div>{PROSE}{FARM}Closing words of the article.</div>")
    assert drop_link_farms(t) == 1
    assert "Closing words of the article." in t.text_content()


def test_comment_thread_is_cut() -> None:
    thread = '<section id="comments"><p>I think the quay was fine as it was.</p></section>'
    t = tree(PROSE + thread)
    drop_comment_threads(t)
    assert "quay was fine" not in t.text_content()


def test_big_link_heavy_page_keeps_its_article() -> None:
    menu = '<div class="menu"><ul>' + "".join(
        f'<li><a href="/s/{i}">Section {i}</a></li>' for i in range(300)
    ) + "</ul></div>"  # fmt: skip
    html = (
        f"<html lang='en'><body>{menu}<article><h1>Quay</h1>{PROSE}</article>{FARM}</body></html>"
    )
    result = extract(html.encode(), "https://example.org/quay")
    assert result.status == "ok"
    assert "timber piles" in result.text
    assert "Section 12" not in result.text
    assert "Headline number" not in result.text


def test_trafilatura_escalation_is_ours() -> None:
    import trafilatura.core

    extract(f"<html><body>{PROSE}</body></html>".encode(), None)
    assert trafilatura.core.ESCALATION_MAX_LENGTH == 0


def card(i: int, tag: str = "article") -> str:
    return (
        f'<{tag} class="card item-{i}"><span class="kicker">{i} min</span>'
        f'<h3><a href="/story/{i}">Council names new harbour master after long search {i}</a></h3>'
        f"<p>The appointment ends a vacancy of eight months at the port authority.</p></{tag}>"
    )


def test_teaser_grid_before_and_after_a_short_article_is_cut() -> None:
    grid = '<section class="top"><h2>Top stories</h2>' + "".join(card(i) for i in range(4))
    html = (
        f"<html lang='en'><body>{grid}</section><div class='story'><h1>Quay</h1>{PROSE}</div>"
        f"<div class='more'><h2>More from Local</h2>{''.join(card(i, 'div') for i in range(6))}"
        "</div></body></html>"
    )
    t = tree(html.split("<body>")[1].split("</body>")[0])
    assert drop_card_groups(t) == 10
    text = t.text_content()
    assert "vacancy" not in text and "Top stories" not in text and "More from" not in text
    assert "timber piles" in text
    result = extract(html.encode(), "https://example.org/quay")
    assert "timber piles" in result.text and "vacancy" not in result.text


def test_paragraphs_and_live_posts_are_not_cards() -> None:
    linked_paras = "".join(
        f'<p><a href="/r/{i}">The harbour authority report number {i}</a> says the quay timber is'
        " rotten.</p>"
        for i in range(5)
    )
    posts = "".join(
        f'<div class="live-post"><h3><a href="#post-{i}">Update from the quay at ten past {i}</a>'
        f"</h3><p>Divers are back in the water.</p></div>"
        for i in range(5)
    )
    t = tree(PROSE + linked_paras + posts)
    assert drop_card_groups(t) == 0


def test_two_cards_are_not_a_grid() -> None:
    t = tree(PROSE + card(1) + card(2))
    assert drop_card_groups(t) == 0


def test_pull_quote_and_read_also_lines_are_cut() -> None:
    said = "Nobody wants to shut a bridge that carries thirty thousand vehicles a day"
    body = (
        f"<div class='body'><p>{said}, said the head of highways.</p>"
        f"<blockquote><p>“{said}”</p></blockquote>"
        '<p><strong>Read more:</strong> <a href="/x">Ferry timetable out for summer</a></p>'
        "<p>Also read:</p><p><a href='/y'>Bakery owners fear a quiet spring on Quay Street</a></p>"
        f"<figure class='wp-block-pullquote'><blockquote><p>Short words</p></blockquote></figure>"
        f"{PROSE}</div>"
    )
    t = tree(body)
    assert drop_inserts(t) == 4
    text = t.text_content()
    assert text.count(said) == 1
    assert "Ferry timetable" not in text and "Also read" not in text and "Bakery" not in text
    assert "Short words" not in text and "timber piles" in text


def test_quote_that_is_not_repeated_stays() -> None:
    t = tree(PROSE + "<blockquote><p>We will rebuild the quay stone by stone, whatever it costs."
             "</p></blockquote>")  # fmt: skip
    assert drop_inserts(t) == 0


def test_listicle_items_among_the_articles_paragraphs_stay() -> None:
    t = tree(f"<div class='entry'>{PROSE}{''.join(card(i, 'div') for i in range(5))}</div>")
    assert drop_card_groups(t) == 0


def test_teaser_articles_before_a_short_story_are_demoted() -> None:
    html = (
        f"<html lang='en'><body><div class='top'>{card(1)}</div>"
        f"<article class='story'><h1>Quay</h1>{PROSE}</article></body></html>"
    )
    t = tree(html.split("<body>")[1].split("</body>")[0])
    assert demote_minor_articles(t) == 1
    assert [a.get("class") for a in t.iter("article")] == ["story"]
    result = extract(html.encode(), "https://example.org/quay")
    assert "timber piles" in result.text and "vacancy" not in result.text


def test_a_short_story_before_a_long_appended_one_stays_an_article() -> None:
    story = f"<article><h1>Quay</h1><p>{'The quay will be rebuilt next summer. ' * 3}</p></article>"
    appended = f"<article><h2>Next story</h2>{PROSE * 3}</article>"
    t = tree(story + appended)
    assert demote_minor_articles(t) == 0


def test_comment_rule_matches_trafilaturas_expression() -> None:
    from trafilatura.xpaths import REMOVE_COMMENTS_AND_LISTS_XPATH

    blocks = (
        '<div id="comments"><p>a</p></div><ol id="comment-list"><li>b</li></ol>'
        '<ul id="disqus_thread"><li>c</li></ul><section class="article-comments">d</section>'
        '<div class="commentary">e</div><div id="Comments-2">f</div><details class="comment">g'
        '</details><div id="comol">h</div><div id="dsq-comments">i</div><ul class="comments-x">'
        '<li>j</li></ul><div class="post-comments">k</div><ol id="dsq-comments">l</ol>'
        '<div class="no-comment">m</div><div id="x-comments">n</div>'
    )
    expected = tree(blocks)
    want = sorted(
        " ".join(e.text_content().split()) for e in REMOVE_COMMENTS_AND_LISTS_XPATH[0](expected)
    )
    t = tree(blocks)
    before = {" ".join(e.text_content().split()) for e in t.iter("div", "ol", "ul", "section")}
    before |= {" ".join(e.text_content().split()) for e in t.iter("details")}
    assert drop_comment_threads(t) == len(want)
    after = {" ".join(e.text_content().split()) for e in t.iter("div", "ol", "ul", "section")}
    after |= {" ".join(e.text_content().split()) for e in t.iter("details")}
    assert sorted(before - after) == want


def test_ad_slots_go_and_ad_free_text_stays() -> None:
    slots = (
        '<div class="ad-slot"><div class="gpt" id="div-gpt-ad-1"></div>'
        '<span class="ad-label">Advertisement</span></div><ins class="adsbygoogle"></ins>'
        "<amp-ad width='300' height='250'></amp-ad>"
    )
    kept = f"<div class='ad-free story'>{PROSE}</div><div class='header'>Head</div>"
    t = tree(slots + kept)
    assert drop_ad_slots(t) == 3
    text = t.text_content()
    assert "Advertisement" not in text and "timber piles" in text and "Head" in text


def test_picture_paragraph_with_caption_is_cut_inline_icons_stay() -> None:
    body = (
        f"<div>{PROSE}<p class='f_center'><img src='/p.jpg'><br>Divers at the north quay.</p>"
        "<p>Traders were told on Monday <img src='/i.png' alt=''> that the market stays.</p></div>"
    )
    t = tree(body)
    assert drop_inserts(t) == 1
    text = t.text_content()
    assert "Divers at the north quay" not in text and "market stays" in text
