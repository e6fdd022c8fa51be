"""Generates the committed JSON Schema files of the contract: one file per record type.

Each file (``<record>.v<major>.schema.json`` beside this module) is a complete draft 2020-12
schema of one record with its own ``$defs``, so any validator loads it as is; a consumer never
has to pick a key out of a bundle. `newsflow schema --write` regenerates them; a unit test fails
when a committed file drifts from the models.

Adding a record type (say, the extract stage's output) is one line in ``RECORDS``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from streams.schema.models import (
    SCHEMA_VERSION,
    Article,
    ContractModel,
    ExtractedArticle,
    RawArticle,
)

MAJOR = SCHEMA_VERSION.split(".")[0]
SCHEMA_DIR = Path(__file__).parent

# Record name (file name stem) -> model. The order is the order of the flow.
RECORDS: dict[str, type[ContractModel]] = {
    "raw-article": RawArticle,
    "extracted-article": ExtractedArticle,
    "article": Article,
}


def file_name(record: str) -> str:
    return f"{record}.v{MAJOR}.schema.json"


def build(record: str) -> dict[str, Any]:
    """The JSON Schema of one record type, as committed (validates its wire form)."""
    model = RECORDS[record]
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:newsflow:schema:{record}:v{MAJOR}",
    }
    # Serialization mode: the shape `encode` writes (fields with defaults are always present).
    schema.update(model.model_json_schema(mode="serialization"))
    return schema


def render(record: str) -> str:
    return json.dumps(build(record), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def path(record: str) -> Path:
    """Where the committed file of ``record`` lives in a source checkout."""
    return SCHEMA_DIR / file_name(record)


def load(record: str) -> dict[str, Any]:
    """The published schema of ``record`` as shipped in the package (works from a wheel too)."""
    text = resources.files("streams.schema").joinpath(file_name(record)).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Rewrite every record's file; returns the paths written."""
    written = []
    for record in RECORDS:
        target = directory / file_name(record)
        target.write_text(render(record), encoding="utf-8")
        written.append(target)
    return written
