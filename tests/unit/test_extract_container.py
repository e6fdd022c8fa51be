"""streams/extract/container.py: the article's container pointed out when trafilatura finds none."""

from __future__ import annotations

from lxml.html import document_fromstring

from streams.extract import extract
from streams.extract.container import mark_article_body

PARAS = [
    "The harbour authority confirmed on Monday that the northern quay will be rebuilt over the "
    "next two summers, after divers found the old timber piles badly rotten and unsafe.",
    "Fishing boats will moor at the southern breakwater while the work goes on, and the council "
    "has promised that the weekly market on the quay will move only a few metres along.",
    "Traders said they were relieved, although several asked for help with the cost of moving "
    "their stalls and for the work to pause during the busy summer months of the season.",
    "The authority expects to publish a detailed timetable in the spring once the contract for "
    "the piling has been signed with one of the three firms that have bid for the job.",
]


def page(container: str) -> str:
    body = (
        f"<p>{PARAS[0]}</p><h2>Where the boats go</h2><p>{PARAS[1]}</p>"
        f"<h2>Traders</h2><p>{PARAS[2]}</p><p>{PARAS[3]}</p>"
    )
    return (
        "<html lang='en'><body><div class='top'><p class='promo'>Subscribe to our morning "
        f"briefing for the day's top stories every weekday.</p></div>{container.format(body)}"
        "<div class='bottom'><p>Copyright 2025 The Example Courier, all rights reserved, no "
        "reproduction without permission.</p></div></body></html>"
    )


def test_unknown_container_is_marked_and_subheadings_survive() -> None:
    html = page("<div class='yazi-icerik'>{}</div>")
    tree = document_fromstring(html)
    assert mark_article_body(tree)
    assert tree.find(".//div[@itemprop='articleBody']") is not None
    text = extract(html.encode(), "https://example.org/quay").text
    assert "Where the boats go" in text and "Traders" in text
    assert "Subscribe" not in text and "Copyright" not in text


def test_nothing_is_marked_where_trafilatura_has_a_container() -> None:
    for container in ("<article>{}</article>", "<div class='entry-content'>{}</div>"):
        assert not mark_article_body(document_fromstring(page(container)))


def test_paragraphs_spread_over_many_blocks_mark_nothing() -> None:
    blocks = "".join(f"<div class='b{i}'><p>{p}</p></div>" for i, p in enumerate(PARAS))
    html = f"<html><body>{blocks}</body></html>"
    assert not mark_article_body(document_fromstring(html))
