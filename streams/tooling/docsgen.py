"""Docs tooling: generates the settings table and the metric catalogue of the docs site.

Build-time only (`make docs` runs ``python -m streams.tooling.docsgen`` before ``mkdocs build``); no
runtime module imports it. The tables come from the code itself, so they cannot drift:

- ``docs/settings.md``: every field of ``streams.settings.Settings`` (pydantic-settings
  sections; env ``NEWSFLOW_<SECTION>__<FIELD>``) with its default, type, bounds and description.
- ``docs/metrics.md``: every ``newsflow_*`` collector in the Prometheus registry after importing
  each module of ``streams/`` and ``connectors/`` that declares metrics.

Only the block between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->`` is
rewritten; the prose around it is written by hand. ``--check`` changes nothing and exits 1 when
a committed page is stale (tests/unit/test_docs_generated.py does the same in the test suite).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENV_PREFIX = "NEWSFLOW_"
# Packages whose modules may declare metrics (scanned by source text, imported when they do).
METRIC_PACKAGES = ("streams", "connectors")
# `from prometheus_client import Counter, ...` or `import (\n Counter,\n ...)` naming a metric type.
_DECLARES_METRICS = re.compile(
    r"^\s*from prometheus_client(?:\.metrics)? import (?:\([^)]*|[^\n]*)"
    r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\b",
    re.MULTILINE,
)
FIX_HINT = "run `make docs` (or `python -m streams.tooling.docsgen`) and commit the result"


# ---- the marked blocks ------------------------------------------------------------------------


def begin_marker(name: str) -> str:
    return (
        f"<!-- BEGIN GENERATED: {name} (python -m streams.tooling.docsgen; do not edit by hand) -->"
    )


def end_marker(name: str) -> str:
    return f"<!-- END GENERATED: {name} -->"


def fill(page: str, name: str, body: str) -> str:
    """``page`` with the block ``name`` replaced by ``body``; the markers must be present."""
    begin, end = begin_marker(name), end_marker(name)
    start, stop = page.find(begin), page.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the page has no block {name!r} (markers {begin!r} ... {end!r})")
    return page[: start + len(begin)] + "\n\n" + body.rstrip("\n") + "\n\n" + page[stop:]


def _cell(text: str) -> str:
    """A Markdown table cell: one line, pipes escaped outside code spans (Python-Markdown keeps
    a pipe inside backticks as text, and shows the backslash of an escaped one)."""
    parts = " ".join(text.split()).split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


# ---- settings ---------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner}, optional" if len(args) < len(get_args(annotation)) else inner
    if origin is dict:
        key, value = get_args(annotation) or (str, Any)
        return f"JSON object of {_type_name(key)} → {_type_name(value)}"
    if origin in (tuple, list, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return f"JSON list of {_type_name(args[0])}" if args else "JSON list"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {_number(value)}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            parts.append(f"`{pattern}`")
    return ", ".join(parts)


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _default(info: FieldInfo) -> str:
    factory = info.default_factory
    if factory in (dict, list, tuple):
        value: Any = factory()
        return "`{}`" if value == {} else "`[]`"
    if factory is not None:  # depends on the machine or the environment: named, not shown
        name = getattr(factory, "__name__", "a factory")
        return f"computed at start (`{name}`)"
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`[]`" if not value else f"`{list(value)}`"
    if isinstance(value, str) and value == "":
        return "empty"
    value = _number(value)
    text = f"`{value}`"
    if isinstance(value, int) and value >= 2**20 and value % 2**20 == 0:
        text += f" ({value // 2**20} MiB)"
    return text


def _setting_rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _setting_rows(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}", info


def settings_table() -> str:
    from streams.settings import Settings

    out: list[str] = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), section
        out.append(f"### `{section}`\n")
        doc = (model.__doc__ or "").strip()
        if doc:
            out.append(_cell(doc) + "\n")
        out.append("| variable | default | type | meaning |")
        out.append("|---|---|---|---|")
        for variable, field in _setting_rows(model, f"{ENV_PREFIX}{section.upper()}__"):
            kind = _type_name(field.annotation)
            bounds = _bounds(field)
            out.append(
                f"| `{variable}` | {_cell(_default(field))} | {_cell(kind)}"
                f"{_cell(', ' + bounds) if bounds else ''} | {_cell(field.description or '—')} |"
            )
        out.append("")
    return "\n".join(out)


# ---- metrics ----------------------------------------------------------------------------------


def metric_modules(root: Path = ROOT) -> list[str]:
    """Dotted names of the modules that declare Prometheus metrics, found by their source."""
    found = []
    for package in METRIC_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if _DECLARES_METRICS.search(path.read_text(encoding="utf-8")):
                found.append(".".join(path.relative_to(root).with_suffix("").parts))
    return found


def _collectors(modules: list[ModuleType]) -> list[tuple[Any, str]]:
    """Every ``newsflow_*`` collector of the default registry, with the module declaring it."""
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    where: dict[int, str] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                where.setdefault(id(value), module.__name__)
    registered = getattr(REGISTRY, "_collector_to_names", {})
    found = []
    for collector in list(registered):
        if isinstance(collector, MetricWrapperBase) and collector._name.startswith("newsflow_"):
            found.append((collector, where.get(id(collector), "")))
    return sorted(found, key=lambda item: str(item[0]._name))


def metrics_table() -> str:
    modules = [importlib.import_module(name) for name in metric_modules()]
    out = ["| metric | type | labels | meaning | declared in |", "|---|---|---|---|---|"]
    for collector, module in _collectors(modules):
        kind = str(collector._type)
        name = collector._name + ("_total" if kind == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in collector._labelnames) or "—"
        source = f"`{module.replace('.', '/')}.py`" if module else "—"
        out.append(
            f"| `{name}` | {kind} | {labels} | {_cell(collector._documentation)} | {source} |"
        )
    return "\n".join(out) + "\n"


# ---- pages ------------------------------------------------------------------------------------

PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "settings": ("settings.md", settings_table),
    "metrics": ("metrics.md", metrics_table),
}


def render(docs: Path = DOCS) -> dict[Path, str]:
    """Every generated page as it should be: path -> full text."""
    rendered: dict[Path, str] = {}
    for name, (file, make) in PAGES.items():
        path = docs / file
        rendered[path] = fill(path.read_text(encoding="utf-8"), name, make())
    return rendered


def stale(docs: Path = DOCS) -> list[Path]:
    return [p for p, text in render(docs).items() if p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="Only report stale pages (exit 1).")
    args = parser.parse_args(argv)
    if args.check:
        old = stale()
        for path in old:
            print(f"stale: {path.relative_to(ROOT)}; {FIX_HINT}", file=sys.stderr)
        return 1 if old else 0
    for path, text in render().items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
