"""Fixtures that start real servers (Kafka broker, sandbox, Flink cluster) on free ports, and stop them."""

from __future__ import annotations

import os
import sys
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
    from cokreat_jobs.stack.kafka import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from cokreat_jobs.stack.sandbox import SandboxServer

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
    from cokreat_jobs.stack.sandbox_client import SandboxClient

    client = SandboxClient(sandbox_server.url)  # type: ignore[attr-defined]
    client.clear_faults()
    yield client
    client.clear_faults()
