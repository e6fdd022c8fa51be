"""Kibana saved objects for analysts: load, inspect and import ``deploy/kibana/newsflow.ndjson``.

The NDJSON file is in the format of Kibana's saved-objects export (one object a line: a data view
``index-pattern``, saved searches ``search``, Lens visualisations ``lens`` and a ``dashboard``);
``import_objects`` posts it to ``/api/saved_objects/_import?overwrite=true``, so the import is
idempotent (stable ids, overwritten in place).

The pure helpers let tests check the assets without a Kibana: ``queries`` lists the KQL/Lucene
queries of an object, ``referenced_fields`` the index fields it uses, and ``kql_to_query``
translates the small KQL subset the assets use into Elasticsearch DSL (anything else raises
``ValueError``, so a new construct must be supported here, and thereby tested, before it ships).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from streams import resources
from streams.settings import KibanaSettings

# Shipped as package data (streams.resources); a path on disk works as well everywhere.
KIBANA_ASSETS = resources.deploy_file("kibana/newsflow.ndjson")
KIBANA_OPS_ASSETS = resources.deploy_file("kibana/newsflow-ops.ndjson")
# What `newsflow bootstrap` imports: the analysts' objects, then the operators' view.
ASSET_FILES = (KIBANA_ASSETS, KIBANA_OPS_ASSETS)
IMPORT_PATH = "/api/saved_objects/_import"
RECORDS_FIELD = "___records___"  # Lens' pseudo field of a count column

JsonObj = dict[str, Any]


class KibanaAssetError(ValueError):
    """The NDJSON file (or one object in it) is malformed."""


class KibanaImportError(RuntimeError):
    """Kibana refused the import, failed some objects, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


# --- loading ---------------------------------------------------------------------------------


def load_objects(path: Traversable | str = KIBANA_ASSETS) -> list[JsonObj]:
    """The saved objects of an NDJSON export, in file order.

    Blank lines and an export's trailing summary line (``exportedCount`` ...) are skipped. A line
    that is not a JSON object with string ``type`` and ``id`` raises ``KibanaAssetError`` naming
    the file and line number.
    """
    path = Path(path) if isinstance(path, str) else path
    objects: list[JsonObj] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KibanaAssetError(
                    f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
            if not isinstance(value, dict):
                raise KibanaAssetError(f"{path}:{number}: expected a JSON object per line")
            if "exportedCount" in value and "type" not in value:
                continue  # the summary line Kibana appends to an export
            for key in ("type", "id"):
                if not isinstance(value.get(key), str) or not value[key]:
                    raise KibanaAssetError(f"{path}:{number}: missing or empty string {key!r}")
            if not isinstance(value.get("attributes", {}), dict):
                raise KibanaAssetError(f"{path}:{number}: 'attributes' must be an object")
            objects.append(value)
    return objects


def search_source(obj: JsonObj) -> JsonObj:
    """The parsed ``kibanaSavedObjectMeta.searchSourceJSON`` of an object ({} when absent)."""
    meta = obj.get("attributes", {}).get("kibanaSavedObjectMeta") or {}
    raw = meta.get("searchSourceJSON")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KibanaAssetError(f"{_name(obj)}: searchSourceJSON is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise KibanaAssetError(f"{_name(obj)}: searchSourceJSON must be a JSON object")
    return parsed


def panels(obj: JsonObj) -> list[JsonObj]:
    """A dashboard's parsed ``panelsJSON`` ([] for other objects)."""
    raw = obj.get("attributes", {}).get("panelsJSON")
    if not raw:
        return []
    parsed = json.loads(raw)
    if not isinstance(parsed, list) or not all(isinstance(p, dict) for p in parsed):
        raise KibanaAssetError(f"{_name(obj)}: panelsJSON must be a JSON array of objects")
    return parsed


@dataclass(frozen=True)
class LensColumn:
    layer_id: str
    column_id: str
    operation: str  # count, terms, date_histogram, ...
    source_field: str | None
    bucketed: bool
    params: JsonObj


def lens_layers(obj: JsonObj) -> dict[str, JsonObj]:
    """The form-based (formerly ``indexpattern``) datasource layers of a Lens object."""
    state = obj.get("attributes", {}).get("state") or {}
    datasources = state.get("datasourceStates") or {}
    layers: dict[str, JsonObj] = {}
    for key in ("formBased", "indexpattern"):
        layers.update((datasources.get(key) or {}).get("layers") or {})
    return layers


def lens_columns(obj: JsonObj) -> list[LensColumn]:
    """The columns of every form-based layer, in each layer's ``columnOrder``."""
    out: list[LensColumn] = []
    for layer_id, layer in lens_layers(obj).items():
        columns: dict[str, JsonObj] = layer.get("columns") or {}
        order = [c for c in layer.get("columnOrder") or [] if c in columns]
        order += [c for c in columns if c not in order]
        for column_id in order:
            col = columns[column_id]
            out.append(
                LensColumn(
                    layer_id=layer_id,
                    column_id=column_id,
                    operation=str(col.get("operationType")),
                    source_field=col.get("sourceField"),
                    bucketed=bool(col.get("isBucketed")),
                    params=col.get("params") or {},
                )
            )
    return out


# --- queries and fields ----------------------------------------------------------------------


def queries(obj: JsonObj) -> list[JsonObj]:
    """The non-empty KQL/Lucene queries of an object: ``{"query": str, "language": str}`` each.

    Covers the searchSource query (searches, dashboards), the Lens state query and Lens
    per-column filters. A query that is not a string raises ``KibanaAssetError``.
    """
    found: list[JsonObj] = []

    def add(query: Any, where: str) -> None:
        if not query:
            return
        if not isinstance(query, dict):
            raise KibanaAssetError(f"{_name(obj)}: {where} must be an object")
        text = query.get("query")
        if text in (None, ""):
            return
        if not isinstance(text, str):
            raise KibanaAssetError(f"{_name(obj)}: {where} query must be a string, got {text!r}")
        if text.strip():
            found.append({"query": text, "language": str(query.get("language", "kuery"))})

    add(search_source(obj).get("query"), "searchSourceJSON.query")
    if obj.get("type") == "lens":
        state = obj.get("attributes", {}).get("state") or {}
        add(state.get("query"), "state.query")
        for layer_id, layer in lens_layers(obj).items():
            for column_id, col in (layer.get("columns") or {}).items():
                add(col.get("filter"), f"layer {layer_id} column {column_id} filter")
    return found


def referenced_fields(obj: JsonObj) -> set[str]:
    """The index fields an object uses.

    searchSourceJSON: fields of KQL queries, of filters (``meta.key`` and the filter DSL) and of
    ``sort``; a saved search's ``columns`` and ``sort``; Lens columns' ``sourceField`` (and
    multi-terms ``secondaryFields``) plus the fields of Lens queries; a data view's
    ``timeFieldName`` and the fields named in its ``fieldFormatMap``/``fieldAttrs``.
    Lucene queries are not parsed: they raise ``ValueError`` like unsupported KQL.
    """
    attrs = obj.get("attributes", {})
    fields: set[str] = set()
    for query in queries(obj):
        fields |= query_fields(query)
    source = search_source(obj)
    for flt in source.get("filter") or []:
        key = (flt.get("meta") or {}).get("key")
        if isinstance(key, str) and key:
            fields.add(key)
        fields |= dsl_fields(flt.get("query") or {})
    fields |= _sort_fields(source.get("sort"))
    if obj.get("type") == "search":
        fields |= {c for c in attrs.get("columns") or [] if isinstance(c, str) and c != "_source"}
        fields |= _sort_fields(attrs.get("sort"))
    if obj.get("type") == "lens":
        for col in lens_columns(obj):
            if col.source_field and col.source_field != RECORDS_FIELD:
                fields.add(col.source_field)
            fields |= {f for f in col.params.get("secondaryFields") or [] if isinstance(f, str)}
    if obj.get("type") == "index-pattern":
        if attrs.get("timeFieldName"):
            fields.add(attrs["timeFieldName"])
        for key in ("fieldFormatMap", "fieldAttrs"):
            raw = attrs.get(key)
            if raw:
                fields |= set(json.loads(raw))
    return fields


def query_fields(query: JsonObj) -> set[str]:
    """The fields of one ``{"query", "language"}`` pair (KQL only)."""
    if query.get("language", "kuery") != "kuery":
        raise ValueError(f"only KQL is supported, not {query.get('language')!r}: {query!r}")
    return _fields(_parse_kql(str(query["query"])))


def dsl_fields(query: Any) -> set[str]:
    """The fields named in an Elasticsearch query DSL object (filters of a searchSource)."""
    fields: set[str] = set()
    if isinstance(query, list):
        for item in query:
            fields |= dsl_fields(item)
        return fields
    if not isinstance(query, dict):
        return fields
    for kind, body in query.items():
        if kind == "bool" and isinstance(body, dict):
            for clause in ("must", "should", "filter", "must_not"):
                fields |= dsl_fields(body.get(clause) or [])
        elif kind == "exists" and isinstance(body, dict):
            fields.add(str(body.get("field")))
        elif kind == "nested" and isinstance(body, dict):
            fields |= dsl_fields(body.get("query") or {})
        elif kind in ("query_string", "simple_query_string", "multi_match"):
            fields |= {f.split("^")[0] for f in (body or {}).get("fields") or []}
        elif kind in _LEAF_QUERIES and isinstance(body, dict):
            fields |= {k for k in body if k not in ("boost", "_name")}
    return fields


_LEAF_QUERIES = {
    "term",
    "terms",
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "range",
    "prefix",
    "wildcard",
    "regexp",
    "fuzzy",
}


def _sort_fields(sort: Any) -> set[str]:
    fields: set[str] = set()
    for item in sort or []:
        if isinstance(item, list) and item and isinstance(item[0], str):
            fields.add(item[0])  # saved search: [["field", "desc"], ...]
        elif isinstance(item, dict):
            fields |= {k for k in item if not k.startswith("_")}  # searchSource: [{"f": {...}}]
        elif isinstance(item, str):
            fields.add(item)
    return {f for f in fields if not f.startswith("_")}


# --- a deliberately small KQL subset ---------------------------------------------------------
#
#   query   := or
#   or      := and ("or" and)*
#   and     := not ("and" not)*
#   not     := "not" not | "(" or ")" | field ":" value
#   value   := "quoted string" (\" and \\ escapes) | *
#
# Keywords are case-insensitive, as in Kibana. Anything else (unquoted values, wildcards in
# values or field names, ranges, nested `field:{...}`, Lucene) raises ValueError.

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<colon>:) |
        (?P<quoted>"(?:[^"\\]|\\.)*") |
        (?P<word>[^\s():"]+)
    )""",
    re.VERBOSE,
)
_FIELD = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@.\-]*$")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class _Match:
    field: str
    value: str | None  # None: `field : *` (exists)


@dataclass(frozen=True)
class _Bool:
    op: str  # and, or, not
    children: tuple[_Node, ...]


_Node = _Match | _Bool


def _tokens(kql: str) -> Iterator[_Tok]:
    pos = 0
    while pos < len(kql):
        if not kql[pos:].strip():
            return
        match = _TOKEN.match(kql, pos)
        if match is None or match.lastgroup is None:
            raise ValueError(f"unsupported KQL at column {pos + 1}: {kql!r}")
        yield _Tok(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        pos = match.end()


class _Parser:
    def __init__(self, kql: str) -> None:
        self.kql = kql
        self.toks = list(_tokens(kql))
        self.i = 0

    def fail(self, what: str) -> ValueError:
        tok = self.peek()
        where = f"column {tok.pos + 1} ({tok.text!r})" if tok else "end of query"
        return ValueError(f"unsupported KQL, {what} at {where}: {self.kql!r}")

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def expect(self, kind: str) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            raise self.fail(f"expected {kind}")
        self.i += 1
        return tok

    def parse(self) -> _Node:
        if not self.toks:
            raise ValueError("empty KQL query")
        node = self.or_()
        if self.peek() is not None:
            raise self.fail("unexpected token")
        return node

    def or_(self) -> _Node:
        nodes = [self.and_()]
        while self.keyword("or"):
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else _Bool("or", tuple(nodes))

    def and_(self) -> _Node:
        nodes = [self.not_()]
        while self.keyword("and"):
            nodes.append(self.not_())
        return nodes[0] if len(nodes) == 1 else _Bool("and", tuple(nodes))

    def not_(self) -> _Node:
        if self.keyword("not"):
            return _Bool("not", (self.not_(),))
        tok = self.peek()
        if tok and tok.kind == "lparen":
            self.i += 1
            node = self.or_()
            self.expect("rparen")
            return node
        if tok is None or tok.kind != "word":
            raise self.fail("expected a field name")
        field = tok.text
        if field.lower() in ("and", "or", "not") or not _FIELD.match(field):
            raise self.fail("expected a field name")
        self.i += 1
        self.expect("colon")
        value = self.peek()
        if value and value.kind == "quoted":
            self.i += 1
            return _Match(field, _unquote(value.text))
        if value and value.kind == "word" and value.text == "*":
            self.i += 1
            return _Match(field, None)
        raise self.fail('expected a "quoted value" or *')


def _unquote(token: str) -> str:
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\":
            if i + 1 >= len(body) or body[i + 1] not in '"\\':
                raise ValueError(f"unsupported escape in KQL string {token}")
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _parse_kql(kql: str) -> _Node:
    return _Parser(kql).parse()


def _fields(node: _Node) -> set[str]:
    if isinstance(node, _Match):
        return {node.field}
    out: set[str] = set()
    for child in node.children:
        out |= _fields(child)
    return out


def _to_dsl(node: _Node) -> JsonObj:
    # Shaped like Kibana's own KQL translation (match_phrase for quoted values, exists for *).
    if isinstance(node, _Match):
        leaf: JsonObj = (
            {"exists": {"field": node.field}}
            if node.value is None
            else {"match_phrase": {node.field: node.value}}
        )
        return {"bool": {"should": [leaf], "minimum_should_match": 1}}
    children = [_to_dsl(child) for child in node.children]
    if node.op == "and":
        return {"bool": {"filter": children}}
    if node.op == "or":
        return {"bool": {"should": children, "minimum_should_match": 1}}
    return {"bool": {"must_not": children}}


def kql_to_query(kql: str) -> JsonObj:
    """Translate the supported KQL subset into an Elasticsearch query; ``ValueError`` otherwise."""
    return _to_dsl(_parse_kql(kql))


def kql_fields(kql: str) -> set[str]:
    """The field names a (supported) KQL query uses."""
    return _fields(_parse_kql(kql))


# --- import ----------------------------------------------------------------------------------


def import_url(settings: KibanaSettings) -> str:
    if not settings.url:
        raise ValueError("kibana.url is not set (NEWSFLOW_KIBANA__URL)")
    base = settings.url.rstrip("/")
    if settings.space and settings.space != "default":
        base += "/s/" + urllib.parse.quote(settings.space, safe="")
    return f"{base}{IMPORT_PATH}?overwrite=true"


def import_objects(
    settings: KibanaSettings, path: Traversable | str = KIBANA_ASSETS, *, timeout_s: float = 30.0
) -> JsonObj:
    """Import the NDJSON file into Kibana, overwriting objects with the same ids.

    Returns Kibana's summary (``success``, ``successCount``, ``successResults``, ...). Raises
    ``KibanaImportError`` when Kibana is unreachable, answers an HTTP error, or reports
    ``success: false`` (the message lists each failed object and its error type).
    """
    path = Path(path) if isinstance(path, str) else path
    if not path.name.lower().endswith(".ndjson"):
        raise ValueError(f"{path}: Kibana only imports files named *.ndjson")
    load_objects(path)  # fail locally, with a line number, before sending anything
    url = import_url(settings)
    body, content_type = _multipart("file", path.name, path.read_bytes())
    headers = {"kbn-xsrf": "newsflow", "Content-Type": content_type, "Accept": "application/json"}
    if settings.username and settings.password:
        token = f"{settings.username}:{settings.password.get_secret_value()}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = _json_or_text(exc.read())
        message = detail.get("message") if isinstance(detail, dict) else detail
        raise KibanaImportError(
            f"Kibana import at {url} failed: HTTP {exc.code} {exc.reason}: {message}",
            status=exc.code,
            body=detail,
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KibanaImportError(f"Kibana at {settings.url} is not reachable: {reason}") from exc
    summary = _json_or_text(raw)
    if not isinstance(summary, dict):
        raise KibanaImportError(
            f"Kibana import at {url}: unexpected answer (HTTP {status}): {summary!r}",
            status=status,
            body=summary,
        )
    if not summary.get("success", False):
        errors = summary.get("errors") or []
        lines = [
            f"{e.get('type')}/{e.get('id')}: {(e.get('error') or {}).get('type', 'unknown')}"
            + _error_detail(e.get("error") or {})
            for e in errors
        ]
        raise KibanaImportError(
            f"Kibana import at {url} failed for {len(errors)} object(s) "
            f"({summary.get('successCount', 0)} imported): " + "; ".join(lines),
            status=status,
            body=summary,
        )
    return summary


def _error_detail(error: JsonObj) -> str:
    if error.get("type") == "missing_references":
        refs = ", ".join(f"{r.get('type')}/{r.get('id')}" for r in error.get("references") or [])
        return f" ({refs})"
    if error.get("message"):
        return f" ({error['message']})"
    return ""


def _json_or_text(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "newsflow-" + secrets.token_hex(16)
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def _name(obj: JsonObj) -> str:
    return f"{obj.get('type')}/{obj.get('id')}"
