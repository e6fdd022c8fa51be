"""Generates the committed JSON Schema of the v1 contract (``article.v1.schema.json``).

`newsflow schema --write` regenerates it; a unit test fails when it drifts from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.schema.models import Article, RawArticle

SCHEMA_FILE = Path(__file__).with_name("article.v1.schema.json")


def build() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "newsflow record contract v1",
        "topics": {
            "news.articles.raw.v1": "RawArticle",
            "news.articles.enriched.v1": "Article",
        },
        "RawArticle": RawArticle.model_json_schema(mode="serialization"),
        "Article": Article.model_json_schema(mode="serialization"),
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(path: Path = SCHEMA_FILE) -> Path:
    path.write_text(render(), encoding="utf-8")
    return path
