"""The embedded local stack: real Apache Kafka (KRaft) and real Elasticsearch on loopback.

Provisioned from Maven Central (no Docker), started as detached processes whose pids are
recorded, stopped by those pids. Entry points are `newsflow infra up|down|status|logs`.
"""
