"""The CRF feature extractors added for names longer than the window and names seen in training."""

from __future__ import annotations

from streams.enrich.training.features import FeatureSettings, Featurizer, Gazetteer


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
