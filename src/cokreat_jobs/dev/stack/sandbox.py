"""The sandbox (local stand-in for the Sunbird services) as a background process."""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cokreat_jobs.dev.stack.process import free_port, pid_alive, spawn, stop_pid, wait_until


@dataclass
class SandboxServer:
    state_dir: Path
    port: int = 0
    publish_delay_ms: int | None = None
    search_index_delay_ms: int | None = None
    storage_dir: Path | None = None
    graph_store: str | None = None
    external_store: str | None = None
    kafka: str | None = None
    """Bootstrap servers the import APIs publish to (`--kafka`); None: the imports answer 500."""
    pid: int | None = None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.log_file = self.state_dir / "sandbox.log"
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "cokreat_jobs.dev.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
        ]
        if self.publish_delay_ms is not None:
            argv += ["--publish-delay-ms", str(self.publish_delay_ms)]
        if self.search_index_delay_ms is not None:
            argv += ["--search-index-delay-ms", str(self.search_index_delay_ms)]
        if self.storage_dir is not None:
            argv += ["--storage-dir", str(self.storage_dir)]
        if self.graph_store:
            argv += ["--graph-store", self.graph_store]
        if self.external_store:
            argv += ["--external-store", self.external_store]
        if self.kafka:
            argv += ["--kafka", self.kafka]
        return argv

    def start(self, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        proc = spawn(self.argv(), self.log_file)
        self.pid = proc.pid
        wait_until(
            self.ready,
            timeout,
            f"sandbox on port {self.port}",
            alive=lambda: proc.poll() is None,
            log_file=self.log_file,
        )

    def ready(self) -> bool:
        # the answer must be the sandbox's own: another server on the port (a broker) is not ready
        try:
            with urllib.request.urlopen(f"{self.url}/_sandbox/health", timeout=1) as r:
                return bool(r.status == 200 and json.loads(r.read()).get("status") == "ok")
        except Exception:
            return False

    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=timeout)
            self.pid = None
