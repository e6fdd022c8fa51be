"""The feed list: which feeds the connector polls (YAML on disk, OPML in and out).

Users edit the YAML by hand or with ``newsflow feeds add/remove/import``; the poller reads it at
start (and again when the file changes). Format::

    allow_private_addresses: false   # true only for lists that point at local servers
    feeds:
      - id: bbc-arabic
        url: https://feeds.bbci.co.uk/arabic/rss.xml
        name: BBC News عربي
        language: ar          # hint: the feed's declared language (BCP 47)
        country: GB
        tags: [world]
        min_interval_s: 300   # optional poll bounds (defaults: connector settings)
        max_interval_s: 3600
        full_text: auto       # fetch the article page: auto (feed text < 600 chars), always, never
        page_per_host: 1      # optional politeness for its article pages (default: page_fetch)
        page_min_spacing_s: 5
        enabled: true

In OPML, ``full_text``, ``page_per_host`` and ``page_min_spacing_s`` are outline attributes of
the same names (read on import, written on export when set).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from xml.parsers import expat

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FEED_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ID_JUNK = re.compile(r"[^a-z0-9]+")


class FeedListError(ValueError):
    """A feed list that cannot be used, with a message that says where and why."""


class FeedSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=FEED_ID, description="Unique id; the Kafka header and metric label.")
    url: str = Field(min_length=8, max_length=4096, description="Feed URL (http or https).")
    name: str | None = Field(None, max_length=300, description="Human-readable name.")
    language: str | None = Field(
        None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$", description="Language hint."
    )
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")
    tags: tuple[str, ...] = Field((), description="Free tags.")
    min_interval_s: float | None = Field(None, ge=1, description="Poll at most this often.")
    max_interval_s: float | None = Field(None, ge=1, description="Poll at least this often.")
    enabled: bool = Field(True, description="Disabled feeds are kept but not polled.")
    full_text: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Fetch each item's article page: auto (when the feed's own text is short), "
        "always, never.",
    )
    page_per_host: int | None = Field(
        None, ge=1, le=100, description="Article page fetches in flight to the feed's site."
    )
    page_min_spacing_s: float | None = Field(
        None, ge=0, le=3600, description="Least seconds between article page fetches."
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"feed URL must be http(s) with a host, got {url!r}")
        return url

    @model_validator(mode="after")
    def _bounds(self) -> FeedSpec:
        if (
            self.min_interval_s
            and self.max_interval_s
            and self.min_interval_s > self.max_interval_s
        ):
            raise ValueError("min_interval_s is larger than max_interval_s")
        return self


class FeedList(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_private_addresses: bool = Field(
        False, description="Allow feeds on loopback/private addresses (demo and tests only)."
    )
    feeds: tuple[FeedSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> FeedList:
        seen: set[str] = set()
        for feed in self.feeds:
            if feed.id in seen:
                raise ValueError(f"duplicate feed id {feed.id!r}")
            seen.add(feed.id)
        return self

    def get(self, feed_id: str) -> FeedSpec | None:
        return next((f for f in self.feeds if f.id == feed_id), None)

    def with_feed(self, feed: FeedSpec) -> FeedList:
        if self.get(feed.id):
            raise FeedListError(f"a feed with id {feed.id!r} is already in the list")
        if any(f.url == feed.url for f in self.feeds):
            raise FeedListError(f"{feed.url} is already in the list")
        return self.model_copy(update={"feeds": (*self.feeds, feed)})

    def without(self, feed_id: str) -> FeedList:
        if not self.get(feed_id):
            raise FeedListError(f"no feed with id {feed_id!r}")
        return self.model_copy(update={"feeds": tuple(f for f in self.feeds if f.id != feed_id)})


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "feeds" and isinstance(loc[1], int):
            feeds = raw.get("feeds") or []
            entry = feeds[loc[1]] if loc[1] < len(feeds) else {}
            ident = entry.get("id") or entry.get("url") if isinstance(entry, dict) else None
            where = f"feeds[{loc[1]}]" + (f" ({ident})" if ident else "")
            where += "".join(f".{p}" for p in loc[2:])
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


class _Loader(yaml.SafeLoader):
    """YAML with the 1.2 core schema's booleans: only true/false (any case) are booleans.

    PyYAML follows YAML 1.1, where yes/no/on/off/y/n are booleans too: ``language: no``
    (Norwegian) and ``country: NO`` (Norway) became False and failed with "Input should be a
    valid string". As strings they validate; boolean fields still accept "yes"/"no"/"on"/"off"
    because pydantic reads those strings as booleans.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_feed_list(text: str, origin: str = "<feed list>") -> FeedList:
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FeedListError(f"{origin}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if isinstance(raw, list):  # a bare list of feeds is accepted too
        raw = {"feeds": raw}
    if not isinstance(raw, dict):
        raise FeedListError(f"{origin}: expected a mapping with a 'feeds' list")
    try:
        return FeedList.model_validate(raw)
    except ValidationError as exc:
        raise FeedListError(f"{origin}: {_describe(exc, raw)}") from None


def load_feed_list(path: Path) -> FeedList:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeedListError(
            f"feed list {path} does not exist (create it with `newsflow feeds add URL`, "
            "`newsflow feeds import FILE.opml`, or pass --feeds deploy/feeds/starter.yaml)"
        ) from None
    if path.suffix.lower() == ".opml":
        feeds, problems = import_opml(text.encode("utf-8"), origin=str(path))
        if problems:
            raise FeedListError(f"{path}: outlines refused: " + "; ".join(problems))
        return feeds
    return parse_feed_list(text, str(path))


def dump_feed_list(feeds: FeedList) -> str:
    body: dict[str, Any] = {"allow_private_addresses": feeds.allow_private_addresses, "feeds": []}
    for feed in feeds.feeds:
        body["feeds"].append(feed.model_dump(mode="json", exclude_defaults=True))
    header = "# newsflow feed list (format: see `newsflow feeds --help` and the README)\n"
    return header + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=100)


def save_feed_list(path: Path, feeds: FeedList) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_feed_list(feeds), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a feed list


def feed_id_for(url: str, taken: Iterable[str] = ()) -> str:
    """A readable id from the URL: host without www/feeds/rss plus the path, made unique."""
    parts = urlsplit(url)
    host = (parts.hostname or "feed").lower()
    host = re.sub(r"^(www|feeds?|rss)\.", "", host)
    path_bits = [p for p in re.split(r"[/.]", parts.path.lower()) if p]
    path_bits = [p for p in path_bits if p not in {"rss", "feed", "feeds", "xml", "atom", "index"}]
    base = _ID_JUNK.sub("-", "-".join([host, *path_bits[:3]])).strip("-")
    base = (base or "feed")[:56].strip("-")
    taken_set = set(taken)
    candidate, n = base, 2
    while candidate in taken_set:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


# ---- OPML -----------------------------------------------------------------------------------


# Outline attributes of our own (lower-case: attribute names are matched case-insensitively).
_OPML_EXTRA = ("full_text", "page_per_host", "page_min_spacing_s")


def import_opml(
    data: bytes, origin: str = "<opml>", existing: FeedList | None = None
) -> tuple[FeedList, list[str]]:
    """Feeds from an OPML subscription list added to ``existing``, and the outlines refused.

    Duplicates (by URL) are skipped silently; an unusable outline (say, an ftp: URL) is reported
    and the rest imported. Nested outlines become tags (the folder names); ``language`` is kept.
    """
    root = _parse_opml(data, origin)
    if root.tag.lower() != "opml":
        raise FeedListError(f"{origin}: root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise FeedListError(f"{origin}: OPML without <body>")
    current = existing or FeedList()
    feeds = list(current.feeds)
    urls = {f.url for f in feeds}
    ids = {f.id for f in feeds}
    problems: list[str] = []

    # Iterative, depth-first in document order: a recursive walk raised RecursionError on
    # deeply nested outlines (the parser caps the depth too, see _parse_opml).
    stack: list[tuple[Iterator[ET.Element], tuple[str, ...]]] = [
        (iter(body.findall("outline")), ())
    ]
    while stack:
        outlines, folders = stack[-1]
        outline = next(outlines, None)
        if outline is None:
            stack.pop()
            continue
        attrs = {k.lower(): v for k, v in outline.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        title = (attrs.get("title") or attrs.get("text") or "").strip() or None
        if not url:
            inner = (*folders, title) if title else folders
            stack.append((iter(outline.findall("outline")), inner))
            continue
        if url in urls:
            continue
        tags = tuple(
            dict.fromkeys(
                [*folders, *(c.strip() for c in attrs.get("category", "").split(",") if c)]
            )
        )
        extra = {k: attrs[k] for k in _OPML_EXTRA if attrs.get(k)}
        try:
            feed = FeedSpec(
                id=feed_id_for(url, ids),
                url=url,
                name=title[:300] if title else None,
                language=(attrs.get("language") or None),
                tags=tuple(t.strip("/ ")[:60] for t in tags if t.strip("/ ")),
                **extra,
            )
        except ValidationError as exc:
            problems.append(f"{url}: {exc.errors()[0]['msg']}")
            continue
        feeds.append(feed)
        urls.add(url)
        ids.add(feed.id)

    merged = FeedList(allow_private_addresses=current.allow_private_addresses, feeds=tuple(feeds))
    return merged, problems


# Outlines nest folders; nobody files feeds 100 folders deep, and a cap keeps a hostile file
# from costing memory and time in proportion to its depth.
MAX_OPML_DEPTH = 100


class _RefusedOpml(Exception):
    pass


def _parse_opml(data: bytes, origin: str) -> ET.Element:
    """The OPML document as a tree; declarations refused by the parser itself.

    expat reports every DOCTYPE and ENTITY declaration to a handler, whatever the document's
    encoding (UTF-16, a declared legacy charset) or the length of its prolog: the handler
    refuses the document, so no entity is ever defined, let alone expanded (a byte search for
    "<!DOCTYPE" missed UTF-16 and did not see declarations behind other encodings).
    """
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    depth = 0

    def refuse(*_: object) -> None:
        raise _RefusedOpml("OPML with a DOCTYPE/ENTITY declaration is refused")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_OPML_DEPTH:
            raise _RefusedOpml(f"OPML nested deeper than {MAX_OPML_DEPTH} levels is refused")
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except _RefusedOpml as exc:
        raise FeedListError(f"{origin}: {exc}") from None
    except expat.ExpatError as exc:
        raise FeedListError(f"{origin}: not well-formed OPML: {exc}") from None
    return builder.close()


def export_opml(feeds: FeedList, title: str = "newsflow feeds") -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds.feeds:
        attrs = {"type": "rss", "text": feed.name or feed.id, "xmlUrl": feed.url}
        if feed.name:
            attrs["title"] = feed.name
        if feed.language:
            attrs["language"] = feed.language
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        for key in _OPML_EXTRA:
            value = getattr(feed, key)
            if value is not None and value != FeedSpec.model_fields[key].default:
                attrs[key] = str(value)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
