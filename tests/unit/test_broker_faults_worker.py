"""A worker that cannot start says which broker or credential is at fault (``worker.run`` calls
``explain_failed_start`` when faust exits non-zero). The SASL case runs against the real secure
cluster in tests/integration/test_cluster_credentials.py; here a closed port stands for a broker
that is down."""

from __future__ import annotations

import logging
import socket

import pytest

from streams import worker
from streams.settings import Settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_a_failed_start_names_the_broker_that_refused(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    settings = Settings(kafka={"bootstrap_servers": f"127.0.0.1:{port}"})
    with caplog.at_level(logging.ERROR, logger="newsflow.worker"):
        worker.explain_failed_start(settings, "enrich")
    lines = [r.getMessage() for r in caplog.records if r.name == "newsflow.worker"]
    assert len(lines) == 1, lines
    assert lines[0].startswith("worker enrich cannot start: kafka: "), lines[0]
    assert f"127.0.0.1:{port}" in lines[0] and "connection refused" in lines[0], lines[0]
