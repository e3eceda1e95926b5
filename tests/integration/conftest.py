"""The real Neo4j and Cassandra fixtures (`neo4j_server`, `cassandra_node`) live in tests/conftest.py, shared
with the end-to-end tests.

Here: the object-storage servers of tests/integration/test_storage_servers.py, one per protocol, each
started once per session on a free port, in memory, and stopped at the end:

- ``azurite`` (in tests/conftest.py, shared with the end-to-end tests): Azurite's blob service;
- ``s3_server``: moto's S3 in server mode (``python -m moto.server``, a dev dependency in pyproject.toml),
  which speaks the S3 REST API over HTTP, path-style and virtual-host alike, with SigV4 signatures;
- ``gcs_server``: fake-gcs-server (Go), built by ``make gcs-emulator`` into ``.tools/`` (opt-in: a fresh build
  fetches ~600 MB of Go modules, over five minutes here); absent, the GCS test is skipped and says so.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cokreat_jobs.dev.stack.process import free_port, spawn, stop_pid, wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StorageServer:
    name: str
    url: str
    pid: int
    log_file: Path


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: it is up
    except OSError:
        return False


def _start(name: str, argv: list[str], url: str, log_file: Path, probe: str = "") -> StorageServer:
    proc = spawn(argv, log_file, cwd=log_file.parent)
    try:
        wait_until(
            lambda: _answers(url + probe),
            timeout=30,
            what=name,
            alive=lambda: proc.poll() is None,
            log_file=log_file,
        )
    except BaseException:
        stop_pid(proc.pid, timeout=5)
        raise
    return StorageServer(name, url, proc.pid, log_file)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    port = free_port()
    work = tmp_path_factory.mktemp("moto")
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = _start("moto S3", argv, f"http://127.0.0.1:{port}", work / "moto.log", probe="/moto-api/")
    yield server
    stop_pid(server.pid, timeout=10)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    built = ROOT / ".tools" / "fake-gcs-server"
    binary = str(built) if built.exists() else shutil.which("fake-gcs-server")
    if binary is None:
        pytest.skip("fake-gcs-server not built: `make gcs-emulator` builds it into .tools/ (needs Go)")
    port = free_port()
    work = tmp_path_factory.mktemp("fake-gcs")
    argv = [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    argv += ["-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}"]
    argv += ["-log-level", "warn"]
    server = _start(
        "fake-gcs-server", argv, f"http://127.0.0.1:{port}", work / "fake-gcs.log", "/storage/v1/b"
    )
    yield server
    stop_pid(server.pid, timeout=10)
