"""The live view of `newsflow run`: run totals, current lag, rates, dead letters, feeds, errors.

- **Totals survive restarts.** A child's counters start again at 0 when the supervisor restarts
  it; ``RunTotals`` banks what the previous life counted (when the supervisor restarts it, or
  when a counter is seen going down) so the totals are those of the whole run.
- **Lag is current.** It is read from Kafka (end offsets minus each group's committed offsets)
  at every refresh, not from the workers' gauges: those are sampled every
  ``NEWSFLOW_OPS__LAG_INTERVAL_S``, are stale when a worker is down, and every worker of a stage
  reports the whole group's lag (summing them counted it once per worker).
- **On a terminal** the view is drawn in place (a rich live table); **otherwise** one line is
  printed per change (nothing while nothing changes) and each event once.

Text from feeds and logs is reduced to printable characters before it is shown: a feed's error
message or a log line must not move the cursor or recolour the operator's terminal.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
STAGES = ("extract", "enrich", "index")
# Stage -> (metric labels that count its finished articles); the connector counts produced ones.
_DONE = {
    "connector": {"stage": "connector"},
    "extract": {"stage": "extract", "outcome": "extracted"},
    "enrich": {"stage": "enrich", "outcome": "enriched"},
    "index": {"stage": "index", "outcome": "indexed"},
}
_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback ")


def printable(text: str, limit: int = 160) -> str:
    """``text`` on one line without control, format or escape characters, at most ``limit``."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r":
            out.append(" ")
        elif cat[0] == "C" or cat in ("Zl", "Zp"):  # controls (ESC, C1), format (bidi), ...
            out.append("?")
        else:
            out.append(ch)
    flat = " ".join("".join(out).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_counter(name: str) -> bool:
    return name.endswith(_COUNTER_SUFFIXES)


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lbl), v in samples.items()
        if n == name and all(dict(lbl).get(k) == want for k, want in labels.items())
    )


@dataclass
class RunTotals:
    """Counters of the whole run, per child, across that child's restarts."""

    banked: dict[str, Samples] = field(default_factory=dict)  # earlier lives, summed
    last: dict[str, Samples] = field(default_factory=dict)  # the current life, last scrape

    def update(self, child: str, samples: Samples) -> None:
        """A fresh scrape of ``child`` (empty = it did not answer: keep what we had)."""
        if not samples:
            return
        previous = self.last.get(child, {})
        if any(
            samples.get(key, 0.0) < value for key, value in previous.items() if is_counter(key[0])
        ):
            self.bank(child)  # a counter went down: a new life we were not told about
        self.last[child] = {k: v for k, v in samples.items() if is_counter(k[0])}

    def bank(self, child: str) -> None:
        """``child`` restarts: what its life counted stays in the totals, its next life adds."""
        into = self.banked.setdefault(child, {})
        for key, value in self.last.pop(child, {}).items():
            into[key] = into.get(key, 0.0) + value

    def merged(self) -> Samples:
        out: Samples = {}
        for per_child in (*self.banked.values(), *self.last.values()):
            for key, value in per_child.items():
                out[key] = out.get(key, 0.0) + value
        return out


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one moment."""

    elapsed_s: float
    polls: float
    done: dict[str, float]  # connector (produced), extract, enrich, index: run totals
    rates: dict[str, float | None]  # articles/s over the last few refreshes
    lag: dict[str, int | None]  # stage -> current lag (None: Kafka not readable)
    dead_letters: dict[str, float]  # error -> count, run totals
    feeds: dict[str, int]  # health -> feeds
    processes: dict[str, tuple[bool, int]]  # child -> (alive, restarts)
    events: tuple[str, ...] = ()  # recent errors, oldest first


def snapshot(
    totals: Samples,
    *,
    elapsed_s: float,
    rates: dict[str, float | None],
    lag: dict[str, int | None],
    feeds: dict[str, int],
    processes: dict[str, tuple[bool, int]],
    events: Iterable[str] = (),
) -> Snapshot:
    articles = "newsflow_articles_total"
    dead: dict[str, float] = {}
    for (name, labels), value in totals.items():
        if name == "newsflow_dead_letters_total" and value:
            error = dict(labels).get("error", "?")
            dead[error] = dead.get(error, 0.0) + value
    return Snapshot(
        elapsed_s=elapsed_s,
        polls=total(totals, "newsflow_feed_polls_total"),
        done={stage: total(totals, articles, **labels) for stage, labels in _DONE.items()},
        rates=rates,
        lag=lag,
        dead_letters=dict(sorted(dead.items(), key=lambda kv: -kv[1])),
        feeds=feeds,
        processes=processes,
        events=tuple(events),
    )


def _n(value: float | int | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def render_line(s: Snapshot) -> str:
    """One line for a log: run totals, current lag, dead letters, feeds (no clock, no rates,
    so that it only changes when something happened)."""
    down = [name for name, (alive, _r) in s.processes.items() if not alive]
    parts = [
        f"polls {_n(s.polls)}",
        f"produced {_n(s.done['connector'])}",
        f"extracted {_n(s.done['extract'])}",
        f"enriched {_n(s.done['enrich'])}",
        f"indexed {_n(s.done['index'])}",
        "lag " + " ".join(f"{stage} {_n(s.lag.get(stage))}" for stage in STAGES),
        f"dead letters {_n(sum(s.dead_letters.values()))}",
        "feeds " + (" ".join(f"{h} {n}" for h, n in s.feeds.items() if n) or "-"),
    ]
    if down:
        parts.append("down " + ",".join(down))
    return "  ".join(parts)


def render_table(s: Snapshot) -> Any:
    """The terminal view (a rich renderable): one row per stage, then dead letters, feeds,
    processes and recent errors."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    minutes, seconds = divmod(int(s.elapsed_s), 60)
    stages = Table(
        title=f"newsflow run  {minutes // 60}:{minutes % 60:02d}:{seconds:02d}  (Ctrl-C stops)",
        title_justify="left",
        expand=False,
    )
    stages.add_column("stage")
    stages.add_column("total (run)", justify="right")
    stages.add_column("rate /s", justify="right")
    stages.add_column("lag (now)", justify="right")
    labels = {"connector": "produced", "extract": "extracted", "enrich": "enriched"}
    labels["index"] = "indexed"
    for stage in ("connector", *STAGES):
        rate = s.rates.get(stage)
        lag = "-" if stage == "connector" else _n(s.lag.get(stage))
        stages.add_row(
            f"{stage} ({labels[stage]})",
            _n(s.done[stage]),
            "-" if rate is None else f"{rate:,.1f}",
            lag,
        )
    dead_total = sum(s.dead_letters.values())
    dead = ", ".join(f"{printable(e, 40)} {_n(n)}" for e, n in list(s.dead_letters.items())[:5])
    feeds = "  ".join(f"{h} {n}" for h, n in s.feeds.items() if n) or "-"
    procs = "  ".join(
        f"{name}" + ("" if alive else " DOWN") + (f" (restarts {r})" if r else "")
        for name, (alive, r) in s.processes.items()
    )
    lines = [
        Text(f"polls {_n(s.polls)}"),
        Text(f"dead letters {_n(dead_total)}" + (f"  ({dead})" if dead else "")),
        Text(f"feeds  {feeds}"),
        Text(f"processes  {procs}"),
        Text("recent errors" + ("" if s.events else "  none")),
        *(Text("  " + printable(e)) for e in s.events),
    ]
    return Group(stages, *lines)


class Printer:
    """Shows snapshots: in place on a terminal, else one line per change and events once."""

    def __init__(self, out: IO[str], tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self._last_line = ""
        self._printed_events: deque[str] = deque(maxlen=200)
        self._live: Any = None

    def __enter__(self) -> Printer:
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.out, force_terminal=True)
            self._live = Live(
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self, s: Snapshot) -> None:
        if self._live is not None:
            self._live.update(render_table(s), refresh=True)
            return
        for event in s.events:
            if event not in self._printed_events:
                self._printed_events.append(event)
                self.out.write(printable(event, 500) + "\n")
        line = render_line(s)
        if line != self._last_line:
            self._last_line = line
            self.out.write(line + "\n")
        self.out.flush()


class Rates:
    """Articles per second per stage over a sliding window of run totals."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, dict[str, float]]] = deque()

    def add(self, now: float, done: dict[str, float]) -> dict[str, float | None]:
        self._points.append((now, dict(done)))
        while len(self._points) > 2 and now - self._points[1][0] >= self.window_s:
            self._points.popleft()
        t0, first = self._points[0]
        if now - t0 <= 0:
            return {stage: None for stage in done}
        return {
            stage: max(0.0, (done[stage] - first.get(stage, 0.0)) / (now - t0)) for stage in done
        }


class LogErrors:
    """New ERROR/CRITICAL/Traceback lines appended to a log since the last look."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.limit = limit
        self._offsets: dict[str, int] = {}

    def new(self, path: str) -> list[str]:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                start = self._offsets.get(path)
                if start is None or start > size:  # first look: only what comes next
                    self._offsets[path] = size
                    return []
                fh.seek(max(start, size - self.limit))
                chunk = fh.read(size - fh.tell())
        except OSError:
            return []
        complete, _, _rest = chunk.rpartition(b"\n")
        self._offsets[path] = size - len(_rest)
        lines = complete.decode("utf-8", "replace").splitlines()
        return [line for line in lines if _ERROR_LINE.search(line)]


@dataclass
class Events:
    """The most recent events (errors, exits), newest last, each stamped with its time."""

    limit: int = 8
    clock: Callable[[], float] = time.time
    items: deque[str] = field(default_factory=deque)

    def add(self, source: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        self.items.append(f"{stamp} {source}: {printable(message, 200)}")
        while len(self.items) > self.limit:
            self.items.popleft()
