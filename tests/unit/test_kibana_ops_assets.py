"""The operators' Kibana view of the DLQ, checked without a Kibana or an Elasticsearch.

``deploy/elasticsearch/newsflow-dead-letters.template.json`` is the index template of the dead
letters the index worker writes (one document per record of ``news.dlq.<stage>``) and
``deploy/kibana/newsflow-ops.ndjson`` the saved objects over it (data view, saved searches, Lens
charts, dashboard). Checked here: the template's fields and settings, the objects' structure
(ids, migration versions, references, dashboard grid), and every field an object uses against
the template, with the operation's field type (read with the same helpers as the analysts'
assets, ``streams.commands.kibana``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.commands.kibana import (
    KIBANA_ASSETS,
    RECORDS_FIELD,
    kql_fields,
    kql_to_query,
    lens_columns,
    lens_layers,
    load_objects,
    queries,
    referenced_fields,
    search_source,
)
from streams.settings import ElasticSettings
from tests.unit.test_kibana_assets import check_dashboard_layout

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "deploy" / "elasticsearch" / "newsflow-dead-letters.template.json"
ARTICLE_TEMPLATE_PATH = ROOT / "deploy" / "elasticsearch" / "news-articles.template.json"
OPS_ASSETS = ROOT / "deploy" / "kibana" / "newsflow-ops.ndjson"

TEMPLATE: dict[str, Any] = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
OBJECTS = load_objects(OPS_ASSETS)
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}

# The document the index worker writes for each dead letter (streams/stages/deadletters.py).
EXPECTED_FIELDS = {
    "stage": "keyword",
    "error_class": "keyword",
    "error_message": "text",
    "error_message.raw": "keyword",
    "attempts": "integer",
    "source_topic": "keyword",
    "source_partition": "integer",
    "source_offset": "long",
    "failed_at": "date",
    "article_id": "keyword",
    "dlq_topic": "keyword",
    "payload_excerpt": "text",
    "payload_bytes": "integer",
}
# The same versions as the analysts' assets (see tests/unit/test_kibana_assets.py for why).
MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "search": "10.1.0",
    "lens": "8.9.0",
    "dashboard": "10.1.0",
}
CORE_MIGRATION_VERSION = "8.8.0"
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
DATES = {"date", "date_nanos"}
AGGREGATABLE = {"keyword"} | NUMERIC | DATES | {"ip", "boolean"}
LENS_OPERATIONS: dict[str, set[str] | None] = {
    "terms": {"keyword"} | NUMERIC | {"ip", "boolean"},
    "date_histogram": DATES,
    "count": None,
    "unique_count": AGGREGATABLE,
    "last_value": AGGREGATABLE,
    **{op: NUMERIC for op in ("sum", "average", "min", "max", "median", "percentile")},
}


@dataclass(frozen=True)
class Mapped:
    type: str
    indexed: bool
    doc_values: bool


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, Mapped]:
    """Dotted path -> type, for sub-objects and multi-fields."""
    out: dict[str, Mapped] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        ftype = spec.get("type", "object")
        out[path] = Mapped(
            ftype,
            spec.get("index", True) is not False,
            spec.get("doc_values", ftype not in {"text", "object", "nested"}),
        )
        if "properties" in spec:
            out.update(flatten(spec["properties"], f"{path}."))
        for sub, subspec in (spec.get("fields") or {}).items():
            subtype = subspec.get("type", "object")
            out[f"{path}.{sub}"] = Mapped(
                subtype,
                subspec.get("index", True) is not False,
                subspec.get("doc_values", subtype != "text"),
            )
    return out


FIELDS = flatten(TEMPLATE["template"]["mappings"]["properties"])


def field(name: str, where: str) -> Mapped:
    assert name in FIELDS, f"{where}: field {name!r} is not in the dead-letter template"
    return FIELDS[name]


# --- the template ----------------------------------------------------------------------------


def test_template_is_strict_with_exactly_the_dead_letter_fields() -> None:
    mappings = TEMPLATE["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    assert mappings.get("date_detection") is False
    assert {path: mapped.type for path, mapped in FIELDS.items()} == EXPECTED_FIELDS
    # A long message must not make the document fail: the keyword sub-field skips it instead.
    raw = mappings["properties"]["error_message"]["fields"]["raw"]
    assert 0 < raw["ignore_above"] <= 8191  # Lucene's term limit is 32766 bytes (4 per char)


def test_template_settings_and_pattern_follow_the_article_template() -> None:
    articles = json.loads(ARTICLE_TEMPLATE_PATH.read_text(encoding="utf-8"))
    settings = TEMPLATE["template"]["settings"]
    assert settings["number_of_shards"] == articles["template"]["settings"]["number_of_shards"]
    assert settings["number_of_replicas"] == articles["template"]["settings"]["number_of_replicas"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == (1, 0)
    assert TEMPLATE["index_patterns"] == [ElasticSettings().dead_letter_index]
    assert TEMPLATE["priority"] == articles["priority"]
    assert TEMPLATE["_meta"]["description"]
    # The two templates must never both match one index (equal priorities would be rejected).
    dead_letters = ElasticSettings().dead_letter_index
    for pattern in articles["index_patterns"]:
        assert not dead_letters.startswith(pattern.rstrip("*")), pattern
    assert set(TEMPLATE) <= {"index_patterns", "priority", "_meta", "template"}


def test_the_index_worker_documents_fit_the_template() -> None:
    """The document builder of the index worker writes only template fields, of the right kind."""
    from streams.stages.deadletters import dead_letter_doc

    headers = [
        ("newsflow-stage", b"enrich"),
        ("newsflow-error-class", b"ValueError"),
        ("newsflow-error-message", b"boom"),
        ("newsflow-attempts", b"2"),
        ("newsflow-source-topic", b"news.articles.raw.v1"),
        ("newsflow-source-partition", b"1"),
        ("newsflow-source-offset", b"42"),
        ("newsflow-failed-at", b"2026-11-29T06:00:00+00:00"),
    ]
    _id, doc = dead_letter_doc("news.dlq.enrich", 0, 7, b"abc", b"x" * 5000, headers)
    assert set(doc) == {name for name in EXPECTED_FIELDS if "." not in name}
    for name, value in doc.items():
        if value is None:
            continue
        kind = EXPECTED_FIELDS[name]
        if kind in {"integer", "long"}:
            assert isinstance(value, int), name
        else:
            assert isinstance(value, str), name
    assert len(doc["payload_excerpt"]) == 2000 and doc["payload_bytes"] == 5000


# --- structure -------------------------------------------------------------------------------


def test_ndjson_parses_with_unique_ids_apart_from_the_analysts_assets() -> None:
    assert {o["type"] for o in OBJECTS} == {"index-pattern", "search", "lens", "dashboard"}
    ids = [o["id"] for o in OBJECTS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    analysts = {o["id"] for o in load_objects(KIBANA_ASSETS)}
    assert not set(ids) & analysts, "an id is also in deploy/kibana/newsflow.ndjson"
    for obj in OBJECTS:
        assert obj["id"].startswith("newsflow-"), obj["id"]
        assert obj["attributes"].get("title"), obj["id"]
        assert obj.get("coreMigrationVersion") == CORE_MIGRATION_VERSION, obj["id"]
        assert obj.get("typeMigrationVersion") == MIGRATION_VERSIONS[obj["type"]], obj["id"]
        assert "migrationVersion" not in obj, obj["id"]


def test_every_reference_resolves_within_the_file() -> None:
    for obj in OBJECTS:
        names = [ref["name"] for ref in obj.get("references", [])]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj.get("references", []):
            assert set(ref) == {"name", "type", "id"}, ref
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']}: dangling reference {ref}"


def test_searches_and_lens_use_the_dead_letter_data_view() -> None:
    (view,) = [o for o in OBJECTS if o["type"] == "index-pattern"]
    assert view["attributes"]["title"] == ElasticSettings().dead_letter_index
    assert view["attributes"]["timeFieldName"] == "failed_at"
    for obj in OBJECTS:
        refs = {ref["name"]: ref for ref in obj.get("references", [])}
        if obj["type"] == "search":
            name = search_source(obj).get("indexRefName")
            assert name == "kibanaSavedObjectMeta.searchSourceJSON.index", obj["id"]
            assert refs[name]["id"] == view["id"], obj["id"]
        if obj["type"] == "lens":
            layers = lens_layers(obj)
            assert layers, f"{obj['id']}: no form-based layer"
            for layer_id in layers:
                ref = refs.get(f"indexpattern-datasource-layer-{layer_id}")
                assert ref is not None and ref["id"] == view["id"], obj["id"]


def test_dashboard_panels_match_references_and_do_not_overlap() -> None:
    (dash,) = [o for o in OBJECTS if o["type"] == "dashboard"]
    check_dashboard_layout(dash)


def test_expected_content() -> None:
    (dash,) = [o for o in OBJECTS if o["type"] == "dashboard"]
    assert dash["attributes"]["title"] == "newsflow ops — dead letters"
    on_dash = [BY_KEY[(r["type"], r["id"])] for r in dash["references"]]
    lens_ops = {
        (c.operation, c.source_field)
        for o in on_dash
        if o["type"] == "lens"
        for c in lens_columns(o)
    }
    # Counts over time, split by stage and by error class.
    charts = [o for o in on_dash if o["type"] == "lens"]
    split_by = {
        tuple(sorted(c.source_field or "" for c in lens_columns(o) if c.bucketed)) for o in charts
    }
    assert ("failed_at", "stage") in split_by
    assert ("error_class", "failed_at") in split_by
    assert ("count", RECORDS_FIELD) in lens_ops
    # The recent dead letters, newest first, with the key columns.
    (search,) = [o for o in on_dash if o["type"] == "search"]
    assert search["attributes"]["sort"] == [["failed_at", "desc"]]
    for column in ("stage", "error_class", "error_message", "source_topic", "source_offset"):
        assert column in search["attributes"]["columns"], column
    stage_queries = {q["query"] for o in OBJECTS for q in queries(o)}
    assert stage_queries == {'stage : "enrich"', 'stage : "index"'}


# --- fields against the template -------------------------------------------------------------


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_referenced_fields_exist_in_the_template(obj: dict[str, Any]) -> None:
    fields = referenced_fields(obj)
    if obj["type"] != "dashboard":  # a dashboard's fields are its panels'
        assert fields, f"{obj['id']}: uses no field at all?"
    for name in sorted(fields):
        field(name, obj["id"])


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_kql_is_in_the_supported_subset_and_searchable(obj: dict[str, Any]) -> None:
    for query in queries(obj):
        assert query["language"] == "kuery"
        kql_to_query(query["query"])
        for name in kql_fields(query["query"]):
            mapped = field(name, obj["id"])
            assert mapped.indexed, f"{obj['id']}: {name} is not indexed"


@pytest.mark.parametrize("obj", [o for o in OBJECTS if o["type"] == "lens"], ids=lambda o: o["id"])
def test_lens_columns_have_compatible_field_types(obj: dict[str, Any]) -> None:
    for col in lens_columns(obj):
        assert col.operation in LENS_OPERATIONS, f"{obj['id']}: no rule for {col.operation}"
        if col.source_field == RECORDS_FIELD:
            assert col.operation == "count"
            continue
        assert col.source_field, f"{obj['id']}: column {col.column_id} has no sourceField"
        mapped = field(col.source_field, obj["id"])
        allowed = LENS_OPERATIONS[col.operation]
        if allowed is not None:
            assert mapped.type in allowed, f"{col.operation} on {col.source_field} ({mapped.type})"
        assert mapped.doc_values, f"{col.source_field} has no doc_values to aggregate"
        sort_field = col.params.get("sortField")
        if sort_field:
            assert field(sort_field, obj["id"]).type in DATES


@pytest.mark.parametrize(
    "obj", [o for o in OBJECTS if o["type"] == "search"], ids=lambda o: o["id"]
)
def test_saved_search_sort_fields_are_sortable(obj: dict[str, Any]) -> None:
    for name, direction in obj["attributes"]["sort"]:
        mapped = field(name, obj["id"])
        assert mapped.doc_values and mapped.type != "text", f"cannot sort on {name}"
        assert direction in ("asc", "desc")


def test_data_view_field_formats_name_template_fields() -> None:
    (view,) = [o for o in OBJECTS if o["type"] == "index-pattern"]
    formats = json.loads(view["attributes"]["fieldFormatMap"])
    assert formats == {"payload_bytes": {"id": "bytes", "params": {}}}
    assert field("payload_bytes", view["id"]).type in NUMERIC
