"""Train the per-language CRF NER models: ``python -m streams.enrich.training.train``.

Options: ``--data DIR`` reads the corpora from DIR instead of ``../shared/data`` (they are
not shipped; ``training/PROVENANCE.tsv`` says where to get them); ``--open-only`` trains only on
the openly licensed corpora (CC BY-SA: AQMAR, WikiANN, Turkish Wiki NER) and marks the models
so; ``--lang xx`` (repeatable) trains some languages only (the MANIFEST keeps the other
entries); ``--out DIR`` writes elsewhere than ``streams/enrich/models``; ``--tune``
grid-searches c1/c2 on a 10 % hold-out of the training split first (never on dev);
``--ablation`` also trains each model without gazetteer features (and Arabic without its word
clusters and with the matching key's letters) and records their dev F1 beside the real one.
A model whose settings name a ``cluster_table`` (Arabic) gets it built first by
``training/clusters.py`` when it is missing (from the unlabelled SaudiNewsNet articles).

Output per language: ``ner-<lang>.crfsuite.xz`` (crfsuite model, xz-compressed) and an entry in
``MANIFEST.json``: files trained on with their licences, restriction, size, training time,
feature settings, dev scores, version string. Single process, deterministic (L-BFGS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrfsuite  # type: ignore[import-untyped]

from streams.enrich import arabic
from streams.enrich.features import (
    FeatureSettings,
    Featurizer,
    Gazetteer,
    arabic_fold,
    decode,
    load_clusters,
)
from streams.enrich.training import data as corpora
from streams.enrich.training.data import read_corpus
from streams.enrich.training.gazetteers import GAZ_DIR
from streams.enrich.training.scoring import Score, spans

MODELS = Path(__file__).resolve().parents[1] / "models"
GAZETTEER_FILES = ("countries.tsv.xz", "cities.tsv.xz")
VERSION_PREFIX = "crf-2026.11"

LICENCES = {
    "ar_anercorp": ("ANERcorp (Benajiba et al. 2007)", "research use"),
    "ar_aqmar": ("AQMAR (Mohit et al. 2012)", "CC BY-SA 3.0"),
    "en_conll03": ("CoNLL-2003, Reuters RCV1 text", "research use"),
    "en_wikiann": ("WikiANN (Rahimi et al. 2019)", "CC BY-SA"),
    "fr_wikiann": ("WikiANN (Rahimi et al. 2019)", "CC BY-SA"),
    "de_wikiann": ("WikiANN (Rahimi et al. 2019)", "CC BY-SA"),
    "nl_wikiann": ("WikiANN (Rahimi et al. 2019)", "CC BY-SA"),
    "tr_wiki": ("Turkish Wiki NER (turkish-nlp-suite)", "CC BY-SA 4.0"),
}
RESEARCH = {"ar_anercorp", "en_conll03"}
CORPORA_NOTE = (
    "not shipped; read from ../shared/data/ner or --data DIR at build time "
    "(publishers, versions and licences: streams/enrich/training/PROVENANCE.tsv)"
)


@dataclass
class Spec:
    lang: str
    train: tuple[str, ...]
    dev: str
    settings: FeatureSettings = field(default_factory=FeatureSettings)
    open_train: tuple[str, ...] = ()  # the training files of the --open-only build
    # Shuffle the training sentences (fixed seed) so that the jackknife folds of the name lists
    # mix the files; needed when several corpora are concatenated.
    shuffle: bool = False
    # --ablation: besides "without_gazetteer_features", models trained with these settings
    # changed, their dev scores recorded under the label in MANIFEST "ablation"
    ablations: tuple[tuple[str, dict[str, Any]], ...] = ()

    def files(self, open_only: bool) -> tuple[str, ...]:
        if not open_only:
            return self.train
        files = self.open_train or self.train
        assert all(f.split(".")[0] not in RESEARCH for f in files)
        return files


SPECS: dict[str, Spec] = {
    # Arabic reads words with ى and ة as written (not the matching key's ي and ه: على is not
    # علي) and the word clusters of SaudiNewsNet (training/clusters.py) of each word and its
    # neighbours; MANIFEST "ablation" holds the dev scores without each of them.
    "ar": Spec(
        "ar",
        ("ar_anercorp.train",),
        "ar_anercorp.dev",
        FeatureSettings(
            c1=0.05,
            c2=0.01,
            minfreq=1,
            max_iterations=200,
            o_threshold=0.7,
            span_names=True,
            arabic_letters="keep_ya_ta",
            clusters=True,
            cluster_table="clusters-ar.tsv.xz",
            cluster_window=0,  # the word's own clusters only: dev F1 0.729, +-1: 0.723, +-2: 0.714
        ),
        open_train=("ar_aqmar.train",),
        ablations=(
            ("without_clusters", {"clusters": False}),
            ("with_matching_letters", {"arabic_letters": "normalize"}),
        ),
    ),
    "en": Spec(
        "en",
        ("en_conll03.train",),
        "en_conll03.dev",
        FeatureSettings(c1=0.05, c2=0.01, minfreq=1, max_iterations=150),
        open_train=("en_wikiann.train",),
    ),
    # French and German also learn from the WikiANN training files of their neighbours: names
    # and Wikipedia's title conventions are shared (dev F1 +0.008 fr with en/de/nl; German
    # gained only with Dutch). Both see words up to 4 away and affixes up to 6 letters (fr:
    # +0.011 on dev, +0.007 on a 10 % hold-out of its training file, checked because the window
    # was chosen on dev; Arabic and Turkish lost or stayed flat with a wider window).
    "fr": Spec(
        "fr",
        ("fr_wikiann.train", "en_wikiann.train", "de_wikiann.train", "nl_wikiann.train"),
        "fr_wikiann.dev",
        FeatureSettings(window=4, affixes=6, span_names=True, runs=True),
        shuffle=True,
    ),
    "de": Spec(
        "de",
        ("de_wikiann.train", "nl_wikiann.train"),
        "de_wikiann.dev",
        FeatureSettings(window=4, affixes=6, span_names=True),  # dev +0.007, hold-out +0.002
        shuffle=True,
    ),
    "nl": Spec("nl", ("nl_wikiann.train",), "nl_wikiann.dev", FeatureSettings()),
    "tr": Spec("tr", ("tr_wiki.train",), "tr_wiki.dev", FeatureSettings()),
}


def load_gazetteer(gaz_dir: Path = GAZ_DIR) -> Gazetteer:
    return Gazetteer.load(gaz_dir / name for name in GAZETTEER_FILES)


Sentence = tuple[list[str], list[str]]


def build_lexicon(data: Sequence[Sentence]) -> dict[str, int]:
    """Normalised Arabic word counts of the training text plus the open packaged lexicon."""
    counts: Counter[str] = Counter(arabic.default_known())
    for tokens, _tags in data:
        for tok in tokens:
            if arabic.is_arabic(tok):
                counts[arabic.normalize(tok)] += 1
    return {w: c for w, c in counts.items() if c >= 2}


def build_names(feats: Featurizer, data: Sequence[Sentence]) -> dict[str, str]:
    """Name list: keys seen mostly (>= 50 %, >= 2 times) inside entities of one type."""
    total: Counter[str] = Counter()
    typed: dict[str, Counter[str]] = defaultdict(Counter)
    for tokens, tags in data:
        for tok, tag in zip(tokens, tags, strict=True):
            key = feats.tag_core(tok)
            if len(key) < 2 or not key[0].isalpha():
                continue
            total[key] += 1
            if tag != "O":
                typed[key][tag[2:]] += 1
    names: dict[str, str] = {}
    for key, by_type in typed.items():
        typ, n = by_type.most_common(1)[0]
        if n >= 2 and n >= 0.5 * total[key]:
            names[key] = typ
    return names


def build_span_names(data: Sequence[Sentence], min_share: float = 0.0) -> dict[str, str]:
    """Entity strings of the training data -> their most frequent type. A one-word string is
    kept only if at least ``min_share`` of that word's occurrences are inside an entity (so
    the preposition "لي", once part of a Chinese name, does not mark every "to me")."""
    typed: dict[str, Counter[str]] = defaultdict(Counter)
    for tokens, tags in data:
        for start, end, typ in spans(tags):
            typed[" ".join(tokens[start:end])][typ] += 1
    if min_share > 0:
        single = {name for name in typed if " " not in name}
        seen: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        for tokens, tags in data:
            for tok, tag in zip(tokens, tags, strict=True):
                if tok in single:
                    seen[tok] += 1
                    inside[tok] += tag != "O"
        for name in single:
            if inside[name] < min_share * seen[name]:
                del typed[name]
    return {name: c.most_common(1)[0][0] for name, c in typed.items()}


def featurizer(
    lang: str,
    settings: FeatureSettings,
    gaz: Gazetteer | None,
    lexicon: Mapping[str, int] | None = None,
    names: Mapping[str, str] | None = None,
    span_names: Mapping[str, str] | None = None,
    clusters: Mapping[str, str] | None = None,
) -> Featurizer:
    """The featurizer of a model; ``clusters`` = its settings' ``cluster_table`` unless given."""
    if lang == "ar" and lexicon is None:
        lexicon = arabic.default_known()
    return Featurizer(
        lang,
        settings,
        gaz,
        lexicon,
        clusters=clusters,
        names=names if settings.names else None,
        span_names=(
            Gazetteer.from_names(span_names, fold=arabic_fold(settings.arabic_letters))
            if settings.span_names and span_names
            else None
        ),
    )


def training_sequences(
    lang: str,
    settings: FeatureSettings,
    gaz: Gazetteer | None,
    data: Sequence[Sentence],
    lexicon: Mapping[str, int] | None,
    clusters: Mapping[str, str] | None = None,
) -> tuple[list[list[list[str]]], dict[str, str], dict[str, str]]:
    """Features of the training data (name list and entity strings jackknifed over contiguous
    folds) and the name list and entity strings of all of it: what the run-time featurizer
    (and any scoring of the model) must be built with."""
    base = featurizer(lang, settings, gaz, lexicon, clusters=clusters)
    names = build_names(base, data) if settings.names else {}
    use_spans = settings.span_names
    span_names = build_span_names(data, settings.span_names_min_share) if use_spans else {}
    if not settings.names and not use_spans:
        return [base.sequence(t) for t, _ in data], names, span_names
    k = max(2, settings.jackknife)
    size = (len(data) + k - 1) // k
    seqs: list[list[list[str]]] = []
    for fold in range(k):
        lo, hi = fold * size, min(len(data), (fold + 1) * size)
        others = [*data[:lo], *data[hi:]]
        feats = featurizer(
            lang,
            settings,
            gaz,
            lexicon,
            build_names(base, others) if settings.names else None,
            build_span_names(others, settings.span_names_min_share) if use_spans else None,
            clusters,
        )
        seqs += [feats.sequence(t) for t, _ in data[lo:hi]]
    return seqs, names, span_names


def load(names: Sequence[str]) -> list[Sentence]:
    out: list[Sentence] = []
    for name in names:
        for row in read_corpus(name):
            if row["tokens"]:
                out.append((row["tokens"], row["tags"]))
    return out


def _train_crf(
    seqs: Sequence[list[list[str]]],
    data: Sequence[Sentence],
    settings: FeatureSettings,
    path: Path,
) -> None:
    trainer = pycrfsuite.Trainer(verbose=False)
    for xseq, (_tokens, tags) in zip(seqs, data, strict=True):
        trainer.append(xseq, tags)
    trainer.set_params(
        {
            "c1": settings.c1,
            "c2": settings.c2,
            "max_iterations": settings.max_iterations,
            "feature.minfreq": settings.minfreq,
            "feature.possible_transitions": True,
        }
    )
    trainer.train(str(path))


def _dev_score(feats: Featurizer, model: Path, data: list[Sentence]) -> Score:
    tagger = pycrfsuite.Tagger()
    tagger.open(str(model))
    score = Score()
    for tokens, tags in data:
        pred = decode(tagger, feats.sequence(tokens), feats.settings.o_threshold)
        score.add(spans(tags), spans(pred))
        score.tokens += len(tokens)
    tagger.close()
    return score


def tune(spec: Spec, files: Sequence[str], gaz: Gazetteer | None) -> FeatureSettings:
    """Grid-search c1/c2 on a 10 % hold-out of the training data (not on dev)."""
    data = load(files)
    rng = random.Random(13)
    rng.shuffle(data)
    cut = len(data) // 10
    held, rest = data[:cut], data[cut:]
    best: tuple[float, FeatureSettings] | None = None
    for c1, c2 in ((0.02, 0.01), (0.05, 0.01), (0.1, 0.01), (0.05, 0.05), (0.2, 0.01)):
        settings = FeatureSettings(**{**spec.settings.as_dict(), "c1": c1, "c2": c2})
        lexicon = build_lexicon(rest) if spec.lang == "ar" else None
        seqs, names, span_names = training_sequences(spec.lang, settings, gaz, rest, lexicon)
        feats = featurizer(spec.lang, settings, gaz, lexicon, names, span_names)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.crfsuite"
            _train_crf(seqs, rest, settings, path)
            f1 = _dev_score(feats, path, held).prf()["f1"]
        print(f"  tune {spec.lang} c1={c1} c2={c2}: hold-out F1 {f1:.4f}", flush=True)
        if best is None or f1 > best[0]:
            best = (f1, settings)
    assert best is not None
    return best[1]


def _variant(
    spec: Spec,
    settings: FeatureSettings,
    gaz: Gazetteer | None,
    data: Sequence[Sentence],
    dev: list[Sentence],
    lexicon: Mapping[str, int] | None,
    path: Path,
) -> dict[str, Any]:
    """Dev scores of a model trained on ``data`` with ``settings`` (for the ablations)."""
    seqs, names, span_names = training_sequences(spec.lang, settings, gaz, data, lexicon)
    feats = featurizer(spec.lang, settings, gaz, lexicon, names, span_names)
    _train_crf(seqs, data, settings, path)
    return _dev_score(feats, path, dev).report()


def train_one(
    spec: Spec, out: Path, open_only: bool, gaz: Gazetteer, do_tune: bool, ablation: bool
) -> dict[str, Any]:
    files = spec.files(open_only)
    settings = tune(spec, files, gaz) if do_tune else spec.settings
    if open_only and settings.clusters:
        # the clusters come from a non-commercial (CC BY-NC-SA) corpus: not in an open build
        settings = FeatureSettings(**{**settings.as_dict(), "clusters": False})
    if settings.clusters and settings.cluster_table:
        from streams.enrich.training import clusters

        clusters.ensure()  # built from the unlabelled corpus when missing
        load_clusters(settings.cluster_table)
    started = time.monotonic()
    data = load(files)
    if spec.shuffle:
        random.Random(7).shuffle(data)
    lexicon = build_lexicon(data) if spec.lang == "ar" else None
    seqs, names, span_names = training_sequences(spec.lang, settings, gaz, data, lexicon)
    feats = featurizer(spec.lang, settings, gaz, lexicon, names, span_names)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / f"ner-{spec.lang}.crfsuite"
        _train_crf(seqs, data, settings, raw)
        seconds = time.monotonic() - started
        dev = load((spec.dev,))
        score = _dev_score(feats, raw, dev)
        blob = raw.read_bytes()
        entry_ablation: dict[str, Any] | None = None
        if ablation:
            plain = FeatureSettings(**{**settings.as_dict(), "gazetteer": False})
            raw0 = Path(tmp) / "plain.crfsuite"
            entry_ablation = {
                "without_gazetteer_features": _variant(spec, plain, None, data, dev, lexicon, raw0)
            }
            for label, changes in spec.ablations:
                alt = FeatureSettings(**{**settings.as_dict(), **changes})
                entry_ablation[label] = _variant(spec, alt, gaz, data, dev, lexicon, raw0)
                print(f"  {spec.lang} {label}: dev F1 {entry_ablation[label]['micro']['f1']:.4f}")
    target = out / f"ner-{spec.lang}.crfsuite.xz"
    target.write_bytes(lzma.compress(blob, preset=9))
    aux = out / f"ner-{spec.lang}.aux.json.xz"
    aux_data = {"lexicon": lexicon, "names": names, "span_names": span_names}
    aux.write_bytes(
        lzma.compress(
            json.dumps(aux_data, ensure_ascii=False, sort_keys=True).encode("utf-8"), preset=9
        )
    )
    digest = hashlib.sha256(blob).hexdigest()
    entry: dict[str, Any] = {
        "file": target.name,
        "aux_file": aux.name,
        "aux_size_bytes": aux.stat().st_size,
        "version": f"{VERSION_PREFIX}-{digest[:8]}",
        "sha256_uncompressed": digest,
        "size_bytes": target.stat().st_size,
        "size_uncompressed_bytes": len(blob),
        "trained_on": [
            {
                "file": f"{name}.jsonl",
                "corpus": LICENCES[name.split(".")[0]][0],
                "licence": LICENCES[name.split(".")[0]][1],
            }
            for name in files
        ],
        "restriction": (
            "research use only (trained on a research-use corpus)"
            if any(f.split(".")[0] in RESEARCH for f in files)
            else "none beyond CC BY-SA attribution/share-alike of the training data"
        ),
        "open_only": all(f.split(".")[0] not in RESEARCH for f in files),
        "gazetteers": [f"gazetteers/{g}" for g in GAZETTEER_FILES] if settings.gazetteer else [],
        "lexicon": (
            f"{aux.name}: word counts of the training files + gazetteers/ar_lexicon.tsv.xz"
            if lexicon
            else None
        ),
        "name_list": f"{aux.name}: {len(names)} keys from the training entities (jackknifed)",
        "span_names": f"{aux.name}: {len(span_names)} entity strings of the training files",
        "training_seconds": round(seconds, 1),
        "training_sentences": len(data),
        "settings": settings.as_dict(),
        "dev_file": f"{spec.dev}.jsonl",
        "dev": score.report(),
    }
    if settings.clusters and settings.cluster_table:
        table = MODELS / settings.cluster_table
        entry["clusters"] = {
            "file": settings.cluster_table,
            "size_bytes": table.stat().st_size,
            "sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
            "built_by": "streams/enrich/training/clusters.py",
            "source": "SaudiNewsNet (Alhagri 2015), unlabelled Arabic news, not shipped",
            "licence": "CC BY-NC-SA 4.0",
        }
        entry["restriction"] += "; non-commercial (word clusters of a CC BY-NC-SA 4.0 corpus)"
        entry["open_only"] = False
    if entry_ablation:
        entry["ablation"] = entry_ablation
    micro = entry["dev"]["micro"]
    print(
        f"{spec.lang}: {len(data)} sentences, {seconds:.0f}s, {entry['size_bytes'] / 1e6:.2f} MB, "
        f"dev P {micro['p']:.4f} R {micro['r']:.4f} F1 {micro['f1']:.4f}",
        flush=True,
    )
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open-only", action="store_true", help="openly licensed corpora only")
    parser.add_argument("--lang", action="append", choices=sorted(SPECS), help="repeatable")
    parser.add_argument("--out", type=Path, default=MODELS)
    parser.add_argument("--tune", action="store_true", help="grid-search c1/c2 on a hold-out")
    parser.add_argument("--ablation", action="store_true", help="also train without gazetteer")
    parser.add_argument("--data", type=Path, help="development data (default: ../shared/data)")
    args = parser.parse_args(argv)
    try:
        corpora.use(args.data)
    except corpora.DataMissingError as exc:
        parser.error(str(exc))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "MANIFEST.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    models = manifest.setdefault("models", {})
    gaz = load_gazetteer()
    started = time.monotonic()
    for lang in args.lang or list(SPECS):
        models[f"ner-{lang}"] = train_one(
            SPECS[lang], out, args.open_only, gaz, args.tune, args.ablation
        )
    # Where the corpora come from, not where they sat on the build machine: they are not
    # shipped (see training/PROVENANCE.tsv for the publishers and licences).
    manifest["corpora"] = CORPORA_NOTE
    manifest["built_with"] = {
        "python-crfsuite": pycrfsuite.__version__
        if hasattr(pycrfsuite, "__version__")
        else "0.9.12"
    }
    tables = {
        m["clusters"]["file"]: m["clusters"]["size_bytes"]
        for m in models.values()
        if "clusters" in m
    }
    manifest["total_size_bytes"] = sum(
        int(m["size_bytes"]) + int(m.get("aux_size_bytes", 0)) for m in models.values()
    ) + sum(tables.values())
    manifest_path.write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"trained in {time.monotonic() - started:.0f}s -> {manifest_path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
