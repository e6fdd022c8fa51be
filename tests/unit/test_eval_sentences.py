"""Sentence splitting and tokenisation as the training corpora cut text (issue 13 item 2).

Texts written for this test."""

from __future__ import annotations

import pytest

from streams.enrich import entities
from streams.enrich.features import tokenize
from streams.enrich.sentences import split


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split(text)]


def _tokens(text: str) -> list[str]:
    return [text[a:b] for a, b in tokenize(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Die Feier fand in St. Niklaus statt. Danach sprach Dr. Meier.",
            ["Die Feier fand in St. Niklaus statt.", "Danach sprach Dr. Meier."],
        ),
        (
            "J. R. R. Tolkien taught at Oxford. He retired in 1959.",
            ["J. R. R. Tolkien taught at Oxford.", "He retired in 1959."],
        ),
        (
            "The U.S. Senate voted. Acme Corp. Ltd. said nothing.",
            ["The U.S. Senate voted.", "Acme Corp. Ltd. said nothing."],
        ),
        (
            "Am 3. Oktober spielte der 1. FC Köln. Es endete 2:1.",
            ["Am 3. Oktober spielte der 1. FC Köln.", "Es endete 2:1."],
        ),
        (
            "II. Dünya Savaşı'nda Ankara'ya gitti. Sonra döndü.",
            ["II. Dünya Savaşı'nda Ankara'ya gitti.", "Sonra döndü."],
        ),
        (
            "قال الوزير، إن الوفد وصل إلى دمشق؛ فهل تنجح المحادثات؟ لا أحد يعرف.",
            ["قال الوزير، إن الوفد وصل إلى دمشق؛", "فهل تنجح المحادثات؟", "لا أحد يعرف."],
        ),
        ("Er kam ca. 20 km weit. Gut", ["Er kam ca. 20 km weit.", "Gut"]),
        ('Sie rief: "Halt!" Dann ging sie.', ['Sie rief: "Halt!"', "Dann ging sie."]),
        ("Zeile eins\nZeile zwei", ["Zeile eins", "Zeile zwei"]),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("St. Niklaus und Dr. Meier", ["St.", "Niklaus", "und", "Dr.", "Meier"]),
        ("J. R. R. Tolkien", ["J.", "R.", "R.", "Tolkien"]),
        ("die U.S.-Wahl, z.B. heute", ["die", "U.S.", "-", "Wahl", ",", "z.B.", "heute"]),
        ("Germany's coach", ["Germany", "'s", "coach"]),
        ("d'Uruguay Ankara'da Saint-Étienne", ["d'Uruguay", "Ankara'da", "Saint-Étienne"]),
        ("3:0 nach 1.5 Stunden", ["3:0", "nach", "1.5", "Stunden"]),
        ("''Ozark'' ... ok", ["''", "Ozark", "''", "...", "ok"]),
        ("وصل، ثم؛ هل؟ وسوريا", ["وصل", "،", "ثم", "؛", "هل", "؟", "وسوريا"]),
        ("Ende. Plan", ["Ende", ".", "Plan"]),
        ("ST. LOUIS WINS", ["ST.", "LOUIS", "WINS"]),
        ("Bahia ( 1967–1970 )", ["Bahia", "(", "1967–1970", ")"]),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert _tokens(text) == expected


def test_no_token_crosses_a_sentence_cut() -> None:
    text = "Es kam Dr. Meier. Dann J. Smith aus den U.S. Das war am 3. Mai. Ende...\nNeu"
    cuts = {e for _s, e in split(text)}
    for a, b in tokenize(text):
        assert not any(a < c < b for c in cuts)


def test_an_abbreviation_does_not_cut_the_name_the_tagger_sees() -> None:
    found = entities.extract_entities({"text": "Die Feier fand in St. Niklaus statt."}, "de")
    assert any("Niklaus" in e.text and e.text.startswith("St") for e in found), found
