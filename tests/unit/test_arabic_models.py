"""The Arabic tagger's input: letters as written (ى, ة kept), word clusters, the shipped model."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest

from streams.enrich.features import (
    FeatureSettings,
    Featurizer,
    Gazetteer,
    arabic_fold,
    read_cluster_table,
)

MODELS = Path(__file__).resolve().parents[2] / "streams" / "enrich" / "models"


def _ar(**settings: object) -> FeatureSettings:
    base: dict[str, object] = {"gazetteer": False, "names": False}
    return FeatureSettings(**{**base, **settings})  # type: ignore[arg-type]


def _word(feats: list[str]) -> str:
    return next(f for f in feats if f.startswith("w="))


def test_the_tagger_reads_the_preposition_ala_apart_from_the_name_ali() -> None:
    tokens = ["وقال", "علي", "إن", "الاتفاق", "على", "الطاولة"]
    kept = Featurizer("ar", _ar(arabic_letters="keep_ya_ta")).sequence(tokens)
    assert _word(kept[1]) == "w=علي" and _word(kept[4]) == "w=على"
    assert "1w=على" in kept[3] and "-1w=علي" in kept[2]
    # harakat, tatweel and the hamza of alef are still folded: news writes them at random
    fold = arabic_fold("keep_ya_ta")
    assert fold("إلى") == fold("الى") == "الى" and fold("عَلَى") == "على"
    assert fold("مــدرسة") == "مدرسة" and fold("منى") != fold("مني")
    # the matching key merges them, which is what the tagger used to read
    old = Featurizer("ar", _ar(arabic_letters="normalize")).sequence(tokens)
    assert _word(old[1]) == _word(old[4]) == "w=علي"


def test_name_list_and_training_strings_do_not_fire_on_function_words() -> None:
    settings = _ar(arabic_letters="keep_ya_ta", names=True, span_names=True)
    spans = Gazetteer.from_names({"علي": "PER", "منى": "PER"})  # built with the matching key
    feats = Featurizer("ar", settings, names={"علي": "PER"}, span_names=spans)
    out = feats.sequence(["سلم", "علي", "الرسالة", "على", "الفور", "منى", "ومني"])
    assert "nl=PER" in out[1] and "td=B-PER" in out[1]
    assert "nl=PER" not in out[3] and not [f for f in out[3] if f.startswith("td=")]
    assert "td=B-PER" in out[5] and not [f for f in out[6] if f.startswith("td=")]
    # the name list is keyed by the tagger's form; the matching key stays available
    assert feats.tag_core("وعلى") == "على" and feats.name_key("وعلى") == "علي"
    assert feats.tag_core("بالمدرسة") == "مدرسة" and feats.name_key("بالمدرسة") == "مدرسه"


def test_cluster_features_of_the_word_and_its_neighbours_only_when_enabled() -> None:
    table = {"الرياض": "3.17.201", "جدة": "3.17.88", "وزارة": "5.40.7"}
    tokens = ["زار", "وزارة", "الصحة", "في", "جدة"]
    feats = Featurizer("ar", _ar(arabic_letters="keep_ya_ta", clusters=True), clusters=table)
    out = feats.sequence(tokens)
    assert {"c0=5", "c1=40", "c2=7"} <= set(out[1])
    assert {"1c0=5", "1c2=7"} <= set(out[0]) and {"-1c1=40"} <= set(out[2])
    assert {"c0=3", "c1=17", "c2=88"} <= set(out[4]) and "-1c2=88" not in out[2]
    assert not [f for f in out[0] if f.startswith("c")]  # no entry, no feature
    off = Featurizer("ar", _ar(arabic_letters="keep_ya_ta"), clusters=table).sequence(tokens)
    assert not [f for row in off for f in row if "c0=" in f]


def test_shipped_arabic_model_reads_letters_as_written_and_its_cluster_table() -> None:
    manifest = json.loads((MODELS / "MANIFEST.json").read_text(encoding="utf-8"))
    entry = manifest["models"]["ner-ar"]
    settings = FeatureSettings(**entry["settings"])
    assert settings.arabic_letters != "normalize"
    if settings.clusters:
        table_path = MODELS / settings.cluster_table
        assert entry["clusters"]["file"] == settings.cluster_table
        # a rebuilt table needs a retrained model: the one trained with it is pinned here
        assert entry["clusters"]["size_bytes"] == table_path.stat().st_size
        assert entry["clusters"]["sha256"] == hashlib.sha256(table_path.read_bytes()).hexdigest()
        assert "NC" in entry["clusters"]["licence"] and "non-commercial" in entry["restriction"]
        table = read_cluster_table(table_path)
        assert len(table) >= 20_000
        assert table["رياض"].count(".") == 2  # stems (article split off), three granularities
        with lzma.open(table_path, "rt", encoding="utf-8") as fh:
            header = fh.readline() + fh.readline()
        assert "SaudiNewsNet" in header and "CC BY-NC-SA 4.0" in header
    # the other languages keep the letters they were trained with
    for name, other in manifest["models"].items():
        if name != "ner-ar":
            assert other["settings"].get("arabic_letters", "normalize") == "normalize"


@pytest.mark.parametrize(
    "text",
    [
        "وأكد الوزير على أهمية التعاون بين البلدين في مجال الطاقة.",
        "وحصل الفريق على المركز الأول في البطولة التي أقيمت على أرض الملعب.",
        # a given name before the preposition: "محمد على" must not become "Muhammad Ali"
        "وحصل محمد على الجائزة الأولى في المسابقة.",
        "وشدد الأمير فيصل على أهمية التعليم.",
    ],
)
def test_the_preposition_ala_is_not_a_person(text: str) -> None:
    from streams.enrich import entities

    found = entities.extract_entities({"text": text}, "ar")
    words = {w for e in found for m in e.mentions for w in text[m.start : m.end].split()}
    assert "على" not in words, found


def test_cluster_corpus_tokens_split_clitics_and_keep_letters() -> None:
    from streams.enrich.training.clusters import word_sequence

    got = word_sequence("وبالرياض عام 2015 اتفاق على Apple", None)
    assert got == ["وبال+", "رياض", "عام", "<d>", "اتفاق", "على", "apple"]


def test_kmeans_groups_close_vectors_and_numbers_clusters_by_size() -> None:
    import numpy as np

    from streams.enrich.training.clusters import kmeans

    rng = np.random.default_rng(1)
    a = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.standard_normal((30, 3))
    b = np.array([0.0, 1.0, 0.0]) + 0.05 * rng.standard_normal((10, 3))
    x = np.vstack([a, b]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = kmeans(x, 2, seed=3)
    assert set(ids[:30]) == {0} and set(ids[30:]) == {1}  # 0 = the larger cluster
