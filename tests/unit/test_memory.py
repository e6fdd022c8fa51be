"""The enrichment's memory stays bounded however many new words it reads (issue 14 item 8).

The enrich worker's RSS rose ~50 MB per 1,000 Arabic articles because the taggers' per-word
caches held up to 300,000 featurized words (~4 KB each). These tests feed ever-new words (a
news stream's vocabulary never stops growing) and check that every cache that grows is bounded
and that the memory it holds levels off.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import random
import tracemalloc
from collections.abc import Iterator

import pytest

import streams.enrich
from streams.enrich import entities, features, names
from streams.enrich.bounded import KEYS, WORDS, BoundedCache

ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
LATIN = "abcdefghijklmnopqrstuvwxyz"


def new_words(seed: int) -> Iterator[str]:
    """Words never seen before: Arabic (with and without clitics/article) and capitalised Latin."""
    rng = random.Random(seed)
    while True:
        stem = "".join(rng.choice(ARABIC) for _ in range(rng.randint(4, 8)))
        yield rng.choice(("", "و", "ب", "ال", "وال", "لل")) + stem
        yield rng.choice(LATIN).upper() + "".join(rng.choice(LATIN) for _ in range(7))


def take(words: Iterator[str], n: int) -> list[str]:
    return [next(words) for _ in range(n)]


def test_bounded_cache_keeps_at_most_size_entries_and_the_newest() -> None:
    cache: BoundedCache[int, int] = BoundedCache(100)
    for i in range(1000):
        cache[i] = i
        assert len(cache) <= 100
    assert cache.get(999) == 999 and cache.get(0) is None
    assert set(cache) == set(range(900, 1000))  # a full cache drops its older half
    cache[999] = -1  # replacing a key of a full cache drops nothing
    assert len(cache) == 100 and cache[999] == -1
    cache.update({i: i for i in range(2000, 2300)})
    cache.setdefault(5000, 1)
    assert len(cache) <= 100 and 5000 in cache
    with pytest.raises(ValueError):
        BoundedCache(1)


def _dicts(*owners: object) -> dict[str, dict[object, object]]:
    found: dict[str, dict[object, object]] = {}
    for owner in owners:
        for name, value in vars(owner).items():
            if isinstance(value, dict):
                found[f"{type(owner).__name__}.{name}"] = value
    return found


def test_every_cache_that_grows_with_new_words_is_bounded() -> None:
    """Tag text made of new words with every loaded model: each per-model dict that grew must be
    a ``BoundedCache`` (a plain dict there is a cache that grows with the vocabulary)."""
    words = new_words(1)
    grown: set[str] = set()
    for lang, model in entities._state().models.items():
        f = model.featurizer
        owners: list[object] = [f, model]
        if f.gazetteer is not None:
            owners.append(f.gazetteer)
        if f.span_names is not None:
            owners.append(f.span_names)
        before = {name: len(d) for name, d in _dicts(*owners).items()}
        for _ in range(3):
            tokens = take(words, 200)
            model.tag(tokens, f.gazetteer.match(tokens, f.lexicon) if f.gazetteer else None)
            for tok in tokens[:50]:
                f.name_key(tok)
                f.cuts(tok)
        for name, d in _dicts(*owners).items():
            if len(d) > before.get(name, 0):
                grown.add(name)
                assert isinstance(d, BoundedCache), f"{lang}: {name} grows without a bound"
                assert d.size <= max(WORDS, KEYS), f"{lang}: {name} holds up to {d.size}"
    assert {"Featurizer._cache", "Gazetteer._first_cache"} <= grown  # the test did feed them


def test_featurized_words_level_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory held by a featurizer reading only new words stops growing once its cache is full:
    traced memory after 5x the bound is within 10 % of that after 2x (the words featurized
    without a bound would grow it ~2.5x)."""
    bound = 2000
    monkeypatch.setattr(features, "WORDS", bound)
    monkeypatch.setattr(features, "KEYS", bound)
    model = entities._state().models["ar"]
    ref = model.featurizer
    names = {"الرياض": "LOC", "محمد بن سلمان": "PER", "Saudi Arabia": "LOC", "الأمم المتحدة": "ORG"}
    gaz = features.Gazetteer.from_names(names, fold=ref.fold)  # caches of the patched bound
    spans = features.Gazetteer.from_names(names, fold=ref.fold)
    f = features.Featurizer("ar", ref.settings, gaz, ref.lexicon, ref.clusters, ref.names, spans)
    words = new_words(2)
    gc.collect()
    tracemalloc.start()
    try:
        sizes = []
        for _ in range(5):
            for _start in range(0, bound, 100):
                f.sequence(take(words, 100))
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(f._cache) <= bound
    assert sizes[4] <= sizes[1] * 1.10, [round(s / 1e6, 1) for s in sizes]


def test_memoised_functions_of_the_enrichment_are_bounded() -> None:
    """Every ``functools`` memo of the run-time enrichment modules has a size, and a small one:
    the linker's memos at 65,536 entries kept the enrich worker's RSS rising ~5 MB per 1,000
    articles past 24,000 (bench/results/memory-after-wordcaches.json)."""
    skip = ("training", "eval_")
    memos = {}
    for info in pkgutil.iter_modules(streams.enrich.__path__, "streams.enrich."):
        if any(part in info.name for part in skip):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if callable(getattr(obj, "cache_parameters", None)):
                memos[f"{info.name}.{name}"] = obj.cache_parameters()["maxsize"]
    assert "streams.enrich.linking._link" in memos
    unbounded = {name: size for name, size in memos.items() if size is None or size > 1 << 13}
    assert not unbounded, unbounded


def test_name_key_caches_fill_early() -> None:
    """The name-key caches are full (and so level) after ~20,000 distinct names: ~5k Arabic
    articles. At 100,000 they filled only after ~25k articles, 3 MB of RSS per 1,000 on the way."""
    words = new_words(3)
    for _ in range(25_000):
        names.key(f"{next(words)} {next(words)}")
    sizes = {n: len(c) for n, c in vars(names).items() if n.endswith("_cache")}
    assert sizes and all(size <= 20_001 for size in sizes.values()), sizes
