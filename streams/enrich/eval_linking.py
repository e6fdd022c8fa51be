"""Score the entity linker on the hand-written linking set (tooling, never imported at run time).

``python -m streams.enrich.eval_linking [FILES...]`` reads JSON lines (default:
``tests/data/linking/*.jsonl``), one short article per line::

    {"lang": "en", "text": "...", "mentions": [{"text": "Georgia", "type": "LOC",
                                                  "gold": "region:US-GA"}, ...]}

``gold`` is the expected id, or null where nothing may be linked ("Jordan Peterson" as PER,
"Paris Hilton"). Each mention is linked once alone, then again with the ids linked for the
article's other mentions as ``context_ids`` (``--mode sequential``: longest names first, each
with the ids linked before it, as ``entities._link`` does). What ``link`` returns is what is
stored, so a returned id is scored at the stored confidence. Printed: per language and overall,
% correct (right id, or nothing where gold is null), % wrong (an id that is not the gold one) and
% unlinked (nothing where an id was expected).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streams.enrich import linking

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "tests" / "data" / "linking"


def read_articles(paths: Iterable[Path]) -> list[dict[str, Any]]:
    articles = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                art = json.loads(line)
                for m in art["mentions"]:
                    if m["text"] not in art["text"]:
                        raise ValueError(f"{path}:{n}: {m['text']!r} is not in the text")
                articles.append(art)
    return articles


def link_article(art: dict[str, Any], mode: str = "two-pass") -> list[linking.Link | None]:
    """Link every mention. ``two-pass``: alone first, then with the other mentions' ids as
    context. ``sequential`` (what ``entities._link`` does): longest names first, each with the
    ids linked before it as context."""
    lang = art["lang"]
    if mode == "sequential":
        order = sorted(
            range(len(art["mentions"])), key=lambda i: -len(art["mentions"][i]["text"].split())
        )
        got: dict[int, linking.Link | None] = {}
        for i in order:
            m = art["mentions"][i]
            context = [lk.id for lk in got.values() if lk is not None]
            got[i] = linking.link(m["text"], m["type"], lang, context)
        return [got[i] for i in range(len(art["mentions"]))]
    first = [linking.link(m["text"], m["type"], lang) for m in art["mentions"]]
    out = []
    for i, m in enumerate(art["mentions"]):
        others = {lk.id for j, lk in enumerate(first) if lk is not None and j != i}
        out.append(linking.link(m["text"], m["type"], lang, others))
    return out


def score(articles: Sequence[dict[str, Any]], mode: str = "two-pass") -> dict[str, Any]:
    per_lang: dict[str, Counter[str]] = defaultdict(Counter)
    errors: list[str] = []
    for art in articles:
        for m, got in zip(art["mentions"], link_article(art, mode), strict=True):
            gold = m.get("gold")
            pred = got.id if got else None
            if pred == gold:
                outcome = "correct"
            elif pred is None:
                outcome = "unlinked"
            else:
                outcome = "wrong"
            for lang in (art["lang"], "all"):
                per_lang[lang][outcome] += 1
                per_lang[lang]["n"] += 1
            if outcome != "correct":
                conf = f" ({got.confidence:.2f})" if got else ""
                errors.append(
                    f"{outcome:8} {art['lang']} {m['text']!r} {m['type']}: {pred}{conf} gold {gold}"
                )
    table = {
        lang: {
            "n": c["n"],
            "correct": 100.0 * c["correct"] / c["n"],
            "wrong": 100.0 * c["wrong"] / c["n"],
            "unlinked": 100.0 * c["unlinked"] / c["n"],
        }
        for lang, c in sorted(per_lang.items())
    }
    return {"table": table, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--errors", action="store_true", help="list every miss")
    parser.add_argument("--mode", choices=("two-pass", "sequential"), default="two-pass")
    args = parser.parse_args(argv)
    files = args.files or sorted(DEFAULT_DIR.glob("*.jsonl"))
    result = score(read_articles(files), args.mode)
    print(f"{args.mode} linking of {len(files)} files")
    print(f"{'lang':6} {'mentions':>8} {'correct %':>10} {'wrong %':>8} {'unlinked %':>11}")
    for lang, row in result["table"].items():
        print(
            f"{lang:6} {row['n']:8d} {row['correct']:10.1f} {row['wrong']:8.1f} "
            f"{row['unlinked']:11.1f}"
        )
    if args.errors:
        print("\n".join(result["errors"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
