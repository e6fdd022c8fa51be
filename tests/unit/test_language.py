"""Language identification: scripts, the declared-language prior, code normalisation, the API.

The sentences are written for these tests (news-like, one per language); none comes from the
evaluation set.
"""

from __future__ import annotations

import json
import threading
from importlib.metadata import version
from pathlib import Path

import pytest

from streams.enrich import eval_language, language
from streams.enrich.language import SUPPORTED, detect_language, detect_many, normalise_hint
from streams.enrich.types import LanguageResult

SAMPLES = {
    "en": "The government announced new measures to support small businesses after the floods.",
    "fr": "Le gouvernement a annoncé de nouvelles mesures pour soutenir les petites entreprises.",
    "de": "Die Regierung hat neue Maßnahmen zur Unterstützung kleiner Unternehmen angekündigt.",
    "es": (
        "El gobierno anunció nuevas medidas para apoyar a las pequeñas empresas tras las lluvias."
    ),
    "pt": "O governo anunciou novas medidas para apoiar as pequenas empresas depois das cheias.",
    "it": (
        "Il governo ha annunciato nuove misure per sostenere le piccole imprese dopo le alluvioni."
    ),
    "nl": "De regering heeft nieuwe maatregelen aangekondigd om kleine bedrijven te steunen.",
    "sv": (
        "Regeringen har presenterat nya åtgärder för att stödja små företag efter översvämningarna."
    ),
    "da": (
        "Regeringen har fremlagt nye tiltag for at støtte små virksomheder efter oversvømmelserne."
    ),
    "no": "Regjeringen har lagt fram nye tiltak for å støtte små bedrifter etter flommen.",
    "fi": "Hallitus ilmoitti uusista toimista pienten yritysten tukemiseksi tulvien jälkeen.",
    "et": "Valitsus teatas uutest meetmetest väikeettevõtete toetamiseks pärast üleujutusi.",
    "lv": "Valdība paziņoja par jauniem pasākumiem mazo uzņēmumu atbalstam pēc plūdiem.",
    "lt": "Vyriausybė paskelbė naujas priemones smulkiajam verslui paremti po potvynių.",
    "pl": "Rząd ogłosił nowe środki wsparcia dla małych firm po powodzi.",
    "cs": "Vláda oznámila nová opatření na podporu malých podniků po povodních.",
    "sk": "Vláda oznámila nové opatrenia na podporu malých podnikov po povodniach.",
    "sl": "Vlada je napovedala nove ukrepe za podporo malim podjetjem po poplavah.",
    "hr": "Vlada je najavila nove mjere za potporu malim poduzećima nakon poplava.",
    "hu": (
        "A kormány új intézkedéseket jelentett be a kisvállalkozások támogatására az árvizek után."
    ),
    "ro": "Guvernul a anunțat noi măsuri pentru sprijinirea firmelor mici după inundații.",
    "bg": "Правителството обяви нови мерки в подкрепа на малките предприятия след наводненията.",
    "mk": "Владата најави нови мерки за поддршка на малите претпријатија по поплавите.",
    "sr": "Влада је најавила нове мере за подршку малим предузећима после поплава.",
    "ru": "Правительство объявило о новых мерах поддержки малого бизнеса после наводнения.",
    "uk": "Уряд оголосив нові заходи підтримки малого бізнесу після повені.",
    "be": "Урад абвясціў новыя меры падтрымкі малога бізнесу пасля паводкі.",
    "kk": "Үкімет су тасқынынан кейін шағын бизнесті қолдаудың жаңа шараларын жариялады.",
    "el": "Η κυβέρνηση ανακοίνωσε νέα μέτρα στήριξης των μικρών επιχειρήσεων μετά τις πλημμύρες.",
    "tr": "Hükümet, sellerin ardından küçük işletmeleri desteklemek için yeni önlemler açıkladı.",
    "az": "Hökumət daşqından sonra kiçik müəssisələri dəstəkləmək üçün yeni tədbirlər açıqladı.",
    "ka": "მთავრობამ წყალდიდობის შემდეგ მცირე ბიზნესის მხარდაჭერის ახალი ზომები გამოაცხადა.",
    "hy": "Կառավարությունը հայտարարեց փոքր բիզնեսին աջակցելու նոր միջոցառումների մասին։",
    "he": "הממשלה הודיעה על צעדים חדשים לתמיכה בעסקים קטנים לאחר השיטפונות.",
    "ar": "أعلنت الحكومة عن إجراءات جديدة لدعم الشركات الصغيرة بعد الفيضانات.",
    "fa": "دولت پس از سیل، تدابیر تازه‌ای برای حمایت از کسب‌وکارهای کوچک اعلام کرد.",
    "ur": "حکومت نے سیلاب کے بعد چھوٹے کاروباروں کی مدد کے لیے نئے اقدامات کا اعلان کیا ہے۔",
    "ps": "حکومت د سیلاب وروسته د کوچنیو سوداګرو د ملاتړ لپاره نوي ګامونه اعلان کړل.",
    "hi": "सरकार ने बाढ़ के बाद छोटे व्यवसायों की मदद के लिए नए उपायों की घोषणा की।",
    "mr": "सरकारने पुरानंतर लहान व्यवसायांना मदत करण्यासाठी नवीन उपाययोजना जाहीर केल्या.",
    "ne": "सरकारले बाढीपछि साना व्यवसायलाई सहयोग गर्न नयाँ उपायहरू घोषणा गरेको छ।",
    "bn": "বন্যার পর ছোট ব্যবসাগুলোকে সহায়তা করতে সরকার নতুন পদক্ষেপ ঘোষণা করেছে।",
    "pa": "ਸਰਕਾਰ ਨੇ ਹੜ੍ਹਾਂ ਤੋਂ ਬਾਅਦ ਛੋਟੇ ਕਾਰੋਬਾਰਾਂ ਦੀ ਮਦਦ ਲਈ ਨਵੇਂ ਕਦਮਾਂ ਦਾ ਐਲਾਨ ਕੀਤਾ।",
    "gu": "સરકારે પૂર પછી નાના વ્યવસાયોને મદદ કરવા નવા પગલાં જાહેર કર્યા.",
    "ta": "வெள்ளத்திற்குப் பிறகு சிறு வணிகங்களுக்கு உதவ அரசு புதிய நடவடிக்கைகளை அறிவித்தது.",
    "te": "వరదల తర్వాత చిన్న వ్యాపారాలకు సహాయం చేయడానికి ప్రభుత్వం కొత్త చర్యలను ప్రకటించింది.",
    "kn": "ಪ್ರವಾಹದ ನಂತರ ಸಣ್ಣ ಉದ್ಯಮಗಳಿಗೆ ನೆರವಾಗಲು ಸರ್ಕಾರ ಹೊಸ ಕ್ರಮಗಳನ್ನು ಘೋಷಿಸಿದೆ.",
    "ml": ("വെള്ളപ്പൊക്കത്തിനു ശേഷം ചെറുകിട വ്യവസായങ്ങളെ സഹായിക്കാൻ സർക്കാർ പുതിയ നടപടികൾ പ്രഖ്യാപിച്ചു."),
    "si": "ගංවතුරෙන් පසු කුඩා ව්‍යාපාරවලට සහාය වීමට රජය නව පියවර ප්‍රකාශයට පත් කළේය.",
    "th": "รัฐบาลประกาศมาตรการใหม่เพื่อช่วยเหลือธุรกิจขนาดเล็กหลังน้ำท่วม",
    "km": "រដ្ឋាភិបាលបានប្រកាសវិធានការថ្មីដើម្បីគាំទ្រអាជីវកម្មខ្នាតតូចក្រោយទឹកជំនន់។",
    "my": "ရေကြီးပြီးနောက် အသေးစားလုပ်ငန်းများကို ကူညီရန် အစိုးရက အစီအမံအသစ်များ ကြေညာခဲ့သည်။",
    "vi": "Chính phủ công bố các biện pháp mới nhằm hỗ trợ doanh nghiệp nhỏ sau lũ lụt.",
    "id": (
        "Pemerintah mengumumkan langkah baru untuk membantu "
        "usaha kecil setelah banjir, kata polisi."
    ),
    "ms": "Kerajaan mengumumkan langkah baharu untuk membantu perniagaan kecil selepas banjir.",
    "tl": (
        "Nag-anunsyo ang pamahalaan ng mga bagong hakbang upang tulungan ang maliliit na negosyo."
    ),
    "sw": "Serikali imetangaza hatua mpya za kusaidia biashara ndogo baada ya mafuriko.",
    "am": "መንግሥት ከጎርፉ በኋላ አነስተኛ ንግዶችን ለመደገፍ አዳዲስ እርምጃዎችን አስታውቋል።",
    "so": "Dowladda ayaa ku dhawaaqday tallaabooyin cusub oo lagu taageerayo ganacsiyada yaryar.",
    "ha": "Gwamnati ta sanar da sababbin matakai don tallafa wa kananan kasuwanci bayan ambaliya.",
    "zu": (
        "Uhulumeni umemezele izinyathelo ezintsha "
        "zokusiza amabhizinisi amancane ngemva kwezikhukhula."
    ),
    "af": "Die regering het nuwe maatreëls aangekondig om klein besighede ná die vloede te help.",
    "ca": "El govern ha anunciat noves mesures per donar suport a les petites empreses.",
    "eu": "Gobernuak neurri berriak iragarri ditu enpresa txikiei laguntzeko uholdeen ondoren.",
    "gl": (
        "O goberno anunciou novas medidas para apoiar as pequenas empresas despois das inundacións."
    ),
    "cy": (
        "Mae'r llywodraeth wedi cyhoeddi mesurau newydd i gefnogi busnesau bach ar ôl y llifogydd."
    ),
    "ga": "D'fhógair an rialtas bearta nua chun tacú le gnólachtaí beaga tar éis na tuilte.",
    "sq": "Qeveria njoftoi masa të reja për të mbështetur bizneset e vogla pas përmbytjeve.",
    "is": "Ríkisstjórnin kynnti nýjar aðgerðir til að styðja lítil fyrirtæki eftir flóðin.",
    "mt": "Il-gvern ħabbar miżuri ġodda biex jgħin lin-negozji żgħar wara l-għargħar.",
    "ja": "政府は洪水の後、中小企業を支援するための新たな対策を発表した。",
    "zh": "政府宣布了在洪水过后支持小企业的新措施。",
    "ko": "정부는 홍수 이후 소상공인을 지원하기 위한 새로운 대책을 발표했다.",
    "ku": "Hikûmetê piştî lehiyê ji bo piştgiriya karsaziyên biçûk tedbîrên nû ragihand.",
    "uz": (
        "Hukumat toshqindan keyin kichik biznesni "
        "qo'llab-quvvatlash uchun yangi choralarni e'lon qildi."
    ),
}


def _valid(result: LanguageResult) -> None:
    assert 0.0 <= result.confidence <= 1.0
    assert result.method in {"text", "declared", "both", "none"}
    assert result.code is None or result.code in SUPPORTED or len(result.code) == 2


# --- scripts and languages -----------------------------------------------------------------------


def test_arabic_sentence_is_arabic_in_arabic_script() -> None:
    title, body = "الرئيس يلتقي وزير الخارجية", "أعلنت الحكومة عن إجراءات جديدة لدعم الشركات"
    result = detect_language(title + "\n" + body)
    assert (result.code, result.script, result.method) == ("ar", "Arab", "text")
    assert result.confidence > 0.9


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("الحكومة تعلن خطة جديدة لمواجهة ارتفاع الأسعار في الأسواق", "ar"),
        ("دولت برنامه تازه‌ای برای مهار گرانی در بازار اعلام کرد", "fa"),
        ("حکومت نے بازار میں مہنگائی روکنے کے لیے نیا منصوبہ پیش کر دیا", "ur"),
        ("حکومت په بازار کې د ګرانۍ د مخنیوي لپاره نوی پلان اعلان کړ", "ps"),
        ("حکوومەتی هەرێمی کوردستان بڕیارێکی نوێی دەرکرد", "ku"),  # Sorani: ێ ڕ ە
        ("ھۆكۈمەت يېڭى تەدبىرلەرنى ئېلان قىلدى", "ug"),  # Uyghur: ۆ ۈ ې ڭ
        ("حڪومت ٻوڏ کان پوءِ ننڍن ڪاروبارن جي مدد لاءِ نوان قدم کنيا", "sd"),  # Sindhi: ڪ ٻ ڏ ڍ
    ],
)
def test_arabic_script_languages_are_told_apart(text: str, code: str) -> None:
    result = detect_language(text)
    assert (result.code, result.script) == (code, "Arab")


def test_persian_letters_outweigh_arabic_words() -> None:
    # Persian shares most words with Arabic; پ چ ژ گ and ی decide it.
    result = detect_language("گزارش تازه درباره پیشرفت مذاکرات هسته‌ای")
    assert result.code == "fa"


@pytest.mark.parametrize(
    ("text", "code", "script"),
    [
        ("東京で大規模な停電、数万世帯に影響", "ja", "Jpan"),
        ("北京发生大规模停电，数万户受影响", "zh", "Hani"),
        ("台北市長選舉結果今晚揭曉", "zh", "Hani"),
        ("서울에서 대규모 정전, 수만 가구 피해", "ko", "Hang"),
        ("北 미사일 발사에 정부 긴급 회의", "ko", "Hang"),
    ],
)
def test_cjk(text: str, code: str, script: str) -> None:
    result = detect_language(text)
    assert (result.code, result.script) == (code, script)


def test_kanji_only_headline_follows_a_japanese_feed() -> None:
    result = detect_language("内閣支持率低下", "ja-JP")
    assert result.code == "ja"
    assert result.method in {"declared", "both"}


@pytest.mark.parametrize(
    ("text", "code", "script"),
    [
        ("Ισχυρές βροχές στην Αθήνα", "el", "Grek"),
        ("גשמים כבדים בתל אביב", "he", "Hebr"),
        ("די רעגירונג האָט אַנאָנסירט נײַע מיטלען", "yi", "Hebr"),
        ("ฝนตกหนักในกรุงเทพ", "th", "Thai"),
        ("በአዲስ አበባ ከባድ ዝናብ", "am", "Ethi"),
        ("দিল্লিতে ভারী বৃষ্টি, জনজীবন বিপর্যস্ত", "bn", "Beng"),
        ("दिल्ली में भारी बारिश से जनजीवन अस्त-व्यस्त", "hi", "Deva"),
        ("Страйк на залізниці паралізував рух", "uk", "Cyrl"),
        ("Забастовка на железной дороге остановила движение", "ru", "Cyrl"),
    ],
)
def test_scripts(text: str, code: str, script: str) -> None:
    result = detect_language(text)
    assert (result.code, result.script) == (code, script)


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_smoke_many_languages(code: str) -> None:
    result = detect_language(SAMPLES[code])
    _valid(result)
    assert result.code == code, result
    assert result.method == "text"


def test_latin_names_in_other_scripts_do_not_flip_the_script() -> None:
    result = detect_language("Apple представила новый iPhone 16 Pro Max в Купертино")
    assert (result.code, result.script) == ("ru", "Cyrl")


# --- the declared language -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint", "code"),
    [
        ("Brexit", "de", "de"),
        ("iPhone 16 Pro", "ar", "ar"),  # a Latin brand name in an Arabic feed
        ("COVID-19", "ru-RU", "ru"),
    ],
)
def test_short_inconclusive_text_takes_the_declared_language(
    text: str, hint: str, code: str
) -> None:
    result = detect_language(text, hint)
    assert (result.code, result.method) == (code, "declared")
    assert 0.0 < result.confidence < 0.9


def test_agreeing_declared_language_gives_both_and_more_confidence() -> None:
    text = "Grève générale : les syndicats appellent à manifester jeudi dans toute la France"
    alone = detect_language(text)
    agreed = detect_language(text, "fr-FR")
    assert (agreed.code, agreed.method, agreed.script) == ("fr", "both", "Latn")
    assert agreed.confidence >= alone.confidence


def test_confident_text_overrides_a_wrong_declared_language() -> None:
    text = "Parliament approved the budget after a long debate on taxes and public spending."
    result = detect_language(text, "de")
    assert (result.code, result.method) == ("en", "text")


def test_declared_language_in_another_script_is_ignored() -> None:
    assert detect_language("서울", "en").code == "ko"
    result = detect_language("Правительство объявило о новых мерах", "en-GB")
    assert (result.code, result.method) == ("ru", "text")


@pytest.mark.parametrize("hint", ["ms", "ms-MY", "id", "id-ID", "in"])
def test_declared_language_settles_malay_versus_indonesian(hint: str) -> None:
    text = "Harga minyak naik lagi hari ini"  # the same words in both standards
    expected = normalise_hint(hint)
    result = detect_language(text, hint)
    assert result.code == expected
    assert result.method in {"declared", "both"}


def test_malay_and_indonesian_marker_words_without_declared_language() -> None:
    assert detect_language(SAMPLES["ms"]).code == "ms"
    assert detect_language(SAMPLES["id"]).code == "id"


@pytest.mark.parametrize(
    ("hint", "code"),
    [
        ("ar", "ar"),
        ("en-US", "en"),
        ("EN-gb", "en"),
        ("pt_BR", "pt"),
        ("zh-Hans", "zh"),
        ("zh-Hant-TW", "zh"),
        ("sr-Latn-RS", "sr"),
        ("iw", "he"),
        ("in", "id"),
        ("nb-NO", "no"),
        ("fil", "tl"),
        ("ara", "ar"),
        ("fas", "fa"),
        ("ckb", "ku"),
        ("English", "en"),
        (" fr , en ", "fr"),
        ("ur-PK", "ur"),
    ],
)
def test_hint_normalisation(hint: str, code: str) -> None:
    assert normalise_hint(hint) == code


@pytest.mark.parametrize(
    "hint", [None, "", "  ", "x-default", "und", "mul", "*", "12", "klingon", "qq", "e n", "日本語"]
)
def test_junk_hint_is_ignored(hint: str | None) -> None:
    assert normalise_hint(hint) is None
    result = detect_language(SAMPLES["sv"], hint)
    assert (result.code, result.method) == ("sv", "text")


# --- empty and odd input -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t", "2024-11-29 12:30", "!!! ... ???", "🙂🙂"])
def test_text_without_letters(text: str) -> None:
    assert detect_language(text) == LanguageResult(None, 0.0, "none", None)
    declared = detect_language(text, "ar")
    assert (declared.code, declared.method, declared.script) == ("ar", "declared", None)
    assert 0.0 < declared.confidence <= 1.0


def test_odd_input_does_not_raise() -> None:
    for text in ["\ud800 broken surrogate", "\x00\x00 nul bytes", "a" * 10_000, "ܫܠܡܐ ܥܠܡܐ"]:
        _valid(detect_language(text, "en"))
        _valid(detect_language(text))


def test_all_caps_headline() -> None:
    headline = "LE GOUVERNEMENT ANNONCE UNE NOUVELLE RÉFORME DES RETRAITES"
    assert detect_language(headline).code == "fr"


# --- API -----------------------------------------------------------------------------------------


def test_detect_many_matches_single_calls_in_order() -> None:
    items: list[tuple[str, str | None]] = [
        (SAMPLES["de"], None),
        ("", "fr"),
        (SAMPLES["ar"], "ar"),
        ("Brexit", "de-AT"),
        ("", None),
    ]
    assert detect_many(items) == [detect_language(t, h) for t, h in items]
    assert detect_many([]) == []


def test_threads_share_one_model() -> None:
    items: list[tuple[str, str | None]] = [(t, None) for t in SAMPLES.values()]
    expected = detect_many(items)
    results: list[list[LanguageResult]] = []

    def run() -> None:
        results.append(detect_many(items))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


def test_supported_codes() -> None:
    assert len(SUPPORTED) >= 75
    assert all(len(c) == 2 and c.isalpha() and c.islower() for c in SUPPORTED)
    assert set(SAMPLES) <= SUPPORTED
    assert {"ar", "fa", "ur", "ps", "ku", "he", "zh", "ja", "ko", "ms", "id"} <= SUPPORTED
    # the hard-coded label list is the model's, after folding and dropping
    assert set(language._model().codes) == language._MODEL_LABELS


def test_model_version_names_the_installed_detectors() -> None:
    assert f"py3langid-{version('py3langid')}" in language.MODEL_VERSION
    assert f"pycld2-{version('pycld2')}" in language.MODEL_VERSION


@pytest.mark.parametrize("code", ["en", "ru", "ar", "hi", "zh", "vi"])
def test_vectorised_walk_equals_byte_by_byte_walk(code: str) -> None:
    model = language._model()
    data = (SAMPLES[code] * 4).encode("utf-8")
    assert model.dfa_depth > 0
    assert language._walk_vector(model, data).tolist() == language._walk_loop(model, data).tolist()


# --- the evaluation command ----------------------------------------------------------------------


def test_evaluate_on_a_small_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_language, "MIN_SECONDS", 0.05)
    rows = [
        {"text": SAMPLES[c], "lang": c, "length": "paragraph"} for c in ("en", "fr", "ms", "id")
    ] + [{"text": "Tågstrejk i Stockholm", "lang": "sv", "length": "short"}]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    report = eval_language.evaluate(path)
    assert report["no_hint"]["accuracy"] == {"paragraph": 1.0, "short": 1.0}
    assert report["hint_ms_id"]["per_language"]["ms"] == {"paragraph": 1.0}
    assert report["speed"]["items_per_s"] > 0
    assert "paragraph" in eval_language.format_report(report)
    assert eval_language.main([str(path)]) == 0


def test_evaluate_command_names_the_data_option(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        eval_language.main(["--data", str(tmp_path / "missing.jsonl")])
    assert exit_info.value.code == 2
