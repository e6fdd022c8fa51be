"""`newsflow demo` (what `make demo` runs): bundled feeds -> the whole pipeline -> searches.

Serves the bundled sample feeds (``deploy/feeds/demo/``: 10 feeds in 9 languages, the Arabic
seed article among them, and the article page behind every item under ``pages/``) on
127.0.0.1:8765, runs ``newsflow run --once`` over
``deploy/feeds/demo.yaml`` (connector, enrich and index workers as real processes), then prints
a few searches, Arabic first, with their entities. ``newsflow demo --smoke`` keeps the older
single-article round trip (``streams/commands/demo.py``).

Full text: the demo feeds carry one- or two-sentence summaries, so the extract stage fetches
every item's page from the same local server (``full_text: auto``; the feed list allows private
addresses, which ``newsflow run`` passes on to the extract worker, and the demo relaxes the
pacing towards its own server only). The summary ends with the entities that enrichment found
only in the article bodies, per language: what the summaries alone would have missed.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams import resources
from streams.commands import run
from streams.commands.search import build_query, resolve_entity
from streams.schema.ids import article_id
from streams.settings import Settings
from streams.sinks.elastic import make_client

# Package data (streams.resources): the feed server and the feed list loader get real paths
# through resources.as_path.
FEEDS_DIR = resources.deploy_file("feeds/demo")
FEED_LIST = resources.deploy_file("feeds/demo.yaml")
HOST, PORT = "127.0.0.1", 8765
# The seed item links to its article page on the demo server (commands/demo.py uses the same URL).
SEED_ID = article_id(f"http://{HOST}:{PORT}/pages/ar/turkey-syria-defence-cooperation.html")
QUERIES = ("سوريا", "وزارة الدفاع", "Rotterdam", "Казани", "اصفهان", "成都")
# Cross-language entity searches: an English name finds the Arabic articles through the link id.
ENTITY_QUERIES = ("Turkey",)

Say = Callable[[str], None]


def _port_busy() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, PORT)) == 0


def _serves_demo() -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{PORT}/ar.xml", timeout=3) as resp:
            return bool(resp.read() == FEEDS_DIR.joinpath("ar.xml").read_bytes())
    except OSError:
        return False


def searches(
    settings: Settings,
    queries: tuple[str, ...] = QUERIES,
    entity_queries: tuple[str, ...] = ENTITY_QUERIES,
) -> list[dict[str, Any]]:
    es = make_client(settings.elastic)
    out = []
    plans = [(q, build_query(q)) for q in queries]
    plans += [
        (f"--entity {e}", build_query(None, entities=[resolve_entity(e)])) for e in entity_queries
    ]
    try:
        for query, body in plans:
            resp = es.search(
                index=settings.elastic.alias,
                query=body,
                size=2,
                source_includes=["title", "language.code", "feed.id", "entities"],
            )
            out.append(
                {
                    "query": query,
                    "total": resp["hits"]["total"]["value"],
                    "hits": [{"id": h["_id"], **h["_source"]} for h in resp["hits"]["hits"]],
                }
            )
    finally:
        es.close()
    return out


# The demo's own page server is ours: no need for 1 page/s there (the default for real sites).
DEMO_PAGE_HOSTS = {f"{HOST}:{PORT}": {"per_host": 8, "min_spacing_s": 0}}
DEMO_PAGE_DEADLINE_S = 90.0


def body_only_entities(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per language: articles with full text, and the entities found only in their bodies
    (mentioned in the extracted body, not in the title or the feed's summary/content)."""
    es = make_client(settings.elastic)
    try:
        es.indices.refresh(index=settings.elastic.alias)
        resp = es.search(
            index=settings.elastic.alias,
            query={"term": {"feed.tags": "demo"}},  # the demo feeds' articles only
            size=1000,
            source_includes=["language.code", "entity_mentions", "extraction.status"],
        )
    finally:
        es.close()
    out: dict[str, dict[str, Any]] = {}
    for hit in resp["hits"]["hits"]:
        src = hit["_source"]
        lang = (src.get("language") or {}).get("code") or "und"
        row = out.setdefault(lang, {"articles": 0, "full_text": 0, "body_only": 0, "examples": []})
        row["articles"] += 1
        if (src.get("extraction") or {}).get("status") == "ok":
            row["full_text"] += 1
        mentions = src.get("entity_mentions") or []
        feed_side = {m["normalized"] for m in mentions if m["field"] != "body"}
        only = {m["text"]: m["normalized"] for m in mentions if m["field"] == "body"}
        only = {t: n for t, n in only.items() if n not in feed_side}
        row["body_only"] += len(set(only.values()))
        for text in only:
            if len(row["examples"]) < 3 and text not in row["examples"]:
                row["examples"].append(text)
    return dict(sorted(out.items()))


def run_demo(settings: Settings, say: Say, state_dir: Path) -> dict[str, Any]:
    from streams.commands.feedserver import FeedDirServer

    server = None
    with resources.as_path(FEEDS_DIR) as feeds_dir, resources.as_path(FEED_LIST) as feed_list:
        if _port_busy():
            if not _serves_demo():
                raise RuntimeError(f"port {PORT} is taken by something that is not the demo feeds")
            say(f"demo feeds already served on http://{HOST}:{PORT}/")
        else:
            server = FeedDirServer(feeds_dir, host=HOST, port=PORT).start()
            say(f"serving the bundled demo feeds on {server.base_url}/")
        try:
            extra = {}
            if "NEWSFLOW_PAGE_FETCH__HOSTS" not in os.environ:
                extra["NEWSFLOW_PAGE_FETCH__HOSTS"] = json.dumps(DEMO_PAGE_HOSTS)
            if "NEWSFLOW_EXTRACT__PAGE_DEADLINE_S" not in os.environ:
                # The pages are local: on a busy machine a page waits for CPU, not for the
                # server, and the demo should show full text rather than queueing timeouts.
                extra["NEWSFLOW_EXTRACT__PAGE_DEADLINE_S"] = str(DEMO_PAGE_DEADLINE_S)
            result = run.run_once(settings, feed_list, state_dir, say, extra_env=extra)
        finally:
            if server is not None:
                server.stop()
    result["searches"] = searches(settings)
    result["body_only"] = body_only_entities(settings)
    return result


def render(result: dict[str, Any]) -> list[str]:
    lines = run.render_summary(result)
    body_only = result.get("body_only") or {}
    if body_only:
        total = sum(r["body_only"] for r in body_only.values())
        lines.append(
            f"entities only in body: {total} (found in the fetched article pages, not in the "
            "feeds' titles and summaries)"
        )
        for lang, row in body_only.items():
            lines.append(
                f"  [{lang}] entities only in body: {row['body_only']} in "
                f"{row['full_text']}/{row['articles']} articles with full text"
                + (f", e.g. {', '.join(row['examples'])}" if row["examples"] else "")
            )
    for found in result["searches"]:
        lines.append("")
        lines.append(f"search {found['query']!r}: {found['total']} hit(s)")
        for hit in found["hits"]:
            lang = (hit.get("language") or {}).get("code")
            lines.append(f"  [{lang}] {hit.get('title', '')[:110]}")
            ents = hit.get("entities") or {}
            for kind, label in (("person", "people"), ("org", "orgs"), ("location", "places")):
                if ents.get(kind):
                    lines.append(f"      {label}: {', '.join(ents[kind][:6])}")
    return lines


NEXT_STEPS = """
Keep it running: `newsflow feeds serve deploy/feeds/demo &` then
  `newsflow run --feeds deploy/feeds/demo.yaml` (Ctrl-C stops), or use your own list
  (`newsflow feeds add URL`, `deploy/feeds/starter.yaml` needs the internet).
Search: `newsflow search "سوريا"`, `newsflow search --entity "أنقرة"`.
Kibana: point it at http://127.0.0.1:9200 and set NEWSFLOW_KIBANA__URL before
  `newsflow bootstrap` to import the saved searches and dashboard.
Stop the local stack: `make down` (or `newsflow infra down`)."""
