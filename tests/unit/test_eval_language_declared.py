"""A declared language wins on short text unless the script contradicts it or the text evidence
is overwhelming (issue 13 item 2; ``language`` rule 5). Texts written for this test."""

from __future__ import annotations

import pytest

from streams.enrich.language import detect_language

# Names only: they say nothing about the language of the feed that carries them.
NAMES = [
    ("Françoise-Athénaïs de Montrichard", "de"),
    ("Estadio Municipal de Valladolid , Valladolid", "de"),
    ("Lázně Bělohrad u Jičína", "de"),
    ("Ghost Riders in the Sky", "fr"),
    ("Kappeyne van de Wetering", "fr"),
    ("Björn Dæhlie , Thomas Alsgaard", "nl"),
    ("Osmanlı İmparatorluğu", "de"),
    # a sentence of the declared language about foreign names: the names' letters do not count
    ("Au tournoi de Prague , le Français a battu Tomáš Berdych et Radek Štěpánek .", "fr"),
    ("Im Finale schlug sie Agnieszka Radwańska und Dominika Cibulková .", "de"),
    # particles inside names are part of the names
    ("Pretoria - 10 - Hennie van der Merwe , 11 - Sarel du Toit , 12 - Koos de Villiers", "en"),
    # a long list of names is still names
    (
        "Agrigento , Caltanissetta , Castelvetrano , Mazara , Marsala , Trapani , Erice , "
        "Partanna , Sciacca , Menfi , Ribera , Licata , Gela , Vittoria , Comiso , Ragusa , "
        "Modica , Scicli , Pozzallo , Ispica , Noto , Avola , Siracusa , Augusta , Lentini",
        "fr",
    ),
]


@pytest.mark.parametrize(("text", "declared"), NAMES)
def test_names_keep_the_declared_language(text: str, declared: str) -> None:
    result = detect_language(text, declared)
    assert result.code == declared
    assert result.method == "declared"


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        # a sentence in another language is overwhelming evidence, even short
        ("Le gouvernement a annoncé une nouvelle réforme des retraites hier soir.", "de", "fr"),
        ("Die Regierung hat gestern eine neue Reform angekündigt.", "en", "de"),
        ("The minister said the talks would continue next week.", "fr", "en"),
        # a script the declared language is not written in
        ("وصل وزير الخارجية إلى دمشق", "de", "ar"),
        ("Москва объявила о новых мерах", "fr", "ru"),
    ],
)
def test_overwhelming_text_or_another_script_overrides(
    text: str, declared: str, expected: str
) -> None:
    assert detect_language(text, declared).code == expected


def test_without_declaration_the_text_decides() -> None:
    assert detect_language("Le gouvernement a annoncé une réforme.", None).code == "fr"
