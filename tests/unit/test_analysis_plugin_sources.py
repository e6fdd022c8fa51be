"""The local analysis plugin's sources: every named component is declared, and the template's
own analyzers use only names the plugin (local) or analysis-common (production) provide."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streams.settings import ElasticSettings
from streams.sinks.elastic import ANALYSIS_FILTERS, index_template

PLUGIN = Path(__file__).resolve().parents[2] / "deploy/local/es-analysis-plugin/src/main"
# Server-core filters (no plugin, no analysis-common needed).
CORE = {"lowercase", "stop"}


def _declared() -> dict[str, str]:
    components = json.loads((PLUGIN / "plugin-metadata/named_components.json").read_text())
    return {name: cls for kind in components.values() for name, cls in kind.items()}


def test_every_named_component_is_declared_for_elasticsearch() -> None:
    """Elasticsearch reads named_components.json and never scans the jar: a class missing there
    silently does not exist."""
    in_code = set()
    for source in (PLUGIN / "java").rglob("*.java"):
        in_code |= set(re.findall(r'@NamedComponent\("([a-z_]+)"\)', source.read_text()))
    assert in_code == set(_declared())


def test_the_template_analyzers_use_only_provided_filters() -> None:
    analysis = index_template(ElasticSettings())["template"]["settings"]["analysis"]
    custom = analysis["filter"]
    used = set()
    for analyzer in analysis["analyzer"].values():
        for name in analyzer["filter"]:
            used.add(custom[name]["type"] if name in custom else name)
    assert used - CORE <= set(_declared())
    assert used - CORE == set(ANALYSIS_FILTERS)  # what template_for probes
