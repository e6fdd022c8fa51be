"""Arabic word clusters from unlabelled news: ``python -m streams.enrich.training.clusters``.

Source: SaudiNewsNet (Alhagri 2015; 31,030 articles of 14 Saudi newspapers, July-August 2015,
CC BY-NC-SA 4.0), read at build time from ``<data>/unlabelled/ar_saudinewsnet/*.zip`` (``../shared
/data`` or ``--data DIR``; see ``training/PROVENANCE.tsv``). It is not shipped: only the derived
table is, ``streams/enrich/models/clusters-ar.tsv.xz`` (word -> three cluster ids), which carries
the source's licence (non-commercial, share-alike; see ``models/README.md``).

How: every title and body is tokenised as the tagger tokenises (``features.tokenize``), each
Arabic word put in ``features.CLUSTER_LETTERS`` form (harakat dropped, alef unified, ى and ة
kept) and split into its proclitics+article and stem (``arabic.split_clitics`` with the open
lexicon); the prefix stays in the text as a token of its own ("و+", "ال+") so that the stem's
neighbours are words, not clitic variants of them. gensim word2vec (skip-gram) learns vectors
of the words seen at least ``--min-count`` times; spherical k-means groups the unit vectors at
three granularities (``--k``, coarse to fine). Table line: ``word<TAB>c1.c2.c3``, most frequent word
first, ``#`` lines of provenance and parameters above.

``train.py`` calls ``ensure`` before it trains a model that uses the table: the table is built
only when it is missing (or with ``--rebuild``), so ``make models`` reuses the committed one and
its models stay reproducible; word2vec with several worker threads is not deterministic. The
build takes about 7 CPU-minutes (``nice``: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.enrich import arabic
from streams.enrich.features import (
    CLUSTER_LETTERS,
    MODELS_DIR,
    arabic_fold,
    latin_key,
    tokenize,
)
from streams.enrich.training import data

TABLE = "clusters-ar.tsv.xz"
SOURCE = "unlabelled/ar_saudinewsnet"
LETTERS = CLUSTER_LETTERS  # harakat/tatweel dropped, alef forms unified, ى and ة kept
GRANULARITIES = (64, 256, 1024)
PROVENANCE = (
    "SaudiNewsNet (Alhagri 2015), 31,030 Arabic newspaper articles of July-August 2015, "
    "parallelfold/SaudiNewsNet@4e39239966c2ae8a3faa591201acb9cd1f51199d:dataset/*.zip; "
    "CC BY-NC-SA 4.0: this derived table is licensed the same way (non-commercial, share-alike, "
    "attribution); the articles remain the newspapers' and are not included"
)


def _models_dir() -> Path:
    return Path(str(MODELS_DIR))


def source_files(root: Path | None = None) -> list[Path]:
    folder = data.data_dir(root) / SOURCE
    files = sorted(folder.glob("*.zip"))
    if not files:
        raise data.DataMissingError(f"no SaudiNewsNet zip files in {folder}")
    return files


def articles(files: Sequence[Path]) -> Iterator[str]:
    """Title and body of every article, in file order."""
    for path in files:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                for item in json.loads(zf.read(member)):
                    for key in ("title", "content"):
                        text = item.get(key) or ""
                        if text:
                            yield text


def word_sequence(text: str, lexicon: Any) -> list[str]:
    """The tokens word2vec learns from: Arabic prefix ("و+", "ال+") and stem in the tagger's
    form, other words NFKC-casefolded, any token with a digit as "<d>"."""
    fold = arabic_fold(LETTERS)
    out: list[str] = []
    for start, end in tokenize(text):
        tok = text[start:end]
        if any(ch.isdigit() for ch in tok):
            out.append("<d>")
        elif arabic.is_arabic(tok):
            prefix, stem = arabic.split_clitics(fold(tok), lexicon)
            if prefix:
                out.append(prefix + "+")
            if stem:
                out.append(stem)
        else:
            out.append(latin_key(tok))
    return out


def kmeans(vectors: Any, k: int, seed: int, iterations: int = 25) -> Any:
    """Spherical k-means (unit vectors, cosine) with k-means++ seeding; cluster per row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = vectors.shape[0]
    # k-means++ on a sample (fast, and enough to spread the seeds)
    sample = vectors[rng.choice(n, size=min(n, 20 * k), replace=False)]
    centres = [sample[rng.integers(len(sample))]]
    best = 1.0 - sample @ centres[0]
    for _ in range(1, k):
        p = np.maximum(best, 0.0) ** 2
        idx = rng.choice(len(sample), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(sample))
        centres.append(sample[idx])
        best = np.minimum(best, 1.0 - sample @ sample[idx])
    c = np.stack(centres).astype(np.float32)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        new = np.empty(n, dtype=np.int64)
        for lo in range(0, n, 8192):
            new[lo : lo + 8192] = np.argmax(vectors[lo : lo + 8192] @ c.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        sums = np.zeros_like(c)
        np.add.at(sums, assign, vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        c = np.where(empty[:, None], c, sums / np.where(norms == 0, 1.0, norms))
    # order the clusters by size so that ids do not depend on the seeding order
    sizes = np.bincount(assign, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(k)
    return rank[assign]


def build(
    root: Path | None = None,
    out: Path | None = None,
    *,
    dim: int = 100,
    window: int = 5,
    epochs: int = 5,
    min_count: int = 5,
    max_words: int = 60_000,
    granularities: Sequence[int] = GRANULARITIES,
    workers: int = 2,
    seed: int = 13,
) -> Path:
    """Train the vectors, cluster them and write the table; returns its path."""
    import numpy as np
    from gensim.models import Word2Vec

    started = time.monotonic()
    files = source_files(root)
    lexicon = arabic.default_known()
    sentences: list[list[str]] = []
    n_articles = 0
    for text in articles(files):
        n_articles += 1
        for line in text.split("\n"):
            seq = word_sequence(line, lexicon)
            if len(seq) > 1:
                sentences.append(seq)
    n_tokens = sum(len(s) for s in sentences)
    print(
        f"clusters: {n_articles} texts, {len(sentences)} lines, {n_tokens} tokens "
        f"({time.monotonic() - started:.0f}s)",
        flush=True,
    )
    model = Word2Vec(
        sentences=sentences,
        vector_size=dim,
        window=window,
        min_count=min_count,
        sg=1,
        negative=5,
        sample=1e-4,
        epochs=epochs,
        workers=workers,
        seed=seed,
    )
    print(f"clusters: word2vec done ({time.monotonic() - started:.0f}s)", flush=True)
    counts: Counter[str] = Counter()
    for seq in sentences:
        counts.update(seq)
    del sentences
    words = [
        w
        for w, _c in counts.most_common()
        if w in model.wv.key_to_index and not w.endswith("+") and w != "<d>" and w[:1].isalpha()
    ][:max_words]
    vectors = np.stack([model.wv[w] for w in words]).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    ids = [kmeans(vectors, k, seed + i) for i, k in enumerate(granularities)]
    target = out or _models_dir() / TABLE
    header = [
        f"# Word clusters: word<TAB>{'.'.join(f'c{k}' for k in granularities)} (cluster ids, "
        "coarse to fine, 0 = the largest cluster), built by streams/enrich/training/clusters.py",
        f"# source: {PROVENANCE}",
        f"# {len(files)} files, {n_articles} titles+bodies, {n_tokens} tokens; word2vec skip-gram "
        f"dim {dim} window {window} epochs {epochs} min_count {min_count} (gensim "
        f"{_version('gensim')}); spherical k-means k={','.join(map(str, granularities))}; "
        f"{len(words)} most frequent words; Arabic in the tagger's form ({LETTERS}), stems",
    ]
    lines = [*header]
    for i, w in enumerate(words):
        lines.append(f"{w}\t{'.'.join(str(int(g[i])) for g in ids)}")
    target.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode("utf-8"), preset=9))
    print(
        f"clusters: {len(words)} words -> {target} ({target.stat().st_size / 1e3:.0f} kB, "
        f"{time.monotonic() - started:.0f}s)",
        flush=True,
    )
    return target


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def ensure(root: Path | None = None, rebuild: bool = False) -> Path:
    """The committed table, built first when missing (or when ``rebuild``)."""
    target = _models_dir() / TABLE
    if rebuild or not target.is_file():
        return build(root)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="development data (default: ../shared/data)")
    parser.add_argument("--out", type=Path, help=f"write here instead of models/{TABLE}")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if present")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=60_000)
    parser.add_argument("--k", type=int, nargs="+", default=list(GRANULARITIES))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        data.use(args.data)
    except data.DataMissingError as exc:
        parser.error(str(exc))
    if args.out is None and not args.rebuild and (_models_dir() / TABLE).is_file():
        print(f"clusters: {TABLE} present (--rebuild to build it again)")
        return 0
    build(
        out=args.out,
        dim=args.dim,
        epochs=args.epochs,
        min_count=args.min_count,
        max_words=args.max_words,
        granularities=args.k,
        workers=args.workers,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
