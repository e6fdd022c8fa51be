"""Names as users see them: display names, matching keys, and the small rules that keep
non-names (datelines, formulas, months, currencies, function words, adjectives, facility
names) out of the entity list. Pure functions over tokens; used by ``entities``.

* ``key(surface)`` - the grouping/matching key of a name. Arabic: diacritics and tatweel
  removed, letters unified (أ إ آ ٱ -> ا, ى -> ي, ة -> ه), the article of the first word split off
  when at least three letters remain (so "الله" stays "الله" and "ألتنداغ", which starts with a
  hamzated alef, keeps its "أل"), and "عبد الله" / "أبو ظبي" written with or without the space give
  one key. Other scripts: NFKC, case folded, whitespace collapsed. The key never goes through
  clitic splitting: the mention's span has lost its clitics already (``entities._span``), so a
  second split would cut real letters (كيري -> "يري"). Keys are for matching only, never shown.
* ``display_name(surfaces)`` - the most frequent surface form (ties: the first seen).
* ``clean_span(tokens, i, j, type)`` - the token span of a tagged name after the rules below,
  or ``None`` when it is not a name at all.
* ``is_subname`` / ``state_short_form`` / ``acronym_of`` - the within-article merge tests.

Everything is bounded: a name is at most ``MAX_NAME_CHARS`` characters and a token of more than
``MAX_TOKEN_CHARS`` characters is not a name (a 17,000-character token must not become an entity).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from streams.enrich import arabic
from streams.enrich.features import latin_key

MAX_NAME_CHARS = 200
MAX_TOKEN_CHARS = 60
MAX_NAME_TOKENS = 30

_MARKS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)


_CACHE_SIZE = 20_000  # full within ~5k articles, after which memory stays level (issue 14.8)
_plain_cache: dict[str, str] = {}
_norm_cache: dict[str, str] = {}
_key_cache: dict[str, str] = {}


def _plain(text: str) -> str:
    got = _plain_cache.get(text)
    if got is None:
        if len(_plain_cache) > _CACHE_SIZE:
            _plain_cache.clear()
        got = _plain_cache[text] = _MARKS.sub("", text).replace("ٱ", "ا")
    return got


def _norm(word: str) -> str:
    """Arabic comparison form of one word (letters unified), else case folded."""
    got = _norm_cache.get(word)
    if got is None:
        if len(_norm_cache) > _CACHE_SIZE:
            _norm_cache.clear()
        got = _norm_cache[word] = (
            arabic.normalize(word) if arabic.is_arabic(word) else latin_key(word)
        )
    return got


def _bare(word: str) -> str:
    """``_norm`` without a leading article (Arabic ``ال`` + at least three letters)."""
    n = _norm(word)
    return n[2:] if n.startswith("ال") and len(n) >= 5 and _plain(word).startswith("ال") else n


def key(surface: str) -> str:
    """Grouping/matching key of a name's surface (see the module docstring); bounded."""
    got = _key_cache.get(surface)
    if got is None:
        if len(_key_cache) > _CACHE_SIZE:
            _key_cache.clear()
        got = _key_cache[surface] = _key(surface)
    return got


def _key(surface: str) -> str:
    if not arabic.is_arabic(surface):
        return latin_key(surface)[:MAX_NAME_CHARS]
    words = _plain(surface).split()
    if not words:
        return ""
    first = words[0]
    if first.startswith("ال") and len(first) >= 5:
        words[0] = first[2:]
    return arabic.join_name_parts(arabic.normalize(" ".join(words)))[:MAX_NAME_CHARS]


def display_name(surfaces: Iterable[str]) -> str:
    """The most frequent surface form (first seen on ties), whitespace collapsed, bounded."""
    if isinstance(surfaces, list) and len(surfaces) == 1:
        return " ".join(surfaces[0].split())[:MAX_NAME_CHARS]
    counts = Counter(" ".join(s.split()) for s in surfaces)
    if not counts:
        return ""
    best = max(counts.values())
    name = next(s for s, c in counts.items() if c == best)
    return name[:MAX_NAME_CHARS]


def _forms(words: Iterable[str]) -> frozenset[str]:
    return frozenset(arabic.normalize(w) if arabic.is_arabic(w) else w.casefold() for w in words)


# --- words that are never a name on their own ------------------------------------------------
# Arabic function words as written (ى kept): the tagger reads "على" like the name "علي".
ARABIC_FUNCTION_WORDS = frozenset(
    {
        *("على", "إلى", "الى", "حتى", "لدى", "متى", "لي", "لى", "عن", "من", "في", "مع", "ما"),
        *("لا", "أن", "إن", "ان", "هو", "هي", "كل", "بعد", "قبل", "بين", "ذلك", "هذا", "هذه"),
        *("التي", "الذي", "قد", "لم", "لن", "ضد", "عند", "أو", "او", "ثم", "كما", "له", "لها"),
        *("به", "بها", "فيه", "فيها", "عليه", "عليها", "منه", "منها", "إليه", "اليه", "انه"),
        *("أنه", "إنه", "لقد", "حيث", "خلال", "نحو", "لدي", "أي", "اي", "وقد", "كان", "قال"),
    }
)
_FUNCTION_PLAIN = frozenset(_plain(w) for w in ARABIC_FUNCTION_WORDS)
# Particles and verbs that end any name they follow ("بيلد الألمانية إن السفير"): no
# organisation or place name contains them either.
_NEVER_IN_NAMES = frozenset(
    _plain(w) for w in ("إن", "أن", "أنه", "إنه", "انه", "قد", "لقد", "كان", "قال", "قالت", "وقال")
)

# Months (Gregorian in the Levantine, Egyptian/Gulf and European forms; Hijri), weekdays and
# currencies: compared by ``_bare`` form, one word or the whole span.
_MONTHS_AR = (
    *("كانون الثاني", "شباط", "آذار", "نيسان", "أيار", "حزيران", "تموز", "آب", "أيلول"),
    *("تشرين الأول", "تشرين الثاني", "كانون الأول", "يناير", "فبراير", "مارس", "أبريل"),
    *("ابريل", "إبريل", "مايو", "يونيو", "يونيه", "يوليو", "يوليه", "أغسطس", "اغسطس", "سبتمبر"),
    *("أكتوبر", "اكتوبر", "نوفمبر", "ديسمبر", "محرم", "صفر", "ربيع الأول", "ربيع الآخر"),
    *("ربيع الثاني", "جمادى الأولى", "جمادى الآخرة", "جمادى الثانية", "رجب", "شعبان"),
    *("رمضان", "شوال", "ذو القعدة", "ذو الحجة", "ذي القعدة", "ذي الحجة"),
)
_WEEKDAYS_AR = ("الأحد", "الاثنين", "الإثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت")
_CURRENCIES_AR = (
    *("ريال", "ريالات", "دولار", "دولارات", "يورو", "جنيه", "جنيهات", "دينار", "دنانير"),
    *("درهم", "دراهم", "ليرة", "ليرات", "روبية", "ين", "يوان", "فرنك", "روبل", "شيكل"),
    *("الريال", "الدولار", "اليورو", "الجنيه", "الدينار", "الدرهم", "الليرة"),
)
_MONTHS_LATIN = (
    *("january", "february", "march", "april", "may", "june", "july", "august", "september"),
    *("october", "november", "december", "janvier", "février", "mars", "avril", "mai", "juin"),
    *("juillet", "août", "septembre", "octobre", "novembre", "décembre", "januar", "februar"),
    *("märz", "juni", "juli", "oktober", "dezember", "ocak", "şubat", "mart", "nisan"),
    *("mayıs", "haziran", "temmuz", "ağustos", "eylül", "ekim", "kasım", "aralık", "enero"),
    *("febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre"),
    *("octubre", "noviembre", "diciembre", "januari", "februari", "maart", "mei", "augustus"),
    *("ramadan", "ramazan", "ramadhan"),
)
_WEEKDAYS_LATIN = (
    *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "lundi"),
    *("mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "montag", "dienstag"),
    *("mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "pazartesi", "salı"),
    *("çarşamba", "perşembe", "cuma", "cumartesi", "pazar", "maandag", "dinsdag", "woensdag"),
    *("donderdag", "vrijdag", "zaterdag", "zondag", "lunes", "martes", "miércoles", "jueves"),
    *("viernes", "sábado", "domingo"),
)
_CURRENCIES_LATIN = (
    *("dollar", "dollars", "euro", "euros", "pound", "pounds", "sterling", "yen", "yuan"),
    *("rouble", "ruble", "rubles", "roubles", "rupee", "rupees", "riyal", "riyals", "dirham"),
    *("dirhams", "dinar", "dinars", "lira", "liras", "lire", "franc", "francs", "peso"),
    *("pesos", "shekel", "shekels", "won", "dólar", "dólares", "dolar", "türk lirası"),
)
# Latin months that are also given names or surnames: not dropped when tagged as a person.
_MONTH_NAMES_OF_PEOPLE = frozenset({"april", "may", "june", "august", "mai", "juni", "julio"})


def _bare_phrase(words: Sequence[str]) -> str:
    return " ".join([_bare(words[0]), *(_norm(w) for w in words[1:])]) if words else ""


# Months that are also brand names, kept when tagged as organisations ("نيسان" is Nissan).
_MONTHS_AS_BRANDS = frozenset({_bare_phrase(["نيسان"]), "mars"})

NOT_NAMES_AR = frozenset(
    _bare_phrase(p.split()) for p in (*_MONTHS_AR, *_WEEKDAYS_AR, *_CURRENCIES_AR)
)
NOT_NAMES_LATIN = frozenset(
    latin_key(p) for p in (*_MONTHS_LATIN, *_WEEKDAYS_LATIN, *_CURRENCIES_LATIN)
)

# Honorific formulas after a name ("حفظه الله", "رحمه الله", "عليه السلام"): their first word
# ends the name; a span that starts with one is no name.
_FORMULA_STARTS = _forms(
    (
        *("حفظه", "حفظها", "يحفظه", "حفظهم", "رحمه", "رحمها", "يرحمه", "رعاه", "يرعاه", "أيده"),
        *("ايده", "سلمه", "وفقه", "رضي", "صلى", "عليه", "عليهم", "قدس", "تعالى", "سبحانه"),
        *("عز", "جل"),
    )
)

# News agencies: never a person or place ("واس" tagged as a person); as an organisation in a
# dateline ("الرياض - واس", "(AFP) -", "Reuters -") kept out of the facets (``dateline``).
_AGENCIES = frozenset(
    {
        *(latin_key(a) for a in ("AFP", "Reuters", "AP", "dpa", "SPA", "ANSA", "EFE", "UPI")),
        *(latin_key(a) for a in ("Xinhua", "PTI", "IANS", "TASS", "ТАСС", "РИА", "AA", "APA")),
        *(latin_key(a) for a in ("Anadolu", "WAM", "KUNA", "QNA", "BNA", "SANA", "IRNA", "ANP")),
        *_forms(("واس", "رويترز", "سانا", "قنا", "وام", "كونا", "بنا", "معا", "ارنا", "يونا")),
    }
)
_AGENCY_PHRASES = frozenset({("ا", "ف", "ب"), ("د", "ب", "ا"), ("ا", "ش", "ا"), ("يو", "بي", "اي")})
_DASHES = frozenset({"-", "–", "—", "ـ", ":"})

# "آل" (family of): part of the name that follows it.
_FAMILY = frozenset({arabic.normalize("آل")})

# Heads of facility/institution names whose next words name a person they honour:
# "مطار الملك فهد" is an airport, not the person "فهد".
_FACILITY_HEADS = _forms(
    (
        *("مطار", "جامعة", "مستشفى", "مدينة", "شارع", "طريق", "مسجد", "جسر", "ميناء", "مركز"),
        *("قاعدة", "ملعب", "استاد", "مجمع", "كلية", "معهد", "مؤسسة", "جائزة", "برنامج", "حي"),
        *("قصر", "منتزه", "كرسي", "مكتبة", "مدرسة", "صندوق", "ميدان", "دوار", "نفق", "مدينه"),
        *("مستشفيات", "مطارات", "جامعه", "ساحة", "منشأة", "محطة", "بوابة", "برج", "قاعه", "قاعة"),
        *("جامع", "دارة", "مطاري", "جامعتي", "مستشفيي", "كليات", "مدارس", "مجمعات", "أكاديمية"),
    )
)
_GLUED = frozenset({"", "و", "ف", "ب", "ل", "ك", "وب", "ول", "فب", "فل"})
_ROYAL_TITLES = _forms(("ملك", "أمير", "امير", "شيخ", "سلطان", "إمام", "امام", "خليفة", "رئيس"))
_FACILITY_AFTER_LATIN = frozenset(
    {
        *("airport", "university", "hospital", "stadium", "street", "bridge", "foundation"),
        *("prize", "award", "center", "centre", "institute", "school", "college", "mosque"),
        *("road", "avenue", "square", "park", "boulevard", "highway"),
        *("flughafen", "universität", "stadion", "straße", "strasse", "platz", "brücke"),
        *("preis", "stiftung", "aéroport", "université", "hôpital", "stade", "havalimanı"),
        *("üniversitesi", "caddesi", "köprüsü", "stadyumu", "hastanesi"),
    }
)

# A run-on person: a last word that starts with a glued preposition + article ("للكشف",
# "بالمملكة") or is a function word ends the name before it.
_RUN_ON = re.compile("^(?:لل|[وف]?[بك]ال|[وف]ال|[وف]لل)")
# A plural participle after a name ("… آل مكتوم مبتهلين"): the name ended before it.
_PARTICIPLE = re.compile("^م..+(?:ين|ون)$")


def doubtful(tokens: Sequence[str], i: int, j: int) -> bool:
    """Is the name ``tokens[i:j]`` one to keep in the entity list but out of the facets: an
    agency in a dateline, a name in a cased script without a capital ("ceo von sainsbury"; the
    German corpus tags adjectives such as "französischen" as places), an article alone ("Los"),
    numbers alone? (Annotated corpora tag some of these, so dropping them would cost recall.)"""
    words = tokens[i:j]
    if not any(w.isalpha() for w in words) and all(
        any(c.isdigit() for c in w) or not any(c.isalnum() for c in w) for w in words
    ):
        return True
    if dateline(tokens, i, j):
        return True
    return not arabic.is_arabic(words[0]) and _uncapitalised(words)


def dateline(tokens: Sequence[str], i: int, j: int) -> bool:
    """Is ``tokens[i:j]`` a news agency in a dateline or photo credit ("الرياض - واس",
    "(AFP) -", "Reuters -", "(رويترز - أرشيف)")? It stays an organisation mention (annotated
    corpora tag it so) but never reaches the facets (``entities`` caps its confidence)."""
    return _dateline(tokens, i, j) and _agency(tokens[i:j])


def _dateline(tokens: Sequence[str], i: int, j: int) -> bool:
    before = tokens[i - 1] if i > 0 else ""
    after = tokens[j] if j < len(tokens) else ""
    if before == "(" and after == ")":
        return True
    return before in _DASHES or after in _DASHES or (i == 0 and after in {",", "،"})


def _agency(words: Sequence[str]) -> bool:
    if len(words) > 3:
        return False
    forms = tuple(_norm(w) for w in words)
    return (len(forms) == 1 and forms[0] in _AGENCIES) or forms in _AGENCY_PHRASES


def _not_name_phrase(words: Sequence[str], typ: str) -> bool:
    """Months, weekdays, currencies (one word or the whole span, numbers allowed around)."""
    words = [w for w in words if not w.isdigit()]
    if not words or len(words) > 3:
        return False  # numbers alone: ``doubtful``
    if _bare(words[-1]) not in _NOT_NAME_WORDS:
        return False
    if arabic.is_arabic(words[0]):
        phrase = _bare_phrase(words)
        return phrase in NOT_NAMES_AR and not (typ == "ORG" and phrase in _MONTHS_AS_BRANDS)
    phrase = latin_key(" ".join(words))
    if phrase not in NOT_NAMES_LATIN:
        return False
    return not (typ == "PER" and phrase in _MONTH_NAMES_OF_PEOPLE) and not (
        typ == "ORG" and phrase in _MONTHS_AS_BRANDS
    )


# Every last word of those phrases (a quick test before the phrase is built).
_NOT_NAME_WORDS = frozenset(
    {p.split()[-1] for p in NOT_NAMES_AR}
    | {latin_key(p).split()[-1] for p in NOT_NAMES_LATIN}
    | {_bare(p.split()[-1]) for p in (*_MONTHS_AR, *_WEEKDAYS_AR, *_CURRENCIES_AR)}
)

# Articles and particles of Latin-script languages: never a name alone ("Los" at the start of
# a Spanish sentence is no place).
_LATIN_FUNCTION_WORDS = frozenset(
    {
        *("the", "a", "an", "los", "las", "la", "el", "le", "les", "der", "die", "das", "den"),
        *("dem", "des", "ein", "eine", "il", "lo", "gli", "de", "del", "di", "da", "do", "dos"),
        *("van", "von", "het", "een", "bir", "ve", "and", "et", "und", "y", "o", "of", "in"),
        *("on", "at", "to", "for", "by", "with", "au", "aux", "du", "im", "am", "zum", "zur"),
    }
)


# Acronyms of common nouns that taggers take for organisations ("رسالة SMS").
_COMMON_ACRONYMS = frozenset(
    {"sms", "gps", "pdf", "usb", "ceo", "dna", "atm", "vip", "tv", "hd", "url", "faq", "pin"}
)


def _uncapitalised(words: Sequence[str]) -> bool:
    """A name in a cased script with no capital letter at all ("ceo von sainsbury"), or one
    article or particle alone ("Los")."""
    letters = [c for w in words for c in w if c.isalpha()]
    if not letters or not any(c.isupper() or c.islower() for c in letters):
        return False  # uncased script (CJK, Hebrew, Devanagari ...)
    if not any(c.isupper() for c in letters):
        return True
    return len(words) == 1 and words[0].casefold() in _LATIN_FUNCTION_WORDS | _COMMON_ACRONYMS


def _function_word(token: str) -> bool:
    return _plain(token) in _FUNCTION_PLAIN


# Frequent broken plurals of news text (a nisba after them is feminine singular).
_BROKEN_PLURALS = frozenset(
    arabic.normalize(w)
    for w in (
        *("أراضي", "قوى", "خطوط", "حدود", "دول", "شؤون", "موانئ", "أسواق", "بنوك", "مدن"),
        *("أجواء", "مياه", "شعوب", "أوساط", "مصادر", "جهود", "مناطق", "أطراف", "فصائل", "قبائل"),
        *("شركات", "وسائل", "صحف", "أحزاب", "ملاعب", "أندية", "مدارس", "مطارات", "مواقف"),
    )
)


# Country names that look like an indefinite nisba adjective.
_NISBA_COUNTRIES = frozenset({arabic.normalize("سورية")})


def _indefinite_adjective(tokens: Sequence[str], i: int) -> bool:
    """Is the indefinite nisba ``tokens[i]`` ("سعودية" in "عائلة سعودية") an adjective after an
    indefinite noun? (The country itself is written with the article: "السعودية".)"""
    word = _plain(tokens[i])
    norm = arabic.normalize(word)
    if i == 0 or not norm.endswith("يه") or len(norm) < 5:
        return False
    if re.match("^[وفبكل]{0,2}ال", word) or word[:1] in "وف":
        return False  # definite, or coordinated: "تركيا والسعودية"
    if norm in _NISBA_COUNTRIES:
        return False
    prev = tokens[i - 1]
    if not arabic.is_arabic(prev) or _function_word(prev) or _plain(prev).startswith("ال"):
        return False
    return not any(c.isdigit() for c in prev)


def _adjective(tokens: Sequence[str], i: int) -> bool:
    """Is the definite nisba ``tokens[i]`` ("السعودية") an adjective after a definite noun?"""
    word = _plain(tokens[i])
    if not word.startswith("ال") or i == 0:
        return _indefinite_adjective(tokens, i)
    norm = arabic.normalize(word)
    if not (norm.endswith(("يه", "ي")) and len(norm) > 5):
        return False
    prev = tokens[i - 1]
    if not arabic.is_arabic(prev) or _function_word(prev):
        return False
    prev_norm = arabic.normalize(_plain(prev))
    if prev_norm in {"العربيه", "المتحده"}:  # "المملكة العربية السعودية" cut short
        return False
    m = re.match("^[وف]?(?:[بك]?ال|لل)", prev_norm)
    if m is None:
        return False
    # the adjective agrees: a feminine or plural noun ("الشركة", "القوات", "الأراضي"); after
    # "الأمير" the word is the country ("زار الأمير السعودية")
    noun = prev_norm[m.end() :]
    return noun.endswith(("ه", "ات")) or noun in _BROKEN_PLURALS


def _facility_start(tokens: Sequence[str], i: int) -> int | None:
    """Where the facility name around an Arabic name at ``tokens[i]`` starts ("مطار" of
    "مطار الملك فهد", "بجامعة" of "بجامعة الملك سعود"), or None."""

    def bare(k: int) -> str:
        return _bare(tokens[k]) if 0 <= k < len(tokens) else ""

    def head(k: int) -> bool:
        word = bare(k)
        # with a glued proclitic: "بمطار", "وجامعة", "ولمستشفى"
        return any(word[n:] in _FACILITY_HEADS for n in range(3) if word[:n] in _GLUED)

    if head(i - 1):
        return i - 1
    if bare(i - 1) in _ROYAL_TITLES and head(i - 2):
        return i - 2
    return None


def _facility_person(tokens: Sequence[str], i: int, j: int) -> bool:
    if arabic.is_arabic(tokens[i]):
        return _facility_start(tokens, i) is not None
    nxt = tokens[j].casefold() if j < len(tokens) else ""
    return nxt in _FACILITY_AFTER_LATIN


def clean_span(tokens: Sequence[str], i: int, j: int, typ: str) -> tuple[int, int] | None:
    """The span ``tokens[i:j]`` of a name tagged ``typ`` after the rules; None = not a name.

    Drops: over-long tokens or names, agencies as people or places, honorific formulas, months,
    weekdays and currencies, Arabic function words alone ("على", "لي"), a definite nisba
    adjective after a definite noun as a place ("الشركة السعودية"), a person named inside a
    facility name ("مطار الملك فهد"). Trims a person's run-on words ("للكشف", "حفظه الله"); an
    organisation or place named after someone takes its facility head ("مستشفى الملك فيصل").
    """
    if j - i > MAX_NAME_TOKENS or any(len(tokens[k]) > MAX_TOKEN_CHARS for k in range(i, j)):
        return None
    if sum(len(tokens[k]) + 1 for k in range(i, j)) > MAX_NAME_CHARS:
        return None
    for k in range(i + 1, j - 1):  # "Berlin (dpa)": the dateline's agency is not the place's
        if tokens[k] in ("(", "[") and _agency(tokens[k + 1 : k + 2]):
            j = k
            break
    arab = arabic.is_arabic(tokens[i])
    if arab:
        if _norm(tokens[i]) in _FORMULA_STARTS or (
            i > 0 and _norm(tokens[i - 1]) in _FORMULA_STARTS
        ):
            return None
        # a formula or (for people) a run-on word ends the name
        for k in range(i + 1, j):
            norm = _norm(tokens[k])
            if (
                norm in _FORMULA_STARTS
                or _plain(tokens[k]) in _NEVER_IN_NAMES
                or (
                    typ == "PER"
                    and arabic.is_arabic(tokens[k])
                    and (
                        _function_word(tokens[k])
                        or _RUN_ON.match(norm) is not None
                        or _PARTICIPLE.match(norm) is not None
                    )
                )
            ):
                j = k
                break
        while j > i + 1 and _function_word(tokens[j - 1]):
            j -= 1
        while i < j - 1 and _function_word(tokens[i]):
            i += 1
        if j - i == 1 and (_function_word(tokens[i]) or len(_plain(tokens[i])) < 2):
            return None
    words = tokens[i:j]
    if typ != "ORG" and _agency(words):
        return None  # an agency is no person or place ("واس" tagged as a person)
    if _not_name_phrase(words, typ):
        return None
    if typ == "LOC" and j - i == 1 and arab and _adjective(tokens, i):
        return None
    if typ == "PER" and _facility_person(tokens, i, j):
        return None
    if typ == "PER" and i > 0 and _norm(tokens[i - 1]) in _FAMILY:
        i -= 1  # "آل سعود" is the family name, not the person "سعود"
    if typ in ("ORG", "LOC") and arab:
        # "مستشفى الملك فيصل": the facility, not the bare name of the king it honours (a place
        # after a plain head stays as it is: "مدينة الرياض" is the place "الرياض")
        titled = _bare(tokens[i]) in _ROYAL_TITLES and i + 1 < j
        start = _facility_start(tokens, i + 1 if titled else i)
        if start is not None and (titled or start == i - 2):
            i = start
    return i, j


# --- merging within an article ----------------------------------------------------------------
# First words of a state's long form ("المملكة العربية السعودية", "Federal Republic of Germany"):
# the long form's last word alone is the same country.
_STATE_HEADS = frozenset(
    {
        *(key(w) for w in ("المملكة", "الجمهورية", "جمهورية", "دولة", "إمارة", "سلطنة", "مملكة")),
        *("kingdom", "republic", "federal", "state", "principality", "sultanate", "emirate"),
        *("royaume", "république", "königreich", "bundesrepublik", "republik", "cumhuriyeti"),
        *("reino", "república", "federation", "fédération", "islamic", "people's"),
    }
)


def is_subname(short: Sequence[str], long: Sequence[str]) -> bool:
    """Is the person ``short`` (key words) a part of ``long`` that names the same person: the
    surname or given name, or a shorter run of the full name sharing its first or last word?"""
    if len(short) >= len(long) or not short:
        return False
    if short[0] != long[0] and short[-1] != long[-1]:
        return False
    if len(short) == 1 and len(short[0]) < 3:
        return False
    it = iter(long)
    return all(word in it for word in short)


def surname_of_mistyped(short_type: str, short: Sequence[str], long: Sequence[str]) -> bool:
    """Is the person ``short`` the last word of a two- or three-word name the tagger typed
    otherwise ("Merkel" and an "Angela Merkel" tagged ORG)?"""
    return (
        short_type == "PER"
        and len(short) == 1
        and len(long) in (2, 3)
        and long[-1] == short[0]
        and len(short[0]) >= 3
    )


def state_short_form(short: Sequence[str], long: Sequence[str]) -> bool:
    """Is ``short`` the last word of the state name ``long`` ("السعودية" of the kingdom)?"""
    if len(short) != 1 or len(long) < 2 or long[0] not in _STATE_HEADS:
        return False
    last = long[-1]
    if arabic.is_arabic(last) and last.startswith("ال") and len(last) >= 5:
        last = last[2:]
    return short[0] == last


_ACRONYM = re.compile(r"\s*[(\[]\s*([^\W\d_][\w&.\-]{1,11})\s*[)\]]")


def acronym_after(text: str, end: int) -> tuple[str, int, int] | None:
    """The acronym in parentheses right after ``text[:end]`` ("… (IVWSR)") and its offsets."""
    m = _ACRONYM.match(text, end)
    if m is None:
        return None
    acr = m.group(1)
    letters = [c for c in acr if c.isalpha()]
    if len(letters) < 2 or sum(c.isupper() for c in letters) < 2:
        return None
    return acr, m.start(1), m.end(1)


def acronym_of(acr: str, name: str) -> bool:
    """Can ``acr`` abbreviate ``name``: same first letter, its letters in order in the name
    (compound words give several letters); a name in another script is taken on trust."""
    letters = [c.casefold() for c in acr if c.isalpha()]
    words = name.split()
    if len(words) < 2 or not letters:
        return False
    if not any(c.isascii() for c in name if c.isalpha()) or arabic.is_arabic(name):
        return True
    flat = name.casefold()
    if flat[:1] != letters[0]:
        return False
    it = iter(flat)
    return all(c in it for c in letters)


# Titles a user may type before a name ("الملك سلمان", "President Macron"); names are stored
# without them (the taggers and the corpora leave titles out of the span).
_QUERY_TITLES = frozenset(
    {
        *(key(w) for w in ("الملك", "الأمير", "الرئيس", "الشيخ", "السلطان", "الوزير", "اللواء")),
        *(key(w) for w in ("الفريق", "الدكتور", "السيد", "السيدة", "الإمام")),
        *("president", "king", "queen", "prince", "princess", "minister", "chancellor"),
        *("sheikh", "dr", "mr", "mrs", "ms", "general", "pope", "sir", "lord", "emir", "sultan"),
        *("président", "roi", "ministre", "präsident", "kanzler", "kanzlerin", "bundeskanzler"),
        *("cumhurbaşkanı", "başbakan", "kral"),
    }
)


def query_keys(query: str) -> list[str]:
    """Keys to look a user's name up by: the query's own key and, when it starts with a title,
    the key without it ("الملك سلمان" also finds "سلمان")."""
    full = key(query.strip())
    out = [full] if full else []
    words = full.split()
    while len(words) > 1 and words[0] in _QUERY_TITLES:
        words = words[1:]
        out.append(" ".join(words))
    return out
