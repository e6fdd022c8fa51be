"""Extraction speed on 100-300 KB pages, one core, and the cost of hostile pages.

    python -m bench.bench_extract [--rounds 3] [--pages 200]

Pages: the test pages of ``tests/fixtures/pages`` grown to 100-300 KB the way real news pages
are big: a mega-menu and a link-heavy footer (hundreds of nodes), an inline style block, an SVG
icon sprite and an inline JSON state script. Each round extracts every page once in this process
(one core); the figure is pages/s, median and spread of the rounds. Then a 50 MB page (refused
unparsed) and a one-million-node page (cut at ``max_tags``) are timed, with peak RSS.
JSON goes to ``bench/results/extract.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import time
from pathlib import Path

from streams.extract import extract

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "fixtures" / "pages"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grow(html: bytes, target: int, rng: random.Random) -> bytes:
    """``html`` with realistic bulk inserted until it is about ``target`` bytes."""
    menu = "".join(
        f'<li class="mega-item"><a href="/section/{i}/topic-{rng.randint(1, 9999)}">'
        f"Topic {i} news {rng.randint(1, 999)}</a></li>"
        for i in range(350)
    )
    footer = "".join(
        f'<div class="col"><a href="/archive/{i}">Archive {2000 + i % 25} / {i}</a></div>'
        for i in range(250)
    )
    sprite = "".join(
        f'<symbol id="icon-{i}" viewBox="0 0 24 24"><path d="M{i} 2L{i + 3} 22H{i % 7}z"/></symbol>'
        for i in range(120)
    )
    style = "".join(f".c{i}{{margin:{i % 9}px;color:#{i:06x}}}" for i in range(1500))
    head_add = f"<style>{style}</style>".encode()
    body_add = (
        f'<svg style="display:none">{sprite}</svg><nav class="mega-menu"><ul>{menu}</ul></nav>'
        f'<div class="site-map">{footer}</div>'
    ).encode()
    base = len(html) + len(head_add) + len(body_add)
    fill = max(0, target - base - 64)
    state = json.dumps({"items": ["x" * 40] * (fill // 45)})[:fill]
    body_add += f"<script>window.__STATE__={state}</script>".encode()
    html = html.replace(b"</head>", head_add + b"</head>", 1)
    return html.replace(b"</body>", body_add + b"</body>", 1)


def build(n: int) -> list[tuple[bytes, str, dict[str, str] | None]]:
    rng = random.Random(15)
    sources = []
    for sidecar in sorted(PAGES.glob("*/*.json")):
        if not sidecar.with_suffix(".html").exists():
            continue
        exp = json.loads(sidecar.read_text(encoding="utf-8"))
        sources.append((sidecar.with_suffix(".html").read_bytes(), exp["url"], exp.get("headers")))
    return [
        (grow(html, rng.randint(100_000, 300_000), rng), url, headers)
        for html, url, headers in (sources[i % len(sources)] for i in range(n))
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    pages = build(args.pages)
    sizes = [len(p[0]) for p in pages]
    print(
        f"{len(pages)} pages, {min(sizes) // 1024}-{max(sizes) // 1024} KB "
        f"(mean {statistics.mean(sizes) / 1024:.0f} KB)"
    )
    for html, url, headers in pages[:50]:  # warm-up: imports, lazy models, caches
        extract(html, url, headers)
    rates, cpu_rates = [], []
    statuses: dict[str, int] = {}
    for r in range(args.rounds):
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        for html, url, headers in pages:
            status = extract(html, url, headers).status
            statuses[status] = statuses.get(status, 0) + 1
        rate = len(pages) / (time.perf_counter() - started)
        cpu_rate = len(pages) / (time.process_time() - cpu)
        rates.append(rate)
        cpu_rates.append(cpu_rate)
        print(f"  round {r + 1}: {rate:.1f} pages/s wall, {cpu_rate:.1f} pages per CPU-second")
    median = statistics.median(rates)
    cpu_median = statistics.median(cpu_rates)
    # Per core = pages per CPU-second of this process: on a shared machine the wall-clock
    # figure also counts the time other processes held the core.
    print(
        f"extraction: median {cpu_median:.1f} pages/s per core (CPU time; min "
        f"{min(cpu_rates):.1f}, max {max(cpu_rates):.1f}), {median:.1f} pages/s wall; "
        f"load average {os.getloadavg()[0]:.1f}; statuses {statuses}; peak RSS {_rss_mb():.0f} MB"
    )

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
    from bench.common import save_result

    path = save_result(
        "extract.json",
        {
            "pages": len(pages),
            "kb_min": min(sizes) // 1024,
            "kb_max": max(sizes) // 1024,
            "rounds_pages_per_s": [round(x, 1) for x in rates],
            "median_pages_per_s": round(median, 1),
            "rounds_pages_per_cpu_s": [round(x, 1) for x in cpu_rates],
            "median_pages_per_cpu_s": round(cpu_median, 1),
            "load_average": round(os.getloadavg()[0], 1),
            "peak_rss_mb": round(_rss_mb()),
            "huge_50mb": {"status": res.status, "ms": round(huge_s * 1000, 1)},
            "million_nodes": {
                "status": res2.status,
                "flags": res2.flags,
                "ms": round(nodes_s * 1000),
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
