"""`newsflow demo` (what `make demo` runs): bundled feeds -> the whole pipeline -> searches.

Serves the bundled sample feeds (``deploy/feeds/demo/``: 10 feeds in 9 languages, the Arabic
seed article among them, and the article page behind every item under ``pages/``) on
127.0.0.1:8765, runs ``newsflow run --once`` over
``deploy/feeds/demo.yaml`` (connector, enrich and index workers as real processes), then prints
a few searches, Arabic first, with their entities. ``newsflow demo --smoke`` keeps the older
single-article round trip (``streams/demo.py``).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams import resources, run
from streams.schema.ids import article_id
from streams.search import build_query
from streams.settings import Settings
from streams.sinks.elastic import make_client

# Package data (streams.resources): the feed server and the feed list loader get real paths
# through resources.as_path.
FEEDS_DIR = resources.deploy_file("feeds/demo")
FEED_LIST = resources.deploy_file("feeds/demo.yaml")
HOST, PORT = "127.0.0.1", 8765
# The seed item links to its article page on the demo server (streams/demo.py uses the same URL).
SEED_ID = article_id(f"http://{HOST}:{PORT}/pages/ar/turkey-syria-defence-cooperation.html")
QUERIES = ("سوريا", "وزارة الدفاع", "Rotterdam", "Казани", "اصفهان", "成都")

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


def searches(settings: Settings, queries: tuple[str, ...] = QUERIES) -> list[dict[str, Any]]:
    es = make_client(settings.elastic)
    out = []
    try:
        for query in queries:
            resp = es.search(
                index=settings.elastic.alias,
                query=build_query(query),
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


def run_demo(settings: Settings, say: Say, state_dir: Path) -> dict[str, Any]:
    from connectors.feedserver import FeedDirServer

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
            result = run.run_once(settings, feed_list, state_dir, say)
        finally:
            if server is not None:
                server.stop()
    result["searches"] = searches(settings)
    return result


def render(result: dict[str, Any]) -> list[str]:
    lines = run.render_summary(result)
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
