"""Real Neo4j and Cassandra servers for the store adapters' integration tests, on free ports, in tmp dirs.

Both run from the jars `make setup` resolves (jars/neo4j, jars/cassandra): a missing jar folder is an error,
not a skip. Each server is started once per session, only when a test asks for it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest


def _rss_mib(pid: int) -> float:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return int(out or 0) / 1024


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.stack.neo4j import Neo4jServer

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
def cassandra_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.stack.cassandra import CassandraNode, apply_schema

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
