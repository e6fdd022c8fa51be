"""`newsflow infra up|down|status|logs`: the local stack as a whole."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from streams.infra import dist, elastic, kafka, plugin
from streams.infra.errors import InfraError
from streams.infra.procs import Tracked, stop, tail
from streams.settings import InfraSettings

Say = Callable[[str], None]

SERVICES: dict[str, ModuleType] = {"kafka": kafka, "elasticsearch": elastic}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    ready: bool
    pid: int | None
    address: str
    log: Path


def address(name: str, infra: InfraSettings) -> str:
    if name == "kafka":
        return f"{infra.host}:{infra.kafka_port}"
    return elastic.base_url(infra)


def up(infra: InfraSettings, say: Say) -> dict[str, float]:
    """Start what is not running; wait until everything is ready. Idempotent."""
    t0 = time.monotonic()
    dist.fetch(infra, say)
    say(f"distributions ready in {time.monotonic() - t0:.1f}s under {dist.dist_dir(infra)}")
    plugin.build_analysis_plugin(infra, say)  # before anything starts; elastic.prepare installs it
    started: dict[str, Tracked] = {}
    timings: dict[str, float] = {}
    for name, module in SERVICES.items():
        tracked = module.pidfile(infra).read()
        if tracked is not None and tracked.alive():
            say(f"{name}: already running (pid {tracked.pid})")
            module.wait_ready(infra, tracked)
            timings[name] = 0.0
            continue
        if tracked is not None:
            module.pidfile(infra).remove()  # stale: the process is gone
        started[name] = module.start(infra)
        say(f"{name}: started pid {started[name].pid}, waiting until ready ...")
    begin = time.monotonic()
    try:
        for name, tracked in started.items():
            SERVICES[name].wait_ready(infra, tracked)
            timings[name] = time.monotonic() - begin
            say(f"{name}: ready at {address(name, infra)} after {timings[name]:.1f}s")
    except InfraError:
        for tracked in started.values():  # leave nothing half-started behind
            stop(tracked, timeout_s=20)
        for name in started:
            SERVICES[name].pidfile(infra).remove()
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


def down(infra: InfraSettings, say: Say) -> None:
    for name, module in SERVICES.items():
        tracked = module.pidfile(infra).read()
        if tracked is None:
            say(f"{name}: not running")
            continue
        if stop(tracked):
            say(f"{name}: stopped pid {tracked.pid}")
        else:
            say(f"{name}: pid {tracked.pid} was already gone")
        module.pidfile(infra).remove()


def status(infra: InfraSettings) -> list[ServiceStatus]:
    result = []
    for name, module in SERVICES.items():
        tracked = module.pidfile(infra).read()
        running = tracked is not None and tracked.alive()
        ready = False
        if running:
            try:
                ready = bool(module.is_ready(infra))
            except Exception:  # noqa: BLE001 - status reports, it does not fail
                ready = False
        result.append(
            ServiceStatus(
                name,
                running,
                ready,
                tracked.pid if tracked else None,
                address(name, infra),
                module.log_path(infra),
            )
        )
    return result


def logs(infra: InfraSettings, name: str, lines: int) -> str:
    if name not in SERVICES:
        raise InfraError(f"unknown service {name!r}", f"choose one of {', '.join(SERVICES)}")
    return tail(SERVICES[name].log_path(infra), lines)
