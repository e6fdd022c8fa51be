"""`infra down` of a multi-broker stack stops every broker, at once, leaving no process or port.

A throw-away three-broker Kafka stack of its own (stack ``test-down-<hex>``, ports 39092...,
plain: security does not change how processes stop) beside the shared ones; only Kafka is
started (``kafka.start``), ``stack.down`` stops it as `newsflow infra down --stack` does.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest

from streams.infra import kafka, stack
from streams.infra.procs import port_in_use
from streams.infra.secrets import stack_run_dir
from streams.settings import Settings

pytestmark = pytest.mark.cluster


def test_down_stops_every_broker_at_once(secure_stack: Settings) -> None:
    # secure_stack: the distributions are fetched and verified; its ports are not touched here.
    infra = secure_stack.infra.model_copy(
        update={
            "stack": f"test-down-{uuid.uuid4().hex[:6]}",
            "secure": False,
            "kafka_port": 39092,
            "kafka_controller_port": 39093,
            "es_port": 39200,
            "es_transport_port": 39300,
        }
    )
    ports = [p for b in kafka.brokers(infra) for p in (b.port, b.controller_port)]
    assert not any(port_in_use(infra.host, p) for p in ports), "ports 390x2/390x3 are taken"
    said: list[str] = []
    try:
        started = kafka.start(infra)
        kafka.wait_ready(infra, list(started.values()))
        assert kafka.cluster_node_ids(infra) == {1, 2, 3}
        begin = time.monotonic()
        stack.down(infra, said.append)
        took = time.monotonic() - begin
    finally:
        for broker in kafka.brokers(infra):  # whatever happened above
            tracked = broker.pidfile.read()
            if tracked is not None and tracked.alive():
                kafka.stop_broker(infra, broker.node_id, timeout_s=5)
    for tracked in started.values():
        stat = Path(f"/proc/{tracked.pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert not any(port_in_use(infra.host, p) for p in ports)
    assert {f"kafka-{i}: stopped pid {started[f'kafka-{i}'].pid}" for i in (1, 2, 3)} <= set(said)
    assert not any(b.pidfile.path.exists() for b in kafka.brokers(infra))
    # One after another the last brokers wait for the quorum the first ones left (~60 s).
    assert took < 30, f"down took {took:.1f}s"
    shutil.rmtree(stack_run_dir(infra), ignore_errors=True)
