"""Named entities: per-language CRF taggers plus multi-script gazetteers; offsets into originals.

Per language (``METHODS``): Arabic, English, French, German, Dutch and Turkish have a CRF trained
in this repo (``streams/enrich/training``, ``make models``) with gazetteer features ("crf" +
"gazetteer"); every other language - Spanish, Russian, Persian, Chinese, ... - and an unknown
language get locations (and the EU/UN) from the gazetteers only, at a fixed low confidence.

Each field is cut into sentences (``arabic.sentences``: . ! ? ؟ ؛ and newlines, not ،), tokenised
with offsets (``features.tokenize``), tagged; entity spans are the token spans minus a glued
Arabic proclitic (و ف ب ك ل; an article that follows stays: "والعراق" -> "العراق"), a French
elision ("d'Irak" -> "Irak") or a Turkish case suffix ("Ankara'da" -> "Ankara"), so that
``fields[m.field][m.start:m.end]`` is exactly the mention. Mentions are merged across fields by
(type, normalised form): Arabic-script names with ``arabic.normalize_entity``, others NFKC +
casefold + collapsed whitespace. Confidence: mean CRF marginal of the entity's tokens, averaged
over its mentions; gazetteer-only mentions carry 0.3-0.45.

Models are loaded lazily on first use (or by ``load_models()``), once, under a lock; each tagger
has its own lock, so the functions can be called from worker threads. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

import pycrfsuite  # type: ignore[import-untyped]

from streams import resources
from streams.enrich import arabic
from streams.enrich.features import (
    TOKEN_RE,
    FeatureSettings,
    Featurizer,
    Gazetteer,
    GazMatch,
    arabic_key,
    core_cuts,
    decode,
    surface_key,
)
from streams.enrich.types import FoundEntity, Mention

# The shipped models (package data of streams.enrich, read through streams.resources);
# `make models-open` rebuilds them from openly licensed data only.
MODELS_DIR = resources.package_file("streams.enrich", "models")
GAZETTEER_DIR = resources.package_file("streams.enrich", "gazetteers")
GAZETTEER_FILES = ("countries.tsv.xz", "cities.tsv.xz")

# Gazetteer-only confidence by kind of name: a country name is rarely anything else; a city's
# alternate name sometimes is (a person's name, a common word in another language).
GAZETTEER_CONFIDENCE = {"country": 0.45, "region": 0.4, "org": 0.4, "capital": 0.4}
GAZETTEER_DEFAULT_CONFIDENCE = 0.3
# Languages named by the issue (and a few more) that have no trained model here.
GAZETTEER_LANGUAGES = ("es", "ru", "fa", "zh", "it", "pt", "uk", "ur", "ja", "ko", "hi", "id")
# CRF languages for which gazetteer LOC matches that the CRF left untagged are added after
# tagging. Measured on dev (eval_entities --union): it lowered F1 everywhere, so none.
UNION_LANGUAGES: frozenset[str] = frozenset()
# Document consistency: a name the CRF tagged with at least this confidence in one sentence of
# an article is tagged where it recurs untagged in the others (and a person's surname alone).
# Per language, only where it raised dev F1 (eval_entities, "+document", on windows of
# consecutive dev sentences); WikiANN (fr/de/nl) has no documents to measure it on.
DOCUMENT_LANGUAGES: frozenset[str] = frozenset({"ar"})
DOCUMENT_MIN_CONFIDENCE = 0.5
DOCUMENT_CONFIDENCE_FACTOR = 0.8  # a propagated mention's confidence: its source's times this
DOCUMENT_TYPES = ("PER", "ORG", "LOC")


def _read_manifest() -> dict[str, Any]:
    path = MODELS_DIR / "MANIFEST.json"
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dict(data.get("models", {}))


def _gazetteer_version() -> str:
    digest = hashlib.sha256()
    for name in GAZETTEER_FILES:
        path = GAZETTEER_DIR / name
        if path.is_file():
            digest.update(path.read_bytes())
    return f"gaz-2026.11-{digest.hexdigest()[:8]}"


_MANIFEST = _read_manifest()
CRF_LANGUAGES = tuple(sorted(name.removeprefix("ner-") for name in _MANIFEST))
MODEL_VERSIONS: dict[str, str] = {
    **{name: str(entry["version"]) for name, entry in sorted(_MANIFEST.items())},
    "gazetteer": _gazetteer_version(),
}
METHODS: dict[str, str] = {
    **{
        lang: ("crf+gazetteer" if _MANIFEST[f"ner-{lang}"]["settings"].get("gazetteer") else "crf")
        for lang in CRF_LANGUAGES
    },
    **{lang: "gazetteer" for lang in GAZETTEER_LANGUAGES if lang not in CRF_LANGUAGES},
}


# Arabic rules on top of the CRF (``CrfModel.tag``; measured with/without by eval_entities).
# 1. Government bodies: ANERcorp (the Arabic training corpus) tags "وزارة الخارجية" and
#    "البرلمان" as O, the issue wants them as ORG: head + definite complement + nisba adjectives.
_INSTITUTION_HEADS = {"وزاره": True, "برلمان": False}  # head -> needs a definite complement
# 2. A person's name after a title or rank ("اللواء مرهف أبو قصرة", "الفريق إلكاي ألتنداغ"),
#    or after "المتحدث باسم <X>،": name-like tokens = rare in the lexicon or on the name list.
_TITLES = frozenset(
    {
        *("لواء", "فريق", "عميد", "عقيد", "رائد", "مقدم", "جنرال", "اميرال", "مشير"),
        *("رئيس", "وزير", "سفير", "شيخ", "دكتور", "امير", "ملك", "مستشار", "نائب"),
        *("مبعوث", "مندوب", "مدير", "قائد", "زعيم", "سيد", "سيده"),
    }
)
_SPOKESMEN = frozenset({"متحدث", "ناطق"})
_RULE_HEADS = _TITLES | _SPOKESMEN | frozenset(_INSTITUTION_HEADS)
_NAME_LINKS = frozenset({"ابو", "ابن", "بن", "بنت", "عبد", "ام", "ال"})
_RARE = 3  # lexicon count below which an Arabic word is taken as name-like


def _core(feats: Featurizer, token: str) -> str:
    return feats.name_key(token)


def _namelike(feats: Featurizer, token: str) -> bool:
    if not arabic.is_arabic(token) or len(token) < 2:
        return False
    norm = arabic_key(token)
    if arabic.is_definite(token) or (
        norm[:1] in "وفبلك" and feats.lexicon.get(norm[1:], 0) >= _RARE
    ):
        return False
    if feats.names.get(norm) == "PER":
        return True
    if norm.endswith(("يه", "ون", "ين", "ات")) and len(norm) > 4:
        return False
    return feats.lexicon.get(norm, 0) < _RARE


def arabic_rules(feats: Featurizer, tokens: Sequence[str]) -> list[tuple[int, int, str]]:
    """Institution (ORG) and titled-person (PER) spans found by the rules above."""
    out: list[tuple[int, int, str]] = []
    n = len(tokens)
    keys = [_core(feats, t) for t in tokens]
    if not _RULE_HEADS.intersection(keys):
        return out
    norms = [arabic_key(t) for t in tokens]
    i = 0
    while i < n:
        key = keys[i]
        if key in _INSTITUTION_HEADS and (arabic.is_definite(tokens[i]) or key == "وزاره"):
            j = i + 1
            if _INSTITUTION_HEADS[key]:
                if j < n and arabic.is_definite(tokens[j]) and len(norms[j]) > 3:
                    j += 1
                else:
                    i += 1
                    continue
            while j < n and arabic.is_definite(tokens[j]) and norms[j].endswith(("ي", "يه")):
                j += 1
            if j > i + 1:
                out.append((i, j, "ORG"))
                i = j
                continue
        start = None
        if key in _TITLES and not norms[i].startswith(("لل",)):
            start = i + 1
        elif key in _SPOKESMEN and i + 1 < n and norms[i + 1] == "باسم":
            k = i + 2
            while k < min(n, i + 6) and tokens[k] not in ("،", ","):
                k += 1
            if k < n and tokens[k] in ("،", ","):
                start = k + 1
        if start is not None:
            j = start
            while j < n and j - start < 4:
                link = norms[j] in _NAME_LINKS and j + 1 < n and j - start < 3
                if _namelike(feats, tokens[j]) or link:
                    j += 1
                else:
                    break
            while j > start and norms[j - 1] in _NAME_LINKS:
                j -= 1
            if j > start:
                out.append((start, j, "PER"))
                i = j
                continue
        i += 1
    return out


class CrfModel:
    """One language's tagger with the featurizer it was trained with."""

    def __init__(self, lang: str, entry: Mapping[str, Any], gazetteer: Gazetteer) -> None:
        self.lang = lang
        self.version = str(entry["version"])
        settings = FeatureSettings(**entry["settings"])
        aux: dict[str, Any] = {}
        if entry.get("aux_file"):
            aux = json.loads(lzma.decompress((MODELS_DIR / str(entry["aux_file"])).read_bytes()))
        lexicon = aux.get("lexicon") or (arabic.default_known() if lang == "ar" else None)
        names = aux.get("names") if settings.names else None
        span_names = aux.get("span_names") if settings.span_names else None
        spans = Gazetteer.from_names(span_names) if span_names else None
        self.featurizer = Featurizer(
            lang, settings, gazetteer, lexicon, names=names, span_names=spans
        )
        self._blob = lzma.decompress((MODELS_DIR / str(entry["file"])).read_bytes())
        self.tagger = pycrfsuite.Tagger()
        self.tagger.open_inmemory(self._blob)
        self.lock = threading.Lock()
        self.rules = True

    def tag(self, tokens: Sequence[str], gaz: list[GazMatch] | None = None) -> list[Tagged]:
        """Entities as token spans with type, confidence and source."""
        xseq = self.featurizer.sequence(tokens, gaz)
        with self.lock:
            labels = decode(self.tagger, xseq, self.featurizer.settings.o_threshold)
            out: list[Tagged] = []
            n = len(labels)
            marginal = self.tagger.marginal
            i = 0 if labels.count("O") < n else n
            while i < n:
                label = labels[i]
                if label == "O":
                    i += 1
                    continue
                typ = label[2:]
                inside = "I-" + typ
                total = marginal(label, i)
                j = i + 1
                while j < n and labels[j] == inside:
                    total += marginal(inside, j)
                    j += 1
                out.append(Tagged(i, j, typ, total / (j - i), "crf"))
                i = j
        if self.lang == "ar" and self.rules:
            out = _merge_rules(out, arabic_rules(self.featurizer, tokens))
        return out

    def tag_only(self, tokens: Sequence[str]) -> list[str]:
        """The bare tagger (features + the model's decoding), for speed comparisons."""
        xseq = self.featurizer.sequence(tokens)
        with self.lock:
            return decode(self.tagger, xseq, self.featurizer.settings.o_threshold)


RULE_CONFIDENCE = 0.6


class Tagged(NamedTuple):
    start: int  # first token
    end: int  # exclusive
    type: str
    confidence: float
    source: str  # "crf" | "rules" | "document"


def _merge_rules(found: list[Tagged], rules: list[tuple[int, int, str]]) -> list[Tagged]:
    """Add rule spans; a rule span replaces CRF entities inside it, yields to ones crossing it."""
    out = list(found)
    for a, b0, typ in rules:
        # a titled name that runs into a CRF person ("مرهف" + "أبو قصرة") becomes one name
        b = max([b0, *(f.end for f in out if f.type == "PER" == typ and f.start == b0)])
        inside = [f for f in out if a <= f.start and f.end <= b]
        crossing = [f for f in out if f.start < b and a < f.end and f not in inside]
        if crossing or any((f.start, f.end, f.type) == (a, b, typ) for f in inside):
            continue
        conf = max([RULE_CONFIDENCE, *(f.confidence for f in inside if f.type == typ)])
        out = [f for f in out if f not in inside] + [Tagged(a, b, typ, conf, "rules")]
    return sorted(out)


NameKey = tuple[str, ...]


def document_names(
    keys: Sequence[Sequence[str]], found: Sequence[Sequence[Tagged]]
) -> dict[NameKey, tuple[str, float]]:
    """Names tagged confidently in a document's sentences: token-key tuple -> (type,
    confidence). ``keys[i]`` are the name keys of sentence i's tokens, ``found[i]`` its entities.
    The first confident type of a name wins; a multi-word person also lends its last word."""
    names: dict[NameKey, tuple[str, float]] = {}
    for sent_keys, tagged in zip(keys, found, strict=True):
        for t in tagged:
            if t.confidence < DOCUMENT_MIN_CONFIDENCE or t.type not in DOCUMENT_TYPES:
                continue
            key = tuple(sent_keys[t.start : t.end])
            if sum(map(len, key)) < 3:
                continue
            names.setdefault(key, (t.type, t.confidence))
            last = sent_keys[t.end - 1]
            if t.type == "PER" and t.end - t.start >= 2 and len(last) >= 3:
                names.setdefault((last,), (t.type, t.confidence))
    return names


def document_matches(
    keys: Sequence[str], tagged: Sequence[Tagged], names: Mapping[NameKey, tuple[str, float]]
) -> list[Tagged]:
    """Longest occurrences of ``names`` among the tokens of one sentence that no entity covers."""
    if not names:
        return []
    taken = [False] * len(keys)
    for t in tagged:
        taken[t.start : t.end] = [True] * (t.end - t.start)
    longest = max(map(len, names))
    out: list[Tagged] = []
    i, n = 0, len(keys)
    while i < n:
        hit: Tagged | None = None
        if not taken[i]:
            for size in range(min(longest, n - i), 0, -1):
                got = names.get(tuple(keys[i : i + size]))
                if got is not None and not any(taken[i : i + size]):
                    conf = got[1] * DOCUMENT_CONFIDENCE_FACTOR
                    hit = Tagged(i, i + size, got[0], conf, "document")
                    break
        if hit is not None:
            out.append(hit)
            i = hit.end
        else:
            i += 1
    return out


@dataclass
class _Loaded:
    gazetteer: Gazetteer
    models: dict[str, CrfModel]


_lock = threading.Lock()
_loaded: _Loaded | None = None


def load_models() -> None:
    """Load the gazetteers and every CRF model now (otherwise done on first use)."""
    _state()


def _state() -> _Loaded:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                with ExitStack() as files:  # real paths (lzma.open), copies only if zipped
                    gaz = Gazetteer.load(
                        files.enter_context(resources.as_path(GAZETTEER_DIR / name))
                        for name in GAZETTEER_FILES
                    )
                models = {
                    lang: CrfModel(lang, _MANIFEST[f"ner-{lang}"], gaz) for lang in CRF_LANGUAGES
                }
                _loaded = _Loaded(gaz, models)
    return _loaded


def model_for(lang: str | None) -> CrfModel | None:
    code = _lang_code(lang)
    return _state().models.get(code) if code else None


def _lang_code(lang: str | None) -> str | None:
    if not lang:
        return None
    return lang.replace("_", "-").split("-")[0].lower() or None


@dataclass
class _Mention:
    field: str
    start: int
    end: int
    type: str
    confidence: float
    method: str
    key: str | None = None  # canonical key (gazetteer names), else computed from the surface


_key_cache: dict[tuple[str, int], str] = {}


def entity_key(surface: str, lexicon: Mapping[str, int] | None = None) -> str:
    """Aggregation key of a mention: Arabic ``normalize_entity``, else NFKC+casefold+spaces."""
    cache_key = (surface, id(lexicon))
    got = _key_cache.get(cache_key)
    if got is None:
        if len(_key_cache) > 100_000:
            _key_cache.clear()
        got = _key_cache[cache_key] = surface_key(surface, lexicon)
    return got


def _span(
    text: str,
    spans: Sequence[tuple[int, int]],
    i: int,
    j: int,
    cuts: Callable[[str], tuple[int, int]],
) -> tuple[int, int]:
    """Character span of tokens ``i..j-1`` without a glued proclitic/elision/case suffix."""
    start, end = spans[i][0], spans[j - 1][1]
    first = text[spans[i][0] : spans[i][1]]
    cut_start, _ = cuts(first)
    last = text[spans[j - 1][0] : spans[j - 1][1]]
    _, cut_end = cuts(last)
    if i == j - 1:
        if cut_start + cut_end < len(first) - 1:
            return start + cut_start, end - cut_end
        return start, end
    if cut_start < len(first) - 1:
        start += cut_start
    if cut_end < len(last) - 1:
        end -= cut_end
    return start, end


def _gazetteer_mentions(
    field: str,
    text: str,
    spans: Sequence[tuple[int, int]],
    matches: Sequence[GazMatch],
    cuts: Callable[[str], tuple[int, int]],
    taken: Sequence[tuple[int, int]] = (),
) -> list[_Mention]:
    out: list[_Mention] = []
    for m in matches:
        if any(m.start < b and a < m.end for a, b in taken):
            continue
        s, e = _span(text, spans, m.start, m.end, cuts)
        conf = GAZETTEER_CONFIDENCE.get(m.kind, GAZETTEER_DEFAULT_CONFIDENCE)
        out.append(_Mention(field, s, e, m.type, conf, "gazetteer", m.key))
    return out


_default_cut_cache: dict[str, tuple[int, int]] = {}


def _default_cuts(token: str) -> tuple[int, int]:
    got = _default_cut_cache.get(token)
    if got is None:
        if len(_default_cut_cache) > 200_000:
            _default_cut_cache.clear()
        got = _default_cut_cache[token] = core_cuts(token, arabic.default_known())
    return got


# TOKEN_RE as one capturing group: ``split`` then yields the tokens and the gaps between them
_TOKEN_SPLIT = re.compile(f"({TOKEN_RE.pattern})")


def _sentence_tokens(text: str) -> list[tuple[list[tuple[int, int]], list[str]]]:
    """``(spans, tokens)`` of each sentence of ``text`` that has tokens.

    Same result as ``tokenize(text, s0, e0)`` for each of ``arabic.sentences(text)``, with one
    scan of the text: no token crosses a sentence cut (cuts fall on whitespace, or after a
    sentence mark or closing quote that no multi-character token can contain), and the gaps
    between sentences are whitespace, which no token contains.
    """
    parts = _TOKEN_SPLIT.split(text)  # whitespace, token, whitespace, token, ..., whitespace
    offsets = list(accumulate(map(len, parts)))
    starts = offsets[0::2]
    spans = list(zip(starts, offsets[1::2], strict=False))
    tokens = parts[1::2]
    out: list[tuple[list[tuple[int, int]], list[str]]] = []
    k, n = 0, len(spans)
    for _s0, e0 in arabic.sentences(text):
        j = bisect_left(starts, e0, k, n)
        if j > k:
            out.append((spans[k:j], tokens[k:j]))
            k = j
    return out


@dataclass
class _Tagged:
    """One tagged sentence of a field, kept for the document pass."""

    field: str
    text: str
    spans: list[tuple[int, int]]
    tokens: list[str]
    found: list[Tagged]


def _field_mentions(
    field: str,
    text: str,
    code: str | None,
    state: _Loaded,
    sentences: list[_Tagged] | None = None,
) -> list[_Mention]:
    """Mentions of one field; with ``sentences``, each tagged sentence is appended to it."""
    model = state.models.get(code) if code else None
    lexicon = model.featurizer.lexicon if model is not None else arabic.default_known()
    cuts = model.featurizer.cuts if model is not None else _default_cuts
    mentions: list[_Mention] = []
    for spans, tokens in _sentence_tokens(text):
        gaz = state.gazetteer.match(tokens, lexicon)
        if model is None:
            mentions += _gazetteer_mentions(field, text, spans, gaz, cuts)
            continue
        found = model.tag(tokens, gaz)
        if sentences is not None:
            sentences.append(_Tagged(field, text, spans, tokens, found))
        gaz_spans = {(g.start, g.end, g.type) for g in gaz} if gaz and found else ()
        for t in found:
            s, e = _span(text, spans, t.start, t.end, cuts)
            backed = (t.start, t.end, t.type) in gaz_spans
            method = f"{t.source}+gazetteer" if backed else t.source
            mentions.append(_Mention(field, s, e, t.type, t.confidence, method))
        if code in UNION_LANGUAGES:
            taken = [(t.start, t.end) for t in found]
            loc = [g for g in gaz if g.type == "LOC"]
            mentions += _gazetteer_mentions(field, text, spans, loc, cuts, taken)
    return mentions


def _document_mentions(model: CrfModel, sentences: Sequence[_Tagged]) -> list[_Mention]:
    """Recurrences of the article's confidently tagged names that the CRF left untagged."""
    keys = [[model.featurizer.name_key(t) for t in s.tokens] for s in sentences]
    names = document_names(keys, [s.found for s in sentences])
    out: list[_Mention] = []
    for sent, sent_keys in zip(sentences, keys, strict=True):
        for t in document_matches(sent_keys, sent.found, names):
            start, end = _span(sent.text, sent.spans, t.start, t.end, model.featurizer.cuts)
            out.append(_Mention(sent.field, start, end, t.type, t.confidence, t.source))
    return out


def _sources(methods: set[str]) -> set[str]:
    return {part for m in methods for part in m.split("+")}


def extract_entities(fields: Mapping[str, str], lang: str | None) -> list[FoundEntity]:
    """Entities of the fields (name -> original text), merged by (type, normalised form)."""
    state = _state()
    code = _lang_code(lang)
    model = state.models.get(code) if code else None
    lexicon = model.featurizer.lexicon if model is not None else arabic.default_known()
    groups: dict[tuple[str, str], list[_Mention]] = {}
    sentences: list[_Tagged] | None = (
        [] if model is not None and code in DOCUMENT_LANGUAGES else None
    )
    for field, text in fields.items():
        if not text:
            continue
        for m in _field_mentions(field, text, code, state, sentences):
            key = m.key or entity_key(text[m.start : m.end], lexicon)
            if key:
                groups.setdefault((m.type, key), []).append(m)
    if sentences and model is not None:
        for m in _document_mentions(model, sentences):
            key = entity_key(fields[m.field][m.start : m.end], lexicon)
            if key:
                groups.setdefault((m.type, key), []).append(m)
    result: list[FoundEntity] = []
    for (typ, key), ms in groups.items():
        first = ms[0]
        methods = {m.method for m in ms}
        method = methods.pop() if len(methods) == 1 else "+".join(sorted(_sources(methods)))
        result.append(
            FoundEntity(
                text=fields[first.field][first.start : first.end],
                type=typ,
                normalized=key,
                mentions=tuple(Mention(m.field, m.start, m.end) for m in ms),
                confidence=sum(m.confidence for m in ms) / len(ms),
                method=method,
            )
        )
    return result


def extract_many(items: Sequence[tuple[Mapping[str, str], str | None]]) -> list[list[FoundEntity]]:
    """``extract_entities`` for each ``(fields, lang)``, in order."""
    return [extract_entities(fields, lang) for fields, lang in items]
