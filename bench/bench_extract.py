"""Extraction speed on 100-300 KB pages, per core, before/after side by side; hostile pages.

    python -m bench.bench_extract [--rounds 3] [--pages 200] [--base REV]

Pages: the test pages of ``tests/fixtures/pages`` grown to 100-300 KB the way real news pages
are big, with boilerplate written from the page's own words (so any of it that leaks into the
text costs F1): a mega-menu in ``<nav>`` and a second menu in plain ``<div>``/``<ul>``, teaser
grids ("most read", "related": headline links with a standfirst, a time and an image; one grid
in ``<article>`` cards), a comment thread, ad slots, a newsletter box, a share bar, a footer of
link columns with legal text, six wrapper ``<div>`` levels, an inline style block, an SVG icon
sprite and an inline JSON state script.

Each side runs in its own process (module-level state of one extractor must not leak into the
other), built once and warmed up, then alternating rounds (``bench.common.alternate``): a round
extracts every page once. The figure is pages per CPU-second of that process (one core; on a
shared machine wall time also counts other processes), median and min-max of the rounds, and
the per-round ratio current / base. Each side also reports its mean token F1 on the grown pages
(pages expected ``ok``; per page set too, and how many pages score under 0.95), so speed is
never bought with text. ``--base REV`` is any git revision
whose ``streams/extract`` is run as the "base" side (read with ``git archive``, nothing checked
out). Then a 50 MB page (refused unparsed) and a one-million-node page (cut at ``max_tags``) are
timed on the current code, with peak RSS. JSON goes to ``bench/results/extract.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "fixtures" / "pages"

Page = tuple[bytes, str, dict[str, str] | None, dict[str, Any]]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grow(html: bytes, target: int, rng: random.Random, words: list[str] | None = None) -> bytes:
    """``html`` with realistic boilerplate inserted until it is about ``target`` bytes."""
    vocab = words or ["news", "city", "report", "today", "council", "market", "weather", "team"]

    def say(n: int) -> str:
        return " ".join(rng.choice(vocab) for _ in range(n))

    menu = "".join(
        f'<li class="mega-item"><a href="/section/{i}/topic-{rng.randint(1, 9999)}">'
        f"{say(2)}</a></li>"
        for i in range(350)
    )
    submenu = "".join(f'<li><a href="/s/{i}">{say(1)}</a></li>' for i in range(60))
    share = "".join(
        f'<a class="share-{n}" href="https://{n}.example/share?u=x">{n}</a>'
        for n in ("facebook", "x", "whatsapp", "telegram", "email", "print")
    )

    def card(i: int, tag: str) -> str:
        return (
            f'<{tag} class="card teaser"><a class="thumb" href="/a/{i}"><img src="/i/{i}.jpg" '
            f'alt="{say(4)}" loading="lazy"></a><div class="card-body"><span class="kicker">'
            f'{say(1)}</span><h3 class="card-title"><a href="/a/{i}">{say(8)}</a></h3>'
            f'<p class="dek">{say(18)}</p><time class="ago">{rng.randint(1, 23)} h</time>'
            f"</div></{tag}>"
        )

    grids = "".join(
        f'<section class="rail rail-{name}"><h2 class="rail-title">{say(2)}</h2>'
        f'<div class="grid">{"".join(card(k * 100 + i, tag) for i in range(12))}</div></section>'
        for k, (name, tag) in enumerate((("most-read", "div"), ("related", "article")))
    )
    comments = "".join(
        f'<li class="comment" id="c{i}"><div class="comment-author"><a href="/u/{i}">'
        f'{say(2)}</a> <span class="comment-date">{rng.randint(1, 59)} min</span></div>'
        f'<div class="comment-body"><p>{say(rng.randint(10, 40))}</p></div>'
        f'<div class="comment-actions"><a href="#r{i}">Reply</a> <a href="#f{i}">Report</a>'
        f"</div></li>"
        for i in range(25)
    )
    ads = "".join(
        f'<div class="ad-slot ad-{i}" data-slot="/1234/news/{i}"><div class="ad-inner">'
        f'<div id="gpt-ad-{i}" class="gpt"></div><span class="ad-label">Ad</span></div></div>'
        for i in range(15)
    )
    columns = "".join(
        f'<div class="footer-col"><h4>{say(1)}</h4><ul>'
        + "".join(f'<li><a href="/f/{c}/{i}">{say(2)}</a></li>' for i in range(15))
        + "</ul></div>"
        for c in range(6)
    )
    footer = (
        f'<footer class="site-footer"><div class="footer-cols">{columns}</div>'
        f'<p class="legal">{say(40)}</p><address>{say(8)}</address></footer>'
    )
    newsletter = (
        f'<div class="newsletter-box"><h3>{say(3)}</h3><p>{say(20)}</p>'
        f'<form action="/subscribe"><input type="email" name="e"><button>OK</button></form></div>'
    )
    sprite = "".join(
        f'<symbol id="icon-{i}" viewBox="0 0 24 24"><path d="M{i} 2L{i + 3} 22H{i % 7}z"/></symbol>'
        for i in range(120)
    )
    style = "".join(f".c{i}{{margin:{i % 9}px;color:#{i:06x}}}" for i in range(1500))
    head_add = f"<style>{style}</style>".encode()
    top = (
        f'<div class="page"><div class="container"><div class="row"><div class="col-main">'
        f'<div class="inner"><div class="wrap"><svg style="display:none">{sprite}</svg>'
        f'<nav class="mega-menu"><ul>{menu}</ul></nav><div class="sub-menu"><ul>{submenu}</ul>'
        f'</div><div class="share-bar top">{share}</div>'
    ).encode()
    after = (
        f'<div class="share-bar bottom">{share}</div>{newsletter}{grids}'
        f'<section id="comments" class="comments"><h2>{say(1)} (25)</h2>'
        f'<ol class="comment-list">{comments}</ol></section>{ads}'
    ).encode()
    bottom = f"</div></div></div></div></div></div>{footer}".encode()
    base = len(html) + len(head_add) + len(top) + len(after) + len(bottom)
    fill = max(0, target - base - 64)
    state = json.dumps({"items": ["x" * 40] * (fill // 45)})[:fill]
    bottom += f"<script>window.__STATE__={state}</script>".encode()
    html = html.replace(b"</head>", head_add + b"</head>", 1)
    start = html.find(b">", html.find(b"<body")) + 1
    end = html.rfind(b"</body>")
    if start <= 0 or end < start:
        return html + top + after + bottom
    inner = html[start:end]
    cut = inner.rfind(b"</main>")
    if cut < 0:
        cut = len(inner)
    return html[:start] + top + inner[:cut] + after + inner[cut:] + bottom + html[end:]


def build(n: int) -> list[Page]:
    rng = random.Random(15)
    sources = []
    for sidecar in sorted(PAGES.glob("*/*.json")):
        if not sidecar.with_suffix(".html").exists():
            continue
        exp = json.loads(sidecar.read_text(encoding="utf-8"))
        sources.append((sidecar.with_suffix(".html").read_bytes(), exp))
    pages: list[Page] = []
    for i in range(n):
        html, exp = sources[i % len(sources)]
        body = exp.get("body") or ""
        words = body.split() or None
        if words and len(words) < len(body) / 20:  # CJK: no spaces, cut into 2-3 character words
            text = "".join(body.split())
            words = [text[k : k + 2 + k % 2] for k in range(0, len(text) - 3, 3)]
        try:
            html.decode("utf-8")
        except UnicodeDecodeError:
            words = None  # a legacy-encoded page: the inserted bulk stays ASCII
        grown = grow(html, rng.randint(100_000, 300_000), rng, words)
        pages.append((grown, exp["url"], exp.get("headers"), exp))
    return pages


# ---------------------------------------------------------------------------- one side (child)


def serve(n: int) -> None:
    """Child process: build, warm up, report F1; then one round per ``round`` line on stdin."""
    from streams.extract import extract
    from streams.extract.evaluate import page_f1

    pages = build(n)
    f1s: list[float] = []
    by_set: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    for html, url, headers, exp in pages:  # warm-up: imports, lazy models, caches
        got = extract(html, url, headers)
        statuses[got.status] = statuses.get(got.status, 0) + 1
        if exp.get("status", "ok") == "ok":
            f1s.append(page_f1(got.status, got.text, exp))
            by_set.setdefault(exp.get("set", "base"), []).append(f1s[-1])
    sizes = [len(p[0]) for p in pages]
    ready = {
        "pages": len(pages),
        "kb_min": min(sizes) // 1024,
        "kb_max": max(sizes) // 1024,
        "kb_mean": round(statistics.mean(sizes) / 1024),
        "f1_grown": round(statistics.mean(f1s), 4),
        "f1_grown_by_set": {k: round(statistics.mean(v), 4) for k, v in sorted(by_set.items())},
        "under_095": sum(f < 0.95 for f in f1s),
        "statuses": statuses,
        "code": str(Path(sys.modules[extract.__module__].__file__ or "?").parent),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        started, cpu = time.perf_counter(), time.process_time()
        for html, url, headers, _ in pages:
            extract(html, url, headers)
        cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - started
        figures = {"pages_per_cpu_s": len(pages) / cpu_s, "pages_per_s": len(pages) / wall_s}
        figures["rss_mb"] = round(_rss_mb())
        print(json.dumps(figures), flush=True)


class Side:
    """One extractor version in its own process."""

    def __init__(self, name: str, pages: int, impl: Path | None) -> None:
        self.name = name
        command = [sys.executable, "-m", "bench.bench_extract", "--serve", "--pages", str(pages)]
        if impl is not None:
            command += ["--impl", str(impl)]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"side {self.name} exited ({self.proc.wait()})")
        out: dict[str, Any] = json.loads(line)
        return out

    def round(self, _: int) -> Mapping[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def checkout(rev: str, into: Path) -> Path:
    """``streams/extract`` of ``rev`` as an importable ``streams`` package under ``into``."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", rev, "streams/extract"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    (into / "streams" / "__init__.py").write_text("")
    return into


def _shadow_streams(impl: Path) -> None:
    """Make ``streams`` (so ``streams.extract``) resolve to ``impl``'s copy in this process.

    Putting ``impl`` first on ``sys.path`` is not enough: an editable install finds ``streams``
    through its own import hook, ahead of ``sys.path``. The package is loaded from ``impl``
    by hand; its submodules then follow the package's ``__path__``.
    """
    import importlib.util

    init = impl / "streams" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "streams", init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["streams"] = module
    spec.loader.exec_module(module)


# ------------------------------------------------------------------------------------- parent


def hostile() -> dict[str, Any]:
    from streams.extract import extract

    # warm-up: the first extraction imports trafilatura & co. (~1 s), not the page's cost
    extract(b"<html><body><p>" + b"A short real sentence here. " * 40 + b"</p></body></html>")
    huge = b"<html><body>" + b"<p>" + b"word " * 10_000_000 + b"</p></body></html>"
    started = time.perf_counter()
    res = extract(huge, None)
    huge_s = time.perf_counter() - started
    print(f"50 MB page: {res.status} in {huge_s * 1000:.1f} ms")
    del huge
    nodes = b"<html><body><article><p>" + b"A short real sentence here. " * 40 + b"</p>"
    nodes += b"<i>x</i>" * 1_000_000 + b"</article></body></html>"
    rss_before = _rss_mb()
    started = time.perf_counter()
    res2 = extract(nodes, None)
    nodes_s = time.perf_counter() - started
    print(
        f"1,000,000-node page ({len(nodes) // 2**20} MB): {res2.status} {res2.flags} in "
        f"{nodes_s * 1000:.0f} ms; peak RSS {rss_before:.0f} -> {_rss_mb():.0f} MB"
    )
    return {
        "huge_50mb": {"status": res.status, "ms": round(huge_s * 1000, 1)},
        "million_nodes": {"status": res2.status, "flags": res2.flags, "ms": round(nodes_s * 1000)},
        "peak_rss_mb": round(_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--base", help="git revision whose streams/extract is the base side")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.impl is not None:
            _shadow_streams(args.impl)
        serve(args.pages)
        return

    from bench.common import alternate, fmt_spread, machine_load, ratio_report, save_result

    load_before = machine_load(busy=True)
    with tempfile.TemporaryDirectory() as tmp:
        sides: dict[str, Side] = {}
        if args.base:
            sides[f"base {args.base}"] = Side("base", args.pages, checkout(args.base, Path(tmp)))
        sides["current"] = Side("current", args.pages, None)
        try:
            first = next(iter(sides.values())).ready
            print(
                f"{first['pages']} pages, {first['kb_min']}-{first['kb_max']} KB "
                f"(mean {first['kb_mean']} KB); load average {os.getloadavg()[0]:.1f}"
            )
            for name, side in sides.items():
                ready = side.ready
                sets = " ".join(f"{k} {v:.4f}" for k, v in ready.get("f1_grown_by_set", {}).items())
                print(f"{name:<20} F1 on grown pages {ready['f1_grown']:.4f} ({sets}; "
                      f"{ready.get('under_095', '?')} under 0.95)  statuses {ready['statuses']}"
                      f"  code {ready['code']}")  # fmt: skip
            rounds = alternate({n: s.round for n, s in sides.items()}, args.rounds)
        finally:
            for side in sides.values():
                side.close()
    names = list(sides)
    ratios = [("current", names[0], None)] if len(names) > 1 else []
    report = ratio_report(rounds, "pages_per_cpu_s", ratios, unit="pages per CPU-second")
    wall = {n: statistics.median(r["pages_per_s"] for r in rows) for n, rows in rounds.items()}
    cur = report["sides"]["current"]
    print(
        f"extraction (current): {fmt_spread(cur, 1)} pages/s per core (CPU time, median and "
        f"min-max of {cur['n']} rounds; target >= 40: {'met' if cur['median'] >= 40 else 'MISSED'})"
        f"; wall {wall['current']:.1f} pages/s"
    )
    extra = hostile()
    path = save_result(
        "extract.json",
        {
            "pages": sides["current"].ready,
            "f1_grown": {n: s.ready["f1_grown"] for n, s in sides.items()},
            "rounds": rounds,
            "pages_per_cpu_s": report,
            "median_pages_per_s_wall": wall,
            **extra,
        },
        load_before,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
