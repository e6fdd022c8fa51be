"""The generated docs pages (settings table, metric catalogue) match the code.

A new setting or metric without regenerating fails here, with the command that fixes it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.tooling import docsgen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_generated_pages_are_up_to_date() -> None:
    # A fresh interpreter, exactly as `make docs` runs it: the Prometheus registry then holds
    # only what the code declares, not what other tests registered in this process.
    res = subprocess.run(
        [sys.executable, "-m", "streams.tooling.docsgen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, (
        "docs/settings.md or docs/metrics.md is out of date with the code "
        "(a setting or metric was added or changed): run `make docs` and commit the pages.\n"
        + res.stdout
        + res.stderr
    )


def test_every_setting_and_metric_is_in_the_pages() -> None:
    from streams.settings import Settings

    settings_page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert model is not None
        for field in model.model_fields:  # type: ignore[union-attr]
            variable = f"NEWSFLOW_{section.upper()}__{field.upper()}"
            assert f"`{variable}`" in settings_page, f"{variable}: run `make docs`"
    metrics_page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name in ("newsflow_articles_total", "newsflow_feed_polls_total", "newsflow_ready"):
        assert f"`{name}`" in metrics_page, f"{name}: run `make docs`"


def test_the_check_catches_a_stale_page(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("examples"))
    for path, text in docsgen.render(docs).items():  # up to date with the code in this process
        path.write_text(text, encoding="utf-8")
    assert docsgen.stale(docs) == []
    page = docs / "settings.md"
    text = page.read_text(encoding="utf-8")
    # What a developer's new setting looks like to the check: the committed table lacks a row.
    row = next(line for line in text.splitlines() if "NEWSFLOW_KAFKA__CLIENT_ID" in line)
    page.write_text(text.replace(row + "\n", ""), encoding="utf-8")
    assert docsgen.stale(docs) == [page]
    assert docsgen.render(docs)[page] == text


def test_only_the_marked_block_is_rewritten() -> None:
    page = "intro\n" + docsgen.begin_marker("x") + "\nold\n" + docsgen.end_marker("x") + "\noutro\n"
    filled = docsgen.fill(page, "x", "| new |\n")
    assert filled.startswith("intro\n") and filled.endswith("\noutro\n")
    assert "| new |" in filled and "old" not in filled
    assert docsgen.fill(filled, "x", "| new |\n") == filled  # stable
    with pytest.raises(ValueError, match="no block 'y'"):
        docsgen.fill(page, "y", "")


def test_metric_modules_are_found_by_their_source() -> None:
    modules = docsgen.metric_modules()
    assert "streams.metrics" in modules and "connectors.metrics" in modules
    # collections.Counter in training code is not a Prometheus metric.
    assert not any(m.startswith("streams.enrich.training") for m in modules)


@pytest.mark.parametrize(
    ("source", "declares"),
    [
        ("from prometheus_client import Counter, Gauge\n", True),
        ("from prometheus_client import (\n    Histogram,\n    Summary,\n)\n", True),
        ("from prometheus_client import REGISTRY, generate_latest\n", False),
        ("from prometheus_client import REGISTRY\nfrom collections import Counter\n", False),
        ("from prometheus_client.parser import text_string_to_metric_families\n", False),
    ],
)
def test_what_counts_as_declaring_metrics(source: str, declares: bool) -> None:
    assert bool(docsgen._DECLARES_METRICS.search(source)) is declares
