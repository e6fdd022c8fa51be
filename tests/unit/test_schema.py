"""The v1 contract: round trips, strictness, and the committed JSON Schema's drift."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from streams.schema import Article, LanguageInfo, RawArticle, decode, encode, jsonschema
from streams.schema.ids import article_id
from tests.conftest import make_raw


def test_committed_json_schema_matches_models() -> None:
    committed = jsonschema.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == jsonschema.render(), (
        "streams/schema/article.v1.schema.json drifted from the models; "
        "run `newsflow schema --write` and review the diff"
    )


def test_every_field_has_a_description() -> None:
    def walk(schema: dict, path: str) -> list[str]:
        missing = []
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{path}.{name}")
        return missing

    built = jsonschema.build()
    missing = []
    for top in ("RawArticle", "Article"):
        missing += walk(built[top], top)
        for name, sub in built[top].get("$defs", {}).items():
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
