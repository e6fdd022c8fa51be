"""Shared pieces of the worker benchmarks: a private namespace, producing, timing a drain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def save_result(name: str, result: object) -> Path:
    """Write ``result`` as indented JSON to ``bench/results/<name>``; returns the path."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
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
        bootstrap_servers=settings.kafka.bootstrap_servers,
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
            [sys.executable, "-m", "streams.cli", "worker", stage, "-l", "warning"],
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
