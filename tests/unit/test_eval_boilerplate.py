"""Boilerplate lines are no entity source, and blanking them moves no offset (issue 13 item 2).

Texts written for this test, in several languages."""

from __future__ import annotations

import pytest

from streams.enrich.pipeline import analyse_many
from streams.enrich.text import clean, mask_boilerplate, prepare

BOILERPLATE = [
    "Read more of this story at Slashdot.",
    "The post Ten Ways to Visit Lisbon appeared first on Harbour Travel Weekly.",
    "Continue reading…",
    "Continue reading Madrid mayor resigns at Riverside Gazette",
    "Read the full story at Northwind Herald",
    "Cet article Grève à Marseille est apparu en premier sur Le Courrier du Sud.",
    "L’article Grève à Marseille est apparu en premier sur Le Courrier du Sud.",
    "Der Beitrag Streik in Hamburg erschien zuerst auf Nordkurier Digital.",
    "La entrada Huelga en Sevilla se publicó primero en Diario Andaluz.",
    "اقرأ أيضا: وزير الخارجية يصل إلى عمّان",
    "إقرأ أيضاً: انطلاق مهرجان جدة",
    "ظهرت المقالة زيارة الرياض أولاً على صحيفة الواحة.",
    "Subscribe to Morning Brief on Apple Podcasts or Spotify.",
    "Sign up for the Harbour Daily newsletter",
    "Learn more about your ad choices. Visit podcastchoices.com/adchoices",
    "Follow us on Twitter at @northwind",
    "Devamını oku: Ankara'da yeni karar",
    "Weiterlesen",
    "Lire aussi : Le maire de Lyon démissionne",
    "Читать далее: Визит в Казань",
    "Sign up for our evening briefing and get the top stories in your inbox.",
    "This article is for subscribers only. Subscribe now for full access.",
    "© 2026 Harbour Media Group. Tous droits réservés.",
    "Alle Rechte vorbehalten.",
]


@pytest.mark.parametrize("line", BOILERPLATE)
def test_boilerplate_is_blanked_whole(line: str) -> None:
    text = f"Die Regierung tagte am Montag.\n{line}\nEnde."
    masked = mask_boilerplate(text)
    assert len(masked) == len(text)
    assert masked.split("\n")[1].strip() == ""
    assert masked.startswith("Die Regierung tagte am Montag.\n") and masked.endswith("\nEnde.")


@pytest.mark.parametrize(
    "text",
    [
        "He said he would continue reading the report before the vote.",
        "Ministers read more than 200 pages in Brussels.",
        "Die Abgeordneten wollen weiterlesen, sagte Müller.",
        "The post office in Leeds closed on Friday.",
        "وقال إن على الجميع أن يقرأ أيضا التقرير.",
    ],
)
def test_story_text_is_kept(text: str) -> None:
    assert mask_boilerplate(text) == text


def test_boilerplate_at_the_end_of_a_summary_line() -> None:
    text = "Apple sued Acme over patents. Read more of this story at Slashdot."
    masked = mask_boilerplate(text)
    assert masked.startswith("Apple sued Acme over patents.")
    assert "Slashdot" not in masked and len(masked) == len(text)


def test_offsets_stay_valid_and_no_entity_comes_from_boilerplate() -> None:
    content = (
        "Angela Merkel traf in Paris den Präsidenten.\n"
        "Der Beitrag Merkel in Paris erschien zuerst auf Berliner Morgenblatt.\n"
        "Read more of this story at Slashdot."
    )
    prep = prepare("Merkel in Paris", "", content, 10_000)
    assert {k: len(v) for k, v in prep.fields.items()} == {"title": 15, "content": len(content)}
    ((_lang, found),) = analyse_many([(prep, "de")])
    names = {e.text for e in found}
    assert "Slashdot" not in names and "Berliner Morgenblatt" not in names
    originals = {"title": "Merkel in Paris", "content": content}
    for ent in found:
        for m in ent.mentions:
            assert originals[m.field][m.start : m.end] == prep.fields[m.field][m.start : m.end]
            assert m.end <= content.index("\nDer Beitrag") or m.field == "title"


def test_lone_surrogates_become_replacement_characters_in_place() -> None:
    text = "Bern \ud800 und Genf \udfff"
    out = clean(text)
    assert len(out) == len(text) and "\ud800" not in out and out.count("\ufffd") == 2
