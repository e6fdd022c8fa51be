"""A downstream consumer of newsflow's public contract: read ``news.articles.enriched.v1``,
validate each record against the published JSON Schema file, and use it.

Needs only ``kafka-python`` and ``jsonschema`` (not newsflow itself):

    python docs/examples/consumer.py --bootstrap-servers 127.0.0.1:9092 --from-beginning

Each valid record prints one line (article id, language, title, entities); an invalid one prints
``INVALID`` with where it is and why, and the consumer goes on. With ``--group-id`` the offsets are
committed after each processed batch (at-least-once: after a crash a batch may be seen again,
and the article id, the Kafka key, makes that harmless). Exit status: 0 when every record was
valid, 2 when some were not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from kafka import KafkaConsumer

# The file as published in the repository (streams/schema/), loaded as is.
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "streams/schema/article.v1.schema.json"


def describe(article: dict[str, Any]) -> str:
    language = article["language"]["code"] or "?"
    # 1.3: `name` is the display name as written (older records: `text`), `id` the
    # cross-language link (`country:SY`) when there is one; `key` is for matching, not display.
    entities = ", ".join(
        f"{e.get('name') or e['text']} ({e['type']}{', ' + e['id'] if e.get('id') else ''})"
        for e in article["entities"][:5]
        if e.get("facet", True)
    )
    return f"{article['article_id']} [{language}] {article['source']['title']} | {entities}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="news.articles.enriched.v1")
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    parser.add_argument("--group-id", default=None, help="commit offsets under this group")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--max-records", type=int, default=None, help="stop after this many")
    parser.add_argument("--idle-timeout-s", type=float, default=None, help="stop when idle")
    args = parser.parse_args(argv)

    schema = json.loads(args.schema.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group_id,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=False,
    )
    seen = invalid = 0
    last_record = time.monotonic()
    try:
        while args.max_records is None or seen < args.max_records:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                if args.idle_timeout_s and time.monotonic() - last_record > args.idle_timeout_s:
                    break
                continue
            last_record = time.monotonic()
            for records in batch.values():
                for message in records:
                    seen += 1
                    where = f"{message.topic}/{message.partition}@{message.offset}"
                    try:
                        article = json.loads(message.value)
                    except ValueError as exc:
                        invalid += 1
                        print(f"INVALID {where}: not JSON ({exc})", flush=True)
                        continue
                    errors = sorted(validator.iter_errors(article), key=lambda e: list(e.path))
                    if errors:
                        invalid += 1
                        first = errors[0]
                        path = "/".join(str(p) for p in first.path) or "(record)"
                        print(f"INVALID {where}: {path}: {first.message}", flush=True)
                        continue
                    print(f"valid {describe(article)}", flush=True)
            if args.group_id:
                consumer.commit()  # after the batch was handled: at-least-once
    finally:
        consumer.close()
    print(f"consumed {seen} records: {seen - invalid} valid, {invalid} invalid", file=sys.stderr)
    return 2 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
