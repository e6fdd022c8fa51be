"""Detached service processes tracked by pid file, plus port and readiness helpers.

A service is started in its own session (process group) so that `down` can stop it and every
child it spawned (Elasticsearch's launcher starts a second JVM) by that recorded pid, never by
matching names. The pid file also keeps the process start time so a recycled pid is not killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.infra import safefs
from streams.infra.errors import InfraError


def _start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class Tracked:
    """A process we started: pid, its start time and where its output goes."""

    name: str
    pid: int
    start_ticks: int
    log: Path

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks and not _is_zombie(self.pid)


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Tracked | None:
        """The process this file records; only a file we wrote ourselves is believed (one
        written by another user could name any process for `down` to kill)."""
        raw = safefs.read_owned(self.path, "pid file")
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Tracked(data["name"], data["pid"], data["start_ticks"], Path(data["log"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InfraError(
                f"pid file {self.path} is corrupt: {exc}",
                "check no such process runs, then delete the file.",
            ) from exc

    def write(self, tracked: Tracked) -> None:
        """Into a directory only we can write, replacing (never following) whatever is there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "name": tracked.name,
            "pid": tracked.pid,
            "start_ticks": tracked.start_ticks,
            "log": str(tracked.log),
        }
        safefs.write_file(self.path, json.dumps(payload))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)  # unlink removes a link itself, never its target


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_ports(service: str, host: str, ports: Sequence[int]) -> None:
    for port in ports:
        if port_in_use(host, port):
            raise InfraError(
                f"{service}: port {host}:{port} is already in use by another process.",
                "stop that process (`ss -ltnp` shows it) or choose another port with the "
                "NEWSFLOW_INFRA__*_PORT settings.",
            )


def start_detached(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    pidfile: PidFile,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> Tracked:
    log.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(safefs.open_append(log), "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            extra_groups=None if user is None else [],
        )
    ticks = _start_ticks(proc.pid)
    if ticks is None:
        raise InfraError(f"{name} exited immediately; see {log}.")
    tracked = Tracked(name, proc.pid, ticks, log)
    pidfile.write(tracked)
    return tracked


def stop(tracked: Tracked, timeout_s: float = 60.0) -> bool:
    """SIGTERM the process group we started, SIGKILL it after ``timeout_s``. True if it ran."""
    if not tracked.alive():
        return False
    pgid = tracked.pid  # start_new_session=True made the pid its own process-group id
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not tracked.alive() and not _group_alive(pgid):
            return True
        _reap(tracked.pid)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while _group_alive(pgid) and time.monotonic() < deadline + 10:
        _reap(tracked.pid)
        time.sleep(0.1)
    return True


def _reap(pid: int) -> None:
    # Only our own children can be reaped; for others this is a no-op.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def wait_until(
    what: str,
    check: Callable[[], bool],
    *,
    tracked: Tracked,
    timeout_s: float,
    interval_s: float = 0.5,
) -> float:
    """Poll ``check`` until it is true; fail early if the process died. Returns seconds waited."""
    started = time.monotonic()
    while True:
        if not tracked.alive():
            raise InfraError(
                f"{tracked.name} exited while starting; last log lines:\n" + tail(tracked.log, 25),
                f"full log: {tracked.log}",
            )
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001, S110 - not ready yet; any error means "try again"
            pass
        if time.monotonic() - started > timeout_s:
            raise InfraError(
                f"{what} not ready after {timeout_s:.0f}s; last log lines:\n"
                + tail(tracked.log, 25),
                f"full log: {tracked.log}",
            )
        time.sleep(interval_s)


def tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
