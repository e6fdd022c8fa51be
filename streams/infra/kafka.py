"""Local single-node Apache Kafka in KRaft mode (broker + controller in one JVM)."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

from streams.infra import dist, safefs
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.infra.procs import PidFile, Tracked, require_free_ports, start_detached, wait_until
from streams.infra.secrets import stack_run_dir
from streams.settings import InfraSettings

LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaServer
        level: INFO
"""


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` gives)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def run_dir(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "kafka"


def log_path(infra: InfraSettings) -> Path:
    return run_dir(infra) / "kafka.log"


def pidfile(infra: InfraSettings) -> PidFile:
    return PidFile(run_dir(infra) / "kafka.pid")


def server_properties(infra: InfraSettings, data_dir: Path) -> str:
    host = infra.host
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{infra.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{host}:{infra.kafka_port},CONTROLLER://{host}:{infra.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{infra.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _java(infra: InfraSettings) -> Path:
    return find_java_home(17, infra.java_home) / "bin" / "java"


def _classpath(infra: InfraSettings) -> str:
    return str(dist.kafka_home(infra) / "libs" / "*")


def _env(infra: InfraSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "JAVA_TOOL"))}
    return env


def prepare(infra: InfraSettings) -> Path:
    """Write the config and format the storage once (KRaft needs a cluster id in the log dir)."""
    rdir = run_dir(infra)
    data = rdir / "data"
    safefs.own_dir(rdir)  # ours alone: pid file, log and config are written here
    for name in ("kafka.pid", "kafka.log"):
        safefs.claim_file(rdir / name)
    props = rdir / "server.properties"
    safefs.write_file(props, server_properties(infra, data))
    safefs.write_file(rdir / "log4j2.yaml", LOG4J2)
    if not (data / "meta.properties").is_file():
        argv = [
            str(_java(infra)),
            "-cp",
            _classpath(infra),
            f"-Dlog4j2.configurationFile={rdir / 'log4j2.yaml'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(props),
            "--standalone",
            "--ignore-formatted",
        ]
        res = subprocess.run(argv, capture_output=True, text=True, env=_env(infra), check=False)
        if res.returncode != 0:
            raise InfraError(
                "Formatting Kafka storage failed:\n" + (res.stderr or res.stdout)[-2000:],
                f"delete {data} if it holds a broken previous format and retry.",
            )
    return props


def start(infra: InfraSettings) -> Tracked:
    require_free_ports("Kafka", infra.host, [infra.kafka_port, infra.kafka_controller_port])
    props = prepare(infra)
    rdir = run_dir(infra)
    argv = [
        str(_java(infra)),
        f"-Xms{infra.kafka_heap}",
        f"-Xmx{infra.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={rdir / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={rdir / 'logs'}",
        "-cp",
        _classpath(infra),
        "kafka.Kafka",
        str(props),
    ]
    return start_detached(
        "kafka", argv, log=log_path(infra), pidfile=pidfile(infra), env=_env(infra), cwd=rdir
    )


def is_ready(infra: InfraSettings) -> bool:
    """Ready = a real client can fetch cluster metadata (not just an open port)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=f"{infra.host}:{infra.kafka_port}",
        request_timeout_ms=5000,
        client_id="newsflow-infra",
    )
    try:
        admin.list_topics()
        return bool(admin.describe_cluster().get("brokers"))
    finally:
        admin.close()


def wait_ready(infra: InfraSettings, tracked: Tracked) -> float:
    return wait_until(
        "Kafka", lambda: is_ready(infra), tracked=tracked, timeout_s=infra.start_timeout_s
    )
