"""Names as written, one entity per referent, no non-names, bounded names (issue 13 items 3, 4,
6; issue 14.14). Every text here is written for these tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.enrich import entities, names, pipeline
from streams.enrich.entities import _Mention, _resolve
from streams.enrich.features import tokenize
from streams.enrich.types import FoundEntity
from tests.conftest import make_raw

SEED = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "seed-article-ar.txt"


def _tokens(text: str) -> list[str]:
    return [text[a:b] for a, b in tokenize(text)]


def _clean(text: str, name: str, typ: str) -> str | None:
    """``clean_span`` of the first occurrence of ``name`` (whole tokens) in ``text``."""
    toks = _tokens(text)
    want = _tokens(name)
    for i in range(len(toks)):
        if toks[i : i + len(want)] == want:
            got = names.clean_span(toks, i, i + len(want), typ)
            return None if got is None else " ".join(toks[got[0] : got[1]])
    raise AssertionError(f"{name!r} not in {text!r}")


# --- keys -------------------------------------------------------------------------------------


def test_key_unifies_spelling_and_spacing_but_keeps_real_letters() -> None:
    assert names.key("عبد الله") == names.key("عبدالله")
    assert names.key("علي عبد الله صالح") == names.key("علي عبدالله صالح")
    assert names.key("أبو ظبي") == names.key("أبوظبي")
    assert names.key("العراق") == names.key("عراق") == "عراق"
    assert names.key("أنقرة") == names.key("انقره")
    # no second clitic split: the span has lost its clitics already
    assert names.key("كيري") == "كيري"
    assert names.key("وكيل") == "وكيل"
    # the article stays when fewer than three letters would remain
    assert names.key("الله") == "الله"
    # a hamzated alef is no article
    assert names.key("ألتنداغ") == "التنداغ"
    assert names.key("Angela  MERKEL") == "angela merkel"
    assert entities.key_of("عبد الرحمن") == names.key("عبدالرحمن")


def test_query_keys_drop_a_leading_title() -> None:
    assert names.query_keys("الملك سلمان") == [names.key("الملك سلمان"), names.key("سلمان")]
    assert names.query_keys("President Macron") == ["president macron", "macron"]
    assert names.query_keys("Macron") == ["macron"]
    assert names.query_keys("  ") == []


def test_display_name_is_the_most_frequent_surface() -> None:
    assert names.display_name(["الأكراد", "أكراد", "الأكراد"]) == "الأكراد"
    assert names.display_name(["Merkel", "Angela Merkel"]) == "Merkel"  # ties: first seen
    assert names.display_name([]) == ""


# --- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "typ"),
    [
        ("جدة - واس: افتتح المعرض اليوم", "واس", "PER"),
        ("قال المسؤول واس الأمر", "واس", "LOC"),  # never a person or place
        ("PARIS (AFP) - The minister resigned", "AFP", "PER"),
        ("قال الملك حفظه الله إن", "حفظه الله", "ORG"),
        ("رحمه الله كان كريما", "رحمه الله", "ORG"),
        ("في نيسان الماضي", "نيسان", "PER"),
        ("خلال شهر رمضان المبارك", "رمضان", "PER"),
        ("بلغت الأرباح مليار ريال", "ريال", "LOC"),
        ("في كانون الثاني المقبل", "كانون الثاني", "LOC"),
        ("يوم الخميس المقبل", "الخميس", "PER"),
        ("The deal was signed in January", "January", "LOC"),
        ("It cost ten dollars", "dollars", "MISC"),
        ("Am Montag kam er", "Montag", "PER"),
        ("وأكد على أهمية الحوار", "على", "PER"),
        ("قال لي صديقي", "لي", "PER"),
        ("أعلنت الشركة السعودية للكهرباء", "السعودية", "LOC"),
        ("هبطت الطائرة في مطار الملك فهد الدولي", "فهد", "PER"),
        ("يعالج في مستشفى خالد الجامعي", "خالد", "PER"),
        ("He landed at Kennedy Airport", "Kennedy", "PER"),
        ("صلى في جامع الملك خالد أمس", "خالد", "PER"),
        ("تدرس بجامعة الملك سعود في الرياض", "سعود", "PER"),
        ("نجت عائلة سعودية من الحريق", "سعودية", "LOC"),
    ],
)
def test_non_names_are_dropped(text: str, name: str, typ: str) -> None:
    assert _clean(text, name, typ) is None


@pytest.mark.parametrize(
    ("text", "name", "typ", "kept"),
    [
        ("وقال الرئيس باراك اوباما للكشف عن", "باراك اوباما للكشف", "PER", "باراك اوباما"),
        ("وجه الملك سلمان بن عبدالعزيز حفظه الله", "سلمان بن عبدالعزيز حفظه", "PER", None),
        ("قال عبد الله بن زايد إن", "عبد الله بن زايد", "PER", "عبد الله بن زايد"),
        ("زار الأمير السعودية أمس", "السعودية", "LOC", "السعودية"),  # after a title: a place
        ("بين تركيا والسعودية", "والسعودية", "LOC", "والسعودية"),
        ("في المملكة العربية السعودية", "السعودية", "LOC", "السعودية"),
        ("وصل علي إلى الرياض", "علي", "PER", "علي"),  # the name Ali, written with ي
        ("Theresa May said", "May", "PER", "May"),  # a month that is also a surname
        ("Charles de Gaulle said", "de Gaulle", "PER", "de Gaulle"),
        ("В Москве прошла встреча", "Москве", "LOC", "Москве"),
        ("北京举行会议", "北", "LOC", "北"),
        ("في مطار الملك فهد", "مطار الملك فهد", "LOC", "مطار الملك فهد"),
        ("تقدم نيسان سيارة جديدة", "نيسان", "ORG", "نيسان"),  # Nissan, not April
        ("من أسرة آل سعود الحاكمة", "سعود", "PER", "آل سعود"),
        ("وصلت إلى سورية أمس", "سورية", "LOC", "سورية"),
        (
            "نقل إلى مستشفى الملك فيصل التخصصي",
            "الملك فيصل التخصصي",
            "ORG",
            "مستشفى الملك فيصل التخصصي",
        ),
        ("هبطت في مطار الملك فهد", "فهد", "LOC", "مطار الملك فهد"),
        ("Berlin (dpa) - Die Regierung", "Berlin (dpa)", "LOC", "Berlin"),
        ("استقبلهم الشيخ خالد بن سعيد مبتهلين", "خالد بن سعيد مبتهلين", "PER", "خالد بن سعيد"),
        ("القاهرة (رويترز) - قال", "القاهرة (رويترز)", "LOC", "القاهرة"),
        ("وصل إلى مدينة الرياض", "الرياض", "LOC", "الرياض"),
        (
            "قالت صحيفة بيلد الألمانية إن السفير",
            "بيلد الألمانية إن السفير",
            "ORG",
            "بيلد الألمانية",
        ),
    ],
)
def test_names_are_kept_or_trimmed(text: str, name: str, typ: str, kept: str | None) -> None:
    got = _clean(text, name, typ)
    if kept is None:  # the formula is cut off: the name before it remains
        assert got == "سلمان بن عبدالعزيز"
    else:
        assert got == kept


@pytest.mark.parametrize(
    ("text", "i", "j", "doubtful"),
    [
        ("Los vecinos protestaron ayer", 0, 1, True),
        ("said the ceo von sainsbury today", 2, 5, True),
        ("in der französischen Stadt", 2, 3, True),
        ("in 1991 - wrote", 1, 2, True),
        ("أرسل رسالة SMS إلى الرقم", 2, 3, True),
        ("Charles de Gaulle said", 0, 3, False),
        ("В Москве прошла встреча", 1, 2, False),
        ("北京举行会议", 0, 2, False),
        ("قال وزير الخارجية", 1, 3, False),
    ],
)
def test_doubtful_names_are_flagged(text: str, i: int, j: int, doubtful: bool) -> None:
    assert names.doubtful(_tokens(text), i, j) is doubtful


def test_datelines_are_kept_out_of_the_facets() -> None:
    toks = _tokens("PARIS (AFP) - The minister resigned")
    assert names.dateline(toks, 2, 3)
    toks = _tokens("Reuters - Markets fell on Tuesday, Reuters reported")
    assert names.dateline(toks, 0, 1) and not names.dateline(toks, 7, 8)
    text = "جدة - واس: افتتح وزير الصحة المعرض. وقالت رويترز إن المعرض كبير (رويترز - أرشيف)."
    found = entities.extract_entities({"content": text}, "ar")
    assert not any(e.facet and "واس" in e.name for e in found)
    for e in found:
        if e.name == "رويترز":
            assert all(m.text == "رويترز" for m in e.mentions)


def test_two_names_joined_by_wa_are_two_names() -> None:
    from streams.enrich.entities import _coordination, _state

    model = entities.model_for("ar")
    assert model is not None
    toks = _tokens("فاز أرسنال وموناكو أمس")
    assert _coordination(model, _state().gazetteer, toks, (1, 3)) == (1, 2)
    toks = _tokens("زار وزير خارجية تركيا ولبنان")
    assert _coordination(model, _state().gazetteer, toks, (3, 5)) == (3, 4)
    toks = _tokens("قال وليد جنبلاط إن")  # a name that starts with و
    assert _coordination(model, _state().gazetteer, toks, (1, 3)) == (1, 3)


def test_a_family_name_after_al_belongs_to_the_person() -> None:
    from streams.enrich.entities import Tagged, _join_family

    toks = _tokens("استقبل الملك سلمان بن عبدالعزيز آل سعود الوفد")
    found = [Tagged(2, 5, "PER", 0.9, "crf"), Tagged(6, 7, "PER", 0.7, "crf")]
    assert [(t.start, t.end) for t in _join_family(toks, found)] == [(2, 7)]
    found = [Tagged(2, 5, "PER", 0.9, "crf"), Tagged(5, 7, "PER", 0.7, "crf")]
    assert [(t.start, t.end) for t in _join_family(toks, found)] == [(2, 7)]
    found = [Tagged(2, 5, "PER", 0.9, "crf"), Tagged(6, 7, "LOC", 0.7, "crf")]
    assert len(_join_family(toks, found)) == 2


def test_names_and_tokens_are_bounded() -> None:
    long = "ب" * 17_000
    assert names.clean_span([long], 0, 1, "PER") is None
    assert names.clean_span(["Word"] * 31, 0, 31, "ORG") is None
    assert len(names.key("x" * 17_000)) <= names.MAX_NAME_CHARS
    assert len(names.display_name(["y" * 5000])) <= names.MAX_NAME_CHARS
    for lang, word in (("en", "Z" + "z" * 17_000), ("ar", "س" * 17_000)):
        text = f"Minister {word} met {word} in Paris. " if lang == "en" else f"قال {word} في دمشق"
        for ent in entities.extract_entities({"content": text}, lang):
            assert len(ent.name) <= names.MAX_NAME_CHARS
            assert len(ent.key) <= names.MAX_NAME_CHARS
            assert all(len(m.text) <= names.MAX_NAME_CHARS for m in ent.mentions)


def test_clitics_are_cut_only_before_plausible_names() -> None:
    model = entities.model_for("ar")
    assert model is not None
    cuts = entities._cuts_for(model)
    assert cuts("وكيل") == (0, 0)  # deputy, not و + "كيل"
    assert cuts("كيري") == (0, 0)  # Kerry, not ك + "يري"
    assert cuts("وسوريا") == (1, 0)
    assert cuts("وأنقرة") == (1, 0)
    assert cuts("والعراق") == (1, 0)  # the article stays
    assert cuts("للعراق") == (2, 0)
    assert cuts("بغداد") == (0, 0)


# --- merging within an article ----------------------------------------------------------------


def _m(fields: dict[str, str], surface: str, typ: str, conf: float, nth: int = 0) -> _Mention:
    text = fields["content"]
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return _Mention("content", start, start + len(surface), typ, conf, "crf")


def test_same_key_under_two_types_takes_the_better_supported_type() -> None:
    fields = {"content": "Jordan Peele met Jordan fans. Jordan said Jordan was fine."}
    ms = [
        _m(fields, "Jordan", "LOC", 0.9, 2),
        _m(fields, "Jordan", "PER", 0.4, 1),
        _m(fields, "Jordan", "PER", 0.3, 3),
    ]
    (c,) = _resolve(fields, ms, "en")
    assert c.type == "LOC" and len(c.mentions) == 3


def test_surname_and_short_form_join_the_full_name() -> None:
    fields = {
        "content": "وصل إلكاي ألتنداغ إلى المملكة العربية السعودية، "
        "وقال ألتنداغ إن السعودية شريك. وأكد علي عبد الله صالح أن صالح "
        "وعبدالله صالح شخص واحد."
    }
    ms = [
        _m(fields, "إلكاي ألتنداغ", "PER", 0.6),
        _m(fields, "ألتنداغ", "PER", 0.6, 1),
        _m(fields, "المملكة العربية السعودية", "LOC", 0.9),
        _m(fields, "السعودية", "LOC", 0.9, 1),
        _m(fields, "علي عبد الله صالح", "PER", 0.9),
        _m(fields, "صالح", "PER", 0.7, 1),
        _m(fields, "عبدالله صالح", "PER", 0.7),
    ]
    got = {
        c.key: sorted(fields["content"][m.start : m.end] for m in c.mentions)
        for c in _resolve(fields, ms, "ar")
    }
    assert got == {
        "الكاي التنداغ": ["ألتنداغ", "إلكاي ألتنداغ"],
        "مملكه العربيه السعوديه": ["السعودية", "المملكة العربية السعودية"],
        "علي عبدالله صالح": ["صالح", "عبدالله صالح", "علي عبد الله صالح"],
    }


def test_a_surname_shared_by_two_full_names_stays_apart() -> None:
    fields = {"content": "Ralf Schumacher and Michael Schumacher raced. Schumacher won."}
    ms = [
        _m(fields, "Ralf Schumacher", "PER", 0.9),
        _m(fields, "Michael Schumacher", "PER", 0.9),
        _m(fields, "Schumacher", "PER", 0.8, 2),
    ]
    assert len(_resolve(fields, ms, "en")) == 3


def test_extracted_entities_merge_and_keep_each_mention_text() -> None:
    en = {"content": "Angela Merkel visited Lisbon on Friday. Merkel spoke to students there."}
    merkel = [e for e in entities.extract_entities(en, "en") if "Merkel" in e.name]
    assert [(e.name, [m.text for m in e.mentions]) for e in merkel] == [
        ("Angela Merkel", ["Angela Merkel", "Merkel"])
    ]
    de = {
        "content": "Der Internationale Verband für Wasserski und Wakeboard (IVWSR) tagte in "
        "Bern. Hans Meier leitet den Verband."
    }
    orgs = [e for e in entities.extract_entities(de, "de") if e.type == "ORG"]
    assert len(orgs) == 1 and "IVWSR" in [m.text for m in orgs[0].mentions]
    ar = {"content": "وصل الوفد إلى العراق أمس، وقال إن للعراق دورا كبيرا والعراق شريك مهم."}
    (iraq,) = [e for e in entities.extract_entities(ar, "ar") if e.key == "عراق"]
    assert iraq.name == "العراق"
    assert sorted(m.text for m in iraq.mentions) == ["العراق", "العراق", "عراق"]
    for m in iraq.mentions:
        assert ar[m.field][m.start : m.end] == m.text


# --- the seed article through the product path ------------------------------------------------


@pytest.fixture(scope="module")
def seed_article() -> list[FoundEntity]:
    text = SEED.read_text(encoding="utf-8")
    raw = make_raw(title="تعاون دفاعي بين تركيا وسوريا", hint="ar")
    raw = raw.model_copy(
        update={"source": raw.source.model_copy(update={"summary": "", "content": text})}
    )
    now = datetime.now(UTC)
    art = pipeline.enrich_one(raw, pipeline.stamp(now, "test"), 20_000)
    assert art.language.code == "ar"
    return [
        FoundEntity(
            text=e.text,
            type=e.type,
            normalized=e.normalized,
            mentions=(),
            confidence=e.confidence,
            method="",
            name=e.name or "",
            key=e.key or "",
            facet=e.facet,
        )
        for e in art.entities
    ]


def test_seed_article_shows_names_as_written_one_entity_each(
    seed_article: list[FoundEntity],
) -> None:
    facets = {(e.type, e.name) for e in seed_article if e.facet}
    for typ, name in (
        ("LOC", "المملكة العربية السعودية"),
        ("ORG", "وزارة الدفاع التركية"),
        ("LOC", "أنقرة"),
        ("LOC", "دمشق"),
        ("PER", "إلكاي ألتنداغ"),
        ("PER", "زكي أكتورك"),
        ("PER", "مرهف أبو قصرة"),
    ):
        assert (typ, name) in facets, sorted(facets)
    shown = {e.name for e in seed_article if e.facet}
    assert "السعودية" not in shown  # merged into the kingdom
    assert "ألتنداغ" not in shown  # merged into the full name
    assert not any("تأهيل" in n for n in shown)
    keys = [e.key for e in seed_article]
    assert len(keys) == len(set(keys))


# --- the Arabic titled-person rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("أكد سمو الشيخ حمد بن خالد آل ثاني أن الزيارة ناجحة", ["حمد بن خالد آل ثاني"]),
        ("استقبل الملك محمد السادس الوفد أمس", ["محمد السادس"]),
        ("وقال الفريق سيقاطع الجلسة المقبلة", []),  # the team, a verb
        ("وأوضح وزير خارجيتها أن", []),  # a title without article governs a noun
        ("قال الرئيس كارلوس منديز ومساعدوه إن", ["كارلوس منديز"]),
    ],
)
def test_titled_person_rule(text: str, want: list[str]) -> None:
    model = entities.model_for("ar")
    assert model is not None
    toks = _tokens(text)
    got = [
        " ".join(toks[a:b])
        for a, b, t in entities.arabic_rules(model.featurizer, toks)
        if t == "PER"
    ]
    assert got == want


def test_an_id_the_contract_refuses_does_not_fail_the_article() -> None:
    from streams.enrich.types import Mention

    mention = (Mention("title", 0, 5, "Syria"),)
    bad = FoundEntity("Syria", "LOC", "syria", mention, 0.9, "crf", id="Not An Id")
    got = pipeline._to_contract(bad)
    assert got.id is None and got.link_confidence is None and got.name == "Syria"
    assert got.mentions[0].text == "Syria"
    good = FoundEntity(
        "Syria", "LOC", "syria", mention, 0.9, "crf", id="country:SY", link_confidence=1
    )
    ok = pipeline._to_contract(good)
    assert ok.id == "country:SY" and ok.link_confidence == 1.0 and ok.key == "syria"
