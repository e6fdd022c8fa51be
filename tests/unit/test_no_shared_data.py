"""The repository ships only what it may: no file of ``../shared/data``, and no text taken from it.

``../shared/data`` (next to the checkout) holds the development corpora: public, but not ours to
redistribute. Two checks against it, read at run time (outside CI the test skips with the reason
when the directory is absent; with ``CI=true`` it fails):

* **whole files** - every shared file and every member of a shared zip, against every repository
  file as is and decompressed (xz, gz, bz2, zip). Sizes first: the xz index, the gzip trailer and
  the zip directory give the uncompressed size without inflating anything, so only a file whose
  size matches a shared one is hashed (a 50 MB model is never decompressed just to be cleared).
* **runs of text** - two fingerprints of the shared texts (NER sentences re-joined,
  language-ID texts, unlabelled news articles): every *sentence piece* (text between sentence
  punctuation or line breaks, normalised: lower case, punctuation dropped) of at least
  ``MIN_PIECE`` characters, and, for the labelled sets, every window of ``WINDOW`` words
  starting at a multiple of ``STRIDE`` (each CJK character a word). Every repository text file
  (markup stripped, entities unescaped, decoded with its declared charset; compressed text files
  too) is cut the same way and looked up, all of its windows. A copied sentence piece, or a run
  of ``WINDOW + STRIDE - 1`` words from a labelled set, is always found. Binary files (NUL bytes
  in the first 64 KB, e.g. the CRF models) carry no running text and are checked as whole files.

The shared fingerprints take a few seconds to build; they are cached in pytest's cache directory,
keyed by the name, size and mtime of every shared file, so later runs take about a second.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import html
import io
import json
import lzma
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WINDOW = 12  # words per fingerprinted run
STRIDE = 4  # shared windows start every STRIDE words: runs of >= 15 words are always caught
MIN_PIECE = 40  # characters (normalised) of a sentence piece worth a fingerprint
MAX_INFLATE = 256 * 1024 * 1024
CACHE_VERSION = 2

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"([{_CJK}])")
_NON_WORD = re.compile(r"[\W_]+")
# Sentence pieces: cut at sentence punctuation and line breaks, whatever follows, so that the
# same characters are cut the same way in a corpus and in a copy of it.
_PIECES = re.compile(r"[.!?;:\n\u061f\u061b\u06d4\u0964\u3002\uff01\uff1f\uff1b]+")
# Derived statistics the issue allows to ship (name lists, entity strings, word counts and
# gazetteers: see streams/enrich/models/README.md and gazetteers/PROVENANCE.tsv). WikiANN
# "sentences" are often just a title or a name, so a model's list of training entity strings
# shares pieces with the corpus by construction. These files are still checked as whole files.
DERIVED = ("streams/enrich/models/*.aux.json.xz", "streams/enrich/gazetteers/*.tsv.xz")
_MARKUP = frozenset({".xml", ".atom", ".rss", ".rdf", ".html", ".htm"})
_TAG = re.compile(r"<[^>]*>")
_CHARSET = re.compile(rb"""(?:encoding|charset)\s*=\s*["']?([A-Za-z0-9._-]+)""")


# ---- fingerprints -------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, punctuation and markup debris gone, each CJK character a word."""
    return _NON_WORD.sub(" ", _CJK_CHAR.sub(r" \1 ", text.lower()))


def piece_key(piece: str) -> int:
    """A stable 63-bit key of a normalised sentence piece (CRC-32 and Adler-32, both in C)."""
    data = piece.encode("utf-8")
    return ((zlib.crc32(data) << 31) ^ zlib.adler32(data)) & ((1 << 63) - 1)


def piece_keys(text: str) -> Iterator[int]:
    for piece in _PIECES.split(text):
        norm = " ".join(normalise(piece).split())
        if len(norm) >= MIN_PIECE:
            yield piece_key(norm)


_IDS: dict[str, int] = {}


def token_ids(tokens: list[str]) -> list[int]:
    """Words -> stable 32-bit ids (CRC-32 of the UTF-8 bytes), memoised. A window's key is the
    hash of its tuple of ids: ints hash by value (no per-process salt, unlike str), so keys can
    be cached across runs, and slicing and hashing run in C."""
    ids = _IDS
    for tok in set(tokens).difference(ids):
        ids[tok] = zlib.crc32(tok.encode("utf-8"))
    return list(map(ids.__getitem__, tokens))


def window_keys(tokens: list[str], stride: int = 1) -> list[int]:
    """Keys of the windows of ``WINDOW`` words starting every ``stride`` words (and the last)."""
    ids = token_ids(tokens)
    last = len(ids) - WINDOW
    if last < 0:
        return []
    keys = [hash(tuple(ids[i : i + WINDOW])) for i in range(0, last + 1, stride)]
    if last % stride:
        keys.append(hash(tuple(ids[last:])))
    return keys


def shared_units(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(source, texts) of the shared data: per NER / language-ID file its sentences in order
    (tokens re-joined), per unlabelled zip member its articles' titles and contents."""
    for path in sorted(root.rglob("*.jsonl")):
        texts = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("tokens"):
                    texts.append(" ".join(row["tokens"]))
                if isinstance(row.get("text"), str):
                    texts.append(row["text"])
        yield str(path), texts
    for path in sorted(root.rglob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".json"):
                    continue
                texts = [
                    article[field]
                    for article in json.loads(zf.read(info))
                    for field in ("title", "content")
                    if isinstance(article.get(field), str)
                ]
                yield f"{path}:{info.filename}", texts


def shared_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def shared_stamp(root: Path) -> str:
    # hash() of a tuple of ints is stable across runs but not promised across Python versions.
    parts = [f"v{CACHE_VERSION}:{WINDOW}:{STRIDE}:{MIN_PIECE}:{sys.version}"]
    for path in shared_files(root):
        st = path.stat()
        parts.append(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def build_run_keys(root: Path) -> set[int]:
    """Sentence pieces of every shared text; word windows of the labelled sets (the 9 M words of
    the unlabelled news are covered by their sentence pieces: windows would cost seconds)."""
    keys: set[int] = set()
    for source, texts in shared_units(root):
        for text in texts:
            keys.update(piece_keys(text))
        if source.endswith(".jsonl"):
            # One stream per file: windows may span two sentences, which costs nothing.
            keys.update(window_keys(normalise(" \n ".join(texts)).split(), STRIDE))
    return keys


def shared_blobs(root: Path) -> dict[int, list[tuple[str, object]]]:
    """Size -> what of that size to compare with: (name, path) of shared files, (name, crc32)
    of zip members (the directory has both, so nothing is inflated)."""
    out: dict[int, list[tuple[str, object]]] = {}
    for path in shared_files(root):
        name = str(path.relative_to(root))
        out.setdefault(path.stat().st_size, []).append((name, path))
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    out.setdefault(info.file_size, []).append((f"{name}:{info.filename}", info.CRC))
    return out


# ---- the repository side ------------------------------------------------------------------------


def repo_files(root: Path = ROOT) -> list[Path]:
    """Tracked and untracked-but-not-ignored files (a new copy is caught before it is committed)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        names = sorted({n for n in out.decode("utf-8", "surrogateescape").split("\0") if n})
        return [root / n for n in names if (root / n).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
        return [
            p for p in root.rglob("*") if p.is_file() and not skip & set(p.relative_to(root).parts)
        ]


def xz_size(data: bytes) -> int | None:
    """Uncompressed size from the xz index (last stream; one stream is what lzma writes)."""
    if len(data) < 24 or data[-2:] != b"YZ" or not data.startswith(b"\xfd7zXZ\x00"):
        return None
    backward = (struct.unpack("<I", data[-8:-4])[0] + 1) * 4
    index = data[-12 - backward : -12]
    if not index or index[0] != 0:
        return None
    pos = 1

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = index[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    total = 0
    for _ in range(varint()):
        varint()  # unpadded size
        total += varint()
    return total


def _inflate(data: bytes, kind: str) -> bytes | None:
    """Decompressed ``data`` (``xz``, ``gz`` or ``bz2``), or None when corrupt or larger than
    ``MAX_INFLATE`` (a bomb is not inflated whole)."""
    try:
        if kind == "xz":
            out = lzma.LZMADecompressor().decompress(data, max_length=MAX_INFLATE + 1)
        elif kind == "gz":
            out = zlib.decompressobj(31).decompress(data, MAX_INFLATE + 1)
        else:
            out = bz2.BZ2Decompressor().decompress(data, max_length=MAX_INFLATE + 1)
    except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError):
        return None
    return out if len(out) <= MAX_INFLATE else None


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind in ("xz", "gz", "bz2"):
        if name.endswith("." + kind):
            return kind
    return None


def payloads(path: Path) -> Iterator[tuple[str, int | None, bytes | None]]:
    """(label, size, bytes-or-None) of a repository file as is and decompressed. ``None`` bytes:
    not inflated yet (only the size is known); ask ``inflate`` when the size matters."""
    data = path.read_bytes()
    yield str(path), len(data), data
    name = path.name.lower()
    if name.endswith(".xz"):
        yield f"{path} (xz)", xz_size(data), None
    elif name.endswith(".gz"):
        isize = struct.unpack("<I", data[-4:])[0] if len(data) >= 18 else None
        yield f"{path} (gz)", isize, None
    elif name.endswith(".bz2"):
        yield f"{path} (bz2)", None, _inflate(data, "bz2")
    elif name.endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.file_size <= MAX_INFLATE:
                        yield f"{path}:{info.filename}", info.file_size, zf.read(info)
        except zipfile.BadZipFile:
            return


def inflate(path: Path) -> bytes | None:
    kind = _kind(path)
    return _inflate(path.read_bytes(), kind) if kind else None


def decode(data: bytes, markup: bool = False) -> str | None:
    """Text of a repository file, or None for binary data (NUL bytes). ``markup``: XML/HTML,
    decoded with the charset its declaration or meta tag names."""
    if b"\x00" in data[:65536]:
        return None
    declared = _CHARSET.search(data[:2048]) if markup else None
    for codec in ([declared.group(1).decode("ascii")] if declared else []) + ["utf-8"]:
        try:
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def plain(text: str) -> str:
    """Markup stripped and entities unescaped (feeds, pages, escaped JSON strings alike)."""
    text = text.replace("\\n", " ").replace('\\"', '"')
    return html.unescape(_TAG.sub(" ", html.unescape(text)))


def text_of(path: Path) -> Iterator[tuple[str, str]]:
    """(label, text) of a repository file, and of its decompressed content when that is text."""
    data = path.read_bytes()
    text = decode(data, path.suffix.lower() in _MARKUP)
    if text is not None:
        yield str(path), plain(text)
    kind = _kind(path)
    if kind is None:
        return
    # The first 64 KB tell text from binary: a binary model is not inflated whole.
    try:
        if kind == "xz":
            head = lzma.LZMADecompressor().decompress(data, max_length=65536)
        elif kind == "gz":
            head = zlib.decompressobj(31).decompress(data, 65536)
        else:
            head = bz2.BZ2Decompressor().decompress(data, max_length=65536)
    except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError):
        return
    if b"\x00" in head:
        return
    full = _inflate(data, kind)
    inner = decode(full) if full is not None else None
    if inner is not None:
        yield f"{path} (decompressed)", plain(inner)


# ---- checks -------------------------------------------------------------------------------------


def whole_file_copies(
    files: Iterable[Path], blobs: dict[int, list[tuple[str, object]]]
) -> list[str]:
    found = []
    for path in files:
        for label, size, data in payloads(path):
            if size is None and data is not None:
                size = len(data)
            if size is None or size not in blobs:
                continue
            if data is None:
                data = inflate(path)
                if data is None:
                    continue
            sha = hashlib.sha256(data).digest()
            crc = zlib.crc32(data)
            for name, ref in blobs[size]:
                if isinstance(ref, Path):
                    same = hashlib.sha256(ref.read_bytes()).digest() == sha
                else:
                    same = ref == crc
                if same:
                    found.append(f"{label} is a copy of shared/data/{name}")
    return found


def is_derived(path: Path, root: Path = ROOT) -> bool:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    return any(rel.match(pattern) for pattern in DERIVED)


def copied_runs(files: Iterable[Path], keys: set[int] | frozenset[int]) -> list[str]:
    found = []
    for path in files:
        if is_derived(path):
            continue
        for label, text in text_of(path):
            tokens = normalise(text).split()
            hits = [i for i, key in enumerate(window_keys(tokens)) if key in keys]
            sample = " ".join(tokens[hits[0] : hits[0] + WINDOW]) if hits else ""
            pieces = sum(key in keys for key in piece_keys(text))
            if hits or pieces:
                found.append(
                    f"{label}: {len(hits)} run(s) of {WINDOW} words and {pieces} sentence "
                    f"piece(s) of shared text, e.g. {sample!r}"
                )
    return found


def _shared_or_skip() -> Path:
    if SHARED.is_dir():
        return SHARED
    message = (
        f"{SHARED} is absent: the check needs the development data next to the checkout "
        "(the files the repository must not contain)"
    )
    if IN_CI:
        pytest.fail("CI=true: " + message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def shared_keys(request: pytest.FixtureRequest) -> frozenset[int]:
    root = _shared_or_skip()
    stamp = shared_stamp(root)
    cache_dir = Path(request.config.cache.mkdir("newsflow-shared-data"))
    cached = cache_dir / f"runs-{stamp}.i64"
    if cached.is_file():
        values = array("q")
        values.frombytes(cached.read_bytes())
        return frozenset(values)
    keys = build_run_keys(root)
    for old in cache_dir.glob("runs-*.i64"):
        old.unlink()
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(array("q", sorted(keys)).tobytes())
    tmp.replace(cached)
    return frozenset(keys)


def test_no_shared_data_file_is_in_the_repository() -> None:
    root = _shared_or_skip()
    found = whole_file_copies(repo_files(), shared_blobs(root))
    assert not found, "remove these copies of the development data:\n" + "\n".join(found)


def test_no_run_of_shared_text_is_in_the_repository(shared_keys: frozenset[int]) -> None:
    assert len(shared_keys) > 100_000, "the shared data yielded too few fingerprints to mean much"
    found = copied_runs(repo_files(), shared_keys)
    assert not found, "text taken from the development data:\n" + "\n".join(found)


# ---- the checks can fail ------------------------------------------------------------------------


def test_the_checks_find_planted_copies(tmp_path: Path) -> None:
    """A fake shared directory and a fake repository: every way of copying is caught, our own
    text is not."""
    shared = tmp_path / "shared"
    (shared / "ner").mkdir(parents=True)
    sentence = (
        "Die Delegation aus Hamburg traf am Dienstag in Lyon ein , begleitet von zwölf Beratern"
    )
    rows = [
        {"tokens": sentence.split(), "tags": ["O"] * len(sentence.split())},
        {"tokens": ["十二位代表周二抵达里昂并与当地官员举行了会谈"], "tags": ["O"]},
    ]
    corpus = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    (shared / "ner" / "de_x.dev.jsonl").write_bytes(corpus)
    with zipfile.ZipFile(shared / "news.zip", "w") as zf:
        zf.writestr("a.json", json.dumps([{"title": "t", "content": "c"}]))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "copy.jsonl.xz").write_bytes(lzma.compress(corpus))
    (repo / "copy.jsonl.gz").write_bytes(gzip.compress(corpus))
    (repo / "copy.jsonl.bz2").write_bytes(bz2.compress(corpus))
    (repo / "plain.jsonl").write_bytes(corpus)
    with zipfile.ZipFile(repo / "member.zip", "w") as zf:
        zf.write(shared / "news.zip", "inner/news.zip")
    feed = (
        '<?xml version="1.0" encoding="iso-8859-1"?><rss><item><description>Vorspann. '
        + "Die Delegation aus Hamburg traf am Dienstag in Lyon ein, begleitet von zw&#246;lf"
        + " Beratern.</description></item></rss>"
    )
    (repo / "feed.xml").write_bytes(feed.encode("iso-8859-1"))
    (repo / "zh.html").write_text("<p>据报道，十二位代表周二抵达里昂并与当地官员举行了会谈。</p>")
    (repo / "ours.txt").write_text("Die Delegation aus Bremen traf am Montag in Nantes ein.")
    files = sorted(p for p in repo.iterdir())
    copies = whole_file_copies(files, shared_blobs(shared))
    for name in ("copy.jsonl.bz2", "copy.jsonl.gz", "copy.jsonl.xz", "member.zip:inner/news.zip"):
        assert any(f"/{name} " in c for c in copies), (name, copies)
    assert any("/plain.jsonl is a copy" in c for c in copies), copies
    assert len(copies) == 5, copies
    runs = copied_runs(files, build_run_keys(shared))
    flagged = {r.split(":")[0].split(" ")[0].rsplit("/", 1)[-1] for r in runs}
    assert {"feed.xml", "zh.html", "plain.jsonl", "copy.jsonl.xz"} <= flagged, runs
    assert "ours.txt" not in flagged
