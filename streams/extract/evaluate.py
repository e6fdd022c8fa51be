"""``make eval`` for extraction: score ``extract`` on the page set, per page and per language.

    python -m streams.extract.evaluate                # the product, as `newsflow extract` runs it
    python -m streams.extract.evaluate --compare      # candidate libraries side by side
    python -m streams.extract.evaluate -v             # plus one line per page

Pages: ``tests/fixtures/pages/<lang>/<name>.html`` with ``<name>.json`` beside (expected body,
status and metadata; ``headers`` stand in for the HTTP response headers; ``set`` names the group
a page is also reported in: ``base`` by default, ``long`` for ``generate_long.py``'s pages). A
page whose expected status is not ``ok`` scores 1.0 when the status matches (its body is not
compared), else 0.0.

``--compare`` runs the candidate extractors that happen to be installed (only the winner is a
dependency of the product) over the same decoded text, so it compares extraction only. This is a
build-time tool; nothing at run time imports it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.extract.core import extract
from streams.extract.decode import decode_html
from streams.extract.score import score_text

PAGES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "pages"
TARGET_MEAN, TARGET_MIN_LANG = 0.96, 0.90


@dataclass(slots=True)
class Page:
    lang: str
    name: str
    html: bytes
    expected: dict[str, Any]


def load_pages(root: Path = PAGES) -> list[Page]:
    pages = []
    for sidecar in sorted(root.glob("*/*.json")):
        html = sidecar.with_suffix(".html")
        if html.exists():
            expected = json.loads(sidecar.read_text(encoding="utf-8"))
            pages.append(Page(sidecar.parent.name, sidecar.stem, html.read_bytes(), expected))
    return pages


def page_f1(status: str, text: str, expected: dict[str, Any]) -> float:
    if expected.get("status", "ok") != "ok":
        return 1.0 if status == expected["status"] else 0.0
    if status != "ok":
        return 0.0
    return score_text(text, expected["body"]).f1


# ------------------------------------------------------------------------ candidates (--compare)


def _lxml_text(fragment: str) -> str:
    from lxml.html import fragment_fromstring

    root = fragment_fromstring(fragment, create_parent="div")
    blocks = root.xpath(".//p|.//h1|.//h2|.//h3|.//h4|.//li|.//td|.//pre|.//blockquote")
    text = "\n".join(" ".join(b.text_content().split()) for b in blocks)
    return text if text.strip() else " ".join(root.text_content().split())


def _trafilatura(**options: Any) -> Callable[[str, str, str | None], str]:
    def run(html: str, url: str, lang: str | None) -> str:
        trafilatura: Any = importlib.import_module("trafilatura")
        out = trafilatura.extract(
            html, url=url, include_comments=False, with_metadata=False, **options
        )
        return str(out or "")

    return run


def _readability(html: str, url: str, lang: str | None) -> str:
    readability: Any = importlib.import_module("readability")
    return _lxml_text(readability.Document(html, url=url).summary(html_partial=True))


_JUSTEXT_LANGS = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "ar": "Arabic",
    "fa": "Persian",
    "tr": "Turkish",
    "ru": "Russian",
    "he": "Hebrew",
}


def _justext(html: str, url: str, lang: str | None) -> str:
    justext: Any = importlib.import_module("justext")
    name = _JUSTEXT_LANGS.get(lang or "")
    stoplist = justext.get_stoplist(name) if name else frozenset()
    paras = justext.justext(html.encode("utf-8"), stoplist, encoding="utf-8")
    return "\n".join(p.text for p in paras if not p.is_boilerplate)


def _resiliparse(html: str, url: str, lang: str | None) -> str:
    mod: Any = importlib.import_module("resiliparse.extract.html2text")
    return str(mod.extract_plain_text(html, main_content=True))


def _goose(html: str, url: str, lang: str | None) -> str:
    goose3: Any = importlib.import_module("goose3")
    g = goose3.Goose({"use_meta_language": True, "enable_image_fetching": False})
    try:
        return str(g.extract(raw_html=html).cleaned_text or "")
    finally:
        g.close()


CANDIDATES: dict[str, Callable[[str, str, str | None], str]] = {
    "trafilatura": _trafilatura(),
    "trafilatura-fast": _trafilatura(fast=True),
    "trafilatura-precision": _trafilatura(favor_precision=True),
    "trafilatura-recall": _trafilatura(favor_recall=True),
    "readability-lxml": _readability,
    "justext": _justext,
    "resiliparse": _resiliparse,
    "goose3": _goose,
}


def compare(pages: list[Page]) -> dict[str, dict[str, float]]:
    """Mean F1 per language and overall, and ms/page, for each installed candidate."""
    ok_pages = [p for p in pages if p.expected.get("status", "ok") == "ok"]
    table: dict[str, dict[str, float]] = {}
    for name, fn in CANDIDATES.items():
        per_lang: dict[str, list[float]] = defaultdict(list)
        spent = 0.0
        try:
            for p in ok_pages:
                decoded = decode_html(p.html, p.expected.get("headers"))
                started = time.perf_counter()
                try:
                    text = fn(decoded.text, p.expected["url"], p.lang)
                except ImportError:
                    raise
                except Exception:  # noqa: BLE001 - a candidate crashing on a page scores 0
                    text = ""
                spent += time.perf_counter() - started
                per_lang[p.lang].append(score_text(text, p.expected["body"]).f1)
        except ImportError:
            print(f"  ({name}: not installed, skipped)", file=sys.stderr)
            continue
        row = {lang: statistics.mean(v) for lang, v in sorted(per_lang.items())}
        row["mean"] = statistics.mean(f for v in per_lang.values() for f in v)
        row["ms"] = 1000 * spent / max(1, len(ok_pages))
        table[name] = row
    return table


def print_compare(table: dict[str, dict[str, float]]) -> None:
    if not table:
        return
    langs = [k for k in next(iter(table.values())) if k not in ("mean", "ms")]
    print("candidate".ljust(22) + "".join(f"{lang:>6}" for lang in langs) + "   mean  ms/page")
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]["mean"]):
        cells = "".join(f"{row[lang]:6.3f}" for lang in langs)
        print(f"{name:<22}{cells} {row['mean']:6.3f} {row['ms']:7.1f}")


# ------------------------------------------------------------------------------------ product


def evaluate(pages: list[Page], verbose: bool = False) -> dict[str, Any]:
    per_lang: dict[str, list[float]] = defaultdict(list)
    per_set: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    meta_hits: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for p in pages:
        exp = p.expected
        got = extract(p.html, exp.get("url"), exp.get("headers"))
        f1 = page_f1(got.status, got.text, exp)
        per_lang[p.lang].append(f1)
        per_set[exp.get("set", "base")][p.lang].append(f1)
        if exp.get("status", "ok") == "ok":
            meta_hits["title"].append(got.title == exp.get("title"))
            want_date = exp.get("published_at")
            have = got.published_at.date().isoformat() if got.published_at else None
            meta_hits["date"].append(have == (want_date[:10] if want_date else None))
            meta_hits["canonical"].append(got.canonical_url == exp.get("canonical_url"))
            meta_hits["language"].append(got.page_language == exp.get("page_language"))
            meta_hits["authors"].append(got.authors == exp.get("authors"))
            meta_hits["image"].append(got.image == exp.get("image"))
        meta_hits["status"].append(got.status == exp.get("status", "ok"))
        meta_hits["flags"].append(
            {f for f in got.flags if f in ("multi_page", "live_blog")} == set(exp.get("flags", []))
        )
        rows.append((p.lang, p.name, got.status, f1, got.elapsed_ms))
        if verbose:
            print(f"  {p.lang}/{p.name:<30} {got.status:<14} F1 {f1:.3f} {got.elapsed_ms:7.1f} ms")
    langs = {lang: statistics.mean(v) for lang, v in sorted(per_lang.items())}
    scores = [f for v in per_lang.values() for f in v]
    return {
        "pages": len(pages),
        "mean_f1": statistics.mean(scores) if scores else 0.0,
        "languages": langs,
        "sets": {
            name: {
                "pages": sum(len(v) for v in by_lang.values()),
                "mean_f1": statistics.mean(f for v in by_lang.values() for f in v),
                "languages": {lang: statistics.mean(v) for lang, v in sorted(by_lang.items())},
            }
            for name, by_lang in sorted(per_set.items())
        },
        "metadata": {k: sum(v) / len(v) for k, v in meta_hits.items() if v},
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--compare", action="store_true", help="score candidate libraries too")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--pages", type=Path, default=PAGES)
    args = parser.parse_args(argv)
    pages = load_pages(args.pages)
    if not pages:
        print(f"no pages under {args.pages}", file=sys.stderr)
        return 2
    if args.compare:
        print("Extractor candidates, mean token F1 on pages expected ok:")
        print_compare(compare(pages))
        print()
    result = evaluate(pages, args.verbose)
    print(f"Extraction (newsflow extract) on {result['pages']} pages, token F1 per language:")
    print("  " + "  ".join(f"{lang} {f1:.3f}" for lang, f1 in result["languages"].items()))
    print(
        f"  mean {result['mean_f1']:.3f}   (target >= {TARGET_MEAN}, each language >= "
        f"{TARGET_MIN_LANG})"
    )
    if len(result["sets"]) > 1:
        for name, part in result["sets"].items():
            print(f"  set {name!r} ({part['pages']} pages): mean {part['mean_f1']:.3f}")
            print("    " + "  ".join(f"{lang} {f1:.3f}" for lang, f1 in part["languages"].items()))
    print("Metadata accuracy: " + "  ".join(f"{k} {v:.2f}" for k, v in result["metadata"].items()))
    worst = min(result["languages"].values())
    met = result["mean_f1"] >= TARGET_MEAN and worst >= TARGET_MIN_LANG
    print("targets met" if met else "TARGETS NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
