"""Memory probe for bench/bench_memory.py --probe: loaded into the worker via PYTHONPATH.

Runs only when ``NEWSFLOW_MEMPROBE`` names a directory. A daemon thread watches it for
request files ``<n>.req`` (one word: ``counts``, ``trace`` or ``snap``) and answers each with
``<n>.json``: the live Python objects by type (``gc.get_objects()``; objects frozen by
``gc.freeze()`` — the models — are not in it), glibc's heap figures (``mallinfo2``: bytes in
use vs. free but kept), and with ``trace`` started, the tracemalloc totals; ``snap`` also dumps a
tracemalloc snapshot to ``<n>.snap`` for diffing. Not imported by any runtime code.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mb = 1024 * 1024
    return {
        "heap_mb": m.arena / mb,  # sbrk/arena space (all arenas)
        "mmap_mb": m.hblkhd / mb,
        "in_use_mb": m.uordblks / mb,
        "free_kept_mb": m.fordblks / mb,
    }


def _answer(folder: Path, name: str, what: str) -> None:
    if what in ("trace", "snap") and not tracemalloc.is_tracing():
        tracemalloc.start(int(os.environ.get("NEWSFLOW_MEMPROBE_FRAMES", "12")))
    gc.collect()
    counts = Counter(type(o).__qualname__ for o in gc.get_objects())
    out: dict[str, object] = {
        "at": time.time(),
        "objects": sum(counts.values()),
        "top_types": counts.most_common(60),
        "malloc": _mallinfo(),
        "threads": threading.active_count(),
    }
    if tracemalloc.is_tracing():
        cur, _peak = tracemalloc.get_traced_memory()
        out["traced_mb"] = cur / 1024 / 1024
        if what == "snap":
            tracemalloc.take_snapshot().dump(str(folder / f"{name}.snap"))
    tmp = folder / f"{name}.tmp"
    tmp.write_text(json.dumps(out))
    tmp.rename(folder / f"{name}.json")


def _watch(folder: Path) -> None:
    while True:
        for req in sorted(folder.glob("*.req")):
            what = req.read_text().strip()
            req.unlink()
            try:
                _answer(folder, req.stem, what)
            except Exception as exc:  # noqa: BLE001 - a probe never kills the worker
                (folder / f"{req.stem}.json").write_text(json.dumps({"error": repr(exc)}))
        time.sleep(0.5)


_DIR = os.environ.get("NEWSFLOW_MEMPROBE")
if _DIR:
    threading.Thread(target=_watch, args=(Path(_DIR),), name="memprobe", daemon=True).start()
