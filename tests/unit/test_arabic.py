"""Arabic text functions: normalisation, proclitics, entity keys, sentence spans."""

from __future__ import annotations

import pytest

from streams.enrich.arabic import (
    article_offset,
    is_definite,
    normalize,
    normalize_entity,
    split_clitics,
)
from streams.enrich.sentences import split as sentences


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("أحمد", "احمد"),
        ("إسرائيل", "اسرائيل"),
        ("آمنة", "امنه"),
        ("ٱلله", "الله"),
        ("مصطفى", "مصطفي"),
        ("مَدْرَسَةٌ", "مدرسه"),  # harakat removed, ta marbuta unified
        ("العـــراق", "العراق"),  # tatweel removed
        ("Ankara 2026", "Ankara 2026"),  # everything else kept
        ("سوريا، تركيا", "سوريا، تركيا"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("token", "prefix", "stem"),
    [
        ("والعراق", "وال", "عراق"),
        ("بالعراق", "بال", "عراق"),
        ("للعراق", "لل", "عراق"),
        ("العراق", "ال", "عراق"),
        ("وبالعراق", "وبال", "عراق"),
        ("وسوريا", "و", "سوريا"),
        ("وأنقرة", "و", "أنقرة"),
        ("بغداد", "", "بغداد"),  # ب is a root letter: the stem is not better attested
        ("لبنان", "", "لبنان"),
        ("الى", "", "الى"),  # would leave a one-letter stem
        ("إلكاي", "", "إلكاي"),  # إل is not the article
        ("وَالْعِرَاق", "وَالْ", "عِرَاق"),  # diacritics stay with their letters
    ],
)
def test_split_clitics(token: str, prefix: str, stem: str) -> None:
    assert split_clitics(token) == (prefix, stem)
    assert prefix + stem == token


def test_split_clitics_uses_the_lexicon_and_never_leaves_a_short_stem() -> None:
    known = {"وليد": 40, "ليد": 0, "سوريا": 500, "وسوريا": 3, "تركيا": 300}
    assert split_clitics("وليد", known) == ("", "وليد")
    assert split_clitics("وسوريا", known) == ("و", "سوريا")
    assert split_clitics("لتركيا", known) == ("ل", "تركيا")
    for token in ("وفي", "بها", "له", "ولل"):
        _prefix, stem = split_clitics(token, known)
        assert len(normalize(stem)) >= 2


def test_article_offset_keeps_the_article_but_not_the_proclitic() -> None:
    assert article_offset("وال") == 1  # "والعراق" -> "العراق"
    assert article_offset("بال") == 1
    assert article_offset("ال") == 0
    assert article_offset("لل") == 2  # the article's alef is elided: "للعراق" -> "عراق"
    assert article_offset("و") == 1
    assert is_definite("العراق") and not is_definite("إلكاي")


def test_entity_key_is_the_same_for_clitic_and_letter_variants() -> None:
    keys = {normalize_entity(v) for v in ("العراق", "والعراق", "بالعراق", "للعراق", "فالعراق")}
    assert keys == {"عراق"}
    assert normalize_entity("وسوريا") == normalize_entity("سوريا") == "سوريا"
    assert normalize_entity("أنقرة") == normalize_entity("انقره") == normalize_entity("وأنقرة")
    assert normalize_entity("مصطفى") == normalize_entity("مصطفي")
    # multiword: only the first word loses clitics/article; inner words keep theirs
    assert normalize_entity("والمملكة العربية السعودية") == "مملكه العربيه السعوديه"
    assert normalize_entity("المملكة العربية السعودية") == "مملكه العربيه السعوديه"
    assert normalize_entity("وزارة الدفاع والأمن") == "وزاره الدفاع والامن"


def test_sentences_split_on_arabic_punctuation_but_not_on_the_comma() -> None:
    text = "هل وصل الوفد إلى دمشق؟ نعم؛ وصل صباحاً، ثم غادر. قال الوزير: سنعود!\nسطر ثانٍ"
    got = [text[s:e] for s, e in sentences(text)]
    assert got == [
        "هل وصل الوفد إلى دمشق؟",
        "نعم؛",
        "وصل صباحاً، ثم غادر.",
        "قال الوزير: سنعود!",
        "سطر ثانٍ",
    ]


def test_sentences_latin_and_offsets() -> None:
    text = "  Mr. Smith went to Washington. He paid 3.5 dollars in the U.S. today.\n\nNew line?  "
    spans = sentences(text)
    got = [text[s:e] for s, e in spans]
    assert got == [
        "Mr. Smith went to Washington.",
        "He paid 3.5 dollars in the U.S. today.",
        "New line?",
    ]
    assert all(text[s:e].strip() == text[s:e] for s, e in spans)
    assert sentences("") == [] and sentences("   \n ") == []
