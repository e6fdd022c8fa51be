"""Where the development corpora live: ``../shared/data`` next to the checkout, or ``--data DIR``.

Build-time only (training, evaluation, benchmarks); nothing at run time imports this. The corpora
are public data sets that this repository does not redistribute (see
``streams/enrich/training/PROVENANCE.tsv`` for their publishers and licences, and how to fetch
them). Layout of the data directory (as in ``../shared/data``):

* ``ner/<lang>_<corpus>.{train,dev}.jsonl`` - one sentence a line, ``{"tokens", "tags", "src"}``;
* ``langid/dev.jsonl`` - ``{"text", "lang", "length", "src"}``, the language-ID development set.

Resolution: the directory given with ``--data DIR`` (each tool's ``main`` calls ``use``), else
``<checkout>/../shared/data``. A missing directory is an error that says where it looked and how
to get the data; there is no fallback to anything shipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]
DEFAULT_DATA = CHECKOUT.parent / "shared" / "data"
_chosen: Path | None = None  # set once by a tool's entry point (``--data``)


class DataMissingError(FileNotFoundError):
    """The development corpora are not where the build tools looked."""


def use(directory: Path | str | None) -> Path:
    """Entry points: read the corpora from ``directory`` (``None``: the default) from now on;
    fails at once when it is missing, before any work starts."""
    global _chosen
    _chosen = data_dir(directory)
    return _chosen


def data_dir(explicit: Path | str | None = None) -> Path:
    """The data directory: ``explicit``, else the one chosen by ``use``, else
    ``../shared/data``; ``DataMissingError`` when it does not exist."""
    path = Path(explicit or _chosen or DEFAULT_DATA).expanduser()
    if not path.is_dir():
        raise DataMissingError(
            f"development data not found at {path}: pass --data DIR (a directory laid out as "
            "ner/*.jsonl and langid/dev.jsonl), or place the data at "
            f"{DEFAULT_DATA}. The corpora are public but not shipped with newsflow; "
            "streams/enrich/training/PROVENANCE.tsv names where to fetch each one."
        )
    return path


def corpus_path(name: str, root: Path | None = None) -> Path:
    """``ar_anercorp.train`` -> ``<data>/ner/ar_anercorp.train.jsonl``."""
    path = data_dir(root) / "ner" / f"{name}.jsonl"
    if not path.is_file():
        raise DataMissingError(f"{path} is missing from the development data")
    return path


def langid_path(root: Path | None = None) -> Path:
    path = data_dir(root) / "langid" / "dev.jsonl"
    if not path.is_file():
        raise DataMissingError(f"{path} is missing from the development data")
    return path


def read_corpus(name: str, root: Path | None = None) -> Iterator[dict[str, list[str]]]:
    """The sentences of one NER file, in file order."""
    with corpus_path(name, root).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
