"""`newsflow infra up|down|status|logs`: the local stack as a whole.

A stack is Kafka (one broker, or ``infra.brokers`` of them: ``kafka.py``) plus Elasticsearch.
The default stack lives in ``<home>/run``; another (``infra.stack``, e.g. ``secure``) in
``<home>/run-<stack>`` and remembers its shape (broker count, security, ports) in
``stack.json`` there, so `status`, `down`, `logs` and `env` with only ``--stack`` find it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from streams.infra import dist, elastic, kafka, plugin, safefs
from streams.infra.errors import InfraError
from streams.infra.procs import Tracked, stop, tail
from streams.infra.secrets import stack_run_dir
from streams.settings import InfraSettings

Say = Callable[[str], None]

SERVICES: dict[str, ModuleType] = {"kafka": kafka, "elasticsearch": elastic}

# What a non-default stack remembers from its `up`.
SHAPE = (
    "brokers",
    "secure",
    "host",
    "kafka_port",
    "kafka_controller_port",
    "es_port",
    "es_transport_port",
    "kafka_heap",
    "es_heap",
)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    ready: bool
    pid: int | None
    address: str
    log: Path


def _shape_file(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "stack.json"


def resolve(infra: InfraSettings) -> InfraSettings:
    """``infra`` with the shape a non-default stack recorded at its last `up`, for every field
    not set explicitly (environment or command line)."""
    if infra.stack == "default":
        return infra
    raw = safefs.read_owned(_shape_file(infra), "stack file")
    if raw is None:
        return infra
    recorded = json.loads(raw)
    keep = {k: v for k, v in recorded.items() if k in SHAPE and k not in infra.model_fields_set}
    if not keep:
        return infra
    return InfraSettings.model_validate({**infra.model_dump(), **keep})


def remember(infra: InfraSettings) -> None:
    if infra.stack == "default":
        return
    safefs.own_dir(stack_run_dir(infra))
    safefs.write_file(_shape_file(infra), json.dumps({k: getattr(infra, k) for k in SHAPE}))


@contextlib.contextmanager
def _locked(infra: InfraSettings, say: Say) -> Iterator[None]:
    """One `up` or `down` of a stack at a time: two test sessions starting the same stack
    together would each start brokers on the same ports."""
    rdir = stack_run_dir(infra)
    safefs.own_dir(rdir)
    fd = safefs.open_append(rdir / ".lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"stack {infra.stack}: waiting for another `infra up`/`down` to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def kafka_address(infra: InfraSettings) -> str:
    return ",".join(f"{infra.host}:{b.port}" for b in kafka.brokers(infra))


def address(name: str, infra: InfraSettings) -> str:
    if name == "kafka":
        return kafka_address(infra)
    for broker in kafka.brokers(infra):
        if broker.name == name:
            return f"{infra.host}:{broker.port}"
    return str(elastic.base_url(infra))


def _running(tracked: Tracked | None) -> bool:
    return tracked is not None and tracked.alive()


def up(infra: InfraSettings, say: Say) -> dict[str, float]:
    """Start what is not running (every broker that is down, Elasticsearch); wait until
    everything is ready. Idempotent: after one broker was stopped it starts just that one."""
    with _locked(infra, say):
        return _up(infra, say)


def _up(infra: InfraSettings, say: Say) -> dict[str, float]:
    t0 = time.monotonic()
    kafka.check_ports(infra)
    dist.fetch(infra, say)
    say(f"distributions ready in {time.monotonic() - t0:.1f}s under {dist.dist_dir(infra)}")
    plugin.build_analysis_plugin(infra, say)  # before anything starts; elastic.prepare installs it
    remember(infra)
    started: dict[str, Tracked] = {}
    running: dict[str, Tracked] = {}
    timings: dict[str, float] = {}
    todo = []
    for broker in kafka.brokers(infra):
        tracked = broker.pidfile.read()
        if _running(tracked):
            assert tracked is not None
            say(f"{broker.name}: already running (pid {tracked.pid})")
            running[broker.name] = tracked
            continue
        if tracked is not None:
            broker.pidfile.remove()  # stale: the process is gone
        todo.append(broker)
    try:
        if todo:
            started |= kafka.start(infra, todo)
            for name, tracked in started.items():
                say(f"{name}: started pid {tracked.pid}, waiting until ready ...")
        kafka_begin = time.monotonic()
        es_tracked = elastic.pidfile(infra).read()
        if _running(es_tracked):
            assert es_tracked is not None
            say(f"elasticsearch: already running (pid {es_tracked.pid})")
            running["elasticsearch"] = es_tracked
        else:
            if es_tracked is not None:
                elastic.pidfile(infra).remove()
            started["elasticsearch"] = es_tracked = elastic.start(infra)
            say(f"elasticsearch: started pid {es_tracked.pid}, waiting until ready ...")
        es_begin = time.monotonic()
        brokers_now = [t for n, t in {**running, **started}.items() if n != "elasticsearch"]
        kafka.wait_ready(infra, brokers_now)
        timings["kafka"] = time.monotonic() - kafka_begin if todo else 0.0
        what = "ready" if infra.brokers == 1 else f"{infra.brokers} brokers ready"
        if todo:
            say(f"kafka: {what} at {kafka_address(infra)} after {timings['kafka']:.1f}s")
        es = started.get("elasticsearch") or running["elasticsearch"]
        elastic.wait_ready(infra, es)
        timings["elasticsearch"] = (
            time.monotonic() - es_begin if "elasticsearch" in started else 0.0
        )
        if "elasticsearch" in started:
            say(
                f"elasticsearch: ready at {elastic.base_url(infra)} after "
                f"{timings['elasticsearch']:.1f}s"
            )
    except InfraError:
        _stop_all(list(started.values()), timeout_s=20)  # leave nothing half-started behind
        for broker in kafka.brokers(infra):
            if broker.name in started:
                broker.pidfile.remove()
        if "elasticsearch" in started:
            elastic.pidfile(infra).remove()
        raise
    modules = elastic.record_modules(infra)
    say(f"elasticsearch {modules['version'][0]} modules: {', '.join(modules['modules'])}")
    if modules["plugins"]:
        say(f"elasticsearch plugins: {', '.join(modules['plugins'])}")
    if plugin.PLUGIN_NAME not in modules["plugins"]:  # a node started before the plugin existed
        say(
            f"warning: elasticsearch runs without the {plugin.PLUGIN_NAME} plugin (no `arabic`, "
            "`english`, ... analyzers); `newsflow infra down && newsflow infra up` installs it"
        )
    return timings


def _stop_all(procs: list[Tracked], timeout_s: float = 60.0) -> list[bool]:
    """``procs.stop`` of each at the same time (a broker stopping waits for the others)."""
    with ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
        return list(pool.map(lambda tracked: stop(tracked, timeout_s), procs))


def down(infra: InfraSettings, say: Say) -> None:
    """Stop every broker (whatever broker count started them) and Elasticsearch, by pid, all
    at once: brokers stopped one by one wait for the quorum the earlier ones left."""
    with _locked(infra, say):
        _down(infra, say)


def _down(infra: InfraSettings, say: Say) -> None:
    units = [*kafka.all_pidfiles(infra), ("elasticsearch", elastic.pidfile(infra))]
    found = [(name, pidfile, pidfile.read()) for name, pidfile in units]
    for name, _, tracked in found:
        if tracked is None:
            say(f"{name}: not running")
    running = [(name, pidfile, tracked) for name, pidfile, tracked in found if tracked]
    results = _stop_all([tracked for _, _, tracked in running])
    for (name, pidfile, tracked), ran in zip(running, results, strict=True):
        if ran:
            say(f"{name}: stopped pid {tracked.pid}")
        else:
            say(f"{name}: pid {tracked.pid} was already gone")
        pidfile.remove()


def _ready(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # noqa: BLE001 - status reports, it does not fail
        return False


def _broker_check(infra: InfraSettings, broker: kafka.Broker) -> Callable[[], bool]:
    if infra.brokers == 1:
        return lambda: kafka.is_ready(infra)
    return lambda: kafka.broker_ready(infra, broker)


def status(infra: InfraSettings) -> list[ServiceStatus]:
    """One row per broker, one for Elasticsearch."""
    result = []
    for broker in kafka.brokers(infra):
        tracked = broker.pidfile.read()
        running = _running(tracked)
        ready = running and _ready(_broker_check(infra, broker))
        result.append(
            ServiceStatus(
                broker.name,
                running,
                ready,
                tracked.pid if tracked else None,
                f"{infra.host}:{broker.port}",
                broker.log,
            )
        )
    tracked = elastic.pidfile(infra).read()
    running = _running(tracked)
    result.append(
        ServiceStatus(
            "elasticsearch",
            running,
            running and _ready(lambda: elastic.is_ready(infra)),
            tracked.pid if tracked else None,
            address("elasticsearch", infra),
            elastic.log_path(infra),
        )
    )
    return result


def log_names(infra: InfraSettings) -> list[str]:
    names = [b.name for b in kafka.brokers(infra)]
    return [*names, *(["kafka"] if "kafka" not in names else []), "elasticsearch"]


def logs(infra: InfraSettings, name: str, lines: int) -> str:
    """The last lines of one service's log; ``kafka`` among several brokers gives each one's."""
    if name == "elasticsearch":
        return tail(elastic.log_path(infra), lines)
    found = kafka.brokers(infra)
    if name == "kafka" and len(found) > 1:
        return "\n".join(f"==> {b.name}: {b.log} <==\n{tail(b.log, lines)}" for b in found)
    for broker in found:
        if broker.name == name:
            return tail(broker.log, lines)
    raise InfraError(f"unknown service {name!r}", f"choose one of {', '.join(log_names(infra))}")
