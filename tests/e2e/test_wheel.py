"""The wheel, installed outside the checkout, runs the pipeline against the local stack.

What a user of ``pip install newsflow-*.whl`` (and the Docker image, built the same way) gets:
the wheel is built from a copy of the source tree, installed into a fresh venv under the test's
temporary directory (no system site-packages, no checkout on ``sys.path``), and every command
below runs from that venv's ``bin/`` with a working directory outside the checkout:

``infra up`` (idempotent; a running stack is only checked) -> ``bootstrap`` -> ``feeds serve``
(a feed of this test's own, with its article pages) -> ``connect --once`` -> ``worker NAME`` for
every registered stage (extract, enrich, index; each stopped once every polled article is
searchable) -> ``search``.

Before that, one script reads the package data (templates, Kibana objects, seed article, demo
feeds, Maven inputs, models, gazetteers) in the venv and in the checkout; the outputs must be
equal, so a file missing from the wheel fails here with its name, not later in a worker.

Installing ~60 dependencies from the index takes ~1.5 minutes here, so they are kept as wheels
in ``<infra home>/wheelhouse`` (pip's HTTP cache is not enough: the index's answers are not
cached) and installed with ``--no-index``; a miss (a new pin) refills it from the index.
Measured here: build 16 s, install 11 s with a warm wheelhouse (55 s to fill it), pipeline ~40 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.schema.ids import article_id
from streams.settings import Settings
from tests.e2e.pipeline import settings_from, wait_until
from tests.integration.stage_helpers import ROOT, free_port

pytestmark = [pytest.mark.wheel, pytest.mark.kafka, pytest.mark.elastic, pytest.mark.timeout(600)]

# Not part of the wheel's input (the sdist-less build reads the tree as it is).
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "*.egg-info",
    "__pycache__",
    "build",
    "dist",
    "target",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".newsflow",
    "tests",
    "bench",
)

# Runs in both interpreters; prints what the installed package data gives.
PROBE = textwrap.dedent(
    """
    import json, sys
    import streams, newsflow_deploy
    from streams import resources
    from streams.enrich import arabic, entities
    from streams.infra import dist, plugin
    from streams.commands.kibana import ASSET_FILES, load_objects

    def tree(node, prefix=""):
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                yield from tree(child, prefix + child.name + "/")
            elif child.is_file():
                yield prefix + child.name

    print(json.dumps({
        "streams": streams.__file__,
        "deploy": str(resources.deploy_files()),
        "templates": [sorted(resources.read_json("elasticsearch/" + name)) for name in (
            "news-articles.template.json", "news-articles.ilm.json",
            "newsflow-dead-letters.template.json")],
        "kibana": [len(load_objects(path)) for path in ASSET_FILES],
        "seed": len(resources.read_text("demo/seed-article-ar.txt")),
        "demo_feeds": sorted(tree(resources.deploy_file("feeds/demo"))),
        "feed_lists": [resources.deploy_file(f"feeds/{n}.yaml").is_file()
                       for n in ("demo", "starter")],
        "pom": dist.POM.is_file(),
        "plugin_digest": plugin.source_digest(),
        "models": entities.MODEL_VERSIONS,
        "lexicon": len(arabic.default_known()),
    }))
    """
)

# The test's own feed: two English and two Arabic items, written for this test.
FEED_ITEMS = [
    (
        "en",
        "Harbour cranes return to Rotterdam after the winter storms",
        "Engineers in Rotterdam said on Monday that the harbour cranes damaged in January are "
        "working again, and that the port of Rotterdam expects normal traffic by spring.",
    ),
    (
        "en",
        "Nairobi opens a new light rail line to the airport",
        "The city of Nairobi opened its first light rail line on Tuesday; officials in Kenya "
        "said trains will run every ten minutes between the centre and the airport.",
    ),
    (
        "ar",
        "افتتاح مكتبة عامة جديدة في عمّان",
        "افتتحت بلدية عمّان يوم الأحد مكتبة عامة جديدة في وسط المدينة، وقال مسؤولون في الأردن "
        "إن المكتبة ستفتح أبوابها للطلاب حتى منتصف الليل خلال فترة الامتحانات.",
    ),
    (
        "ar",
        "مهرجان للكتاب في القاهرة يستقبل زواراً من عشرين بلداً",
        "بدأ في القاهرة يوم الخميس مهرجان للكتاب يشارك فيه ناشرون من مصر وتونس والمغرب، "
        "ويستمر المهرجان أسبوعاً كاملاً في ساحة المعارض.",
    ),
]
# The article pages live on the same local server (the extract stage fetches them).
LINK = "http://127.0.0.1:{port}/pages/{lang}-{n}.html"


def _link(port: int, n: int) -> str:
    return LINK.format(port=port, lang=FEED_ITEMS[n][0], n=n)


def _write_feed(feeds_dir: Path, port: int) -> None:
    """The feed and one page per item, the page repeating the item's text at more length."""
    (feeds_dir / "pages").mkdir(parents=True)
    for n, (lang, title, body) in enumerate(FEED_ITEMS):
        direction = ' dir="rtl"' if lang == "ar" else ""
        paragraphs = "".join(f"<p>{body}</p>" for _ in range(3))
        (feeds_dir / "pages" / f"{lang}-{n}.html").write_text(
            f'<!doctype html><html lang="{lang}"{direction}><head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><article><h1>{title}</h1>{paragraphs}"
            "</article></body></html>\n",
            encoding="utf-8",
        )
    (feeds_dir / "wheel.xml").write_text(_feed_xml(port), encoding="utf-8")


def _feed_xml(port: int) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{_link(port, n)}</link>"
        f"<guid>{_link(port, n)}</guid><description>{body}</description>"
        f"<pubDate>Mon, 0{n + 1} Jun 2026 08:00:00 +0000</pubDate></item>"
        for n, (lang, title, body) in enumerate(FEED_ITEMS)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        "<title>newsflow wheel test</title><link>https://wheel-test.newsflow.example/</link>"
        f"<description>Written for tests/e2e/test_wheel.py</description>{items}</channel></rss>\n"
    )


class Timings(dict[str, float]):
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        self[name] = round(time.monotonic() - t0, 1)


def _run(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    res = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert res.returncode == 0, (
        f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res.stdout


def _build_wheel(work: Path) -> Path:
    src, out = work / "src", work / "dist"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCES)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        cwd=work,
    )
    (wheel,) = out.glob("newsflow-*.whl")
    return wheel


def _install(wheel: Path, venv: Path, wheelhouse: Path) -> bool:
    """Fresh venv + the wheel with its dependencies; True when the wheelhouse had them all."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    install = [
        sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
        "--no-compile", "--no-index", "--find-links", str(wheelhouse), str(wheel),
    ]  # fmt: skip
    wheelhouse.mkdir(parents=True, exist_ok=True)
    if subprocess.run(install, capture_output=True, check=False, timeout=300).returncode == 0:
        return True
    # A miss (first run, or a changed pin): fetch every dependency as a wheel, once.
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheelhouse), str(wheel)],
        cwd=venv.parent,
        timeout=600,
    )
    for own in wheelhouse.glob("newsflow-*.whl"):
        own.unlink()
    _run(install, cwd=venv.parent)
    return False


def _env(venv: Path, work: Path, unique: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "NEWSFLOW_TOPICS__NAMESPACE": f"test.{unique}.",
            "NEWSFLOW_TOPICS__PARTITIONS": "1",
            "NEWSFLOW_KAFKA__CLIENT_ID": f"test-{unique}",
            "NEWSFLOW_ELASTIC__ALIAS": f"test-articles-{unique}",
            "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"test-articles-v1-{unique}",
            "NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX": f"test-dead-letters-{unique}",
            "NEWSFLOW_FAUST__APP_ID": f"test-{unique}",
            "NEWSFLOW_CONNECTOR__FEEDS_FILE": str(work / "feeds.yaml"),
            "NEWSFLOW_CONNECTOR__STATE_PATH": str(work / "feed-state.sqlite"),
            "NEWSFLOW_CONNECTOR__METRICS_PORT": "0",
            "NEWSFLOW_CONNECTOR__PARSE_WORKERS": "1",
            "NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE": "true",  # the pages are on 127.0.0.1
            "NEWSFLOW_PAGE_FETCH__MIN_SPACING_S": "0",
        }
    )
    return env


@contextlib.contextmanager
def _process(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _check_alive(procs: dict[str, subprocess.Popen[bytes]], work: Path) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            log = work / f"{name.split()[-1]}.log"
            pytest.fail(f"{name} exited {proc.returncode}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _count(settings: Settings) -> int:
    from streams.sinks.elastic import make_client

    es = make_client(settings.elastic)
    try:
        if not es.indices.exists_alias(name=settings.elastic.alias):
            return 0
        es.indices.refresh(index=settings.elastic.alias)
        return int(es.count(index=settings.elastic.alias)["count"])
    finally:
        es.close()


def _cleanup(settings: Settings) -> None:
    from streams.sinks.elastic import make_client

    es = make_client(settings.elastic)
    try:
        es.options(ignore_status=404).indices.delete(index=f"{settings.elastic.index_prefix}-*")
        es.options(ignore_status=404).indices.delete(index=settings.elastic.dead_letter_index)
        es.options(ignore_status=404).indices.delete_index_template(
            name=settings.elastic.index_prefix
        )
        es.options(ignore_status=404).indices.delete_index_template(
            name=settings.elastic.dead_letter_index
        )
    finally:
        es.close()


def test_the_wheel_runs_the_pipeline_outside_the_checkout(
    kafka: Settings, elastic: Settings, unique: str, tmp_path: Path
) -> None:
    timings = Timings()
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    assert ROOT not in tmp_path.parents
    newsflow = str(venv / "bin" / "newsflow")

    with timings.step("build"):
        wheel = _build_wheel(tmp_path)
    with timings.step("install"):
        warm = _install(wheel, venv, kafka.infra.home / "wheelhouse")
    env = _env(venv, work, unique)
    settings = settings_from(env)  # what the child processes build from env

    # The package data, read by the installed code and by the checkout, must agree.
    installed: dict[str, Any] = json.loads(
        _run([str(venv / "bin" / "python"), "-c", PROBE], cwd=work, env=env)
    )
    here: dict[str, Any] = json.loads(_run([sys.executable, "-c", PROBE], cwd=ROOT))
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert Path(installed.pop("streams")).is_relative_to(site), (
        "the venv imports streams from elsewhere"
    )
    assert Path(installed.pop("deploy")).is_relative_to(site)
    here.pop("streams"), here.pop("deploy")
    assert installed == here
    assert "ner-ar" in installed["models"] and installed["lexicon"] > 0
    # Every stage the installed CLI registers (`newsflow worker NAME`), in registry order.
    listing = "import json; from streams import worker; print(json.dumps(list(worker.STAGES)))"
    stages = json.loads(_run([str(venv / "bin" / "python"), "-c", listing], cwd=work, env=env))
    assert {"enrich", "index"} <= set(stages), stages

    try:
        # Same plugin sources, same cache key: a running stack is only checked, nothing rebuilt.
        with timings.step("infra up"):
            _run([newsflow, "infra", "up"], cwd=work, env=env)
        with timings.step("bootstrap"):
            _run([newsflow, "bootstrap"], cwd=work, env=env)

        feeds_dir = work / "feeds"
        feeds_dir.mkdir()
        port = free_port()
        _write_feed(feeds_dir, port)
        (work / "feeds.yaml").write_text(
            "allow_private_addresses: true\nfeeds:\n"
            f"  - id: wheel-test\n    url: http://127.0.0.1:{port}/wheel.xml\n",
            encoding="utf-8",
        )
        expected = {article_id(_link(port, n)) for n in range(len(FEED_ITEMS))}

        serve = [newsflow, "feeds", "serve", str(feeds_dir), "--port", str(port)]
        with _process(serve, work, env, work / "serve.log") as server:
            wait_until(
                "the feed server",
                lambda: _serving(f"http://127.0.0.1:{port}/wheel.xml"),
                30,
                alive=lambda: _check_alive({"feeds serve": server}, work),
            )
            with timings.step("connect --once"):
                summary = json.loads(
                    _run([newsflow, "connect", "--once", "--json"], cwd=work, env=env).splitlines()[
                        -1
                    ]
                )
        assert summary["delivery_failures"] == 0, summary
        assert sum(summary["articles"].values()) >= len(FEED_ITEMS), summary

        workers = {}
        with contextlib.ExitStack() as stack, timings.step("workers"):
            for stage in stages:
                wenv = {
                    **env,
                    "NEWSFLOW_FAUST__WEB_PORT": str(free_port()),
                    "NEWSFLOW_FAUST__DATADIR": str(work / f"faust-{stage}"),
                }
                argv = [newsflow, "worker", stage]
                workers[stage] = stack.enter_context(
                    _process(argv, work, wenv, work / f"{stage}.log")
                )

            def alive() -> None:
                _check_alive(workers, work)

            try:
                wait_until(
                    "every polled article searchable",
                    lambda: _count(settings) >= len(expected),
                    150,
                    alive,
                )
            except AssertionError as exc:
                logs = "\n".join(f"--- {s}\n{_tail(work / f'{s}.log')}" for s in workers)
                raise AssertionError(f"{exc}\n{logs}") from None
        for stage, proc in workers.items():  # stopped by SIGTERM: a clean shutdown
            assert proc.returncode in (0, -signal.SIGTERM), (
                f"{stage}: {proc.returncode}\n{_tail(work / f'{stage}.log')}"
            )

        with timings.step("search"):
            found = {}
            for query in ("Rotterdam", "عمّان"):
                resp = json.loads(_run([newsflow, "search", query, "--json"], cwd=work, env=env))
                found[query] = {hit["_id"]: hit["_source"] for hit in resp["hits"]["hits"]}
        assert set(found["Rotterdam"]) == {article_id(_link(port, 0))}, found
        assert article_id(_link(port, 2)) in found["عمّان"], found
        (doc,) = found["Rotterdam"].values()
        assert doc["language"]["code"] == "en"
        (ar_doc,) = [d for i, d in found["عمّان"].items() if i == article_id(_link(port, 2))]
        assert ar_doc["language"]["code"] == "ar"
        assert _count(settings) == len(expected)
    finally:
        _cleanup(settings)
        print(f"\nwheel test timings (s): {dict(timings)}; wheelhouse warm: {warm}")
