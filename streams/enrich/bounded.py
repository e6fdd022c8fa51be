"""A dict that never holds more than a fixed number of entries: the enrichment's word caches.

The per-word caches of the taggers (features, gazetteer look-ups) are keyed by token, and the
vocabulary of a news stream never stops growing (Arabic clitics make a new form of almost every
word: 205,708 distinct tokens in 12,000 SaudiNewsNet articles, still rising). With bounds of
200,000-300,000 entries and a cached word costing ~4 KB of RSS (its feature strings; 2.7 KB
traced by tracemalloc for the Arabic featurizer's own entry), the enrich worker's RSS rose
~50 MB per 1,000 articles, to 1.32 GB at 12,000, with the word cache still filling (205,706 of
its 300,000 entries; issue 14 item 8, ``bench/bench_memory.py``).

``BoundedCache`` is a plain ``dict`` (look-ups stay the C ``dict.get``); only inserting into a
full cache does work: it drops the older half, by insertion order. On that corpus, the share of
tokens that miss a cache of 50,000 words is 14.0 % (dropping everything when full: 15.4 %;
unbounded: 5.0 %, the first sight of each word), 8.7 % at 100,000.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Featurized words (``features._Word``, ~4 KB each): ~200 MB per featurizer at most.
WORDS = 50_000
# Small values (keys, cut positions, gazetteer look-ups): ~200 bytes per entry. Some fill slowly
# (gazetteer inner keys, cut positions: ~2,700 new entries per 1,000 Arabic articles), so at
# 100,000 they kept RSS rising ~3 MB per 1,000 articles until ~35k articles; at 20,000 they are
# full before 10k. Their misses are cheap next to a featurized word's.
KEYS = 20_000


class BoundedCache(dict[K, V]):
    """At most ``size`` entries; inserting into a full cache drops the older half first."""

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError(f"a cache of {size} entries cannot keep anything")
        super().__init__()
        self.size = size

    def __setitem__(self, key: K, value: V) -> None:
        if len(self) >= self.size and key not in self:
            for old in list(islice(self, len(self) - self.size // 2)):
                del self[old]
        super().__setitem__(key, value)

    def setdefault(self, key: K, default: V) -> V:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
