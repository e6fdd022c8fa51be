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
