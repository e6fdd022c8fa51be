"""NER tokenisation, gazetteer matching, CRF features: one source for training and run time.

``train.py`` featurises the corpora's tokens with ``Featurizer.sequence`` and ``entities.py``
featurises its own tokens (from ``tokenize``) with the same object, built from the same
settings, lexicon, clusters and gazetteer that the model's MANIFEST entry names.
"""

from __future__ import annotations

import io
import lzma
import math
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from streams import resources
from streams.enrich import arabic
from streams.enrich.bounded import KEYS, WORDS, BoundedCache

# ---------------------------------------------------------------------------------------------
# Tokenisation: spans into the original string. CJK ideographs and kana are one token each (no
# spaces to split on); words keep their combining marks (Arabic harakat, ZWNJ in Persian).
# ---------------------------------------------------------------------------------------------
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0903\u093a-\u094f\u0981-\u0983\u09bc-\u09cd\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"
    "\u200c\u200d"
)
_WORD = rf"(?:(?![{_CJK}])[\w{_MARKS}])+"
# Tokens as the training corpora (CoNLL-2003, WikiANN, ANERcorp, Turkish Wiki NER) cut them, so
# that the tagger reads at run time what it was trained on (``sentences`` relies on the same
# tokens not to end a sentence inside one):
# * dotted acronyms and abbreviations keep their dots: "U.S.", "N.E.C", "v.Chr", "z.B.";
# * known abbreviations keep their dot ("St. Niklaus", "Dr.", "Corp."), so do initials before a
#   name ("J. R. R. Tolkien"), day/rank ordinals before a word ("3. Oktober", "1. FC Köln") and
#   Roman numerals ("Karl IV. ( Böhmen )", "II. Dünya"), as German and Turkish write them;
# * numbers keep their separators ("1.2", "3:0", "1/2", "1,000", "1967–1970");
# * English possessive/clitic "'s" is a token of its own ("Germany 's" in CoNLL); other
#   apostrophes and hyphens stay inside the word ("d'Uruguay", "Ankara'da", "Saint-Étienne");
# * runs of one punctuation mark are one token ("''", "...", "--", "=="); Arabic punctuation
#   (، ؛ ؟) and every other mark are single tokens; Arabic clitics stay on their word, as in
#   ANERcorp.
_LETTER = r"[^\W\d_]"
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ŽА-ЯЁΑ-Ω"
ABBREVIATIONS = frozenset(
    {
        *("St", "Ste", "Dr", "Mr", "Mrs", "Ms", "Mme", "Mlle", "Mgr", "Prof", "Jr"),
        *("Sr", "Corp", "Inc", "Ltd", "Co", "No", "Nr", "Gen", "Col", "Lt", "Sgt"),
        *("Capt", "Maj", "Adm", "Rev", "Gov", "Sen", "Rep", "Pres", "Hon", "Mt", "Ft"),
        *("Bros", "Dept", "Univ", "Ave", "Vol", "Op", "Jan", "Feb", "Mar", "Apr", "Jun"),
        *("Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "Str", "Hl", "Doç", "Yrd"),
        *("Av", "bzw", "usw", "vgl", "ggf", "evtl", "inkl", "geb", "gest", "ca", "vs"),
        "etc",
        # headlines in capitals ("ST. LOUIS", "DR. NO")
        *("ST", "DR", "MR", "MRS", "MT", "FT", "JR", "SR", "GEN", "GOV", "SEN", "CORP", "INC"),
    }
)
_ABBREVIATION = "|".join(sorted(ABBREVIATIONS, key=lambda a: (-len(a), a)))
_PUNCT_RUNS = "|".join(f"{re.escape(c)}{{2,}}" for c in "'`.*=-_~#!?+/\\|<>^")
TOKEN_RE = re.compile(
    rf"(?:{_LETTER}{{1,2}}\.)+{_LETTER}{{1,3}}\b\.?"  # U.S. / N.E.C / v.Chr / z.B.
    rf"|(?<![\w.])(?:{_ABBREVIATION})\.(?=\s)"  # St. / Dr. / Corp.
    rf"|(?<![\w.])[{_UPPER}]\.(?=[ \t]+{_LETTER})"  # initials: J. R. R. Tolkien
    r"|(?<![\w.])\d{1,2}\.(?=[ \t]+\w)"  # 3. Oktober / 1. FC Köln
    r"|(?<![\w.])[IVXLC]{2,5}\.(?=\s|$)"  # Karl IV. / II. Dünya Savaşı
    r"|\d+(?:[.,:/–]\d+)+"  # 1.2 / 3:0 / 1/2 / 1967–1970
    rf"|[{_CJK}]"
    rf"|{_WORD}(?:(?:[-&]|['’](?![sS]\b)){_WORD})*"
    r"|['’][sS]\b"
    rf"|{_PUNCT_RUNS}"
    r"|[^\s]",
)
_SPACE = re.compile(r"\s+")


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the tokens of ``text[start:end]`` (offsets into ``text``)."""
    stop = len(text) if end is None else end
    return [m.span() for m in TOKEN_RE.finditer(text, start, stop)]


def latin_key(text: str) -> str:
    """Key of a non-Arabic-script name: NFKC, case folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def arabic_key(text: str) -> str:
    """Arabic-script comparison form: ``arabic.normalize``.

    Persian/Urdu letters (ی ک) are deliberately NOT unified with Arabic ي ك: the Persian name
    of Turkey, ترکیه, would otherwise equal the Arabic adjective التركية ("Turkish").
    """
    return arabic.normalize(text)


# What the Arabic tagger reads (``FeatureSettings.arabic_letters``). ``arabic.normalize`` is a
# matching key: it folds ى into ي and ة into ه, which turns the preposition على into the name
# علي ("Ali"), منى ("Mona") into مني ("from me"), عليه ("on him") into علية ("Aliya"), so a
# tagger reading it sees a person in every "على". The tagger's forms drop only harakat and
# tatweel ("keep_all") and, by default, also unify the alef forms أ إ آ ٱ, whose hamza news
# text writes or omits at random ("keep_ya_ta": ى and ة stay themselves).
_TAG_MARKS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
_TAG_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا"})
ARABIC_LETTERS = ("normalize", "keep_ya_ta", "keep_all")


def _keep_ya_ta(text: str) -> str:
    return _TAG_MARKS.sub("", text).translate(_TAG_ALEF)


def _keep_all(text: str) -> str:
    return _TAG_MARKS.sub("", text)


_FOLDS: dict[str, Callable[[str], str]] = {
    "normalize": arabic_key,
    "keep_ya_ta": _keep_ya_ta,
    "keep_all": _keep_all,
}


def arabic_fold(letters: str) -> Callable[[str], str]:
    """The function giving the tagger's form of an Arabic word (one object per setting)."""
    try:
        return _FOLDS[letters]
    except KeyError:
        raise ValueError(
            f"arabic_letters must be one of {ARABIC_LETTERS}, not {letters!r}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Word clusters (``training/clusters.py`` builds them from unlabelled text): a TSV, xz, of
# ``word<TAB>coarse.medium.fine`` cluster ids, one line a word, ``#`` comment lines first.
# Arabic words are in the ``CLUSTER_LETTERS`` form (stems: proclitics and article split off).
# ---------------------------------------------------------------------------------------------
CLUSTER_LETTERS = "keep_ya_ta"
MODELS_DIR = resources.package_file("streams.enrich", "models")
_cluster_lock = threading.Lock()
_cluster_tables: dict[str, dict[str, str]] = {}


def read_cluster_table(path: Traversable | Path) -> dict[str, str]:
    table: dict[str, str] = {}
    with path.open("rb") as raw, io.TextIOWrapper(lzma.LZMAFile(raw), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            word, _, ids = line.rstrip("\n").partition("\t")
            if word and ids:
                table[word] = sys.intern(ids)
    return table


def load_clusters(name: str) -> Mapping[str, str]:
    """The cluster table ``name`` of the models directory, read once per process."""
    got = _cluster_tables.get(name)
    if got is None:
        with _cluster_lock:
            got = _cluster_tables.get(name)
            if got is None:
                got = _cluster_tables[name] = read_cluster_table(MODELS_DIR / name)
    return got


def surface_key(text: str, lexicon: Mapping[str, int] | None = None) -> str:
    """Aggregation key of an entity's text: Arabic script ``arabic.normalize_entity`` (clitics
    and article of the first word split off, letters unified), otherwise NFKC + casefold +
    collapsed whitespace."""
    if arabic.is_arabic(text):
        return arabic.normalize_entity(text, lexicon)
    return latin_key(text)


def token_key(token: str) -> str:
    return arabic_key(token) if arabic.is_arabic(token) else latin_key(token)


_ELISION = re.compile(r"^(?:[dDlLjJnNsScCmMtT]|[qQ]u|[jJ]usqu|[lL]orsqu|[pP]uisqu)['’](?=\w)")
_APOS_SUFFIX = re.compile(r"['’][^\W\d_]{1,6}$")


def core_cuts(token: str, lexicon: Mapping[str, int] | None = None) -> tuple[int, int]:
    """Characters to drop at the start and end of ``token`` when it begins/ends an entity.

    Arabic: proclitics (و ف ب ك ل, keeping an article that follows them; ``arabic``). Latin:
    French/Italian elision before the name ("d'Uruguay", "l'Irak") and a Turkish case suffix
    after an apostrophe ("Ankara'da", "Türkiye’nin").
    """
    if arabic.is_arabic(token):
        prefix, _stem = arabic.split_clitics(token, lexicon)
        return (arabic.article_offset(prefix) if prefix else 0), 0
    start = 0
    m = _ELISION.match(token)
    if m:
        start = m.end()
    end = 0
    m2 = _APOS_SUFFIX.search(token, start)
    if m2 and m2.start() > start and token[m2.start() + 1 : m2.start() + 2].islower():
        end = len(token) - m2.start()
    return start, end


# ---------------------------------------------------------------------------------------------
# Gazetteer: multi-token names in many scripts -> (type, kind).
# ---------------------------------------------------------------------------------------------
_CYR_ENDINGS = {
    "а": ("ы", "е", "у", "ой", "ою"),
    "я": ("и", "е", "ю", "ей"),
    "ия": ("ии", "ию", "ией"),
}
_CYRILLIC = re.compile("[\u0400-\u04ff]")


def _cyrillic_forms(word: str) -> list[str]:
    """Case forms of a Russian place name (Москва -> Москве, Москву, ...), heuristically."""
    low = word
    for ending in ("ия", "а", "я"):
        if low.endswith(ending) and len(low) > len(ending) + 2:
            base = low[: -len(ending)]
            return [base + e for e in _CYR_ENDINGS[ending]]
    if low[-1:].isalpha() and low[-1] not in "аеёиоуыэюяйьъ" and len(low) > 3:
        return [low + e for e in ("а", "у", "е", "ом")]
    return []


@dataclass(frozen=True)
class GazMatch:
    start: int  # first token index
    end: int  # exclusive token index
    type: str
    kind: str
    key: str  # canonical key of the name (uninflected), e.g. "москва" for "Москве"


class Gazetteer:
    """Longest-match lookup of token sequences in name lists of many scripts."""

    def __init__(self, fold: Callable[[str], str] = arabic_key) -> None:
        # ``fold``: the form Arabic words are compared in (``arabic_key``; a tagger's span-name
        # gazetteer uses the tagger's own form, ``Featurizer.fold``)
        self.fold = fold
        self.source: dict[str, str] = {}  # name -> type, as given to ``from_names``
        self.entries: dict[tuple[str, ...], tuple[str, str, str]] = {}
        self.first: set[str] = set()
        self.prefixes: set[tuple[str, ...]] = set()  # proper prefixes of multi-token names
        self.max_len = 1
        self._first_cache: dict[str, list[str]] = BoundedCache(KEYS)
        self._inner_cache: dict[str, list[str]] = BoundedCache(KEYS)

    def __len__(self) -> int:
        return len(self.entries)

    def clear_caches(self) -> None:
        self._first_cache.clear()
        self._inner_cache.clear()

    @staticmethod
    def name_key(name: str, fold: Callable[[str], str] = arabic_key) -> tuple[str, ...]:
        toks = [name[s:e] for s, e in tokenize(name)]
        keys = [fold(t) if arabic.is_arabic(t) else latin_key(t) for t in toks]
        if keys and arabic.is_arabic(toks[0]):
            keys[0] = arabic.strip_article(keys[0])
        return tuple(keys)

    def add(self, name: str, type_: str, kind: str) -> None:
        key = self.name_key(name, self.fold)
        if not key or key in self.entries:
            return
        variants = [key]
        if len(key) == 1 and _CYRILLIC.search(key[0]):
            variants += [(form,) for form in _cyrillic_forms(key[0])]
        canonical = surface_key(name)
        for k in variants:
            self.entries.setdefault(k, (type_, kind, canonical))
            self.first.add(k[0])
            for end in range(1, len(k)):
                self.prefixes.add(k[:end])
            self.max_len = max(self.max_len, len(k))

    @classmethod
    def from_names(
        cls, names: Mapping[str, str], kind: str = "train", fold: Callable[[str], str] = arabic_key
    ) -> Gazetteer:
        """A gazetteer of ``name -> type`` (e.g. the entity strings of a training corpus)."""
        gaz = cls(fold)
        gaz.source = dict(names)
        for name, type_ in names.items():
            gaz.add(name, type_, kind)
        return gaz

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Gazetteer:
        gaz = cls()
        for path in paths:
            with lzma.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) == 3 and not line.startswith("#"):
                        gaz.add(parts[2], parts[0], parts[1])
        return gaz

    def first_keys(self, token: str, lexicon: Mapping[str, int] | None) -> list[str]:
        """Keys under which ``token`` may start a name (with clitics/elision/suffix removed)."""
        if arabic.is_arabic(token):
            norm = self.fold(token)
            keys = [arabic.strip_article(norm)]
            prefix, stem = arabic.split_clitics(norm, lexicon)
            if prefix:
                keys.append(arabic.strip_article(stem))
            elif norm[:1] in arabic.PROCLITICS and len(norm) >= 4:
                keys.append(arabic.strip_article(norm[1:]))
            return keys
        start, end = core_cuts(token)
        keys = [latin_key(token)]
        if start or end:
            keys.append(latin_key(token[start : len(token) - end]))
        return keys

    def inner_key(self, token: str) -> list[str]:
        if arabic.is_arabic(token):
            return [self.fold(token)]
        keys = [latin_key(token)]
        _start, end = core_cuts(token)
        if end:
            keys.append(latin_key(token[: len(token) - end]))
        return keys

    def match(
        self, tokens: Sequence[str], lexicon: Mapping[str, int] | None = None
    ) -> list[GazMatch]:
        """Longest matches, left to right; names are walked token by token (prefix set)."""
        found: list[GazMatch] = []
        n = len(tokens)
        i = 0
        first_cache = self._first_cache
        inner_cache = self._inner_cache
        if len(first_cache) > 200_000:
            first_cache.clear()
            inner_cache.clear()
        while i < n:
            tok = tokens[i]
            hit: GazMatch | None = None
            firsts = first_cache.get(tok)
            if firsts is None:
                firsts = first_cache[tok] = (
                    [k for k in self.first_keys(tok, lexicon) if k in self.first]
                    if _capitalised_or_nonlatin(tok)
                    else []
                )
            for k0 in firsts:
                key: tuple[str, ...] = (k0,)
                got = self.entries.get(key)
                if got is not None and (hit is None or hit.end - hit.start < 1):
                    hit = GazMatch(i, i + 1, *got)
                j = i + 1
                while j < n and key in self.prefixes:
                    nxt = inner_cache.get(tokens[j])
                    if nxt is None:
                        nxt = inner_cache[tokens[j]] = self.inner_key(tokens[j])
                    for alt in nxt[1:]:  # a suffixed form can only end a name
                        got = self.entries.get((*key, alt))
                        if got is not None and (hit is None or hit.end - hit.start < j + 1 - i):
                            hit = GazMatch(i, j + 1, *got)
                    key = (*key, nxt[0])
                    got = self.entries.get(key)
                    if got is not None and (hit is None or hit.end - hit.start < j + 1 - i):
                        hit = GazMatch(i, j + 1, *got)
                    j += 1
            if hit is not None:
                found.append(hit)
                i = hit.end
            else:
                i += 1
        return found


def _capitalised_or_nonlatin(token: str) -> bool:
    first = token[:1]
    if not first.isalpha():
        return False
    if first.isupper():
        return True
    # scripts without case: Arabic, Hebrew, CJK, Indic...; Latin/Cyrillic/Greek need a capital
    return first.lower() == first.upper()


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
TRIGGERS_AR: dict[str, str] = {
    # persons: titles and speech verbs
    **dict.fromkeys(
        "الرئيس رئيس وزير الوزير الملك الامير امير الشيخ الرئيسه السيد السيده الدكتور الجنرال "
        "اللواء العميد العقيد الفريق المتحدث الناطق المستشار النائب السفير المدير الامين "
        "المرشح الزعيم القائد المبعوث المندوب زعيم قائد نائب سفير مدير المدرب اللاعب الفنان "
        "الكاتب الشاعر المطرب البابا الاب قال اكد اضاف اعلن صرح اوضح اشار اعتبر ذكر اعرب اتهم "
        "طالب اعلنت قالت اكدت ابن بن بنت ابو",
        "PER",
    ),
    **dict.fromkeys(
        "وزاره الوزاره شركه الشركه حزب الحزب منظمه المنظمه جامعه الجامعه مجلس المجلس "
        "وكاله الوكاله هيئه الهيئه بنك البنك صحيفه الصحيفه نادي النادي اتحاد الاتحاد جمعيه "
        "الجمعيه حركه الحركه جبهه الجبهه مؤسسه المؤسسه البرلمان برلمان محكمه المحكمه قناه "
        "القناه مصرف المصرف منتخب المنتخب فريق",
        "ORG",
    ),
    **dict.fromkeys(
        "مدينه المدينه عاصمه العاصمه بلده البلده قريه القريه محافظه المحافظه منطقه المنطقه "
        "ولايه الولايه اقليم الاقليم جزيره الجزيره نهر النهر جبل الجبل بحر البحر دوله الدوله "
        "مطار ميناء شمال جنوب شرق غرب شمالي جنوبي وسط في الي من",
        "LOC",
    ),
}

_DIGIT = re.compile(r"\d")


def shape(token: str) -> str:
    out: list[str] = []
    for ch in token[:12]:
        if ch.isupper():
            c = "X"
        elif ch.islower():
            c = "x"
        elif ch.isdigit():
            c = "d"
        elif ch.isalpha():
            c = "a"
        else:
            c = ch
        out.append(c)
    return "".join(out)


def short_shape(token: str) -> str:
    s = shape(token)
    out: list[str] = []
    for ch in s:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


@dataclass
class FeatureSettings:
    window: int = 2  # neighbour words at -window..+window
    affixes: int = 4  # prefixes/suffixes of length 1..affixes
    gazetteer: bool = True  # gazetteer B/I flags as features
    clusters: bool = False  # word clusters as features (``cluster_table``)
    cluster_table: str = ""  # file of the models directory: word -> cluster ids
    cluster_window: int = 1  # cluster ids of the words at -n..+n besides the word's own
    # the form of Arabic words that every feature reads (``ARABIC_LETTERS``); "normalize" =
    # the matching key (ى->ي, ة->ه), kept as the default for the models trained with it
    arabic_letters: str = "normalize"
    bigrams: bool = True  # word bigrams around the token
    names: bool = True  # name list learned from the training entities (jackknifed)
    span_names: bool = False  # whole training entity strings matched as a gazetteer (jackknifed)
    span_names_min_share: float = 0.0  # one-word strings: min share of the word's occurrences
    # that are inside entities (training only; 0.5 lowered ar dev F1 by 0.003, PER by 0.016)
    runs: bool = False  # first/last word of each run of capitalised words (Latin scripts)
    jackknife: int = 5  # folds for the name list at training time
    c1: float = 0.05
    c2: float = 0.01
    minfreq: int = 1
    max_iterations: int = 150
    o_threshold: float = 0.0  # posterior decoding: a Viterbi "O" with P(O) below this becomes
    # the most probable entity label (0 = plain Viterbi); tuned on a training hold-out
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Word:
    here: list[str]
    near: list[list[str]]  # features of this word seen from offsets -w..-1, +1..+w
    core: str  # name-list key (``Featurizer.tag_core``)
    cuts: tuple[int, int] | None = None  # ``core_cuts`` (Latin words; lexicon-independent)


class Featurizer:
    """Token sequence -> crfsuite attribute lists; per-word parts are cached."""

    def __init__(
        self,
        lang: str,
        settings: FeatureSettings,
        gazetteer: Gazetteer | None = None,
        lexicon: Mapping[str, int] | None = None,
        clusters: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        span_names: Gazetteer | None = None,
    ) -> None:
        self.lang = lang
        self.settings = settings
        self.gazetteer = gazetteer if settings.gazetteer else None
        self.lexicon: Mapping[str, int] = lexicon if lexicon is not None else {}
        self.fold = arabic_fold(settings.arabic_letters)
        if clusters is None and settings.clusters and settings.cluster_table:
            clusters = load_clusters(settings.cluster_table)
        self.clusters: Mapping[str, str] = clusters if (clusters and settings.clusters) else {}
        self.names: Mapping[str, str] = names if names is not None else {}
        if span_names is not None and span_names.fold is not self.fold:
            # built with another form of Arabic words than this tagger reads: rebuild
            span_names = Gazetteer.from_names(span_names.source, fold=self.fold)
        self.span_names = span_names
        self.offsets = [d for d in range(-settings.window, settings.window + 1) if d != 0]
        self._cache: dict[str, _Word] = BoundedCache(WORDS)
        self._keys: dict[str, str] = BoundedCache(KEYS)
        self._cuts: dict[str, tuple[int, int]] = BoundedCache(KEYS)

    # -- per word -------------------------------------------------------------------------
    def _cluster_ids(self, *keys: str) -> list[str]:
        """Cluster ids (coarse to fine) of the first of ``keys`` in the table."""
        for key in keys:
            ids = self.clusters.get(key)
            if ids is not None:
                return ids.split(".")
        return []

    def _arabic_word(self, token: str) -> tuple[list[str], dict[int, list[str]], str]:
        norm = self.fold(token)
        prefix, stem = arabic.split_clitics(norm, self.lexicon)
        core = arabic.strip_article(stem) if prefix.endswith("ال") or not prefix else stem
        # the lexicon and the trigger lists are keyed by the matching form
        match = stem if self.fold is arabic_key else arabic_key(stem)
        here = [f"w={norm}", f"s={stem}", f"p={prefix or '-'}"]
        if core != stem:
            here.append(f"k={core}")
        for k in range(2, self.settings.affixes + 1):
            if len(stem) > k:
                here.append(f"s{k}={stem[:k]}")
                here.append(f"e{k}={stem[-k:]}")
        here.append(f"e1={stem[-1:]}")
        freq = self.lexicon.get(match, 0)
        here.append(f"f={min(int(math.log2(freq + 1)), 12)}")
        trig = TRIGGERS_AR.get(match) or TRIGGERS_AR.get(arabic_key(norm))
        if trig:
            here.append(f"tr={trig}")
        if _DIGIT.search(token):
            here.append("dig")
        cids = self._cluster_ids(_keep_ya_ta(stem), _keep_ya_ta(norm)) if self.clusters else []
        here += [f"c{g}={c}" for g, c in enumerate(cids)]
        known_as = self.names.get(core)
        if known_as:
            here.append(f"nl={known_as}")
        near: dict[int, list[str]] = {}
        for d in self.offsets:
            feats = [f"{d}w={norm}", f"{d}s={stem}"]
            if trig:
                feats.append(f"{d}tr={trig}")
            if known_as and abs(d) == 1:
                feats.append(f"{d}nl={known_as}")
            if abs(d) == 1:
                feats.append(f"{d}p={prefix or '-'}")
                feats.append(f"{d}e2={stem[-2:]}")
            if abs(d) <= self.settings.cluster_window:
                feats += [f"{d}c{g}={c}" for g, c in enumerate(cids)]
            near[d] = feats
        return here, near, core

    def _latin_word(
        self, token: str
    ) -> tuple[list[str], dict[int, list[str]], str, tuple[int, int]]:
        low = latin_key(token)
        start, end = core_cuts(token)
        core = low
        here = [f"w={low}", f"sh={shape(token)}", f"ss={short_shape(token)}"]
        if start or end:
            core = latin_key(token[start : len(token) - end])
            here.append(f"k={core}")
            if end:
                here.append(f"apos={latin_key(token[len(token) - end :])}")
            if start:
                here.append("elis")
        first = token[start : start + 1]
        if first.isupper():
            here.append("cap")
            if token.isupper() and len(token) > 1:
                here.append("allcap")
        elif first.islower():
            here.append("low")
        for k in range(1, self.settings.affixes + 1):
            if len(core) > k:
                here.append(f"p{k}={core[:k]}")
                here.append(f"e{k}={core[-k:]}")
        if _DIGIT.search(token):
            here.append("dig")
        if "-" in token:
            here.append("hyph")
        if not first.isalnum():
            here.append("punct")
        cids = self._cluster_ids(core, low) if self.clusters else []
        here += [f"c{g}={c}" for g, c in enumerate(cids)]
        known_as = self.names.get(core)
        if known_as:
            here.append(f"nl={known_as}")
        ss = short_shape(token)
        near: dict[int, list[str]] = {}
        for d in self.offsets:
            feats = [f"{d}w={low}", f"{d}ss={ss}"]
            if abs(d) == 1:
                if known_as:
                    feats.append(f"{d}nl={known_as}")
                if core != low:
                    feats.append(f"{d}k={core}")
                feats.append(f"{d}e3={core[-3:]}")
            if abs(d) <= self.settings.cluster_window:
                feats += [f"{d}c{g}={c}" for g, c in enumerate(cids)]
            near[d] = feats
        return here, near, core, (start, end)

    def clear_caches(self) -> None:
        self._cache.clear()
        self._keys.clear()
        self._cuts.clear()
        if self.gazetteer is not None:
            self.gazetteer.clear_caches()

    def tag_core(self, token: str) -> str:
        """The key of ``token`` in the name list (``names``): its core (Arabic stem without
        clitics and article, Latin word without elision/suffix) in the form the tagger reads."""
        return self.word(token).core

    def name_key(self, token: str) -> str:
        """The matching key of ``token``'s core (Arabic: ``arabic_key`` of the stem without
        clitics and article; Latin core): for comparing words across sentences and with lists."""
        cached = self._cache.get(token)
        if cached is not None and (cached.cuts is not None or self.fold is arabic_key):
            return cached.core
        got = self._keys.get(token)
        if got is None:
            if len(self._keys) > 300_000:
                self._keys.clear()
            got = self._keys[token] = self._name_key(token)
        return got

    def cuts(self, token: str) -> tuple[int, int]:
        """``core_cuts`` of ``token`` with this model's lexicon, cached."""
        word = self._cache.get(token)
        if word is not None and word.cuts is not None:
            return word.cuts  # a Latin word featurised already: core_cuts ignores the lexicon
        got = self._cuts.get(token)
        if got is None:
            if len(self._cuts) > 300_000:
                self._cuts.clear()
            got = self._cuts[token] = core_cuts(token, self.lexicon)
        return got

    def _name_key(self, token: str) -> str:
        if arabic.is_arabic(token):
            norm = arabic_key(token)
            prefix, stem = arabic.split_clitics(norm, self.lexicon)
            return arabic.strip_article(stem) if prefix.endswith("ال") or not prefix else stem
        start, end = core_cuts(token)
        return latin_key(token[start : len(token) - end])

    def word(self, token: str) -> _Word:
        got = self._cache.get(token)
        if got is not None:
            return got
        cuts: tuple[int, int] | None = None
        if arabic.is_arabic(token):
            here, near, core = self._arabic_word(token)
        else:
            here, near, core, cuts = self._latin_word(token)
        got = _Word(here, [near[d] for d in self.offsets], core, cuts)
        if len(self._cache) > 300_000:
            self._cache.clear()
        self._cache[token] = got
        return got

    # -- per sequence ---------------------------------------------------------------------
    def sequence(self, tokens: Sequence[str], gaz: list[GazMatch] | None = None) -> list[list[str]]:
        """crfsuite attributes for each token; ``gaz`` = gazetteer matches if already known."""
        n = len(tokens)
        words = [self.word(t) for t in tokens]
        out: list[list[str]] = []
        offsets = self.offsets
        width = len(offsets) // 2
        lows = [w.here[0][2:] for w in words]
        upper_sentence = False
        if self.lang != "ar":
            alpha = [t for t in tokens if t[:1].isalpha()]
            upper_sentence = len(alpha) >= 2 and all(t.isupper() for t in alpha)
        length = f"len={min(n, 8)}"
        depth = [0] * n
        level = 0
        for i, tok in enumerate(tokens):
            if tok in (")", "]", "）"):
                level = max(0, level - 1)
            depth[i] = level
            if tok in ("(", "[", "（"):
                level += 1
        for i in range(n):
            feats = list(words[i].here)
            for slot, d in enumerate(offsets):
                j = i + d
                if 0 <= j < n:
                    feats += words[j].near[slot]
                elif j == -1:
                    feats.append("BOS")
                elif j == n:
                    feats.append("EOS")
            if self.settings.bigrams:
                if i > 0:
                    feats.append(f"b-={lows[i - 1]}|{lows[i]}")
                if i + 1 < n:
                    feats.append(f"b+={lows[i]}|{lows[i + 1]}")
            if upper_sentence:
                feats.append("SUP")
            if i == 0:
                feats.append("first")
            if depth[i]:
                feats.append("paren")
            feats.append(length)
            out.append(feats)
        del width
        if self.settings.runs and self.lang != "ar":
            _run_features(tokens, lows, out)
        if self.span_names is not None:
            for m in self.span_names.match(tokens, self.lexicon):
                for j in range(m.start, m.end):
                    out[j].append(f"td={'B' if j == m.start else 'I'}-{m.type}")
                if m.start > 0:
                    out[m.start - 1].append(f"td+1={m.type}")
                if m.end < n:
                    out[m.end].append(f"td-1={m.type}")
        if self.gazetteer is not None:
            matches = gaz if gaz is not None else self.gazetteer.match(tokens, self.lexicon)
            for m in matches:
                for j in range(m.start, m.end):
                    bio = "B" if j == m.start else "I"
                    out[j].append(f"gz={bio}-{m.type}")
                    out[j].append(f"gk={m.kind}")
                if m.start > 0:
                    out[m.start - 1].append(f"gz+1={m.type}")
                if m.end < n:
                    out[m.end].append(f"gz-1={m.type}")
        return out


# lower-case words that may join the capitalised words of one name ("Parc national des Monts")
_CONNECTORS = frozenset({
    "de", "du", "des", "la", "le", "les", "d", "l", "von", "van", "der", "den", "dem", "und",
    "of", "the", "and", "y", "e", "et", "di", "da", "del", "al", "el", "ibn", "bin", "zu",
})  # fmt: skip


def _run_features(tokens: Sequence[str], lows: Sequence[str], out: list[list[str]]) -> None:
    """Runs of capitalised tokens (joined by lowercase connectors): each inner token gets the
    run's first and last word, so a long name's head ("Parc", "Universität") and tail ("AG",
    "FC") inform every token of it, beyond the +-2 window."""
    n = len(tokens)
    i = 0
    while i < n:
        if not tokens[i][:1].isupper():
            i += 1
            continue
        j = i + 1
        last = i
        while j < n:
            t = tokens[j]
            if t[:1].isupper() or t[:1].isdigit():
                last = j
            elif lows[j] not in _CONNECTORS and t not in ("'", "’", "-"):
                break
            j += 1
        if last > i:
            first_w, last_w = lows[i], lows[last]
            for k in range(i, last + 1):
                if k != i:
                    out[k].append(f"rf={first_w}")
                if k != last:
                    out[k].append(f"rl={last_w}")
                out[k].append(f"rp={'B' if k == i else ('E' if k == last else 'I')}")
        i = last + 1


def decode(tagger: Any, xseq: list[list[str]], o_threshold: float = 0.0) -> list[str]:
    """Viterbi labels, then (if ``o_threshold``) "O" tokens whose marginal P(O) is below the
    threshold get their most probable entity label; BIO is repaired. ``tagger`` is a
    ``pycrfsuite.Tagger``; the marginals refer to the sequence just tagged."""
    labels: list[str] = tagger.tag(xseq)
    if o_threshold <= 0.0:
        return labels
    marginal = tagger.marginal
    entity_labels: list[str] | None = None
    changed = False
    for i, label in enumerate(labels):
        if label == "O" and marginal("O", i) < o_threshold:
            if entity_labels is None:
                entity_labels = [y for y in tagger.labels() if y != "O"]
            labels[i] = max(entity_labels, key=lambda y: marginal(y, i))
            changed = True
    if changed:
        for i, label in enumerate(labels):
            if label.startswith("I-") and (i == 0 or labels[i - 1][2:] != label[2:]):
                labels[i] = "B-" + label[2:]
    return labels
