"""Choose ``entities.FACET_THRESHOLDS``: per language, the confidence an entity needs to reach the
summary facets. ``python -m streams.enrich.training.thresholds [--lang ar ...] [--limit N]``.

Each dev sentence goes through the product path (``pipeline.analyse_many`` with the dev file's
language declared, as ``eval_entities`` does); every PER/ORG/LOC entity found is recorded with
its confidence and whether it is right (every mention snapped to the gold tokens is a gold
entity of that type: what ``eval_entities`` counts as facet precision). Then, over thresholds
0.00, 0.05, ... 0.95:

* facet precision P(t) = right / kept among entities with confidence >= t,
* facet recall R(t) = right entities kept / right entities at t = 0 (what the threshold costs);

the threshold chosen maximises facet precision while keeping recall: the highest threshold
with R(t) >= ``KEEP_RECALL`` (0.9) when its precision reaches ``TARGET_PRECISION`` (0.85);
otherwise the lowest threshold reaching the target with R(t) >= ``MIN_RECALL`` (0.8); otherwise
the highest with R(t) >= ``MIN_RECALL``. Never below ``FLOOR`` (doubtful mentions carry 0.05 and
must stay out). The table and the choice are printed; the choice goes into
``entities.FACET_THRESHOLDS`` (with the figures in the commit message).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from itertools import islice
from typing import Any

from streams.enrich import entities, pipeline
from streams.enrich.text import prepare_fields
from streams.enrich.training.data import read_corpus
from streams.enrich.training.scoring import SCORED_TYPES, join_tokens, snap, spans

TARGET_PRECISION = 0.85
KEEP_RECALL = 0.9
MIN_RECALL = 0.8
FLOOR = 0.1
STEPS = tuple(round(0.05 * k, 2) for k in range(20))
BATCH = 256
MAX_CHARS = 20000

Judged = tuple[str, float, bool]  # type, confidence, right


def judge(lang: str, dev: Sequence[tuple[list[str], list[str]]]) -> list[Judged]:
    """(type, confidence, right) of every PER/ORG/LOC entity the product path finds."""
    out: list[Judged] = []
    for k in range(0, len(dev), BATCH):
        chunk = dev[k : k + BATCH]
        joined = [join_tokens(tokens) for tokens, _tags in chunk]
        preps = [prepare_fields([("text", text)], MAX_CHARS) for text, _offsets in joined]
        results = pipeline.analyse_many([(prep, lang) for prep in preps])
        for (_tokens, tags), (_text, offsets), (_lang, found) in zip(
            chunk, joined, results, strict=True
        ):
            gold = set(spans(tags))
            for ent in found:
                if ent.type not in SCORED_TYPES:
                    continue
                own = [
                    (s[0], s[1], ent.type)
                    for s in (snap(m.start, m.end, offsets) for m in ent.mentions)
                    if s is not None
                ]
                out.append((ent.type, ent.confidence, bool(own) and all(o in gold for o in own)))
    return out


def sweep(judged: Sequence[Judged]) -> list[dict[str, float]]:
    """Facet precision, recall and kept count at each threshold of ``STEPS``."""
    right0 = sum(r for _t, _c, r in judged) or 1
    rows: list[dict[str, float]] = []
    for t in STEPS:
        kept = [r for _typ, c, r in judged if c >= t]
        right = sum(kept)
        p = right / len(kept) if kept else 0.0
        rec = right / right0
        f05 = (1.25 * p * rec / (0.25 * p + rec)) if p + rec else 0.0
        rows.append(
            {
                "threshold": t,
                "precision": round(p, 4),
                "recall": round(rec, 4),
                "kept": len(kept),
                "f05": round(f05, 4),
            }
        )
    return rows


def choose(rows: Sequence[dict[str, float]]) -> float:
    """The threshold by the rule of the module docstring."""
    keep = [r for r in rows if r["recall"] >= KEEP_RECALL]
    if keep and keep[-1]["precision"] >= TARGET_PRECISION:
        return max(FLOOR, keep[-1]["threshold"])
    ok = [r for r in rows if r["recall"] >= MIN_RECALL]
    for r in ok:
        if r["precision"] >= TARGET_PRECISION:
            return max(FLOOR, r["threshold"])
    return max(FLOOR, (ok or rows[:1])[-1]["threshold"])


def tune(langs: Sequence[str] | None = None, limit: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for lang in langs or entities.CRF_LANGUAGES:
        entry = entities._MANIFEST.get(f"ner-{lang}")
        if entry is None:
            continue
        dev_name = str(entry["dev_file"]).removesuffix(".jsonl")
        rows = (r for r in read_corpus(dev_name) if r["tokens"])
        dev = [(r["tokens"], r["tags"]) for r in islice(rows, limit)]
        table = sweep(judge(lang, dev))
        result[lang] = {
            "dev_file": f"{dev_name}.jsonl",
            "sentences": len(dev),
            "chosen": choose(table),
            "current": entities.facet_threshold(lang),
            "table": table,
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", action="append", help="a language (repeatable)")
    parser.add_argument("--limit", type=int, help="only the first N dev sentences per language")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = tune(args.lang, args.limit)
    for lang, entry in result.items():
        print(
            f"{lang} ({entry['sentences']} sentences of {entry['dev_file']}): chosen "
            f"{entry['chosen']:.2f}, current {entry['current']:.2f}"
        )
        for r in entry["table"]:
            mark = " <" if r["threshold"] == entry["chosen"] else ""
            print(
                f"  t={r['threshold']:.2f}  P {r['precision']:.3f}  R {r['recall']:.3f}  "
                f"kept {int(r['kept']):6d}  F0.5 {r['f05']:.3f}{mark}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
