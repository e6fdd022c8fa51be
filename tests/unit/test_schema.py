"""The v1 contract: round trips, strictness, and the committed JSON Schema's drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from streams.schema import (
    Article,
    Entity,
    EntityMention,
    ExtractedArticle,
    ExtractionInfo,
    LanguageInfo,
    RawArticle,
    decode,
    encode,
    jsonschema,
)
from streams.schema.ids import article_id
from tests.conftest import make_raw


@pytest.mark.parametrize("record", sorted(jsonschema.RECORDS))
def test_committed_json_schema_matches_models(record: str) -> None:
    path = jsonschema.path(record)
    assert path.exists(), f"{path.name} is missing; run `newsflow schema --write`"
    assert path.read_text(encoding="utf-8") == jsonschema.render(record), (
        f"streams/schema/{path.name} drifted from the models; "
        "run `newsflow schema --write` (or `make schema`) and review the diff"
    )


def test_no_stray_schema_files() -> None:
    """A renamed or removed record type must not leave its old file published."""
    committed = {p.name for p in jsonschema.SCHEMA_DIR.glob("*.schema.json")}
    assert committed == {jsonschema.file_name(r) for r in jsonschema.RECORDS}


def test_every_topic_value_has_a_published_schema() -> None:
    from streams import topics

    published = set(jsonschema.RECORDS.values())
    for spec in topics.ALL:
        if spec.value_model is not None:
            assert spec.value_model in published, (
                f"{spec.name} carries {spec.value_model.__name__}, which has no schema file: "
                "add it to streams.schema.jsonschema.RECORDS"
            )


def _validator(record: str) -> Draft202012Validator:
    # Loaded from the published file exactly as a consumer would: no key to pick, no rewriting.
    schema = json.loads(jsonschema.path(record).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


BODY = "وقعت تركيا وسوريا اتفاقا للتعاون الدفاعي في أنقرة."


def _extraction() -> ExtractionInfo:
    now = datetime.now(UTC)
    return ExtractionInfo(
        status="ok",
        method="trafilatura",
        chars=len(BODY),
        http_status=200,
        fetched_at=now,
        final_url="https://example.org/news/7",
        canonical_url="https://example.org/news/7",
        page_language="ar",
        published_at=now,
        authors=("مراسل",),
        image="https://example.org/img/7.jpg",
        flags=("amp",),
    )


def _extracted() -> ExtractedArticle:
    raw = make_raw(6)
    return ExtractedArticle(
        article_id=raw.article_id,
        source=raw.source,
        body=BODY,
        extraction=_extraction(),
        pipeline=raw.pipeline,
    )


def _enriched() -> Article:
    raw = make_raw(7, title="تركيا وسوريا توقعان اتفاقا")
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="ar", confidence=0.97, method="both", script="Arab"),
        entities=(
            Entity(
                text="تركيا",
                type="LOC",
                normalized="تركيا",
                mentions=(
                    EntityMention(field="title", start=0, end=5),
                    EntityMention(field="body", start=5, end=10),
                ),
                confidence=0.9,
                count=2,
            ),
        ),
        body=BODY,
        extraction=_extraction(),
        pipeline=raw.pipeline,
    )


def test_each_file_validates_a_real_encoded_record_as_is() -> None:
    records = {
        "raw-article": make_raw(8),
        "extracted-article": _extracted(),
        "article": _enriched(),
    }
    assert set(records) == set(jsonschema.RECORDS), "add an example of the new record type here"
    for name, record in records.items():
        validator = _validator(name)
        errors = list(validator.iter_errors(json.loads(encode(record))))
        assert errors == [], [e.message for e in errors]


def test_each_file_rejects_what_the_models_reject() -> None:
    article = json.loads(encode(_enriched()))
    validator = _validator("article")
    bad_id = {**article, "article_id": "not-hex"}
    assert not validator.is_valid(bad_id)
    extra = {**article, "surprise": 1}
    assert not validator.is_valid(extra)
    # A raw record is not an enriched one: the language block is required.
    assert not validator.is_valid(json.loads(encode(make_raw(9))))
    wrong_type = json.loads(encode(_enriched()))
    wrong_type["entities"][0]["type"] = "PERSON"
    assert not validator.is_valid(wrong_type)


def test_published_files_load_through_the_package() -> None:
    for record in jsonschema.RECORDS:
        assert jsonschema.load(record) == jsonschema.build(record)


def test_every_field_has_a_description() -> None:
    def walk(schema: dict, path: str) -> list[str]:
        missing = []
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{path}.{name}")
        return missing

    missing = []
    for record in jsonschema.RECORDS:
        built = jsonschema.build(record)
        missing += walk(built, record)
        for name, sub in built.get("$defs", {}).items():
            missing += walk(sub, name)
    assert missing == []


def test_raw_article_round_trips_through_wire_bytes() -> None:
    raw = make_raw(1, title="تركيا وسوريا")
    wire = encode(raw)
    assert "تركيا".encode() in wire  # UTF-8, not \\u escapes
    assert decode(RawArticle, wire) == raw


def test_unknown_fields_are_rejected() -> None:
    wire = encode(make_raw(2)).replace(b'"schema_version"', b'"surprise":1,"schema_version"', 1)
    with pytest.raises(ValidationError, match="surprise"):
        decode(RawArticle, wire)


def test_naive_datetimes_are_rejected() -> None:
    raw = make_raw(3)
    data = raw.model_dump()
    data["source"]["fetched_at"] = datetime(2026, 1, 1)  # no tzinfo
    with pytest.raises(ValidationError, match="timezone"):
        RawArticle.model_validate(data)


def test_models_are_frozen() -> None:
    raw = make_raw(4)
    with pytest.raises(ValidationError):
        raw.article_id = "0" * 32  # type: ignore[misc]


def test_major_version_is_enforced() -> None:
    data = make_raw(5).model_dump()
    data["schema_version"] = "2.0"
    with pytest.raises(ValidationError):
        RawArticle.model_validate(data)


def test_article_requires_language_block() -> None:
    raw = make_raw(6)
    with pytest.raises(ValidationError, match="language"):
        Article(article_id=raw.article_id, source=raw.source)  # type: ignore[call-arg]
    art = Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="en", confidence=0.9, method="text"),
    )
    assert decode(Article, encode(art)) == art


def test_article_id_is_stable_and_shaped() -> None:
    a = article_id("https://example.org/a")
    assert a == article_id("https://example.org/a")
    assert a != article_id("https://example.org/b")
    assert len(a) == 32 and int(a, 16) >= 0
    with pytest.raises(ValueError):
        article_id("")


def test_a_raw_record_reads_as_an_extracted_one_without_full_text() -> None:
    """Enrichment decodes its input as ExtractedArticle: raw records (replays, the smoke demo)
    must still read, with no body and no extraction section."""
    raw = make_raw(11)
    back = decode(ExtractedArticle, encode(raw))
    assert back.source == raw.source and back.body is None and back.extraction is None
    assert _validator("extracted-article").is_valid(json.loads(encode(raw)))


def test_extraction_status_is_a_closed_set() -> None:
    with pytest.raises(ValidationError):
        ExtractionInfo(status="fetched")  # type: ignore[arg-type]
    assert ExtractionInfo(status="skipped").chars == 0


def _resolved() -> Article:
    """A 1.3 article: name as written, key for matching, a link id, per-mention text."""
    raw = make_raw(12, title="وسوريا والسعودية")
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="ar", confidence=0.97, method="both", script="Arab"),
        entities=(
            Entity(
                text="وسوريا",
                type="LOC",
                normalized="سوريا",
                mentions=(EntityMention(field="title", start=0, end=6, text="وسوريا"),),
                confidence=0.93,
                count=1,
                name="سوريا",
                key="سوريا",
                id="country:SY",
                link_confidence=0.98,
            ),
            Entity(
                text="والسعودية",
                type="LOC",
                normalized="سعوديه",
                mentions=(EntityMention(field="title", start=7, end=16, text="والسعودية"),),
                confidence=0.41,
                count=1,
                name="السعودية",
                key="سعوديه",
                facet=False,
            ),
        ),
        pipeline=raw.pipeline,
    )


def test_a_1_3_entity_round_trips_and_validates_against_the_published_schema() -> None:
    art = _resolved()
    wire = encode(art)
    assert decode(Article, wire) == art
    entity = json.loads(wire)["entities"][0]
    assert (entity["name"], entity["key"], entity["id"]) == ("سوريا", "سوريا", "country:SY")
    assert entity["mentions"][0]["text"] == "وسوريا"
    assert _validator("article").is_valid(json.loads(wire))


def test_a_1_2_record_without_the_new_fields_still_reads_and_validates() -> None:
    """Additive within v1: an enriched record written by 1.2 (no name/key/id/facet, mentions
    without text) validates against the 1.3 schema, and the model fills name and key."""
    data = json.loads(encode(_enriched()))
    data["schema_version"] = "1.2"
    for entity in data["entities"]:
        for field in ("name", "key", "id", "link_confidence", "facet"):
            del entity[field]
        for mention in entity["mentions"]:
            del mention["text"]
    assert _validator("article").is_valid(data)
    back = Article.model_validate(data)
    entity = back.entities[0]
    assert (entity.name, entity.key) == (entity.text, entity.normalized)
    assert entity.id is None and entity.facet is True and entity.mentions[0].text is None


def test_link_ids_are_prefixed_and_bounded() -> None:
    base = _resolved().entities[0].model_dump()
    for bad in ("SY", "country: SY", "Country:SY", "country:" + "x" * 300):
        with pytest.raises(ValidationError):
            Entity.model_validate({**base, "id": bad})
    for good in ("country:SY", "geonames:170654", "org:un", "region:SA-01"):
        assert Entity.model_validate({**base, "id": good}).id == good
    assert not _validator("article").is_valid(
        {**json.loads(encode(_resolved())), "entities": [{**base, "id": "SY"}]}
    )
