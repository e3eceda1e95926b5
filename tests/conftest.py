"""Fixtures that start real servers (Kafka broker, sandbox, Neo4j, Cassandra) on free ports, and stop them.

Neo4j and Cassandra run from the jars `make setup` resolves (jars/neo4j, jars/neo4j3, jars/cassandra): a
missing jar folder is an error, not a skip. Every server is started once per session, only when a test asks
for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Flink's Python workers are started as `python`: the venv's must be first on PATH.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
# Tests never pick up a developer's running stack (.stack/ of the checkout): each names its own servers.
os.environ["COKREAT_STACK_DIR"] = os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"cokreat-test-stack-{os.getpid()}"
)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.dev.stack.kafka import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.dev.stack.sandbox import SandboxServer

    state = tmp_path_factory.mktemp("sandbox")
    server = SandboxServer(
        state, storage_dir=state / "storage", publish_delay_ms=200, search_index_delay_ms=300
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def sandbox(sandbox_server: object) -> Iterator[object]:
    """The session's sandbox with no fault rules left over from another test."""
    from cokreat_jobs.dev.stack.sandbox_client import SandboxClient

    client = SandboxClient(sandbox_server.url)  # type: ignore[attr-defined]
    client.clear_faults()
    yield client
    client.clear_faults()


def _rss_mib(pid: int) -> float:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return int(out or 0) / 1024


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.dev.stack.neo4j import Neo4jServer

    server = Neo4jServer(tmp_path_factory.mktemp("neo4j"))
    started = time.monotonic()
    server.start()
    server.start_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    print(f"\nneo4j: ready in {server.start_seconds:.1f} s, RSS {_rss_mib(server.pid):.0f} MiB")  # type: ignore[attr-defined,arg-type]
    try:
        yield server
    finally:
        if server.pid is not None:
            print(f"\nneo4j: RSS {_rss_mib(server.pid):.0f} MiB at the end")
        server.stop(timeout=20)


@pytest.fixture(scope="session")
def neo4j3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Neo4j 3.3 (Bolt 1 and HTTP), the line Sunbird ships, from jars/neo4j3."""
    from cokreat_jobs.dev.stack.neo4j_legacy import Neo4jLegacyServer

    server = Neo4jLegacyServer(tmp_path_factory.mktemp("neo4j3"))
    started = time.monotonic()
    server.start()
    server.start_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    print(f"\nneo4j3: ready in {server.start_seconds:.1f} s, RSS {_rss_mib(server.pid):.0f} MiB")  # type: ignore[attr-defined,arg-type]
    try:
        yield server
    finally:
        server.stop(timeout=20)


@pytest.fixture(scope="session")
def cassandra_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.dev.stack.cassandra import CassandraNode, apply_schema

    node = CassandraNode(tmp_path_factory.mktemp("cassandra"))
    started = time.monotonic()
    node.start()
    node.start_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    apply_schema(node.host, node.port)
    node.schema_seconds = time.monotonic() - started - node.start_seconds  # type: ignore[attr-defined]
    print(
        f"\ncassandra: ready in {node.start_seconds:.1f} s, schema in {node.schema_seconds:.1f} s, "  # type: ignore[attr-defined]
        f"RSS {_rss_mib(node.pid):.0f} MiB"  # type: ignore[arg-type]
    )
    try:
        yield node
    finally:
        if node.pid is not None:
            print(f"\ncassandra: RSS {_rss_mib(node.pid):.0f} MiB at the end")
        node.stop(timeout=30)
