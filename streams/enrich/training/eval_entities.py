"""Dev evaluation of the entity extractors: ``python -m streams.enrich.training.eval_entities``.

First, per language with a model, the **product path** beside the tagger alone: each dev
sentence goes through exactly what ``newsflow enrich`` and the enrich stage run
(``text.prepare_fields`` -> ``pipeline.analyse_many``: language detection with the dev file's
language declared, sentence splitting, tokenisation, tagging, spans, merging, the facet flag) as
the text of its gold tokens joined with spaces (the corpora keep no original spacing); each
predicted character span is snapped to the gold tokens it touches (a span covering part of
"Bern'de" or "وسوريا" covers that token) and scored entity-level exact (span and type) over
PER/ORG/LOC. Also printed: the share of sentences routed to another language than the declared
one, and the **facet precision**: of the entities that reach the summary facets (``facet``
true), the share whose every mention is a gold entity of that type. Both are also compared on
the sentences without Wikipedia markup (WikiANN keeps "''Name" glued as one gold token, which
the product tokenises as news text is tokenised). ``--limit N`` / ``--langs a,b`` /
``--no-variants`` / ``--no-speed`` keep a run short (``make eval EVAL_ARGS=...``);
``--detokenized`` also runs the product path on the tokens joined as news text would be
("Bern, Schweiz (CH)." rather than "Bern , Schweiz ( CH ) .").

Then entity-level exact-match P/R/F1 over PER/ORG/LOC (micro and per type) on the gold tokens
(the dev file named in ``models/MANIFEST.json``), for

* ``crf``        - what ``extract_entities`` uses (CRF with gazetteer features; Arabic: plus
                   the institution/title rules of ``entities``, also shown without them),
* ``document``   - plus the document pass (``entities.document_names``): names tagged in the
                   dev sentences within ``DOCUMENT_WINDOW`` of a sentence, found again in it
                   where untagged (what ``extract_entities`` adds in ``DOCUMENT_LANGUAGES``),
* ``+union``     - plus gazetteer LOC names the CRF left untagged (to decide ``UNION_LANGUAGES``),
* ``gaz-only``   - the gazetteers alone (what Spanish/Russian/Persian/Chinese get);

and, side by side in the same run, tokens/s of the bare tagger (features + Viterbi on the dev
tokens) and of the full path (``extract_entities`` on the detokenised dev sentences: sentence
split, tokenisation, gazetteer, tagging, marginals, spans, merging; with the language detector
of ``streams.enrich.language`` in front when that module is present). Also: model load time,
RSS after loading, and the seed-article check. ``evaluate()`` returns all of it as a dict.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from streams.enrich import arabic, entities, pipeline, sentences
from streams.enrich.features import tokenize
from streams.enrich.text import prepare_fields
from streams.enrich.training import data
from streams.enrich.training.data import read_corpus
from streams.enrich.training.scoring import SCORED_TYPES, Score, Span, join_tokens, snap, spans

REPO = Path(__file__).resolve().parents[3]
# The "+document" variant treats the dev sentences within this distance as one article (the
# Arabic and English dev files keep their articles' sentence order; WikiANN's sentences are
# unrelated, so there it measures nothing).
DOCUMENT_WINDOW = 10
SEED = REPO / "deploy" / "demo" / "seed-article-ar.txt"
SEED_EXPECTED = {
    "PER": ("زكي أكتورك", "إلكاي ألتنداغ", "مرهف أبو قصرة"),
    "ORG": ("وزارة الدفاع التركية", "البرلمان التركي"),
    "LOC": ("تركيا", "سوريا", "أنقرة", "دمشق", "العراق", "المملكة العربية السعودية"),
}


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _language_detector() -> Callable[[str, str | None], Any] | None:
    try:
        from streams.enrich import language  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    detect = getattr(language, "detect_language", None)
    return detect if callable(detect) else None


def seed_check() -> dict[str, Any]:
    """Which of the seed article's listed entities ``extract_entities`` finds, by type."""
    text = SEED.read_text(encoding="utf-8")
    found = entities.extract_entities({"text": text}, "ar")
    have = {(e.type, e.normalized) for e in found}
    missing = [
        f"{typ}:{name}"
        for typ, names in SEED_EXPECTED.items()
        for name in names
        if (typ, arabic.normalize_entity(name)) not in have
    ]
    return {"ok": not missing, "missing": missing, "found": sorted(f"{t}:{n}" for t, n in have)}


def _gazetteer_spans(model: entities.CrfModel, tokens: Sequence[str]) -> list[Span]:
    gaz = model.featurizer.gazetteer or entities._state().gazetteer
    return [(m.start, m.end, m.type) for m in gaz.match(tokens, model.featurizer.lexicon)]


Sentence = tuple[list[str], list[str]]  # gold tokens, BIO tags
PRODUCT_BATCH = 256
MAX_CHARS = 20000  # enrich.max_chars' default; dev sentences are far shorter


# Wikipedia markup left in the WikiANN sentences ("''", "]]", "==", "**", "|"): glued to a word
# as one gold token ("''Hvelreki"), it makes the product path, which tokenises it off, tag a
# word the tagger left alone on the gold token; news text has none of it. The product path and
# the tagger are also compared on the sentences without it.
_MARKUP = ("''", "]]", "[[", "==", "**", "|", "``")


def has_markup(tokens: Sequence[str]) -> bool:
    """Wiki markup in the gold tokens (also a list bullet glued to a word: "*1950")."""
    return any(m in t for t in tokens for m in _MARKUP) or any(
        len(t) > 1 and t[0] in "*#" for t in tokens
    )


def product_path(
    lang: str, dev: Sequence[Sentence], detokenize: bool = False
) -> tuple[dict[str, Any], list[list[Span]]]:
    """Scores of the enrich stage's own analysis on the dev sentences, declared ``lang``, and
    each sentence's predicted spans (snapped to its gold tokens)."""
    score = Score()
    preds: list[list[Span]] = []
    facet_total: Counter[str] = Counter()
    facet_right: Counter[str] = Counter()
    routed: Counter[str] = Counter()
    for k in range(0, len(dev), PRODUCT_BATCH):
        chunk = dev[k : k + PRODUCT_BATCH]
        joined = [join_tokens(tokens, detokenize) for tokens, _tags in chunk]
        preps = [prepare_fields([("text", text)], MAX_CHARS) for text, _offsets in joined]
        results = pipeline.analyse_many([(prep, lang) for prep in preps])
        for (_tokens, tags), (_text, offsets), (detected, found) in zip(
            chunk, joined, results, strict=True
        ):
            routed[detected.code or "und"] += 1
            gold = set(spans(tags))
            pred: list[Span] = []
            for ent in found:
                snapped = [snap(m.start, m.end, offsets) for m in ent.mentions if m.field == "text"]
                own = [(a, b, ent.type) for a, b in filter(None, snapped)]
                pred += own
                if ent.type in SCORED_TYPES and getattr(ent, "facet", True):
                    facet_total[ent.type] += 1
                    facet_right[ent.type] += bool(own) and all(s in gold for s in own)
            score.add(gold, pred)
            preds.append(pred)
    n = sum(routed.values())
    away = n - routed[lang]
    facet: dict[str, dict[str, float]] = {}
    for typ in (*SCORED_TYPES, None):
        types = SCORED_TYPES if typ is None else (typ,)
        total = sum(facet_total[t] for t in types)
        right = sum(facet_right[t] for t in types)
        facet[typ or "micro"] = {"precision": round(right / total, 4) if total else 0.0, "n": total}
    report = {
        "sentences": n,
        "routed_away": round(away / n, 4) if n else 0.0,
        "routed_to": dict(routed.most_common(6)),
        "score": score.report(),
        "facet": facet,
    }
    return report, preds


def evaluate(
    langs: Sequence[str] | None = None,
    speed: bool = True,
    limit: int | None = None,
    variants: bool = True,
    detokenized: bool = False,
) -> dict[str, Any]:
    """All figures as a dict; ``limit``: the first N dev sentences of each language only;
    ``variants=False``: only the product path and the tagger alone (no document, union,
    gazetteer-only variants)."""
    started = time.monotonic()
    rss0 = _rss_mb()
    entities.load_models()
    load_seconds = time.monotonic() - started
    rss = _rss_mb()
    detect = _language_detector()
    if detect is not None:
        detect("warm up", None)  # load the language models too, as the worker does
    # As the enrich worker does (``streams.worker``): the loaded models live as long as the
    # process, so they are moved out of the garbage collector's way before timing anything.
    gc.collect()
    gc.freeze()
    manifest = entities._MANIFEST
    result: dict[str, Any] = {
        "load_seconds": round(load_seconds, 2),
        "rss_mb_before_load": round(rss0, 1),
        "rss_mb_after_load": round(rss, 1),
        "languages": {},
    }
    for lang in langs or entities.CRF_LANGUAGES:
        model = entities.model_for(lang)
        if model is None:
            continue
        dev_name = str(manifest[f"ner-{lang}"]["dev_file"]).removesuffix(".jsonl")
        rows = (r for r in read_corpus(dev_name) if r["tokens"])
        dev = [(r["tokens"], r["tags"]) for r in islice(rows, limit)]
        product, product_preds = product_path(lang, dev)
        if detokenized:
            product["detokenized"] = product_path(lang, dev, detokenize=True)[0]
        crf, union, gaz_only, no_rules, document = Score(), Score(), Score(), Score(), Score()
        plain_crf, plain_product = Score(), Score()
        tagged = [model.tag(tokens) for tokens, _tags in dev]
        keys = (
            [[model.featurizer.name_key(t) for t in tokens] for tokens, _tags in dev]
            if variants
            else []
        )
        for i, (tokens, tags) in enumerate(dev):
            gold = spans(tags)
            found = tagged[i]
            pred: list[Span] = [(t.start, t.end, t.type) for t in found]
            crf.add(gold, pred)
            if not has_markup(tokens):
                plain_crf.add(gold, pred)
                plain_product.add(gold, product_preds[i])
            if not variants:
                continue
            window = slice(max(0, i - DOCUMENT_WINDOW), i + DOCUMENT_WINDOW + 1)
            names = entities.document_names(keys[window], tagged[window])
            extra_doc = entities.document_matches(keys[i], found, names)
            document.add(gold, pred + [(t.start, t.end, t.type) for t in extra_doc])
            if lang == "ar":
                model.rules = False
                no_rules.add(gold, [(t.start, t.end, t.type) for t in model.tag(tokens)])
                model.rules = True
            gz = _gazetteer_spans(model, tokens)
            extra = [
                g
                for g in gz
                if g[2] == "LOC" and not any(g[0] < p[1] and p[0] < g[1] for p in pred)
            ]
            union.add(gold, pred + extra)
            gaz_only.add(gold, gz)
        entry: dict[str, Any] = {
            "dev_file": f"{dev_name}.jsonl",
            "method": entities.METHODS.get(lang),
            "product": product,
            "crf": crf.report(),
            "without_markup": {
                "sentences": sum(not has_markup(tokens) for tokens, _tags in dev),
                "crf": plain_crf.report(),
                "product": plain_product.report(),
            },
        }
        if variants:
            entry.update(
                document=document.report(),
                union=union.report(),
                gazetteer_only=gaz_only.report(),
            )
            if lang == "ar":
                entry["crf_without_rules"] = no_rules.report()
        if speed:
            entry["speed"] = _speed(model, lang, dev, detect)
        result["languages"][lang] = entry
    result["seed_article"] = seed_check()
    return result


def _speed(
    model: entities.CrfModel,
    lang: str,
    dev: Sequence[tuple[list[str], list[str]]],
    detect: Callable[[str, str | None], Any] | None,
) -> dict[str, float]:
    """Tokens/s of the bare tagger and of the full path on the same text, interleaved.

    The full path gets "articles" of 20 dev sentences (one per line), as a worker would; the
    bare tagger gets exactly the tokens the full path tags (sentence split and tokenised before
    the clock starts), so both do the same tagging work. Word-feature caches are emptied before
    every timed pass (cold, the pessimistic case); 5 interleaved rounds, best of each reported.
    """
    sample = list(dev[:2000])
    articles = [
        "\n".join(" ".join(t) for t, _ in sample[k : k + 20]) for k in range(0, len(sample), 20)
    ]
    pretokenized = [
        [text[a:b] for a, b in tokenize(text, s0, e0)]
        for text in articles
        for s0, e0 in sentences.split(text)
    ]
    n_tokens = sum(len(t) for t in pretokenized)
    bare: list[float] = []
    full: list[float] = []
    with_lang: list[float] = []
    # Every language starts from the same heap: the word caches the accuracy passes filled for
    # the languages before it would otherwise be scanned by each full collection, slowing the
    # allocation-heavier full path most (Turkish, timed last, measured 0.56 that way).
    for other in entities.CRF_LANGUAGES:
        got = entities.model_for(other)
        if got is not None:
            got.featurizer.clear_caches()
    gc.collect()
    for _round in range(5):
        model.featurizer.clear_caches()
        t0 = time.perf_counter()
        for tokens in pretokenized:
            model.tag_only(tokens)
        bare.append(time.perf_counter() - t0)
        model.featurizer.clear_caches()
        t0 = time.perf_counter()
        for text in articles:
            entities.extract_entities({"text": text}, lang)
        full.append(time.perf_counter() - t0)
        if detect is not None:
            model.featurizer.clear_caches()
            t0 = time.perf_counter()
            for text in articles:
                code = detect(text, None).code
                entities.extract_entities({"text": text}, code)
            with_lang.append(time.perf_counter() - t0)
    out = {
        "tokens": float(n_tokens),
        "bare_tagger_tokens_per_s": round(n_tokens / min(bare)),
        "extract_entities_tokens_per_s": round(n_tokens / min(full)),
        "full_over_bare": round(min(bare) / min(full), 3),
    }
    if with_lang:
        out["language_plus_entities_tokens_per_s"] = round(n_tokens / min(with_lang))
    return out


def _f1(rep: dict[str, dict[str, float]], typ: str) -> float:
    return rep[typ]["f1"]


def product_table(result: dict[str, Any]) -> list[str]:
    """Product path beside the tagger alone, per language and type; facet precision."""
    types = ("micro", *SCORED_TYPES)
    lines = [
        "product path (raw sentence text, declared language, spans snapped to gold tokens) "
        "vs tagger-only (gold tokens, language known); entity F1",
        f"{'lang':4} {'sents':>6} {'away':>6}  "
        + "  ".join(f"{t + ' tag/prod':>17}" for t in types)
        + f"  {'product P/R':>13}  {'facet prec (n)':>16}",
    ]
    for lang, entry in result["languages"].items():
        prod = entry["product"]
        rep, tag = prod["score"], entry["crf"]
        cells = "  ".join(f"{_f1(tag, t):8.3f}/{_f1(rep, t):.3f}" for t in types)
        facet = prod["facet"]["micro"]
        lines.append(
            f"{lang:4} {prod['sentences']:6d} {100 * prod['routed_away']:5.1f}%  {cells}"
            f"  {rep['micro']['p']:6.3f}/{rep['micro']['r']:.3f}"
            f"  {facet['precision']:8.3f} ({facet['n']:5d})"
        )
    for lang, entry in result["languages"].items():
        detok = entry["product"].get("detokenized")
        if detok:
            rep = detok["score"]
            lines.append(
                f"{lang:4} detokenized text ('Bern, Schweiz.'): product "
                + "  ".join(f"{t} {_f1(rep, t):.3f}" for t in types)
                + f"  P/R {rep['micro']['p']:.3f}/{rep['micro']['r']:.3f}"
                + f"  facet prec {detok['facet']['micro']['precision']:.3f}"
                + f"  away {100 * detok['routed_away']:.1f}%"
            )
    lines.append(
        "sentences without wiki markup ("
        + ", ".join(_MARKUP)
        + ", *x), micro F1 tag/prod: "
        + "; ".join(
            f"{lang} {entry['without_markup']['crf']['micro']['f1']:.3f}/"
            f"{entry['without_markup']['product']['micro']['f1']:.3f} "
            f"({entry['without_markup']['sentences']})"
            for lang, entry in result["languages"].items()
        )
    )
    lines.append(
        "facet precision per type: "
        + "; ".join(
            f"{lang} "
            + " ".join(f"{t} {entry['product']['facet'][t]['precision']:.3f}" for t in SCORED_TYPES)
            for lang, entry in result["languages"].items()
        )
    )
    lines.append(
        "routed to (declared language first): "
        + "; ".join(
            f"{lang} " + " ".join(f"{k}:{v}" for k, v in entry["product"]["routed_to"].items())
            for lang, entry in result["languages"].items()
        )
    )
    return lines


def _print(result: dict[str, Any]) -> None:
    print(
        f"load {result['load_seconds']}s, RSS {result['rss_mb_before_load']} -> "
        f"{result['rss_mb_after_load']} MB"
    )
    for line in product_table(result):
        print(line)
    print()
    head = f"{'lang':4} {'variant':9} {'P':>6} {'R':>6} {'F1':>6}  " + "  ".join(
        f"{t + ' P/R/F1':>20}" for t in SCORED_TYPES
    )
    print(head)
    for lang, entry in result["languages"].items():
        for variant in (
            "product",
            "crf",
            "document",
            "crf_without_rules",
            "union",
            "gazetteer_only",
        ):
            if variant not in entry:
                continue
            rep = entry[variant]["score"] if variant == "product" else entry[variant]
            micro = rep["micro"]
            per_type = "  ".join(
                f"{rep[t]['p']:6.3f}/{rep[t]['r']:6.3f}/{rep[t]['f1']:6.3f}" for t in SCORED_TYPES
            )
            print(
                f"{lang:4} {variant[:9]:9} {micro['p']:6.3f} {micro['r']:6.3f} "
                f"{micro['f1']:6.3f}  {per_type}"
            )
    for lang, entry in result["languages"].items():
        if "speed" in entry:
            print(f"{lang} speed: {json.dumps(entry['speed'])}")
    seed = result["seed_article"]
    print(f"seed article: {'OK' if seed['ok'] else 'MISSING ' + ', '.join(seed['missing'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", action="append", help="a language (repeatable)")
    parser.add_argument("--langs", help="comma-separated languages (default: every model)")
    parser.add_argument("--limit", type=int, help="only the first N dev sentences per language")
    parser.add_argument("--no-speed", action="store_true", help="skip the tokens/s timing")
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="only the product path and the tagger (no document/union/gazetteer variants)",
    )
    parser.add_argument(
        "--detokenized",
        action="store_true",
        help="also run the product path on detokenised text ('Bern, Schweiz.')",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--data", type=Path, help="development data (default: ../shared/data)")
    args = parser.parse_args(argv)
    try:
        data.use(args.data)
    except data.DataMissingError as exc:
        parser.error(str(exc))
    langs = [*(args.lang or []), *(args.langs.split(",") if args.langs else [])]
    result = evaluate(
        langs or None,
        speed=not args.no_speed,
        limit=args.limit,
        variants=not args.no_variants,
        detokenized=args.detokenized,
    )
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
