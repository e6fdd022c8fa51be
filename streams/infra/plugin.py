"""Building the local-only analysis plugin (``deploy/local/es-analysis-plugin``) with Maven.

The integ-test Elasticsearch of the local stack lacks the analysis-common module, so the built-in
language analyzers (``arabic``, ``english``, ...) the index template names are missing. The plugin
registers Lucene's analyzers under those names through the stable plugin API. It is built once
per source tree + Elasticsearch version + bundled Lucene version and cached as
``<home>/plugins/newsflow-analysis-<es version>-<key>.zip``; Maven's own output goes to a scratch
directory under ``<home>/plugins`` (never into the repository) and is removed afterwards.
Never install this plugin into the official distribution: it already has these analyzers and
would refuse to start with duplicate names.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from streams import resources
from streams.infra import dist
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.settings import InfraSettings

PLUGIN_NAME = "newsflow-analysis"
SOURCE_DIR = resources.deploy_file("local/es-analysis-plugin")  # package data
# What goes into the build (README.md and a stray target/ do not).
_SOURCES = ("pom.xml", "src")
# What a stable plugin zip carries at its root besides the jar.
_ZIP_ROOT = frozenset({"stable-plugin-descriptor.properties", "named_components.json"})

Progress = Callable[[str], None]


def plugins_dir(infra: InfraSettings) -> Path:
    return infra.home / "plugins"


def bundled_lucene_version(infra: InfraSettings) -> str | None:
    """Version of ``lib/lucene-analysis-common-*.jar`` in the unpacked distribution, if any."""
    for jar in sorted((dist.es_home(infra) / "lib").glob("lucene-analysis-common-*.jar")):
        match = re.fullmatch(r"lucene-analysis-common-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    return None


def _files(node: Traversable, rel: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    if node.is_file():
        yield rel, node
    elif node.is_dir():
        for child in node.iterdir():
            yield from _files(child, rel / child.name)


def source_digest(root: Traversable = SOURCE_DIR) -> str:
    """SHA-256 over the relative paths and contents of the plugin's build inputs."""
    digest = hashlib.sha256()
    files = sorted(
        (item for name in _SOURCES for item in _files(root.joinpath(name), PurePosixPath(name))),
        key=lambda item: item[0],
    )
    for rel, node in files:
        digest.update(str(rel).encode() + b"\0")
        digest.update(node.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(infra: InfraSettings, lucene: str | None) -> str:
    material = f"{source_digest()}\n{infra.es_version}\n{lucene or 'pom-default'}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _is_plugin_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist()) >= _ZIP_ROOT and zf.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def build_analysis_plugin(infra: InfraSettings, progress: Progress) -> Path:
    """The plugin zip for ``infra.es_version``: cached, else built with Maven (JDK 21+)."""
    if not SOURCE_DIR.joinpath("pom.xml").is_file():
        raise InfraError(
            f"{SOURCE_DIR}/pom.xml is missing from the installed package data "
            f"({resources.DEPLOY_PACKAGE}); the wheel was built without it."
        )
    lucene = bundled_lucene_version(infra)
    key = cache_key(infra, lucene)
    out = plugins_dir(infra)
    target = out / f"{PLUGIN_NAME}-{infra.es_version}-{key}.zip"
    if target.is_file() and _is_plugin_zip(target):
        return target
    if shutil.which(infra.maven) is None:
        raise InfraError(
            f"Maven (`{infra.maven}`) is not installed; it builds the local Elasticsearch "
            "analysis plugin.",
            "install it (Debian: `apt-get install -y maven`).",
        )
    # The plugin API jars are Java 21 class files: compile with a JDK 21+.
    java_home = find_java_home(21, infra.es_java_home)
    build_dir = out / f"build-{key}"
    shutil.rmtree(build_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    progress(
        f"building the {PLUGIN_NAME} plugin for Elasticsearch {infra.es_version}"
        f" (Lucene {lucene or 'pom default'}) with Maven ..."
    )
    t0 = time.monotonic()
    env = {**os.environ, "JAVA_HOME": str(java_home)}
    # Maven only reads the sources: all its output goes to build_dir (newsflow.buildDir).
    with resources.as_path(SOURCE_DIR) as source_dir:
        argv = [
            infra.maven,
            "-B",
            "--no-transfer-progress",
            "-f",
            str(source_dir / "pom.xml"),
            "package",
            f"-Des.version={infra.es_version}",
            *([f"-Dlucene.version={lucene}"] if lucene else []),
            f"-Dnewsflow.buildDir={build_dir}",
        ]
        res = subprocess.run(
            argv,
            cwd=source_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    built = build_dir / f"{PLUGIN_NAME}-{infra.es_version}.zip"
    if res.returncode != 0 or not built.is_file() or not _is_plugin_zip(built):
        lines = res.stdout.splitlines()
        errors = [line for line in lines if "ERROR" in line][:12] or lines[-15:]
        shutil.rmtree(build_dir, ignore_errors=True)
        raise InfraError(
            f"Building the {PLUGIN_NAME} Elasticsearch plugin with Maven failed "
            f"(exit {res.returncode}):\n" + "\n".join(errors),
            f"check that Maven Central is reachable (or ~/.m2 holds "
            f"org.elasticsearch.plugin:elasticsearch-plugin-api:{infra.es_version}) and that "
            f"{SOURCE_DIR} compiles: `JAVA_HOME={java_home} {infra.maven} -f "
            f"{SOURCE_DIR}/pom.xml package -Dnewsflow.buildDir=/tmp/newsflow-analysis`.",
        )
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(built, partial)
    partial.replace(target)
    shutil.rmtree(build_dir, ignore_errors=True)
    for stale in out.glob(f"{PLUGIN_NAME}-*.zip"):
        if stale != target:
            stale.unlink(missing_ok=True)
    progress(
        f"{PLUGIN_NAME} plugin built in {time.monotonic() - t0:.1f}s: {target} "
        f"({target.stat().st_size / 1024:.0f} KB)"
    )
    return target
