"""The one loader for the files newsflow ships as package data (foundation layer).

Every declarative file the code reads at run time comes through here, never through
``Path(__file__).parents[n]``, so the same code works from a source checkout, an editable
install and a regular wheel in any ``site-packages`` (the Docker image):

- ``deploy/`` at the top of the repository (index templates, ILM policy, Kibana objects, feed
  lists, demo feeds and the demo seed article, the local stack's Maven poms and the analysis
  plugin sources) is installed as the package ``newsflow_deploy`` (``setup.py`` maps the
  directory onto that name; ``deploy/__init__.py`` makes it a regular package). Paths given to
  ``read_text`` / ``read_bytes`` / ``read_json`` / ``deploy_file`` are relative to ``deploy/``,
  e.g. ``"elasticsearch/news-articles.template.json"``.
- data inside a Python package (the NER models and gazetteers of ``streams.enrich``) is reached
  with ``package_file("streams.enrich", "models/MANIFEST.json")``.

Both return ``importlib.resources`` Traversables. Where a tool needs a real file system path
(Maven wants a pom file, the feed server a directory), ``as_path`` yields one (the installed
file itself when it is on disk, else a temporary copy) and ``materialize`` copies a file or a
tree into a directory the caller owns (for tools that write next to their input).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

DEPLOY_PACKAGE = "newsflow_deploy"


def _parts(rel: str) -> list[str]:
    """``rel`` split on ``/``; absolute paths, ``..`` and empty parts are refused."""
    parts = rel.replace("\\", "/").split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a relative path inside the package data: {rel!r}")
    return parts


def _join(root: Traversable, rel: str) -> Traversable:
    node = root
    for part in _parts(rel):
        node = node.joinpath(part)
    return node


def deploy_files() -> Traversable:
    """The installed ``deploy/`` directory (package ``newsflow_deploy``)."""
    return resources.files(DEPLOY_PACKAGE)


def deploy_file(rel: str) -> Traversable:
    """One file or directory under ``deploy/`` (it may not exist: check ``is_file()``)."""
    return _join(deploy_files(), rel)


def package_file(package: str, rel: str) -> Traversable:
    """One file or directory shipped inside a Python package, e.g. ``streams.enrich``."""
    return _join(resources.files(package), rel)


def _existing(rel: str) -> Traversable:
    node = deploy_file(rel)
    if not node.is_file():
        raise FileNotFoundError(
            f"deploy/{rel} is not in the installed package data ({DEPLOY_PACKAGE}); "
            "the wheel was built without it (see package-data in pyproject.toml)"
        )
    return node


def read_bytes(rel: str) -> bytes:
    return _existing(rel).read_bytes()


def read_text(rel: str) -> str:
    return _existing(rel).read_text(encoding="utf-8")


def read_json(rel: str) -> Any:
    return json.loads(read_bytes(rel))


def _copy(node: Traversable, dest: Path) -> None:
    if node.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for child in node.iterdir():
            _copy(child, dest / child.name)
    else:
        data = node.read_bytes()
        # Rewrite only what changed: a tool's incremental build keys on mtimes.
        if not dest.is_file() or dest.read_bytes() != data:
            dest.write_bytes(data)


def materialize(node: Traversable, dest: Path) -> Path:
    """Copy ``node`` (a file or a directory tree) to ``dest``; returns ``dest``.

    For tools that need a path they may write next to (Maven puts ``target/`` beside its pom),
    which the installed package data is not (``site-packages`` may be read-only).
    """
    if not node.is_file() and not node.is_dir():
        raise FileNotFoundError(f"{node} is not in the installed package data")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(node, dest)
    return dest


@contextmanager
def as_path(node: Traversable) -> Iterator[Path]:
    """A real path to ``node`` for as long as the context lasts (read-only use).

    Installed package data is normally on disk and then yielded as it is; otherwise (a zip
    import) a temporary copy is made. ``importlib.resources.as_file`` handles directories only
    from Python 3.12, hence this.
    """
    if isinstance(node, Path):
        if not node.exists():
            raise FileNotFoundError(f"{node} is not in the installed package data")
        yield node
        return
    with tempfile.TemporaryDirectory(prefix="newsflow-data-") as tmp:
        yield materialize(node, Path(tmp) / node.name)
