"""The Kibana saved objects (deploy/kibana/newsflow.ndjson) checked without a Kibana.

Structure (ids, types, references, dashboard panels), and every field the objects use against
the *current* index template (read at test time, so new mapped fields such as
``title_lang.<analyzer>`` are picked up without editing this file). Plus the pure helpers of
commands/kibana.py: the KQL subset, the NDJSON loader, and the import call against a fake Kibana.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from streams.commands import kibana
from streams.commands.kibana import (
    KIBANA_ASSETS,
    KibanaAssetError,
    KibanaImportError,
    import_objects,
    kql_fields,
    kql_to_query,
    lens_columns,
    lens_layers,
    load_objects,
    panels,
    queries,
    referenced_fields,
    search_source,
)
from streams.settings import ElasticSettings, KibanaSettings
from streams.sinks.elastic import LABEL_LANGS, index_template

OBJECTS = load_objects(KIBANA_ASSETS)
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}
EXPECTED_TYPES = {"index-pattern", "search", "lens", "dashboard"}
LANGUAGES = ("ar", "en", "fr", "tr", "fa", "ru", "de", "es", "zh")

# Saved objects import only into the same or a newer Kibana. These are the versions the objects
# are *written in*: Kibana runs its own migrations from there up to whatever it is (9.3+). They
# are deliberately not the newest versions of 9.3: each is a version every 9.x knows (a version
# newer than Kibana's own is rejected), and the attributes are valid at that version.
#   coreMigrationVersion 8.8.0: the last core transform; without it core transforms (and the
#     8.0.0 reference rewrite of multi-space objects) would run on import.
#   index-pattern 8.0.0, lens 8.9.0: the last stack-version migrations of those types.
#   search 10.1.0, dashboard 10.1.0: model version 1 (virtual version 10.<n>.0); later model
#     versions (e.g. the Discover-tabs backfill of saved searches) are applied by Kibana.
MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "search": "10.1.0",
    "lens": "8.9.0",
    "dashboard": "10.1.0",
}
CORE_MIGRATION_VERSION = "8.8.0"

# Lens operations and the mapped field types they accept.
NUMERIC = {
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
}
DATES = {"date", "date_nanos"}
KEYWORDS = {"keyword", "constant_keyword", "wildcard"}
AGGREGATABLE = KEYWORDS | NUMERIC | DATES | {"ip", "boolean"}
LENS_OPERATIONS = {
    "terms": KEYWORDS | NUMERIC | {"ip", "boolean"},
    "date_histogram": DATES,
    "count": None,  # any field; usually the ___records___ pseudo field
    "unique_count": AGGREGATABLE,
    "last_value": AGGREGATABLE,
    **{op: NUMERIC for op in ("sum", "average", "min", "max", "median", "percentile")},
}
OBJECT_TYPES = {"object", "nested"}


# --- the template's fields -------------------------------------------------------------------


@dataclass(frozen=True)
class MappedField:
    type: str
    nested: str | None  # path of the nearest `nested` ancestor, if any
    indexed: bool
    doc_values: bool


def flatten(properties: dict[str, Any], prefix: str = "", nested: str | None = None) -> dict:
    """Dotted path -> MappedField, for object/nested sub-properties and multi-fields."""
    out: dict[str, MappedField] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        ftype = spec.get("type", "object")
        out[path] = MappedField(
            ftype,
            nested,
            indexed=spec.get("index", True) is not False and ftype not in OBJECT_TYPES,
            doc_values=spec.get("doc_values", ftype not in {"text", "match_only_text"})
            and ftype not in OBJECT_TYPES,
        )
        if "properties" in spec:
            inner = path if ftype == "nested" else nested
            out.update(flatten(spec["properties"], f"{path}.", inner))
        for sub, subspec in (spec.get("fields") or {}).items():
            subtype = subspec.get("type", "object")
            out[f"{path}.{sub}"] = MappedField(
                subtype,
                nested,
                indexed=subspec.get("index", True) is not False,
                doc_values=subspec.get("doc_values", subtype not in {"text", "match_only_text"}),
            )
    return out


def _template_mapping() -> dict[str, Any]:
    mappings: dict[str, Any] = index_template(ElasticSettings())["template"]["mappings"]
    return mappings


FIELDS = flatten(_template_mapping()["properties"])


def lookup(field: str) -> MappedField | None:
    if field in FIELDS:
        return FIELDS[field]
    parts = field.split(".")
    for i in range(len(parts) - 1, 0, -1):  # keys under a `flattened` field are keywords
        parent = FIELDS.get(".".join(parts[:i]))
        if parent is not None and parent.type == "flattened":
            return MappedField("keyword", parent.nested, parent.indexed, True)
    return None


def leaf(field: str, where: str) -> MappedField:
    mapped = lookup(field)
    assert mapped is not None, f"{where}: field {field!r} is not in the index template"
    assert mapped.type not in OBJECT_TYPES, f"{where}: {field!r} is an object, not a field"
    return mapped


def test_flatten_reads_sub_objects_multi_fields_and_nested() -> None:
    fields = flatten(
        {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "title_lang": {
                "properties": {"arabic": {"type": "text"}, "cjk": {"type": "text"}},
            },
            "m": {"type": "nested", "properties": {"t": {"type": "keyword"}}},
        }
    )
    assert fields["title.raw"].type == "keyword"
    assert fields["title_lang.arabic"] == MappedField("text", None, True, False)
    assert fields["m.t"].nested == "m"
    assert fields["m"].type == "nested"
    # And the real template: fields the assets rely on, with the types they rely on.
    assert FIELDS["entities.person"].type == "keyword"
    assert FIELDS["entity_mentions.text"].nested == "entity_mentions"
    assert FIELDS["published_at"].type == "date"
    assert lookup("pipeline.models.ner") == MappedField("keyword", None, True, True)


# --- structure -------------------------------------------------------------------------------


def test_ndjson_parses_with_unique_ids_and_expected_types() -> None:
    assert OBJECTS, "no saved objects"
    keys = [(o["type"], o["id"]) for o in OBJECTS]
    assert len(keys) == len(set(keys)), "duplicate (type, id)"
    ids = [o["id"] for o in OBJECTS]
    assert len(ids) == len(set(ids)), "ids should be unique across types too"
    assert {o["type"] for o in OBJECTS} <= EXPECTED_TYPES
    for obj in OBJECTS:
        assert obj["id"].startswith("newsflow-"), obj["id"]  # stable, ours, not generated
        assert obj["attributes"].get("title"), obj["id"]


def test_migration_versions_are_pinned() -> None:
    for obj in OBJECTS:
        assert obj.get("coreMigrationVersion") == CORE_MIGRATION_VERSION, obj["id"]
        assert obj.get("typeMigrationVersion") == MIGRATION_VERSIONS[obj["type"]], obj["id"]
        assert "migrationVersion" not in obj, obj["id"]  # the pre-8.8 form; don't mix them


def test_every_reference_resolves_within_the_file() -> None:
    for obj in OBJECTS:
        names = [ref["name"] for ref in obj.get("references", [])]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj.get("references", []):
            assert set(ref) == {"name", "type", "id"}, ref
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']}: dangling reference {ref}"


def test_index_references_point_at_the_data_view() -> None:
    for obj in OBJECTS:
        refs = {ref["name"]: ref for ref in obj.get("references", [])}
        source = search_source(obj)
        if obj["type"] == "search":
            assert source.get("indexRefName") == "kibanaSavedObjectMeta.searchSourceJSON.index"
        if "indexRefName" in source:
            ref = refs.get(source["indexRefName"])
            assert ref is not None, f"{obj['id']}: no reference named {source['indexRefName']}"
            assert ref["type"] == "index-pattern"
        for flt in source.get("filter") or []:
            ref_name = (flt.get("meta") or {}).get("indexRefName")
            if ref_name:
                assert refs.get(ref_name, {}).get("type") == "index-pattern", obj["id"]
        if obj["type"] == "lens":
            layers = lens_layers(obj)
            assert layers, f"{obj['id']}: no form-based layer"
            for layer_id in layers:
                ref = refs.get(f"indexpattern-datasource-layer-{layer_id}")
                assert ref is not None, f"{obj['id']}: layer {layer_id} has no data view ref"
                assert ref["type"] == "index-pattern"


def check_dashboard_layout(dash: dict[str, Any]) -> None:
    """Every panel by reference, each reference used, panels inside the grid, none overlapping.

    Shared with the ops dashboard's test (tests/unit/test_kibana_ops_assets.py).
    """
    refs = {ref["name"]: ref for ref in dash["references"]}
    used: set[str] = set()
    cells: set[tuple[int, int]] = set()
    parsed = panels(dash)
    assert parsed, f"{dash['id']}: no panels"
    indexes = [p["panelIndex"] for p in parsed]
    assert len(indexes) == len(set(indexes)), "duplicate panelIndex"
    for panel in parsed:
        # By reference only: by-value panels would hide their fields from these checks.
        assert "panelRefName" in panel, f"{dash['id']}: by-value panel {panel['panelIndex']}"
        # Kibana stores a panel's reference as "<panelIndex>:<panelRefName>".
        name = f"{panel['panelIndex']}:{panel['panelRefName']}"
        assert name in refs, f"{dash['id']}: panel {panel['panelIndex']} has no ref {name}"
        assert refs[name]["type"] == panel["type"], name
        used.add(name)
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 48, grid
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panel {panel['panelIndex']} overlaps another"
                cells.add((x, y))
    assert used == set(refs), f"{dash['id']}: unused references {set(refs) - used}"


def test_dashboard_panels_match_references() -> None:
    dashboards = [o for o in OBJECTS if o["type"] == "dashboard"]
    assert dashboards
    for dash in dashboards:
        check_dashboard_layout(dash)


def test_expected_content() -> None:
    (view,) = [o for o in OBJECTS if o["type"] == "index-pattern"]
    assert view["id"] == "newsflow-news-articles"
    assert view["attributes"]["title"] == ElasticSettings().alias
    assert view["attributes"]["timeFieldName"] == "published_at"
    searches = [q["query"] for o in OBJECTS if o["type"] == "search" for q in queries(o)]
    for code in LANGUAGES:
        assert f'language.code : "{code}"' in searches
    for entity in ("person", "org", "location"):
        assert f"entities.{entity} : *" in searches
    (dash,) = [o for o in OBJECTS if o["type"] == "dashboard"]
    assert dash["attributes"]["title"] == "newsflow — news overview"
    lens_on_dash = [BY_KEY[(r["type"], r["id"])] for r in dash["references"]]
    assert all(o["type"] == "lens" for o in lens_on_dash)
    ops = {
        (c.operation, c.source_field)
        for o in lens_on_dash
        for c in lens_columns(o)
        if c.operation != "count"
    }
    assert ("date_histogram", "published_at") in ops
    assert ("terms", "language.code") in ops
    for field in ("entities.person", "entities.org", "entities.location", "feed.id"):
        assert ("terms", field) in ops, field
    tables = [o for o in lens_on_dash if o["attributes"]["visualizationType"] == "lnsDatatable"]
    assert any(
        [c.source_field for c in lens_columns(t) if c.bucketed]
        == ["entities.person", "entities.location"]
        for t in tables
    ), "no person x location co-occurrence table"
    # Full text (issue 15): the status as a column, a view of the articles without their
    # page, and the statuses on the dashboard.
    assert "extraction.status" in BY_KEY[("search", "newsflow-search-all")]["attributes"]["columns"]
    problems = BY_KEY[("search", "newsflow-search-full-text-problems")]
    assert {"feed.id", "extraction.status", "extraction.reason"} <= set(
        problems["attributes"]["columns"]
    )
    (kql,) = [q["query"] for q in queries(problems)]
    assert kql_fields(kql) == {"extraction.status"} and 'extraction.status : "ok"' in kql
    assert ("terms", "extraction.status") in ops


# --- fields against the template -------------------------------------------------------------


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_referenced_fields_exist_in_the_template(obj: dict[str, Any]) -> None:
    for field in sorted(referenced_fields(obj)):
        leaf(field, obj["id"])


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_kql_fields_are_searchable_and_not_nested(obj: dict[str, Any]) -> None:
    for query in queries(obj):
        assert query["language"] == "kuery", f"{obj['id']}: only KQL is checked"
        kql_to_query(query["query"])  # parses: only the supported subset is used
        for field in kql_fields(query["query"]):
            mapped = leaf(field, obj["id"])
            assert mapped.indexed or mapped.doc_values, f"{field} is neither indexed nor doc_values"
            # `entity_mentions.x : "y"` on a nested field silently matches nothing in KQL; it
            # needs the nested syntax `entity_mentions:{ x : "y" }`, which is not supported here.
            assert mapped.nested is None, f"{obj['id']}: {field} is inside nested {mapped.nested}"


@pytest.mark.parametrize("obj", [o for o in OBJECTS if o["type"] == "lens"], ids=lambda o: o["id"])
def test_lens_columns_have_compatible_field_types(obj: dict[str, Any]) -> None:
    for col in lens_columns(obj):
        assert col.operation in LENS_OPERATIONS, f"{obj['id']}: no rule for {col.operation}"
        allowed = LENS_OPERATIONS[col.operation]
        if col.source_field == kibana.RECORDS_FIELD:
            assert col.operation == "count"
            continue
        assert col.source_field, f"{obj['id']}: column {col.column_id} has no sourceField"
        mapped = leaf(col.source_field, obj["id"])
        assert mapped.nested is None, f"Lens cannot aggregate nested {col.source_field}"
        if allowed is not None:
            assert mapped.type in allowed, (
                f"{obj['id']}: {col.operation} on {col.source_field} ({mapped.type})"
            )
        if col.operation != "count":
            assert mapped.doc_values, f"{col.source_field} has no doc_values to aggregate"


def test_time_fields_are_dates() -> None:
    for obj in OBJECTS:
        if obj["type"] == "index-pattern":
            time_field = obj["attributes"].get("timeFieldName")
            assert time_field, f"{obj['id']}: no time field"
            assert leaf(time_field, obj["id"]).type in DATES
        if obj["type"] in ("search", "lens"):
            views = [r for r in obj["references"] if r["type"] == "index-pattern"]
            assert views, f"{obj['id']}: no data view"
            for ref in views:
                view = BY_KEY[("index-pattern", ref["id"])]
                time_field = view["attributes"]["timeFieldName"]
                assert leaf(time_field, obj["id"]).type in DATES


@pytest.mark.parametrize(
    "obj", [o for o in OBJECTS if o["type"] == "search"], ids=lambda o: o["id"]
)
def test_saved_search_sort_fields_are_sortable(obj: dict[str, Any]) -> None:
    for field, _direction in obj["attributes"].get("sort") or []:
        mapped = leaf(field, obj["id"])
        assert mapped.doc_values and mapped.type != "text", f"cannot sort on {field}"


# --- the helpers -----------------------------------------------------------------------------


def test_kql_translation_of_the_supported_forms() -> None:
    phrase = {
        "bool": {"should": [{"match_phrase": {"language.code": "ar"}}], "minimum_should_match": 1}
    }
    exists = {
        "bool": {"should": [{"exists": {"field": "entities.person"}}], "minimum_should_match": 1}
    }
    assert kql_to_query('language.code : "ar"') == phrase
    assert kql_to_query('language.code:"ar"') == phrase
    assert kql_to_query("entities.person : *") == exists
    assert kql_to_query('language.code : "ar" AND entities.person : *') == {
        "bool": {"filter": [phrase, exists]}
    }
    assert kql_to_query('not (language.code : "ar" or entities.person : *)') == {
        "bool": {"must_not": [{"bool": {"should": [phrase, exists], "minimum_should_match": 1}}]}
    }
    assert kql_to_query(r'title : "say \"hi\" \\ bye"')["bool"]["should"][0] == {
        "match_phrase": {"title": 'say "hi" \\ bye'}
    }
    # `and` binds tighter than `or`, as in KQL
    assert kql_fields('a : "1" or b : "2" and not c : *') == {"a", "b", "c"}
    assert kql_to_query('a : "1" or b : "2" and c : "3"')["bool"]["should"][1]["bool"]["filter"]


@pytest.mark.parametrize(
    "kql",
    [
        "",
        "language.code : ar",  # unquoted value
        'title_lang.* : "x"',  # wildcard field
        'title : "x*" or title : x*',
        'published_at >= "2026-01-01"',  # range
        'entity_mentions:{ text : "x" }',  # nested syntax
        'a : "x" and',
        '(a : "x"',
        'a : "x" b : "y"',
        'a : "x\\n"',  # unknown escape
        "title:(a or b)",  # value lists
        "just some words",  # free text
    ],
)
def test_kql_outside_the_subset_is_rejected(kql: str) -> None:
    with pytest.raises(ValueError):
        kql_to_query(kql)


def test_referenced_fields_reads_filters_sort_and_lens() -> None:
    source = {
        "query": {"query": 'language.code : "ar"', "language": "kuery"},
        "filter": [
            {
                "meta": {"key": "feed.id", "type": "phrase"},
                "query": {"match_phrase": {"feed.id": "x"}},
            },
            {"meta": {}, "query": {"bool": {"must_not": [{"exists": {"field": "authors"}}]}}},
        ],
        "sort": [{"published_at": {"order": "desc"}}, {"_score": "desc"}],
    }
    search = {
        "type": "search",
        "id": "s",
        "attributes": {
            "columns": ["title", "_source"],
            "sort": [["first_seen_at", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
    }
    assert referenced_fields(search) == {
        "language.code",
        "feed.id",
        "authors",
        "published_at",
        "title",
        "first_seen_at",
    }
    lens = {
        "type": "lens",
        "id": "l",
        "attributes": {
            "state": {
                "query": {"query": "entities.org : *", "language": "kuery"},
                "datasourceStates": {
                    "formBased": {
                        "layers": {
                            "a": {
                                "columnOrder": ["t", "c"],
                                "columns": {
                                    "t": {
                                        "operationType": "terms",
                                        "sourceField": "feed.id",
                                        "isBucketed": True,
                                        "params": {"secondaryFields": ["feed.name"]},
                                    },
                                    "c": {
                                        "operationType": "count",
                                        "sourceField": "___records___",
                                        "filter": {"query": "categories : *", "language": "kuery"},
                                    },
                                },
                            }
                        }
                    }
                },
            }
        },
    }
    assert referenced_fields(lens) == {"entities.org", "feed.id", "feed.name", "categories"}
    assert [q["query"] for q in queries(lens)] == ["entities.org : *", "categories : *"]
    lucene = {**search, "attributes": {**search["attributes"]}}
    lucene["attributes"]["kibanaSavedObjectMeta"] = {
        "searchSourceJSON": json.dumps({"query": {"query": "a:b", "language": "lucene"}})
    }
    with pytest.raises(ValueError, match="only KQL"):
        referenced_fields(lucene)


def test_load_objects_reports_the_bad_line(tmp_path: Path) -> None:
    good = json.dumps({"type": "search", "id": "a", "attributes": {}})
    path = tmp_path / "x.ndjson"
    path.write_text(f"{good}\n\n{{not json\n", encoding="utf-8")
    with pytest.raises(KibanaAssetError, match=r"x\.ndjson:3: not valid JSON"):
        load_objects(path)
    path.write_text(f'{good}\n{{"type": "search"}}\n', encoding="utf-8")
    with pytest.raises(KibanaAssetError, match=r":2: missing or empty string 'id'"):
        load_objects(path)
    path.write_text("[1]\n", encoding="utf-8")
    with pytest.raises(KibanaAssetError, match=r":1: expected a JSON object"):
        load_objects(path)
    summary = json.dumps({"exportedCount": 1, "missingRefCount": 0, "missingReferences": []})
    path.write_text(f"{good}\n{summary}\n", encoding="utf-8")  # an export's summary line
    assert [o["id"] for o in load_objects(path)] == ["a"]


# --- import against a fake Kibana ------------------------------------------------------------


class FakeKibana(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    answer: ClassVar[tuple[int, bytes]] = (200, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, payload = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_kibana() -> Iterator[tuple[str, type[FakeKibana]]]:
    handler = type("Handler", (FakeKibana,), {"requests": [], "answer": (200, b"{}")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_import_posts_the_file_as_multipart(fake_kibana: tuple[str, type[FakeKibana]]) -> None:
    url, handler = fake_kibana
    ok = {"success": True, "successCount": len(OBJECTS), "successResults": []}
    handler.answer = (200, json.dumps(ok).encode())
    settings = KibanaSettings(
        url=url + "/", username="elastic", password=SecretStr("s3cret"), space="analysts"
    )
    assert import_objects(settings) == ok
    (req,) = handler.requests
    assert req["path"] == "/s/analysts/api/saved_objects/_import?overwrite=true"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["kbn-xsrf"]
    assert headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    content_type = headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    body: bytes = req["body"]
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    assert b'name="file"; filename="newsflow.ndjson"' in body
    assert KIBANA_ASSETS.read_bytes() in body

    # The default space has no URL prefix; no credentials, no Authorization header.
    import_objects(KibanaSettings(url=url, space="default"))
    req = handler.requests[-1]
    assert req["path"] == "/api/saved_objects/_import?overwrite=true"
    assert "authorization" not in {k.lower() for k in req["headers"]}


def test_import_failures_are_clear_errors(fake_kibana: tuple[str, type[FakeKibana]]) -> None:
    url, handler = fake_kibana
    settings = KibanaSettings(url=url)
    handler.answer = (
        200,
        json.dumps(
            {
                "success": False,
                "successCount": 1,
                "errors": [
                    {
                        "id": "newsflow-overview",
                        "type": "dashboard",
                        "title": "x",
                        "error": {
                            "type": "missing_references",
                            "references": [{"type": "lens", "id": "gone"}],
                        },
                    },
                    {"id": "s", "type": "search", "error": {"type": "unknown", "message": "boom"}},
                ],
            }
        ).encode(),
    )
    with pytest.raises(KibanaImportError) as info:
        import_objects(settings)
    message = str(info.value)
    assert "failed for 2 object(s) (1 imported)" in message
    assert "dashboard/newsflow-overview: missing_references (lens/gone)" in message
    assert "search/s: unknown (boom)" in message

    handler.answer = (
        400,
        b'{"statusCode":400,"error":"Bad Request","message":"Invalid file extension .txt"}',
    )
    with pytest.raises(KibanaImportError, match=r"HTTP 400 .*Invalid file extension") as info:
        import_objects(settings)
    assert info.value.status == 400


def test_import_refuses_bad_input_before_sending(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"kibana\.url is not set"):
        import_objects(KibanaSettings())
    bad = tmp_path / "bad.ndjson"
    bad.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(KibanaAssetError, match=r"bad\.ndjson:1"):
        import_objects(KibanaSettings(url="http://127.0.0.1:9"), bad)
    with pytest.raises(ValueError, match=r"\*\.ndjson"):
        import_objects(KibanaSettings(url="http://127.0.0.1:9"), tmp_path / "x.json")


def test_import_reports_an_unreachable_kibana() -> None:
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    with pytest.raises(KibanaImportError, match="not reachable"):
        import_objects(KibanaSettings(url="http://127.0.0.1:9"), timeout_s=5)


def test_linked_entities_are_offered_per_language() -> None:
    """Issue 13.5: a facet that groups by link id (one bar for سوريا, Syria, Suriye ...) on the
    dashboard, and every label language findable by name in the data view and a saved search."""
    (dash,) = [o for o in OBJECTS if o["type"] == "dashboard"]
    on_dash = [BY_KEY[(r["type"], r["id"])] for r in dash["references"]]
    buckets = {c.source_field for o in on_dash for c in lens_columns(o) if c.bucketed}
    assert "entity_labels.en" in buckets
    (view,) = [o for o in OBJECTS if o["type"] == "index-pattern"]
    labels = json.loads(view["attributes"]["fieldAttrs"])
    for lang in LABEL_LANGS:
        assert labels[f"entity_labels.{lang}"]["customLabel"].startswith("Linked entities (")
    linked = BY_KEY[("search", "newsflow-search-linked-entities")]
    assert {f"entity_labels.{lang}" for lang in LABEL_LANGS} <= set(linked["attributes"]["columns"])
    assert [q["query"] for q in queries(linked)] == ["entity_ids : *"]
