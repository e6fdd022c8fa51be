"""Entity extraction: offsets into the originals, the seed article, several languages, counts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from streams.enrich import entities
from streams.enrich.arabic import normalize_entity
from streams.enrich.types import FoundEntity

SEED = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "seed-article-ar.txt"


def _check_offsets(fields: Mapping[str, str], found: list[FoundEntity]) -> None:
    for ent in found:
        assert ent.mentions, ent
        first = ent.mentions[0]
        assert fields[first.field][first.start : first.end] == ent.text
        for m in ent.mentions:
            surface = fields[m.field][m.start : m.end]
            assert surface and surface == surface.strip()
        assert 0.0 <= ent.confidence <= 1.0
        assert ent.type in {"PER", "ORG", "LOC", "MISC"}


def _by_type(found: list[FoundEntity]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ent in found:
        out.setdefault(ent.type, set()).add(ent.normalized)
    return out


@pytest.fixture(scope="module")
def seed() -> tuple[dict[str, str], list[FoundEntity]]:
    text = SEED.read_text(encoding="utf-8")
    fields = {"title": "تركيا وسوريا تعززان التعاون الدفاعي", "content": text}
    return fields, entities.extract_entities(fields, "ar")


def test_models_are_described() -> None:
    assert {"ner-ar", "ner-en", "ner-fr", "ner-de", "ner-tr"} <= set(entities.MODEL_VERSIONS)
    assert all(v.startswith(("crf-", "gaz-")) for v in entities.MODEL_VERSIONS.values())
    for lang in ("ar", "en", "fr", "de", "tr"):
        assert entities.METHODS[lang].startswith("crf")
    for lang in ("es", "ru", "fa", "zh"):
        assert entities.METHODS[lang] == "gazetteer"


@pytest.mark.parametrize(
    ("typ", "name"),
    [
        ("PER", "زكي أكتورك"),
        ("PER", "إلكاي ألتنداغ"),
        ("PER", "مرهف أبو قصرة"),
        ("ORG", "وزارة الدفاع التركية"),
        ("ORG", "البرلمان التركي"),
        ("LOC", "تركيا"),
        ("LOC", "سوريا"),
        ("LOC", "أنقرة"),
        ("LOC", "دمشق"),
        ("LOC", "العراق"),
        ("LOC", "المملكة العربية السعودية"),
    ],
)
def test_seed_article_yields_every_listed_entity(
    seed: tuple[dict[str, str], list[FoundEntity]], typ: str, name: str
) -> None:
    _fields, found = seed
    assert normalize_entity(name) in _by_type(found).get(typ, set())


def test_seed_article_offsets_exclude_glued_prefixes(
    seed: tuple[dict[str, str], list[FoundEntity]],
) -> None:
    fields, found = seed
    _check_offsets(fields, found)
    surfaces = {fields[m.field][m.start : m.end] for e in found for m in e.mentions}
    # "وسوريا" / "والعراق" / "لتركيا" / "والمملكة" occur glued in the text
    assert "سوريا" in surfaces and "وسوريا" not in surfaces
    assert "العراق" in surfaces and "والعراق" not in surfaces
    assert not any(s.startswith(("وال", "لل")) for s in surfaces)


def test_seed_article_merges_mentions_across_fields_and_counts_them(
    seed: tuple[dict[str, str], list[FoundEntity]],
) -> None:
    fields, found = seed
    turkey = next(e for e in found if e.type == "LOC" and e.normalized == "تركيا")
    syria = next(e for e in found if e.type == "LOC" and e.normalized == "سوريا")
    expected_turkey = fields["content"].count("تركيا") + fields["title"].count("تركيا")
    assert turkey.count == len(turkey.mentions) >= expected_turkey - 1
    assert {m.field for m in syria.mentions} == {"title", "content"}
    assert syria.count >= 5
    assert syria.mentions[0].field == "title"  # first mention in field order
    keys = [(e.type, e.normalized) for e in found]
    assert len(keys) == len(set(keys))


def test_english_sentence() -> None:
    fields = {
        "title": "German Chancellor Angela Merkel met President Joe Biden in Washington on Monday.",
        "text": "The European Union and Microsoft said on Monday that Merkel will visit Paris.",
    }
    found = entities.extract_entities(fields, "en")
    _check_offsets(fields, found)
    types = _by_type(found)
    assert {"angela merkel", "joe biden"} <= types["PER"]
    assert {"washington", "paris"} <= types["LOC"]
    assert {"european union", "microsoft"} <= types["ORG"]
    assert all("crf" in e.method for e in found)


def test_german_sentence() -> None:
    fields = {
        "text": "Bundeskanzler Olaf Scholz reiste am Montag nach Berlin und traf Vertreter "
        "von Siemens."
    }
    found = entities.extract_entities(fields, "de")
    _check_offsets(fields, found)
    types = _by_type(found)
    assert "olaf scholz" in types["PER"]
    assert "berlin" in types["LOC"]


@pytest.mark.parametrize(
    ("lang", "text", "place"),
    [
        ("ru", "Президент прилетел в Москву, а затем посетил Китай.", "москва"),
        ("fa", "رئیس جمهور امروز به تهران بازگشت و درباره ایران سخن گفت.", "تهران"),
        ("zh", "国家主席昨天在北京会见了法国总统。", "北京"),
        ("es", "El presidente viajó a Madrid y luego a Francia.", "madrid"),
    ],
)
def test_gazetteer_only_languages_get_low_confidence_locations(
    lang: str, text: str, place: str
) -> None:
    fields = {"text": text}
    found = entities.extract_entities(fields, lang)
    _check_offsets(fields, found)
    locs = {e.normalized: e for e in found if e.type == "LOC"}
    assert place in locs, found
    assert locs[place].method == "gazetteer"
    assert locs[place].confidence <= 0.5


def test_unknown_language_uses_gazetteers() -> None:
    fields = {"text": "Visit to Ankara and Damascus"}
    found = entities.extract_entities(fields, None)
    assert {"ankara", "damascus"} <= _by_type(found).get("LOC", set())
    assert all(e.method == "gazetteer" for e in found)


def test_turkish_suffix_is_excluded_from_the_span() -> None:
    fields = {"text": "Cumhurbaşkanı Erdoğan Ankara'da Türkiye'nin yeni planını açıkladı."}
    found = entities.extract_entities(fields, "tr")
    _check_offsets(fields, found)
    surfaces = {fields[m.field][m.start : m.end] for e in found for m in e.mentions}
    assert "Ankara" in surfaces
    assert not any("'" in s for s in surfaces)


def test_mention_count_and_confidence_average() -> None:
    fields = {
        "title": "Paris and Paris again",
        "text": "Officials in Paris met officials from Berlin. Paris said nothing.",
    }
    found = entities.extract_entities(fields, "en")
    paris = next(e for e in found if e.normalized == "paris")
    assert paris.count == 4
    assert [m.field for m in paris.mentions] == ["title", "title", "text", "text"]
    assert paris.text == "Paris"
    assert 0.5 < paris.confidence <= 1.0


def test_extract_many_and_empty_fields() -> None:
    items = [({"text": "Paris"}, "fr"), ({"title": "", "text": ""}, "en"), ({"text": "دمشق"}, "ar")]
    out = entities.extract_many(items)
    assert len(out) == 3 and out[1] == []
    assert entities.extract_entities({}, "ar") == []
