"""Shared pieces of the benchmarks: alternating rounds, median and spread, machine load,
results in bench/results/, and for the worker benchmarks a private namespace, producing and
timing a drain.

A ratio benchmark measures its sides in alternating rounds (A B A B ...), at least three of
each, and reports the median and the min-max spread of each side and of the per-round ratio.
One round of each on a shared 2-core machine can be off by a third either way (another
process's burst lands on one side only); alternation puts both sides under the same drift, and
the spread shows how far a single figure can be trusted. Every result file records the load
average before and after, the CPU count and the busiest other processes at the start.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from streams.kafka_clients import client_options
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


MIN_ROUNDS = 3

# ---- machine load ---------------------------------------------------------------------------


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    ticks: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        ticks[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return ticks


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:120]


def busy_processes(window_s: float = 0.5, top: int = 5) -> list[dict[str, Any]]:
    """The processes (other than this one) that used the most CPU over ``window_s``."""
    try:
        before = _cpu_ticks()
        time.sleep(window_s)
        after = _cpu_ticks()
    except OSError:  # no /proc: not Linux; the load average still says enough
        return []
    hz = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    busy: list[dict[str, Any]] = []
    for pid, (name, t1) in after.items():
        t0 = before.get(pid, (name, t1))[1]
        share = (t1 - t0) / hz / window_s
        if pid != me and share >= 0.05:
            busy.append({"pid": pid, "name": _command(pid) or name, "cpu": round(share, 2)})
    busy.sort(key=lambda p: -p["cpu"])
    return busy[:top]


def machine_load(busy: bool = False) -> dict[str, Any]:
    """Load average, CPU count (and with ``busy`` the busiest other processes) right now."""
    one, five, fifteen = os.getloadavg()
    load: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
    }
    if busy:
        load["busy_processes"] = busy_processes()
    return load


# ---- rounds, median, spread -----------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and min-max of ``values`` (one per round)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt_spread(s: Mapping[str, float], digits: int = 0) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


Side = Callable[[int], Mapping[str, Any]]


def alternate(
    sides: Mapping[str, Side], rounds: int, log: Callable[[str], None] | None = print
) -> dict[str, list[dict[str, Any]]]:
    """Run every side once per round, in the same order each round (A B A B ...).

    A side is ``f(round) -> figures``; the figures of every round are kept, per side.
    """
    if rounds < MIN_ROUNDS:
        raise ValueError(f"at least {MIN_ROUNDS} rounds of each side, got {rounds}")
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for rnd in range(rounds):
        for name, side in sides.items():
            figures = dict(side(rnd))
            figures["round"] = rnd
            out[name].append(figures)
            if log is not None:
                shown = ", ".join(
                    f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in figures.items()
                    if k != "round" and isinstance(v, int | float)
                )
                log(f"round {rnd} {name}: {shown}")
    return out


def ratio_report(
    rounds: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    ratios: Sequence[tuple[str, str, float | None]],
    unit: str = "/s",
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Median and spread of ``key`` per side and of each per-round ratio ``num / den``.

    A ratio is taken within a round (num's round ``i`` over den's round ``i``), so both figures
    of one ratio were measured under the same conditions.
    """
    sides = {name: spread([float(r[key]) for r in rows]) for name, rows in rounds.items()}
    out: dict[str, Any] = {"metric": key, "sides": sides, "ratios": {}}
    if log is not None:
        for name, s in sides.items():
            log(f"{name:<28} {key} median {fmt_spread(s)} {unit}  (min-max, {s['n']:.0f} rounds)")
    for num, den, target in ratios:
        per_round = [
            float(a[key]) / float(b[key]) for a, b in zip(rounds[num], rounds[den], strict=True)
        ]
        s = spread(per_round)
        entry: dict[str, Any] = {**s, "per_round": per_round, "target": target}
        if target is not None:
            entry["met"] = s["median"] >= target
        out["ratios"][f"{num}/{den}"] = entry
        if log is not None:
            goal = "" if target is None else f"  target >= {target:.2f}: "
            if target is not None:
                goal += "met" if entry["met"] else "MISSED"
            log(f"{num} / {den} ({key}): median {fmt_spread(s, 2)}{goal}")
    return out


def save_result(name: str, result: object, load_before: Mapping[str, Any] | None = None) -> Path:
    """Write ``result`` as indented JSON to ``bench/results/<name>``; returns the path.

    A dict result gets a ``machine`` entry: ``load_before`` (pass ``machine_load(busy=True)``
    taken at the start) and the load now.
    """
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    if isinstance(result, dict):
        result = {**result, "machine": {"before": load_before, "after": machine_load()}}
    path.write_text(json.dumps(result, indent=2))
    return path


def private_env(unique: str, tmp: Path, web_port: int) -> dict[str, str]:
    """Topics, consumer groups, indices and worker state of this run only; applied here too."""
    env = {
        **os.environ,
        "NEWSFLOW_TOPICS__NAMESPACE": f"bench{unique}.",
        "NEWSFLOW_ELASTIC__ALIAS": f"bench-articles-{unique}",
        "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"bench-articles-v1-{unique}",
        "NEWSFLOW_FAUST__APP_ID": f"bench-{unique}",
        "NEWSFLOW_FAUST__DATADIR": str(tmp / "faust"),
        "NEWSFLOW_FAUST__WEB_PORT": str(web_port),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("NEWSFLOW_")})
    return env


def produce_all(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
    )
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush(120)
    producer.close()


def start_worker(stage: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.commands.cli", "worker", stage, "-l", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Drain:
    started: float  # worker start (perf_counter)
    first: float  # first output seen
    last: float  # target reached
    first_count: int  # outputs already there at `first`

    def rate(self, target: int) -> float:
        return (target - self.first_count) / (self.last - self.first)


def time_drain(
    proc: subprocess.Popen[bytes],
    count: Callable[[], int],
    target: int,
    timeout_s: float,
    log: Path,
    tick: Callable[[], None] | None = None,
) -> Drain:
    """Poll ``count`` until it reaches ``target``; the rate is from first to last output."""
    started = time.perf_counter()
    first: float | None = None
    first_count = 0
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            done = count()
            now = time.perf_counter()
            if tick is not None:
                tick()
            if done and first is None:
                first, first_count = now, done
            if done >= target and first is not None:
                return Drain(started, first, now, first_count)
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {log.read_text()[-3000:]}")
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    raise RuntimeError(f"the worker did not finish within {timeout_s:.0f}s; see {log}")
