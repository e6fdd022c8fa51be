"""The CRF feature extractors added for names longer than the window and names seen in training."""

from __future__ import annotations

from streams.enrich.features import FeatureSettings, Featurizer, Gazetteer


def _features(tokens: list[str], **settings: object) -> list[list[str]]:
    feats = Featurizer("fr", FeatureSettings(gazetteer=False, names=False, **settings))  # type: ignore[arg-type]
    return feats.sequence(tokens)


def _with(prefix: str, feats: list[str]) -> set[str]:
    return {f for f in feats if f.startswith(prefix)}


def test_run_features_give_every_word_of_a_long_name_its_head_and_tail() -> None:
    tokens = [
        "Il",
        "voit",
        "la",
        "Coupe",
        "de",
        "France",
        "de",
        "basket",
        ",",
        "Parc",
        "national",
        ".",
    ]
    out = _features(tokens, runs=True)
    # the run is Coupe .. France: "de" joins, the trailing "de" and "basket" end it
    coupe, de, france = 3, 4, 5
    assert _with("rf=", out[france]) == {"rf=coupe"} == _with("rf=", out[de])
    assert _with("rl=", out[coupe]) == {"rl=france"} == _with("rl=", out[de])
    assert [_with("rp=", out[i]) for i in (coupe, de, france)] == [{"rp=B"}, {"rp=I"}, {"rp=E"}]
    # outside the run nothing; a capitalised word alone ("Il", "Parc") is no run
    runs = ("rf=", "rl=", "rp=")
    for i in (0, 1, 2, 6, 7, 8, 9, 10, 11):
        assert not any(f.startswith(runs) for f in out[i]), tokens[i]
    assert not any(f.startswith(runs) for row in _features(tokens) for f in row)


def test_run_features_are_off_for_arabic() -> None:
    feats = Featurizer("ar", FeatureSettings(gazetteer=False, names=False, runs=True))
    out = feats.sequence(["Parc", "des", "Monts"])
    assert not any(f.startswith(("rf=", "rl=", "rp=")) for row in out for f in row)


def test_span_names_mark_training_entity_strings_with_their_type() -> None:
    names = Gazetteer.from_names({"Golden Gate Park": "LOC", "Coupe de France": "ORG"})
    feats = Featurizer(
        "fr", FeatureSettings(gazetteer=False, names=False, span_names=True), span_names=names
    )
    tokens = ["Après", "la", "Coupe", "de", "France", ",", "au", "Golden", "Gate", "Park", "."]
    out = feats.sequence(tokens)
    td = [sorted(_with("td", row)) for row in out]
    assert td[2] == ["td=B-ORG"] and td[3] == ["td=I-ORG"] and td[4] == ["td=I-ORG"]
    assert td[1] == ["td+1=ORG"] and "td-1=ORG" in td[5]
    assert td[7] == ["td=B-LOC"] and td[9] == ["td=I-LOC"]
    assert td[0] == [] and td[10] == ["td-1=LOC"]
    # an Arabic name with a glued proclitic and article still matches ("وبالعراق" -> عراق)
    ar = Featurizer(
        "ar",
        FeatureSettings(gazetteer=False, names=False, span_names=True),
        span_names=Gazetteer.from_names({"العراق": "LOC"}),
    )
    assert "td=B-LOC" in ar.sequence(["وصل", "وبالعراق"])[1]


def test_document_pass_tags_recurrences_of_confident_names_only() -> None:
    from streams.enrich.entities import Tagged, document_matches, document_names

    keys = [
        ["قال", "ايهود", "اولمرت", "ان", "حزب", "ليكود", "سيفوز"],
        ["وانتقد", "اولمرت", "ليكود", "امس"],
        ["زار", "ايهود", "اولمرت", "باريس"],
    ]
    found = [
        [Tagged(1, 3, "PER", 0.9, "crf"), Tagged(4, 6, "ORG", 0.4, "crf")],  # ORG not confident
        [],
        [Tagged(3, 4, "LOC", 0.7, "crf")],
    ]
    names = document_names(keys, found)
    assert names == {
        ("ايهود", "اولمرت"): ("PER", 0.9),
        ("اولمرت",): ("PER", 0.9),  # the surname of a multi-word person
        ("باريس",): ("LOC", 0.7),
    }
    got = document_matches(keys[1], found[1], names)
    assert [(t.start, t.end, t.type, t.source) for t in got] == [(1, 2, "PER", "document")]
    assert abs(got[0].confidence - 0.9 * 0.8) < 1e-9
    # the longest name wins, and tokens the CRF tagged already are left alone
    assert document_matches(keys[2], [], names)[0][:3] == (1, 3, "PER")
    assert document_matches(keys[2], found[2] + [Tagged(1, 3, "PER", 0.6, "crf")], names) == []
    assert document_matches(keys[0], [], {}) == []


def test_extract_entities_finds_a_recurring_arabic_name_in_every_sentence() -> None:
    from streams.enrich import entities

    # alone, "وكان أكتورك في المدينة" gives the CRF too little to tag the surname
    text = "قال الرئيس زكي أكتورك إن الحكومة ستجتمع غدا في القدس. وكان أكتورك في المدينة أمس."
    second = text.rindex("أكتورك")
    alone = entities.extract_entities({"text": text[text.index("وكان") :]}, "ar")
    assert not [e for e in alone if e.type == "PER"]
    found = entities.extract_entities({"text": text}, "ar")
    per = {(m.start, m.end) for e in found if e.type == "PER" for m in e.mentions}
    assert (text.index("زكي"), text.index(" إن")) in per
    assert (second, second + len("أكتورك")) in per  # the surname alone, from the document pass
    # the surname's mention joins the full name's entity (one entity per person)
    assert "document" in next(e for e in found if any(m.start == second for m in e.mentions)).method
