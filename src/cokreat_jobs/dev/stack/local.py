"""`cokreat-jobs stack up|down|status`: the local Kafka broker and sandbox, state under .stack/."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cokreat_jobs.dev.stack import paths
from cokreat_jobs.dev.stack.kafka import KafkaBroker
from cokreat_jobs.dev.stack.process import pid_alive, port_is_free, stop_pid
from cokreat_jobs.dev.stack.sandbox import SandboxServer

# Where the sandbox serves the local cloud storage over HTTP (see sandbox/README.md).
STORAGE_HTTP_PATH = "/_files"


@dataclass
class StackLayout:
    root: Path

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def pids(self) -> Path:
        return self.root / "pids.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"

    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def stores(self) -> Path:
        return self.root / "stores"


def layout(root: Path | None = None) -> StackLayout:
    return StackLayout(root or paths.stack_dir())


def read_endpoints(root: Path | None = None) -> dict[str, Any] | None:
    """The running stack's endpoints, or None when no stack is up."""
    lay = layout(root)
    if not lay.endpoints.exists() or not _running_pids(lay):
        return None
    try:
        data: dict[str, Any] = json.loads(lay.endpoints.read_text())
        return data
    except ValueError:
        return None


def _read_pids(lay: StackLayout) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(lay.pids.read_text()).items()}
    except (OSError, ValueError):
        return {}


def _running_pids(lay: StackLayout) -> dict[str, int]:
    return {k: v for k, v in _read_pids(lay).items() if pid_alive(v)}


def _previous_port(lay: StackLayout, key: str) -> int:
    """Keep the port of the last run when it is free, so clients and the broker's data agree."""
    try:
        old = json.loads(lay.endpoints.read_text())
        value = old.get(key, "")
        port = urlparse(value if "//" in value else f"//{value}").port or 0
    except (OSError, ValueError):
        return 0
    return port if port and port_is_free(port) else 0


def stack_up(root: Path | None = None, fresh: bool = False) -> tuple[dict[str, Any], bool]:
    """Start broker and sandbox; returns (endpoints, started_now). Idempotent when already up."""
    lay = layout(root)
    current = read_endpoints(lay.root)
    if current is not None and not fresh:
        return current, False
    if current is not None:
        stack_down(lay.root)
    if fresh and lay.root.exists():
        shutil.rmtree(lay.root)
    lay.root.mkdir(parents=True, exist_ok=True)
    lay.logs.mkdir(exist_ok=True)
    lay.storage.mkdir(exist_ok=True)
    lay.stores.mkdir(exist_ok=True)

    broker = KafkaBroker(lay.kafka, port=_previous_port(lay, "kafka"))
    broker.log_file = lay.logs / "kafka.log"
    sandbox = SandboxServer(
        lay.sandbox,
        port=_previous_port(lay, "sandbox"),
        storage_dir=lay.storage,
        graph_store=f"sqlite:///{lay.stores / 'graph.db'}",
        external_store=f"sqlite:///{lay.stores / 'external.db'}",
        kafka=broker.bootstrap,
    )
    sandbox.log_file = lay.logs / "sandbox.log"
    pids: dict[str, int] = {}
    try:
        broker.start()
        assert broker.pid is not None
        pids["kafka"] = broker.pid
        lay.pids.write_text(json.dumps(pids))
        sandbox.start()
        assert sandbox.pid is not None
        pids["sandbox"] = sandbox.pid
        lay.pids.write_text(json.dumps(pids))
    except BaseException:
        broker.stop()
        sandbox.stop()
        lay.pids.unlink(missing_ok=True)
        raise
    endpoints = {
        "kafka": broker.bootstrap,
        "sandbox": sandbox.url,
        "graph_store": f"sqlite:///{lay.stores / 'graph.db'}",
        "external_store": f"sqlite:///{lay.stores / 'external.db'}",
        "storage": lay.storage.resolve().as_uri(),
        "storage_http": f"{sandbox.url}{STORAGE_HTTP_PATH}",
    }
    lay.endpoints.write_text(json.dumps(endpoints, indent=2) + "\n")
    return endpoints, True


def stack_down(root: Path | None = None) -> list[str]:
    """Stop what runs; returns the names stopped. State stays for the next `stack up`."""
    lay = layout(root)
    stopped = []
    # sandbox first: it may be writing to the broker (import APIs)
    pids = _read_pids(lay)
    for name in ("sandbox", "kafka"):
        pid = pids.get(name)
        if pid and pid_alive(pid):
            stop_pid(pid, timeout=30)
            stopped.append(name)
    lay.pids.unlink(missing_ok=True)
    return stopped


def stack_status(root: Path | None = None) -> dict[str, Any]:
    lay = layout(root)
    running = _running_pids(lay)
    endpoints: dict[str, Any] = {}
    if lay.endpoints.exists():
        try:
            endpoints = json.loads(lay.endpoints.read_text())
        except ValueError:
            endpoints = {}
    return {
        name: {"running": name in running, "pid": running.get(name), "endpoint": endpoints.get(name)}
        for name in ("kafka", "sandbox")
    }
