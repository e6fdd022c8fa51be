"""Evaluate ``streams.enrich.language`` on a labelled JSONL set and print a plain-text report.

    python -m streams.enrich.eval_language [PATH] [--data PATH]

PATH / ``--data``: a labelled JSONL file, or a development-data directory holding
``langid/dev.jsonl``; default ``../shared/data`` next to the checkout (the NTREX-128 set is not
shipped; ``streams/enrich/training/PROVENANCE.tsv`` says where to get it).

Each line of the set is ``{"text", "lang" (ISO 639-1), "length": "short"|"paragraph", ...}``.
Reported: accuracy per length class, per language and length class, throughput (items per CPU
second in this one process, over the whole set repeated for at least two seconds), model load
time and resident memory, and the accuracy again when the true language is declared for Malay
and Indonesian items (the declared language must settle that pair), when the true language is
declared for every item, and when a wrong language is declared for every item (a confident text
must override it; on short text a declared language wins unless the text evidence is
overwhelming, see ``language`` rule 5).
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streams.enrich import language

# The NTREX-128 development set, read from the development data next to the checkout.
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LENGTHS = ("short", "paragraph")
MIN_SECONDS = 2.0
HINT_SETTLED = frozenset({"ms", "id"})


def load_items(path: Path) -> list[dict[str, str]]:
    items = []
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                items.append(
                    {"text": row["text"], "lang": row["lang"], "length": row.get("length", "")}
                )
    return items


def _rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS), NaN where /proc is not available."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _accuracy(
    items: Sequence[dict[str, str]], hint: Callable[[dict[str, str]], str | None]
) -> dict[str, Any]:
    results = language.detect_many([(it["text"], hint(it)) for it in items])
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    per_lang: dict[str, Counter[str]] = defaultdict(Counter)
    per_lang_right: dict[str, Counter[str]] = defaultdict(Counter)
    confusions: Counter[tuple[str, str, str]] = Counter()
    methods: Counter[str] = Counter()
    for item, result in zip(items, results, strict=True):
        length, lang = item["length"], item["lang"]
        ok = result.code == lang
        total[length] += 1
        right[length] += ok
        per_lang[lang][length] += 1
        per_lang_right[lang][length] += ok
        methods[result.method] += 1
        if not ok:
            confusions[(length, lang, str(result.code))] += 1
    return {
        "accuracy": {k: right[k] / total[k] for k in total},
        "counts": dict(total),
        "per_language": {
            lang: {k: per_lang_right[lang][k] / n for k, n in per_lang[lang].items()}
            for lang in sorted(per_lang)
        },
        "per_language_counts": {lang: dict(per_lang[lang]) for lang in sorted(per_lang)},
        "confusions": [
            {"length": length, "lang": lang, "got": got, "n": n}
            for (length, lang, got), n in confusions.most_common()
        ],
        "methods": dict(methods),
    }


def _throughput(items: Sequence[dict[str, str]]) -> dict[str, float]:
    batch = [(it["text"], None) for it in items]
    done = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        language.detect_many(batch)
        done += len(batch)
        wall = time.perf_counter() - wall0
        if wall >= MIN_SECONDS:
            break
    cpu = time.process_time() - cpu0
    return {
        "items": float(done),
        "seconds": wall,
        "items_per_s": done / wall,
        "items_per_cpu_s": done / cpu if cpu > 0 else float("nan"),
    }


def _wrong_hint(item: dict[str, str]) -> str:
    return "fr" if item["lang"] == "en" else "en"


def evaluate(path: str | Path) -> dict[str, Any]:
    """Every figure of the report, as a dict (see the module docstring)."""
    items = load_items(Path(path))
    if not items:
        raise ValueError(f"{path}: no items")
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    language.load()
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    report: dict[str, Any] = {
        "path": str(path),
        "model_version": language.MODEL_VERSION,
        "supported": len(language.SUPPORTED),
        "load_seconds": load_s,
        "rss_mb_before_load": rss_before,
        "rss_mb_loaded": rss_loaded,
    }
    report["no_hint"] = _accuracy(items, lambda it: None)
    report["hint_ms_id"] = _accuracy(
        items, lambda it: it["lang"] if it["lang"] in HINT_SETTLED else None
    )
    report["true_hint"] = _accuracy(items, lambda it: it["lang"])
    report["wrong_hint"] = _accuracy(items, _wrong_hint)
    report["speed"] = _throughput(items)
    report["rss_mb_after"] = _rss_mb()
    return report


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100.0 * value:6.1f}"


def format_report(report: dict[str, Any]) -> str:
    base, hinted, wrong = report["no_hint"], report["hint_ms_id"], report["wrong_hint"]
    counts = base["counts"]
    lines = [
        f"data: {report['path']}",
        f"model: {report['model_version']}  ({report['supported']} languages)",
        f"load: {report['load_seconds']:.2f} s   RSS: {report['rss_mb_before_load']:.0f} MB "
        f"before, {report['rss_mb_loaded']:.0f} MB loaded, {report['rss_mb_after']:.0f} MB after",
        "",
        f"{'accuracy %':<30}" + "".join(f"{k:>12}" for k in LENGTHS),
        f"{'  items':<30}" + "".join(f"{counts.get(k, 0):>12}" for k in LENGTHS),
    ]
    for title, run in (
        ("  no declared language", base),
        ("  ms/id declared (true)", hinted),
        ("  true language declared", report["true_hint"]),
        ("  wrong language declared", wrong),
    ):
        lines.append(
            f"{title:<30}" + "".join(f"{_pct(run['accuracy'].get(k)):>12}" for k in LENGTHS)
        )
    lines += [
        "",
        f"{'lang':<6}{'n short':>8}{'short':>8}{'n para':>8}{'para':>8}{'short ms/id decl.':>19}",
    ]
    for lang, per in base["per_language"].items():
        n = base["per_language_counts"][lang]
        lines.append(
            f"{lang:<6}{n.get('short', 0):>8}{_pct(per.get('short')):>8}"
            f"{n.get('paragraph', 0):>8}{_pct(per.get('paragraph')):>8}"
            f"{_pct(hinted['per_language'][lang].get('short')):>19}"
        )
    worst = sorted(
        ((per.get("short", 1.0), lang) for lang, per in base["per_language"].items()),
    )[:5]
    lines += [
        "",
        "worst on short: " + ", ".join(f"{lang} {100 * acc:.1f}%" for acc, lang in worst),
        "errors (no declared language): "
        + (
            ", ".join(
                f"{c['lang']}->{c['got']} x{c['n']} ({c['length']})" for c in base["confusions"]
            )
            or "none"
        ),
        "methods with a wrong declared language: "
        + ", ".join(f"{k} {v}" for k, v in sorted(wrong["methods"].items())),
        "",
        f"speed: {report['speed']['items_per_cpu_s']:,.0f} items per CPU second "
        f"({report['speed']['items_per_s']:,.0f} items/s wall, "
        f"{report['speed']['items']:.0f} items in {report['speed']['seconds']:.1f} s, "
        "one process)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", help="labelled JSONL set (same as --data)")
    parser.add_argument("--data", help=f"labelled JSONL set (default: {DEFAULT_DATA})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    chosen = Path(args.path or args.data or DEFAULT_DATA)
    if chosen.is_dir():
        chosen = chosen / "langid" / "dev.jsonl"
    if not chosen.is_file():
        parser.error(
            f"no language-ID set at {chosen}: pass --data PATH (a JSONL file, or a directory "
            "holding langid/dev.jsonl). The NTREX-128 set is not shipped; "
            "streams/enrich/training/PROVENANCE.tsv says where to fetch it."
        )
    report = evaluate(str(chosen))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
