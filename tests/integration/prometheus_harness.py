"""A real Prometheus for tests, configured like production but aimed at local processes.

It sits beside the flow: the processes under test serve ``/metrics`` as in production, and this
Prometheus scrapes them with the jobs and rule files of ``deploy/monitoring/prometheus.yml`` --
only the targets are replaced (``{"newsflow-connector": "127.0.0.1:<port>"}``), scrape and
evaluation run every second, and the TSDB lives in a temporary directory::

    with running_prometheus({"newsflow-connector": f"127.0.0.1:{port}"}, tmp_path) as prom:
        prom.wait_for(lambda: prom.series_exist(["newsflow_feed_polls_total"]), 20, "polls")
        samples = prom.query("increase(newsflow_feed_polls_total[30s])")

Jobs not given a target keep their labels and get no target at all (the ``prometheus`` job
scrapes this Prometheus itself). The binary is the one on PATH, else ``/usr/bin/prometheus``
(Debian package ``prometheus``); ``require_prometheus()`` skips a test without it, or fails it
under CI=true. The process is stopped by its pid when the block ends (TERM, then KILL).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "deploy" / "monitoring" / "prometheus.yml"
DEFAULT_BINARY = "/usr/bin/prometheus"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or its HTTP API answered with an error."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return DEFAULT_BINARY if Path(DEFAULT_BINARY).is_file() else None


def require_prometheus() -> str:
    """The binary, or skip (outside CI) / fail (CI=true) with the reason."""
    return require_tool("prometheus", prometheus_binary())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_config(
    targets: Mapping[str, str],
    self_address: str,
    base: Path = PROMETHEUS_CONFIG,
    interval: str = "1s",
) -> dict[str, Any]:
    """``base`` with its targets replaced, 1 s intervals and absolute rule file paths."""
    config: dict[str, Any] = yaml.safe_load(base.read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    unknown = set(targets) - jobs
    if unknown:
        raise ValueError(f"no scrape job named {sorted(unknown)} in {base} (jobs: {sorted(jobs)})")
    config["global"] = {
        **(config.get("global") or {}),
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "evaluation_interval": interval,
    }
    config["rule_files"] = [str((base.parent / f).resolve()) for f in config.get("rule_files", [])]
    config.pop("alerting", None)  # no Alertmanager in tests; alerts are read from the API
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        name = job["job_name"]
        address = targets.get(name) or (self_address if name == "prometheus" else None)
        for static in job.get("static_configs", []):
            static["targets"] = [address] if address else []
    return config


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    config: dict[str, Any] = field(repr=False)

    # --- HTTP API -----------------------------------------------------------------------------

    def api(self, path: str, params: Iterable[tuple[str, str]] = ()) -> Any:
        """``GET /api/v1/<path>``; the ``data`` of a success, else ``PrometheusError``."""
        query = urllib.parse.urlencode(list(params))
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422/503 carry an error body
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusError(f"GET {url}: HTTP {exc.code}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"GET {url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        """An instant query now: one ``Sample`` per series (a scalar is one unlabelled sample)."""
        data = self.api("query", [("query", promql)])
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [Sample(dict(item["metric"]), float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [Sample({}, float(result[1]))]
        raise PrometheusError(f"{promql!r} returned a {kind}, not an instant vector")

    def missing_series(self, names: Iterable[str]) -> set[str]:
        """The metric names (or selectors) of ``names`` with no series stored yet."""
        return {name for name in names if not self.api("series", [("match[]", name)])}

    def series_exist(self, names: Iterable[str]) -> bool:
        return not self.missing_series(names)

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active

    # --- waiting ------------------------------------------------------------------------------

    def wait_for(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Call ``check`` until it returns something truthy; fail with ``what`` on timeout."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while True:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited ({self.process.returncode}): {self.log()}"
                )
            try:
                value = check()
                if value:
                    return value
            except (PrometheusError, OSError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error})" if last_error else ""
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}{detail}")
            time.sleep(0.25)

    def log(self, tail: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]


def _start(binary: str, workdir: Path, config_path: Path, port: int) -> subprocess.Popen[bytes]:
    with open(workdir / "prometheus.log", "wb") as log:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=info",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_prometheus(
    targets: Mapping[str, str],
    workdir: Path,
    *,
    base: Path = PROMETHEUS_CONFIG,
    start_timeout_s: float = 30.0,
) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``targets`` (job name -> host:port); stop it on exit."""
    binary = require_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "prometheus.log"
    for _attempt in range(3):  # the port is free when picked, but another process may take it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = render_config(targets, f"127.0.0.1:{port}", base)
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        process = _start(binary, workdir, config_path, port)
        deadline = time.monotonic() + start_timeout_s
        while process.poll() is None and not _ready(url) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None and _ready(url):
            break
        _stop(process)
        log = log_path.read_text(errors="replace")
        if "address already in use" not in log:
            raise PrometheusError(f"prometheus did not become ready on {url}: {log[-3000:]}")
    else:
        raise PrometheusError(f"no free port for prometheus after 3 attempts: {log[-3000:]}")
    prom = Prometheus(url, process, workdir, log_path, config)
    try:
        yield prom
    finally:
        _stop(process)
