"""Fixtures that start real servers (Kafka broker, sandbox, Neo4j, Cassandra, Azurite) on free ports, and stop
them.

Neo4j and Cassandra run from the jars `make setup` resolves (jars/neo4j, jars/neo4j3, jars/cassandra): a
missing jar folder is an error, not a skip. Every server is started once per session, only when a test asks
for it.

``azurite``: Azurite's blob service (Microsoft's Azure Storage emulator), from ``node_modules/`` (the
project's package.json, installed by ``make test-servers``, which ``make test`` runs), in memory; Azure is
the reference's default storage, so the storage tests and the reference-config end-to-end test both use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


# Azurite's well-known development account (public, in Microsoft's documentation)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class AzuriteServer:
    name: str
    url: str  # the blob service's root; the account's endpoint is f"{url}/{account}"
    pid: int
    log_file: Path
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    import urllib.error
    import urllib.request

    from cokreat_jobs.dev.stack.process import free_port, spawn, stop_pid, wait_until

    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: `make test-servers` (run by `make test`) installs Azurite")
    port = free_port()
    log_file = tmp_path_factory.mktemp("azurite") / "azurite.log"
    argv = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
    argv += ["--disableTelemetry", "--skipApiVersionCheck"]
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 (loopback test server)
            return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer: it is up
        except OSError:
            return False

    proc = spawn(argv, log_file, cwd=log_file.parent)
    try:
        wait_until(answers, timeout=30, what="azurite", alive=lambda: proc.poll() is None, log_file=log_file)
    except BaseException:
        stop_pid(proc.pid, timeout=5)
        raise
    yield AzuriteServer("azurite", url, proc.pid, log_file)
    stop_pid(proc.pid, timeout=10)
