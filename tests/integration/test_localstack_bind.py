"""The processes `newsflow run` starts listen on loopback unless told otherwise (issue 14.15).

Checked on really started processes: the kernel's own table of listening sockets
(/proc/net/tcp, /proc/net/tcp6) says which address the port is bound to.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from streams.commands.bootstrap import ensure_topics
from streams.settings import Settings
from tests.integration import stage_helpers as h

LOOPBACK = {"127.0.0.1", "::1"}


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc prints IPv6 as four little-endian 32-bit words
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening(port: int) -> set[str]:
    """Addresses with a socket in LISTEN state on ``port`` (any process)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state = fields[1], fields[3]
            addr, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(_address(addr))
    return found


def test_proc_table_parsing_sees_a_wildcard_listener() -> None:
    """The check itself can fail: a socket bound to every address is reported as such."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listening(port) == {"0.0.0.0"}


def _wait_listening(port: int, proc: object, log: Path, timeout_s: float = 90) -> set[str]:
    def alive() -> None:
        assert proc.poll() is None, log.read_text()[-3000:]  # type: ignore[attr-defined]

    assert h.wait_for(lambda: bool(listening(port)), timeout_s, alive), log.read_text()[-3000:]
    return listening(port)


@pytest.mark.parametrize(
    ("override", "expected"), [(None, {"127.0.0.1"}), ("0.0.0.0", {"0.0.0.0"})]
)
def test_worker_web_server_binds_loopback_by_default(
    kafka: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    override: str | None,
    expected: set[str],
) -> None:
    env = h.isolated_env(kafka, unique, tmp_path)
    if override is not None:
        env["NEWSFLOW_FAUST__WEB_HOST"] = override
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    port = int(env["NEWSFLOW_FAUST__WEB_PORT"])
    log = tmp_path / "extract.log"
    with h.worker("extract", env, log) as proc:
        assert _wait_listening(port, proc, log) == expected


def test_connector_metrics_server_binds_loopback_by_default(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = h.isolated_env(kafka, unique, tmp_path)
    port = h.free_port()
    feeds = tmp_path / "feeds.yaml"
    # One feed on a closed local port: the connector polls it, fails politely, keeps serving.
    feeds.write_text(
        "allow_private_addresses: true\n"
        "feeds:\n"
        f"  - id: nowhere\n    url: http://127.0.0.1:{h.free_port()}/feed.xml\n"
    )
    env.update(
        {
            "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port),
            "NEWSFLOW_CONNECTOR__STATE_PATH": str(tmp_path / "state.sqlite"),
            "NEWSFLOW_CONNECTOR__PARSE_WORKERS": "0",
        }
    )
    h.settings_for(env, monkeypatch)
    log = tmp_path / "connector.log"
    command = [sys.executable, "-m", "streams.commands.cli", "connect", "--feeds", str(feeds)]
    with h.process(command, env, log) as proc:
        assert _wait_listening(port, proc, log) == {"127.0.0.1"}
