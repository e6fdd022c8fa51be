"""`newsflow infra up|status|logs|down` end to end on a second, private stack.

Its own home directory and ports, so the shared stack the other tests use is untouched. This
proves: a cold start from Maven's cache, readiness, `up` twice is harmless (same pids), status,
logs, and `down` leaving no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.infra.procs import port_in_use
from tests.conftest import IN_CI

PORTS = {
    "KAFKA_PORT": 29092,
    "KAFKA_CONTROLLER_PORT": 29093,
    "ES_PORT": 29200,
    "ES_TRANSPORT_PORT": 29300,
}


@pytest.fixture
def private_stack() -> Iterator[dict[str, str]]:
    if shutil.which("mvn") is None and not IN_CI:
        pytest.skip("Maven is not installed")
    home = Path(tempfile.mkdtemp(prefix="newsflow-infra-test-"))
    home.chmod(0o755)  # Elasticsearch's system user must be able to enter it
    env = {
        **os.environ,
        "NEWSFLOW_INFRA__HOME": str(home),
        "NEWSFLOW_INFRA__ES_HEAP": "512m",
        "NEWSFLOW_INFRA__KAFKA_HEAP": "256m",
    }
    env.update({f"NEWSFLOW_INFRA__{k}": str(v) for k, v in PORTS.items()})
    yield env
    subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "infra", "down"],
        env=env,
        capture_output=True,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _status(env: dict[str, str]) -> dict[str, dict[str, object]]:
    res = _cli(env, "infra", "status", "--json")
    return {s["name"]: s for s in json.loads(res.stdout)["services"]}


def test_up_twice_status_logs_down(private_stack: dict[str, str]) -> None:
    env = private_stack
    busy = [p for p in PORTS.values() if port_in_use("127.0.0.1", p)]
    assert not busy, f"ports {busy} are taken; this test needs them free"

    first = _cli(env, "infra", "up")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "kafka: ready at 127.0.0.1:29092" in first.stderr
    assert "elasticsearch: ready at http://127.0.0.1:29200" in first.stderr
    status = _status(env)
    assert all(s["ready"] for s in status.values()), status
    pids = {name: s["pid"] for name, s in status.items()}

    second = _cli(env, "infra", "up")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already running" in second.stderr
    assert {name: s["pid"] for name, s in _status(env).items()} == pids

    logs = _cli(env, "infra", "logs", "kafka", "-n", "5")
    assert logs.returncode == 0 and logs.stdout.strip()
    assert _cli(env, "infra", "logs", "zookeeper").returncode == 1

    down = _cli(env, "infra", "down")
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert not any(port_in_use("127.0.0.1", p) for p in PORTS.values())
    after = _cli(env, "infra", "status", "--json")
    assert after.returncode == 1  # not ready -> non-zero
    assert not any(s["running"] for s in json.loads(after.stdout)["services"])
