"""The package-data loader (streams/resources.py) and what the wheel is told to ship.

The wheel test (tests/e2e/test_wheel.py) proves the installed package runs; these checks are the
fast half: every ``deploy/`` file the code names is a real file *and* matched by the
``package-data`` globs of ``pyproject.toml``, so a new template cannot be forgotten in the wheel.
"""

from __future__ import annotations

import glob
import re
import tomllib
import zipfile
from pathlib import Path

import pytest

from streams import resources

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# resources.deploy_file("x") / read_text("x") / read_bytes("x") / read_json("x") with a literal.
_USE = re.compile(r"resources\.(?:deploy_file|read_text|read_bytes|read_json)\(\s*\"([^\"]+)\"")


def _shipped(package: str, root: Path) -> set[str]:
    """Files (relative to ``root``) that the package-data globs of ``package`` select."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"][package]
    return {
        Path(hit).as_posix()
        for pattern in patterns
        for hit in glob.glob(pattern, root_dir=root, recursive=True)
        if (root / hit).is_file()
    }


def _named_in_code() -> set[str]:
    names = set()
    for top in ("streams", "connectors"):
        for source in (ROOT / top).rglob("*.py"):
            names.update(_USE.findall(source.read_text(encoding="utf-8")))
    return names


def test_the_deploy_package_is_the_repository_deploy_directory() -> None:
    assert Path(str(resources.deploy_files())).resolve() == DEPLOY.resolve()


def test_read_helpers() -> None:
    template = resources.read_json("elasticsearch/news-articles.template.json")
    assert template["template"]["mappings"]["dynamic"] == "strict"
    seed = resources.read_text("demo/seed-article-ar.txt")
    assert seed == (DEPLOY / "demo" / "seed-article-ar.txt").read_text(encoding="utf-8")
    assert resources.read_bytes("kibana/newsflow.ndjson").startswith(b"{")


@pytest.mark.parametrize("bad", ["../pyproject.toml", "/etc/passwd", "a//b", "./x", ""])
def test_paths_outside_the_package_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        resources.deploy_file(bad)


def test_a_missing_file_names_the_package() -> None:
    with pytest.raises(FileNotFoundError, match=resources.DEPLOY_PACKAGE):
        resources.read_text("elasticsearch/no-such.json")


def test_every_deploy_file_the_code_names_exists_and_is_shipped() -> None:
    named = _named_in_code()
    assert "elasticsearch/news-articles.template.json" in named  # the regex sees real uses
    shipped = _shipped("newsflow_deploy", DEPLOY)
    for rel in sorted(named):
        path = DEPLOY / rel
        assert path.exists(), f"the code reads deploy/{rel}, which does not exist"
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            posix = file.relative_to(DEPLOY).as_posix()
            if "/target/" in f"/{posix}" or "__pycache__" in posix:
                continue  # build output, never shipped
            assert posix in shipped, f"deploy/{posix} is read at run time but not package data"


def test_models_and_gazetteers_are_shipped() -> None:
    enrich = ROOT / "streams" / "enrich"
    shipped = _shipped("streams.enrich", enrich)
    for sub in ("models", "gazetteers"):
        files = {p.relative_to(enrich).as_posix() for p in (enrich / sub).iterdir() if p.is_file()}
        assert files and files <= shipped, files - shipped
    assert not any(name.startswith("training/") for name in shipped)
    assert resources.package_file("streams.enrich", "models/MANIFEST.json").is_file()


def test_as_path_and_materialize_work_without_a_file_system(tmp_path: Path) -> None:
    """A zip import (zipfile.Path is a Traversable, as an installed zip would give)."""
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("plugin/pom.xml", "<project/>")
        zf.writestr("plugin/src/A.java", "class A {}")
    node = zipfile.Path(archive, "plugin/")
    with resources.as_path(node) as real:
        assert (real / "pom.xml").read_text() == "<project/>"
        assert (real / "src" / "A.java").read_text() == "class A {}"
    assert not real.exists()  # the temporary copy is gone

    dest = resources.materialize(node, tmp_path / "copy")
    kept = (dest / "pom.xml").stat().st_mtime_ns
    resources.materialize(node, dest)  # unchanged files are not rewritten (mtimes kept)
    assert (dest / "pom.xml").stat().st_mtime_ns == kept
    with pytest.raises(FileNotFoundError):
        resources.materialize(zipfile.Path(archive, "nothing"), tmp_path / "x")


def test_as_path_yields_an_installed_file_in_place() -> None:
    node = resources.deploy_file("feeds/demo.yaml")
    with resources.as_path(node) as real:
        assert real.resolve() == (DEPLOY / "feeds" / "demo.yaml").resolve()
