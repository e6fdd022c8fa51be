"""Language identification of an article: ISO 639-1 code, confidence, method and script.

Place in the flow: the enrich stage (``streams.enrich.pipeline``) calls :func:`detect_many` (or
:func:`detect_language` per article) on ``PreparedText.language_input`` — the title, a newline and
the head of the summary/content, NFKC-normalised — together with the feed's declared language
(``source.language_hint``). The result becomes ``Article.language`` and selects the entity tagger.

How it decides, offline and in-process (both models ship inside their wheels):

1. The letters are sorted by script (ISO 15924). The dominant script decides what follows; Latin
   letters weigh less (news in every script quotes Latin names) and CJK ideographs weigh more.
2. Scripts that belong to one language decide it (Hangul -> ko, kana -> ja, Greek -> el, Thai,
   Ethiopic, Gujarati, ...). Other scripts are scored by the py3langid naive-Bayes model (byte
   n-grams) restricted to the languages written in that script; its dialect and variant labels
   are folded into ISO 639-1 (wuu/yue -> zh, ary/arz -> ar, sdh -> ku, ...), labels without an
   ISO 639-1 code are dropped, and a mild prior favours languages that publish news over small
   regional neighbours. CLD2 (pycld2) gives a second opinion that multiplies the odds of its
   language by a fixed factor.
3. Orthographic rules settle what the n-grams confuse: letters proper to Pashto, Urdu, Sindhi,
   Uyghur, Sorani Kurdish or Persian within the Arabic script; letters a Cyrillic or Latin
   alphabet lacks (ы/э rule out Ukrainian, ї/є/ґ rule out Russian, ř/ů rule out Portuguese, ...);
   Malay versus Indonesian marker words; Assamese, Marathi, Yiddish and Tigrinya letters.
4. The feed's declared language (normalised from BCP 47 and the like) is a prior: it wins when
   the text agrees with it, leans to it, or has too few letters to say; it settles the
   near-identical standards (ms/id, bs/hr/sr, no/nn) and kana-less Japanese headlines. A
   conclusive text overrides it, and so does a script the declared language is not written in.
5. In a script the declared language is written in, the declared language wins unless the text
   evidence is overwhelming: the words that are not part of a name (not capitalised, and not
   one or two short words between capitalised ones: "Danie van Schalkwyk"), weighed on their
   own (names say nothing about the language around them: "Osjorsk ( Kaliningrad )" in a
   German feed is German, and so is a German sentence about "František Čermák"), have at least
   ``_EVIDENCE_LETTERS`` letters and give another language odds of at least e^3; or a short
   all-capitalised text (40-150 letters: a title-case headline) gives odds of e^15. On long
   text such words are plentiful and decide as before. Chosen on the langid dev set (NTREX
   short sentences) and the NER dev sentences with their language declared (``make eval``):
   dev items routed to another language's tagger de 12.7 -> 0.3 %, fr 22.0 -> 0.3 %, nl 19.7
   -> 0.9 %, en (CoNLL) 2.6 -> 0 %; accuracy with no or the true language declared unchanged
   (99.2 / 100 % short, 100 % paragraphs); with a wrong one declared, short sentences 98.8 ->
   97.7 % (title-case headlines of 2-3 words cannot be told from names), paragraphs 100 %.

Methods: "text" (no usable declaration, or the text overrode it), "both" (they agree),
"declared" (the declaration decided), "none" (no letters and no declaration). Kurdish is "ku"
whatever the script (Kurmanji in Latin, Sorani and Southern Kurdish in Arabic letters).

Everything is a pure function of its input; the models are loaded lazily, once per process.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.enrich.types import LanguageResult

MODEL_VERSION = "py3langid-0.4.0+pycld2-0.42+script-rules-2"  # 2: declared-language rule 5

# Characters of the input that the n-gram model reads: enough for a title and a lead paragraph;
# beyond it the decision no longer changes, only the cost grows.
MODEL_CHARS = 320
# Characters whose scripts are counted.
SCRIPT_CHARS = 600

# --- codes ---------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ISO639_1 = _words(
    """aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
)

# Deprecated two-letter codes, ISO 639-2/3 codes and English names seen in feeds -> ISO 639-1.
_HINT_ALIASES: dict[str, str] = dict(
    pair.split(":", 1)
    for pair in _words(
        """iw:he in:id ji:yi jw:jv mo:ro sh:sr nb:no
    ara:ar arb:ar eng:en fra:fr fre:fr deu:de ger:de spa:es por:pt ita:it nld:nl dut:nl rus:ru
    ukr:uk bel:be bul:bg mkd:mk mac:mk srp:sr hrv:hr bos:bs slv:sl ces:cs cze:cs slk:sk slo:sk
    pol:pl ron:ro rum:ro hun:hu fin:fi est:et ekk:et lav:lv lvs:lv lit:lt swe:sv dan:da nor:no
    nob:no nno:nn isl:is ice:is fao:fo gle:ga gla:gd cym:cy wel:cy bre:br eus:eu baq:eu cat:ca
    glg:gl oci:oc ltz:lb fry:fy lat:la epo:eo ell:el gre:el tur:tr aze:az azj:az kaz:kk kir:ky
    uzb:uz uzn:uz tuk:tk tat:tt bak:ba tgk:tg mon:mn khk:mn fas:fa per:fa pes:fa prs:fa urd:ur
    pus:ps pbt:ps pbu:ps kur:ku kmr:ku ckb:ku sdh:ku uig:ug snd:sd heb:he yid:yi ydd:yi amh:am
    tir:ti som:so orm:om gaz:om swa:sw swh:sw hau:ha yor:yo ibo:ig zul:zu xho:xh afr:af kin:rw
    lug:lg lin:ln mlg:mg plt:mg sna:sn sot:st hin:hi mar:mr nep:ne npi:ne san:sa ben:bn asm:as
    pan:pa guj:gu ori:or ory:or tam:ta tel:te kan:kn mal:ml sin:si tha:th lao:lo khm:km mya:my
    bur:my vie:vi ind:id msa:ms may:ms zsm:ms zlm:ms jav:jv tgl:tl fil:tl zho:zh chi:zh cmn:zh
    yue:zh wuu:zh jpn:ja kor:ko hye:hy arm:hy kat:ka geo:ka sqi:sq alb:sq mlt:mt hat:ht que:qu
    grn:gn bod:bo tib:bo dzo:dz div:dv iku:iu
    arabic:ar english:en french:fr german:de spanish:es portuguese:pt italian:it dutch:nl
    russian:ru ukrainian:uk chinese:zh mandarin:zh cantonese:zh japanese:ja korean:ko persian:fa
    farsi:fa dari:fa urdu:ur pashto:ps kurdish:ku hebrew:he turkish:tr hindi:hi bengali:bn
    bangla:bn indonesian:id malay:ms swahili:sw amharic:am greek:el polish:pl czech:cs
    romanian:ro swedish:sv norwegian:no danish:da finnish:fi hungarian:hu thai:th
    vietnamese:vi tagalog:tl filipino:tl serbian:sr croatian:hr bosnian:bs bulgarian:bg
    slovak:sk slovenian:sl catalan:ca basque:eu galician:gl"""
    )
)

# --- scripts -------------------------------------------------------------------------------------

# (ISO 15924, code point ranges). Block ranges; only letters and marks in them are counted.
_SCRIPT_RANGES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("Latn", ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF), (0xA720, 0xA7FF))),
    ("Grek", ((0x370, 0x3FF), (0x1F00, 0x1FFF))),
    ("Cyrl", ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F))),
    ("Armn", ((0x530, 0x58F),)),
    ("Hebr", ((0x591, 0x5FF), (0xFB1D, 0xFB4F))),
    ("Arab", ((0x610, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    ("Syrc", ((0x700, 0x74F),)),
    ("Thaa", ((0x780, 0x7BF),)),
    ("Deva", ((0x900, 0x97F), (0xA8E0, 0xA8FF))),
    ("Beng", ((0x980, 0x9FF),)),
    ("Guru", ((0xA00, 0xA7F),)),
    ("Gujr", ((0xA80, 0xAFF),)),
    ("Orya", ((0xB00, 0xB7F),)),
    ("Taml", ((0xB80, 0xBFF),)),
    ("Telu", ((0xC00, 0xC7F),)),
    ("Knda", ((0xC80, 0xCFF),)),
    ("Mlym", ((0xD00, 0xD7F),)),
    ("Sinh", ((0xD80, 0xDFF),)),
    ("Thai", ((0xE00, 0xE7F),)),
    ("Laoo", ((0xE80, 0xEFF),)),
    ("Tibt", ((0xF00, 0xFFF),)),
    ("Mymr", ((0x1000, 0x109F),)),
    ("Geor", ((0x10A0, 0x10FF), (0x1C90, 0x1CBF), (0x2D00, 0x2D2F))),
    ("Hang", ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))),
    ("Ethi", ((0x1200, 0x139F), (0x2D80, 0x2DDF), (0xAB00, 0xAB2F))),
    ("Cher", ((0x13A0, 0x13FF),)),
    ("Cans", ((0x1400, 0x167F),)),
    ("Khmr", ((0x1780, 0x17FF), (0x19E0, 0x19FF))),
    ("Mong", ((0x1800, 0x18AF),)),
    ("Tfng", ((0x2D30, 0x2D7F),)),
    ("Hira", ((0x3041, 0x309F),)),
    ("Kana", ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("Hani", ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))),
)
_SCRIPTS = tuple(name for name, _ in _SCRIPT_RANGES)
_HAN_ASTRAL = (0x20000, 0x3134F)  # CJK extension blocks beyond the BMP
# Weight of a letter when choosing the dominant script: Latin names and acronyms are quoted in
# every script, and one ideograph or syllable block carries what two or three letters do.
_SCRIPT_WEIGHT = {"Latn": 0.5, "Hani": 2.5, "Hira": 2.5, "Kana": 2.5, "Hang": 2.0}

# Scripts written by one language (or where that language is the only one the detector knows).
_SCRIPT_LANGUAGE = {
    "Grek": "el",
    "Armn": "hy",
    "Hebr": "he",
    "Thaa": "dv",
    "Guru": "pa",
    "Gujr": "gu",
    "Orya": "or",
    "Taml": "ta",
    "Telu": "te",
    "Knda": "kn",
    "Mlym": "ml",
    "Sinh": "si",
    "Thai": "th",
    "Laoo": "lo",
    "Tibt": "bo",
    "Mymr": "my",
    "Geor": "ka",
    "Hang": "ko",
    "Ethi": "am",
    "Cans": "iu",
    "Khmr": "km",
    "Mong": "mn",
    "Jpan": "ja",
}
# Letters needed before the text outweighs a declared language (an ideograph says more than a
# letter, and a script proper to one language needs only a few).
_MIN_LETTERS = {"Hani": 4}
_MIN_LETTERS_DEFAULT = 12
_MIN_LETTERS_UNIQUE = 3

# CLD2's answer is one more piece of evidence: it multiplies the odds of its language by this.
_SECOND_OPINION_ODDS = 3.0

# --- model labels --------------------------------------------------------------------------------

# py3langid labels folded into an ISO 639-1 code (dialects, script variants, macrolanguages).
_FOLD = {
    "ary": "ar",
    "arz": "ar",
    "wuu": "zh",
    "yue": "zh",
    "sdh": "ku",
    "gug": "gn",
    "kik": "ki",
    "fuv": "ff",
    "hbo": "he",
    "grc": "el",
}
# Labels with no ISO 639-1 code and no macrolanguage to fold into (or no linguistic content).
_DROP = _words("ace bcl crh ext gcf gcr gom guw kab lij ltg nso pcm uzs vec zxx")
# Model languages by the script they are written in (the rest of the model is Latin-script).
_MODEL_SCRIPT_LANGS = {
    "Cyrl": _words("ru uk be bg mk sr kk ky mn tg tt ba uz"),
    "Arab": _words("ar fa ur ps ku ug"),
    "Deva": _words("hi mr ne sa"),
    "Beng": _words("bn as"),
    "Hani": _words("zh ja"),
    "Tibt": _words("dz"),
}
_NON_LATIN_MODEL = frozenset().union(*_MODEL_SCRIPT_LANGS.values()) | {
    code for code in _SCRIPT_LANGUAGE.values()
}
_LATIN_ALSO = _words("sr uz ku")  # model languages written in Latin and another script
# Prior weight: small regional languages that mostly lose to a bigger neighbour in news feeds.
_REGIONAL = _words("an oc wa lb fy la eo vo gd gn ht fo sa se br qu ki ff ba tt nn")
_PRIOR_REGIONAL = 0.3
_PRIOR = {"jv": 0.5}

# Languages the rules add where the model has no label.
_RULE_ONLY = _words("sd yi ti dv bo iu")

# Standards so close that the declared language settles them whenever the text points into them.
_HINT_SETTLED = (frozenset({"ms", "id"}), frozenset({"bs", "hr", "sr"}), frozenset({"no", "nn"}))
# Ideographs alone up to this many: Japanese headlines without kana exist (内閣支持率低下), so a
# declared Japanese settles them; longer Japanese text always has kana.
_HAN_ONLY_JAPANESE = 20
# How much more likely the declared language is than any other, a priori.
_HINT_ODDS = 8.0
# Pseudo-probability of a declared language the detector cannot recognise at all.
_UNKNOWN_LANGUAGE_P = 0.1
_DECLARED_CONF = 0.6  # a declared language with no support from the text
# Rule 5 (module docstring): the declared language stays without overwhelming evidence.
_EVIDENCE_LETTERS = 10  # letters in words that do not start with a capital (not names)
_EVIDENCE_LOG_ODDS = 3.0  # ... with at least these log-odds for the other language
# Or, for a short all-capitalised text (a title-case headline): these log-odds of the whole
# text on a number of letters in this range (a longer run of capitalised words is a list of
# names: "Agropoli , Aquara , Ascea , ..." in a French article is French).
_OVERWHELMING_LOG_ODDS = 15.0
_OVERWHELMING_LETTERS = (40, 150)
_LETTER_WORD = re.compile(r"[^\W\d_]+")
_HINT_RELIABILITY = 0.75  # how often a declared language is right, as independent evidence

# --- orthographic rules --------------------------------------------------------------------------

_ARABIC_PROPER: tuple[tuple[str, frozenset[str]], ...] = (
    ("ps", frozenset("ټډړږښګڼۍځڅ")),
    ("sd", frozenset("ڄٻڀٺٽٿڃڇڏڊڌڍڙڦڪڳڱ۾")),
    ("ur", frozenset("ٹڈڑںےۓہ")),
    ("ug", frozenset("ۈۋڭۇ")),
    ("ku", frozenset("ێڵڕ")),
)
_PROPER_LETTER_ODDS = 30.0
_PERSIAN_LETTERS = frozenset("پچژگ")
_ARABIC_ONLY = frozenset("ةى")

# Complete lower-case alphabets: a letter outside them is evidence against the language.
_CYRILLIC_ALPHABETS = {
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
    "be": "абвгґдеёжзійклмнопрстуўфхцчшыьэюя",
    "bg": "абвгдежзийклмнопрстуфхцчшщъьюя",
    "sr": "абвгдђежзијклљмнњопрстћуфхцчџш",
    "mk": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
}
_CYRILLIC_LETTERS = frozenset(chr(c) for c in range(0x400, 0x530) if chr(c).islower())
_CYRILLIC_FOREIGN = {
    code: _CYRILLIC_LETTERS - frozenset(alphabet) for code, alphabet in _CYRILLIC_ALPHABETS.items()
}
_FOREIGN_CYRILLIC_FACTOR = 0.02
# Non-ASCII letters of Latin alphabets. News quotes foreign names in every language, so the first
# foreign letter is free and each further one only lowers the odds.
_LATIN_LETTERS = {
    "en": "áàâãäåæçéèêëíïñóôöøúü",  # names from the languages English news quotes most
    "fr": "àâæçéèêëîïôœùûüÿ",
    "de": "äöüß",
    "es": "áéíñóúü",
    "pt": "áâãàçéêíóôõúü",
    "it": "àèéìíîòóùú",
    "nl": "áéèëíïóöúü",
    "ca": "àçéèíïòóúü",
    "ro": "ăâîșțşţ",
    "pl": "ąćęłńóśźż",
    "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž",
    "sl": "čšž",
    "hr": "čćđšž",
    "bs": "čćđšž",
    "hu": "áéíóöőúüű",
    "tr": "çğıöşüâîû",
    "az": "çəğıöşü",
    "sv": "åäöé",
    "da": "æøåé",
    "no": "æøåéóò",
    "fi": "äöåšž",
    "et": "äöõüšž",
    "lv": "āčēģīķļņšūž",
    "lt": "ąčęėįšųūž",
    "id": "é",
    "ms": "é",
    "sw": "",
}
_LATIN_FOREIGN_FACTOR = 0.3
_LATIN_NON_ASCII = frozenset(
    chr(c) for c in range(0xC0, 0x250) if chr(c).isalpha() and chr(c).islower()
) | frozenset(chr(c) for c in range(0x1E00, 0x1F00) if chr(c).islower())

# Malay (Malaysia, Brunei, Singapore) versus Indonesian: words and spellings each standard uses
# where the other uses another one.
_MALAY_WORDS = _words(
    """kerana bahawa iaitu sahaja selepas semasa boleh wang polis kerajaan syarikat kenderaan
    mahu kanak lelaki pelbagai antarabangsa bandar jabatan bahagian akhbar cukai ubat doktor
    teksi filem kualiti universiti aktiviti komuniti fasiliti identiti kapasiti majoriti minoriti
    realiti integriti tentera kempen percuma senarai mesyuarat pejabat baharu ogos julai jun
    disember mac berbanding manakala sebarang seramai sekiranya justeru menerusi jurulatih
    penyokong kelab peratus bilion setiausaha pendakwa pertuduhan mangsa cedera hospital
    pelancong pelancongan kos jualan kakitangan majikan sentiasa kerap apabila memandangkan
    encik puan kawasan telefon televisyen isnin khamis jumaat ahad semalam esok awam amat
    walau bagaimanapun sejurus bekalan pengurus jurucakap parti parlimen undi mengundi
    pengundi rasuah dadah sokong sokongan menyokong disokong saman peguam bajet pelaburan
    pelabur pengeluar faedah pemandu lebuhraya tayar kasut seluar tandas bilik cikgu kedai
    ringgit maklumat cadangan mencadangkan dicadangkan rancangan projek bimbit laman talian
    rangkaian perisian saintis kesihatan sihat perubatan pesakit jururawat kerosakan rosak
    mendapati menafikan menyertai tamat dijangka jangkaan lawatan melawat hadapan petang
    mesti patut siasat siasatan disiasat menyiasat kemalangan letupan perbicaraan"""
)
_INDONESIAN_WORDS = _words(
    """karena bahwa yaitu setelah bisa uang polisi perusahaan mobil kantor persen miliar
    sekretaris wisatawan biaya penjualan korban terluka kendaraan bagian agustus juli juni
    desember maret pemilu dibandingkan dokter obat taksi film kualitas universitas aktivitas
    komunitas fasilitas identitas kapasitas mayoritas minoritas realitas prioritas otoritas
    tentara kampanye gratis daftar rapat mau enggak nggak gak banget klub pelatih pendukung
    telepon televisi jaksa terdakwa pengadilan kepolisian sedangkan kemarin besok senin kamis
    jumat publik tim kapan manajer partai parlemen korupsi narkoba dukung dukungan mendukung
    didukung gugat menggugat pengacara anggaran investasi produsen pengemudi sopir sepatu
    celana toko rupiah informasi usulan rencana proyek ponsel situs daring kesehatan sehat
    pengobatan pasien perawat kerusakan rusak terjadi kunjungan mengunjungi bandara depan
    sore terlambat sidang persidangan"""
)
_MALAY_PHRASES = ("amerika syarikat", "pilihan raya", "bola sepak", "kapal terbang", "tahun lepas")
_INDONESIAN_PHRASES = ("amerika serikat", "rumah sakit", "sepak bola", "kerja sama", "juru bicara")
_MARKER_ODDS = 3.0
_WORD = re.compile(r"[a-z]+")

_ASSAMESE_LETTERS = frozenset("ৰৱ")
_MARATHI_LLA = "ळ"
_YIDDISH_MARKS = ("װ", "ױ", "ײ", "אַ", "אָ")  # Yiddish ligatures, pointed alef
_TIGRINYA = frozenset(  # the ቐ and ኸ series, which Amharic does not write
    [chr(c) for c in range(0x1250, 0x125E)] + [chr(c) for c in range(0x12B8, 0x12C6)]
)


# --- the model -----------------------------------------------------------------------------------

# Inputs shorter than this walk the automaton in Python, longer ones all positions at once.
_VECTOR_FROM_BYTES = 160


@dataclass(frozen=True)
class _Model:
    # the py3langid automaton re-laid: position = row offset of a state + byte; per position
    # the row offset of the next state and the feature that state emits (-1: none)
    next_offset: npt.NDArray[np.int32]
    emit: npt.NDArray[np.int32]
    next_offset_list: memoryview  # the same, faster to index one by one from Python
    emit_list: memoryview
    start: int
    dfa_depth: int  # longest byte n-gram the automaton tracks; 0: walk one byte at a time only
    ptc: npt.NDArray[np.float32]  # feature x kept column log-probabilities
    pc: npt.NDArray[np.float32]  # kept column priors
    codes: tuple[str, ...]  # distinct output codes
    column_out: npt.NDArray[np.intp]  # kept column -> index into codes
    prior: npt.NDArray[np.float64]  # per output code
    code_index: dict[str, int]
    script_masks: dict[str, npt.NDArray[np.bool_]]  # script -> output codes written in it
    script_lut: npt.NDArray[np.uint8]  # BMP code point -> 1 + index in _SCRIPTS, 0: no letter
    cld2_detect: Any  # pycld2.detect
    cld2_error: type[Exception]


_MODEL: _Model | None = None
_LOCK = threading.Lock()


def _script_lut() -> npt.NDArray[np.uint8]:
    lut = np.zeros(0x10000, dtype=np.uint8)
    for i, (_, ranges) in enumerate(_SCRIPT_RANGES):
        for low, high in ranges:
            for cp in range(low, high + 1):
                if unicodedata.category(chr(cp))[0] in "LM":
                    lut[cp] = i + 1
    return lut


def _dfa_depth(nextmove: npt.NDArray[Any], rows: npt.NDArray[np.int64]) -> int:
    """Length of the longest string a state of the automaton stands for (breadth-first).

    0 when NUL does not keep the start state (then the window trick of :func:`_walk_vector`
    does not apply).
    """
    if int(nextmove[rows[0] << 8]) != 0:
        return 0
    seen = np.zeros(len(rows), dtype=bool)
    seen[0] = True
    frontier = np.zeros(1, dtype=np.int64)
    every_byte = np.arange(256, dtype=np.int64)
    depth = 0
    while True:
        frontier_rows = np.unique(rows[frontier])
        reached = nextmove[((frontier_rows << 8)[:, None] + every_byte).ravel()]
        now_seen = seen.copy()
        now_seen[reached] = True
        frontier = np.flatnonzero(now_seen & ~seen)
        if not len(frontier):
            return depth
        seen = now_seen
        depth += 1


def _load() -> _Model:
    import pycld2  # type: ignore[import-untyped]
    from py3langid.langid import (  # type: ignore[import-untyped]
        MODEL_FILE,
        LanguageIdentifier,
    )

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    # py3langid walks state = nextmove[row(state) * 256 + byte] and emits output[state]; the
    # tables below are indexed by the same position and give the next state's row offset and
    # what it emits, which saves a lookup per byte.
    nextmove = np.frombuffer(ident.tk_nextmove, dtype=f"u{ident.tk_nextmove.itemsize}")
    rows = np.frombuffer(ident.tk_row, dtype=f"u{ident.tk_row.itemsize}").astype(np.int64)
    rowbase = rows << 8
    next_offset = rowbase[nextmove].astype(np.int32)
    emit = np.asarray(ident.tk_output, dtype=np.int32)[nextmove]
    start = int(rowbase[0])
    labels: list[str] = list(ident.nb_classes)
    keep = [i for i, label in enumerate(labels) if label not in _DROP]
    column_codes = tuple(_FOLD.get(labels[i], labels[i]) for i in keep)
    codes = tuple(sorted(set(column_codes)))
    index = {code: i for i, code in enumerate(codes)}
    prior = np.array(
        [_PRIOR_REGIONAL if c in _REGIONAL else _PRIOR.get(c, 1.0) for c in codes],
        dtype=np.float64,
    )
    masks = {
        script: np.array([c in langs for c in codes])
        for script, langs in _MODEL_SCRIPT_LANGS.items()
    }
    masks["Latn"] = np.array([c not in _NON_LATIN_MODEL or c in _LATIN_ALSO for c in codes])
    return _Model(
        next_offset=next_offset,
        emit=emit,
        next_offset_list=memoryview(next_offset),
        emit_list=memoryview(emit),
        start=start,
        dfa_depth=_dfa_depth(nextmove, rows),
        ptc=np.ascontiguousarray(np.asarray(ident.nb_ptc)[:, keep], dtype=np.float32),
        pc=np.asarray(ident.nb_pc, dtype=np.float32)[keep],
        codes=codes,
        column_out=np.array([index[c] for c in column_codes], dtype=np.intp),
        prior=prior,
        code_index=index,
        script_masks=masks,
        script_lut=_script_lut(),
        cld2_detect=pycld2.detect,
        cld2_error=pycld2.error,
    )


def _model() -> _Model:
    global _MODEL
    model = _MODEL
    if model is None:
        with _LOCK:
            if _MODEL is None:
                _MODEL = _load()
            model = _MODEL
    return model


def load() -> None:
    """Load the model now (a worker calls it at start so that its first batch is not slow)."""
    _model()


# The labels of py3langid 0.4.0 that survive folding and dropping (kept here so that SUPPORTED
# is known without loading the model; a unit test checks them against the model).
_MODEL_LABELS = _words(
    """af am an ar as az ba be bg bn br bs ca cs cy da de dz el en eo es et eu fa ff fi fo fr fy
    ga gd gl gn gu ha he hi hr ht hu hy id ig is it ja jv ka ki kk km kn ko ku ky la lb lg ln lo
    lt lv mg mk ml mn mr ms mt my ne nl nn no oc om or pa pl ps pt qu ro ru rw sa se si sk sl sn
    so sq sr st sv sw ta te tg th tk tl tr tt ug uk ur uz vi vo wa xh yo zh zu"""
)

SUPPORTED: frozenset[str] = frozenset(
    c for c in _MODEL_LABELS | _RULE_ONLY | set(_SCRIPT_LANGUAGE.values()) if c in _ISO639_1
)


# --- helpers -------------------------------------------------------------------------------------


def normalise_hint(hint: str | None) -> str | None:
    """The feed's declared language as ISO 639-1 (``en-US`` -> ``en``), None when unusable."""
    if not hint:
        return None
    token = re.split(r"[\s,;]+", hint.strip().lower(), maxsplit=1)[0]
    primary = re.split(r"[-_.@]", token, maxsplit=1)[0]
    if not primary.isascii() or not primary.isalpha() or primary in ("und", "mul", "zxx", "mis"):
        return None
    code = _HINT_ALIASES.get(primary, primary)
    return code if code in _ISO639_1 else None


_NOT_ASCII_LETTER = bytes(c for c in range(128) if not chr(c).isalpha())


def _script_counts(model: _Model, text: str) -> dict[str, int]:
    """Letters per script in the head of ``text``."""
    head = text[:SCRIPT_CHARS]
    if head.isascii():
        letters = len(head.encode("ascii").translate(None, _NOT_ASCII_LETTER))
        return {"Latn": letters} if letters else {}
    points = np.frombuffer(head.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ids = model.script_lut[np.minimum(points, 0xFFFF)]
    per_script = np.bincount(ids, minlength=len(_SCRIPTS) + 1)
    counts = {_SCRIPTS[i - 1]: int(per_script[i]) for i in np.flatnonzero(per_script) if i}
    astral_han = int(np.count_nonzero((points >= _HAN_ASTRAL[0]) & (points <= _HAN_ASTRAL[1])))
    if astral_han:
        counts["Hani"] = counts.get("Hani", 0) + astral_han
    return counts


def _dominant(counts: dict[str, int]) -> tuple[str, int]:
    """(script, letters) of the dominant script; kana with Han is Japanese (``Jpan``)."""
    kana = counts.pop("Hira", 0) + counts.pop("Kana", 0)
    if kana:
        han = counts.pop("Hani", 0)
        # kana among the ideographs mark Japanese; a stray kana in Chinese text does not
        counts["Jpan" if kana >= 2 or kana * 10 >= han else "Hani"] = kana + han
    best = max(counts, key=lambda s: counts[s] * _SCRIPT_WEIGHT.get(s, 1.0))
    return best, counts[best]


def _walk_loop(model: _Model, data: bytes) -> npt.NDArray[np.intp]:
    """Features emitted along ``data``, one byte at a time (cheapest on short input)."""
    next_offset, emit = model.next_offset_list, model.emit_list
    offset = model.start
    found: list[int] = []
    append = found.append
    for byte in data:
        position = offset + byte
        feature = emit[position]
        if feature >= 0:
            append(feature)
        offset = next_offset[position]
    return np.array(found, dtype=np.intp)


def _walk_vector(model: _Model, data: bytes) -> npt.NDArray[np.intp]:
    """The same as :func:`_walk_loop`, all positions at once.

    The automaton's state after a byte depends on the last ``dfa_depth`` bytes only (the longest
    n-gram), so it is run from the start on the window ending at every position; NUL padding
    keeps the start state in front of the text.
    """
    depth = model.dfa_depth
    padded = np.frombuffer(b"\0" * (depth - 1) + data, dtype=np.uint8)
    n = len(data)
    offsets = np.full(n, model.start, dtype=np.int64)
    for k in range(depth - 1):
        offsets = model.next_offset[offsets + padded[k : k + n]]
    emitted: npt.NDArray[np.intp] = model.emit[offsets + padded[depth - 1 :]].astype(np.intp)
    kept: npt.NDArray[np.intp] = emitted[emitted >= 0]
    return kept


def _features(model: _Model, data: bytes) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """(feature ids, counts) of the byte n-grams of ``data`` (py3langid's automaton)."""
    if len(data) >= _VECTOR_FROM_BYTES and model.dfa_depth:
        emitted = _walk_vector(model, data)
    else:
        emitted = _walk_loop(model, data)
    if not len(emitted):
        return emitted, np.zeros(0, dtype=np.int64)
    return np.unique(emitted, return_counts=True)


def _probabilities(model: _Model, text: str) -> npt.NDArray[np.float64]:
    """Model probability per output code, times the news prior (not normalised)."""
    head = text[:MODEL_CHARS]
    if head.isupper():
        head = head.lower()
    data = unicodedata.normalize("NFC", head).encode("utf-8", "surrogatepass")
    idx, counts = _features(model, data)
    if not len(idx):
        return model.prior.copy()
    raw = np.log1p(counts.astype(np.float32)) @ model.ptc[idx] + model.pc
    # py3langid's calibration: the softmax temperature grows with the square root of the length
    scaled = raw.astype(np.float64) / math.sqrt(len(data))
    column = np.exp(scaled - scaled.max())
    return np.bincount(model.column_out, weights=column, minlength=len(model.codes)) * model.prior


def _normalised(dist: dict[str, float]) -> dict[str, float]:
    total = sum(dist.values())
    if total <= 0:
        return dist
    return {c: p / total for c, p in dist.items()}


def _second_opinion(model: _Model, text: str) -> str | None:
    """CLD2's language for the head of ``text`` (best effort on short text), if it is sure."""
    try:
        reliable, _, details = model.cld2_detect(
            text[:MODEL_CHARS].encode("utf-8", "replace"), isPlainText=True, bestEffort=True
        )
    except model.cld2_error:
        return None
    if not reliable:
        return None
    code = str(details[0][1]).split("-")[0]
    return _HINT_ALIASES.get(code, code)


def _model_distribution(
    model: _Model, text: str, script: str, hint: str | None
) -> dict[str, float]:
    """The model's top languages of ``script`` (and the declared one), normalised."""
    probs = _probabilities(model, text)
    mask = model.script_masks.get(script)
    if mask is not None:
        probs = np.where(mask, probs, 0.0)
    vote = _second_opinion(model, text)
    if vote is not None and vote in model.code_index:
        probs[model.code_index[vote]] *= _SECOND_OPINION_ODDS
    total = float(probs.sum())
    if total <= 0:
        return {}
    top = np.argpartition(probs, -8)[-8:]
    dist = {model.codes[i]: float(probs[i]) / total for i in top if probs[i] > 0}
    if hint is not None and hint not in dist and hint in model.code_index:
        dist[hint] = float(probs[model.code_index[hint]]) / total
    return dist


def _arabic_rules(text: str, dist: dict[str, float]) -> dict[str, float]:
    chars = set(text[:SCRIPT_CHARS])
    for code, letters in _ARABIC_PROPER:
        found = len(chars & letters)
        if found:
            dist[code] = max(dist.get(code, 0.0), 0.01) * _PROPER_LETTER_ODDS**found
            dist["ar"] = dist.get("ar", 0.0) / _PROPER_LETTER_ODDS  # Arabic writes none of them
    persian = len(chars & _PERSIAN_LETTERS)
    if persian and "ar" in dist:
        dist["ar"] *= 0.2**persian
    if chars & _ARABIC_ONLY and not persian and "ar" in dist:
        dist["ar"] *= 5.0
    return _normalised(dist)


def _cyrillic_rules(text: str, dist: dict[str, float]) -> dict[str, float]:
    chars = set(text[:SCRIPT_CHARS].lower()) & _CYRILLIC_LETTERS
    for code, foreign in _CYRILLIC_FOREIGN.items():
        if code in dist:
            found = min(len(chars & foreign), 2)
            if found:
                dist[code] *= _FOREIGN_CYRILLIC_FACTOR**found
    return _normalised(dist)


def _latin_rules(text: str, dist: dict[str, float]) -> dict[str, float]:
    chars = set(text[:SCRIPT_CHARS].lower()) & _LATIN_NON_ASCII
    if len(chars) >= 2:
        for code, own in _LATIN_LETTERS.items():
            if code in dist:
                extra = len(chars.difference(own)) - 1
                if extra > 0:
                    dist[code] *= _LATIN_FOREIGN_FACTOR ** min(extra, 3)
        dist = _normalised(dist)
    if max(dist, key=dist.__getitem__, default="") in ("ms", "id"):
        dist = _malay_indonesian(text, dist)
    return dist


def _malay_indonesian(text: str, dist: dict[str, float]) -> dict[str, float]:
    lowered = text[:SCRIPT_CHARS].lower()
    score = 0
    for word in _WORD.findall(lowered):
        if word in _MALAY_WORDS or word.endswith("syen"):
            score += 1
        elif word in _INDONESIAN_WORDS:
            score -= 1
    score += sum(lowered.count(p) for p in _MALAY_PHRASES)
    score -= sum(lowered.count(p) for p in _INDONESIAN_PHRASES)
    if score:
        pair = dist.get("ms", 0.0) + dist.get("id", 0.0)
        odds = (dist.get("ms", 0.0) + 1e-6) / (dist.get("id", 0.0) + 1e-6)
        odds *= _MARKER_ODDS**score
        dist["ms"] = pair * odds / (1.0 + odds)
        dist["id"] = pair - dist["ms"]
    return dist


def _text_distribution(model: _Model, text: str, script: str, hint: str | None) -> dict[str, float]:
    """Probabilities of the languages written in ``script`` given the text."""
    if script == "Hebr":
        yiddish = sum(text.count(m) for m in _YIDDISH_MARKS)
        return {"yi": 0.95, "he": 0.05} if yiddish >= 2 else {"he": 0.99, "yi": 0.01}
    if script == "Ethi":
        tigrinya = len(set(text) & _TIGRINYA)
        return {"ti": 0.9, "am": 0.1} if tigrinya >= 2 else {"am": 0.98, "ti": 0.02}
    if script == "Tibt":
        return {"bo": 0.6, "dz": 0.4}
    unique = _SCRIPT_LANGUAGE.get(script)
    if unique is not None:
        return {unique: 0.99}
    if script not in model.script_masks:
        return {}  # a script with no ISO 639-1 language the detector knows (Syriac, N'Ko, ...)
    dist = _model_distribution(model, text, script, hint)
    if script == "Latn":
        return _latin_rules(text, dist)
    if script == "Arab":
        return _arabic_rules(text, dist)
    if script == "Cyrl":
        return _cyrillic_rules(text, dist)
    if script == "Beng" and set(text) & _ASSAMESE_LETTERS:
        return _normalised({**dist, "as": dist.get("as", 0.0) * 20.0 + 0.01})
    if script == "Deva" and _MARATHI_LLA in text and "mr" in dist:
        return _normalised({**dist, "mr": dist["mr"] * 5.0})
    return dist


def _clip(p: float) -> float:
    return round(min(1.0, max(0.0, p)), 4)


# --- API -----------------------------------------------------------------------------------------


_PARTICLE_LETTERS = 4  # "van der", "de la", "di", "bin": short words inside a name


def _evidence_words(text: str) -> list[str]:
    """The words of ``text``'s head that are not part of a name: not capitalised, and not one or
    two short words between capitalised ones ("Danie van Schalkwyk", "Celle di Bulgheria")."""
    words = _LETTER_WORD.findall(text[:SCRIPT_CHARS])
    capital = [w[0].isupper() for w in words]
    out: list[str] = []
    i, n = 0, len(words)
    while i < n:
        if capital[i]:
            i += 1
            continue
        j = i
        while j < n and not capital[j]:
            j += 1
        run = words[i:j]
        inside_name = (
            i > 0 and j < n and len(run) <= 2 and all(len(w) <= _PARTICLE_LETTERS for w in run)
        )
        if not inside_name:
            out += run
        i = j
    return out


def _overwhelming(
    model: _Model, text: str, script: str, declared: str, dist: dict[str, float], letters: int
) -> bool:
    """Does ``text`` outweigh the declared language (rule 5 of the module docstring)?

    The words that do not start with a capital are weighed on their own: the letters of the
    names around them ("František Čermák" in a French sentence) say nothing about the language.
    """
    p_top = max(dist.values())
    if (
        math.log(p_top / dist[declared]) >= _OVERWHELMING_LOG_ODDS
        and _OVERWHELMING_LETTERS[0] <= letters < _OVERWHELMING_LETTERS[1]
    ):
        return True
    words = _evidence_words(text)
    if sum(map(len, words)) < _EVIDENCE_LETTERS:
        return False
    plain = _text_distribution(model, " ".join(words), script, declared)
    if not plain:
        return False
    p_other = max(p for code, p in plain.items() if code != declared) if len(plain) > 1 else 0.0
    p_declared = plain.get(declared, 0.0)
    if p_other <= 0:
        return False
    return p_declared <= 0 or math.log(p_other / p_declared) >= _EVIDENCE_LOG_ODDS


def detect_language(text: str, hint: str | None = None) -> LanguageResult:
    """Language of ``text`` (title + "\\n" + body head), with the feed's declared ``hint``.

    ``hint`` is the declared language as published (BCP 47 or close, junk ignored).
    """
    declared = normalise_hint(hint)
    model = _model()
    counts = _script_counts(model, text) if text else {}
    if not counts:
        if declared is not None:
            return LanguageResult(declared, _DECLARED_CONF, "declared", None)
        return LanguageResult(None, 0.0, "none", None)
    script, letters = _dominant(counts)
    dist = _text_distribution(model, text, script, declared)
    if not dist:
        if declared is not None:
            return LanguageResult(declared, _DECLARED_CONF, "declared", script)
        return LanguageResult(None, 0.0, "none", script)
    top = max(dist, key=dist.__getitem__)
    p_top = dist[top]
    if declared is None:
        return LanguageResult(top, _clip(p_top), "text", script)
    if top == declared:
        agreed = 1.0 - (1.0 - p_top) * (1.0 - _HINT_RELIABILITY)
        return LanguageResult(top, _clip(agreed), "both", script)
    p_hint = dist.get(declared, 0.0 if declared in SUPPORTED else _UNKNOWN_LANGUAGE_P)
    if p_hint > 0 and any(top in g and declared in g for g in _HINT_SETTLED):
        settled = (p_top + p_hint) * _HINT_RELIABILITY
        return LanguageResult(declared, _clip(settled), "declared", script)
    if script == "Hani" and declared == "ja" and letters <= _HAN_ONLY_JAPANESE:
        return LanguageResult(declared, _HINT_RELIABILITY, "declared", script)
    weighted = p_hint * _HINT_ODDS
    posterior = weighted / (weighted + 1.0 - p_hint)
    if weighted > p_top:
        return LanguageResult(declared, _clip(posterior), "declared", script)
    if (
        declared in dist
        and dist[declared] > 0
        and not _overwhelming(model, text, script, declared, dist, letters)
    ):
        return LanguageResult(declared, _clip(max(posterior, _DECLARED_CONF)), "declared", script)
    unique = script in _SCRIPT_LANGUAGE
    min_letters = _MIN_LETTERS_UNIQUE if unique else _MIN_LETTERS.get(script, _MIN_LETTERS_DEFAULT)
    if letters < min_letters and (p_hint > 0 or script == "Latn"):
        # too little text to overrule the feed (a Latin brand name in any feed, say)
        return LanguageResult(declared, _clip(max(posterior, _DECLARED_CONF)), "declared", script)
    return LanguageResult(top, _clip(p_top / (1.0 + weighted - p_hint)), "text", script)


def detect_many(items: Sequence[tuple[str, str | None]]) -> list[LanguageResult]:
    """:func:`detect_language` over ``(text, hint)`` pairs, in order."""
    _model()
    return [detect_language(text, hint) for text, hint in items]
