"""A real standalone Flink cluster (job manager + task managers) from PyFlink's bundled bin/ scripts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cokreat_jobs.dev.stack.process import free_port, pid_alive, stop_pid, wait_until
from cokreat_jobs.flink.jars import FLINK_HOME, flink_bin
from cokreat_jobs.ops.cluster import flink_run_argv


def _bundled_java_opts() -> str:
    # The wheel's own config.yaml carries the --add-opens/--add-exports flags Java 17 needs.
    text = (FLINK_HOME / "conf" / "config.yaml").read_text()
    for line in text.splitlines():
        if line.strip().startswith("all:") and "--add-" in line:
            return line.split("all:", 1)[1].strip()
    return ""


@dataclass
class FlinkCluster:
    """1 job manager and N task managers on this machine; conf, logs and pid files under `home`."""

    home: Path
    taskmanagers: int = 2
    slots_per_taskmanager: int = 2
    rest_port: int = 0
    rpc_port: int = 0
    extra_conf: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # absolute: the daemons, Python workers and io.tmp.dirs must not depend on the caller's cwd
        self.home = Path(self.home).resolve()
        self.rest_port = self.rest_port or free_port()
        self.rpc_port = self.rpc_port or free_port()

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        venv_bin = str(Path(sys.executable).parent)
        # the Python workers are started as `python`: the venv's must come first
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env["FLINK_CONF_DIR"] = str(self.conf_dir)
        env["FLINK_LOG_DIR"] = str(self.log_dir)
        env["FLINK_PID_DIR"] = str(self.home / "pids")
        env["FLINK_HOME"] = str(FLINK_HOME)
        return env

    def write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        for f in (FLINK_HOME / "conf").iterdir():
            if f.name != "config.yaml" and f.is_file():
                shutil.copy(f, self.conf_dir / f.name)
        conf: dict[str, Any] = {
            "env.java.opts.all": _bundled_java_opts(),
            "jobmanager.rpc.address": "localhost",
            "jobmanager.bind-host": "localhost",
            "jobmanager.rpc.port": self.rpc_port,
            "rest.port": self.rest_port,
            "rest.address": "localhost",
            "rest.bind-address": "localhost",
            "taskmanager.bind-host": "localhost",
            "taskmanager.host": "localhost",
            "taskmanager.numberOfTaskSlots": self.slots_per_taskmanager,
            "jobmanager.memory.process.size": "1200m",
            "taskmanager.memory.process.size": "2000m",
            # Beam's gRPC channels to the Python worker live in direct memory
            "taskmanager.memory.task.off-heap.size": "256m",
            "taskmanager.memory.managed.fraction": 0.3,
            "parallelism.default": 1,
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            "execution.checkpointing.dir": (self.home / "checkpoints").resolve().as_uri(),
            "execution.checkpointing.savepoint-dir": (self.home / "savepoints").resolve().as_uri(),
            "heartbeat.timeout": 20000,
            # blob-server jars, Python workers' folders: under the cluster's home, never the working directory
            "io.tmp.dirs": str(self.tmp_dir),
        }
        conf.update(self.extra_conf)
        lines = [f"{k}: {json.dumps(v) if isinstance(v, str) else v}" for k, v in conf.items()]
        (self.conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")
        (self.conf_dir / "workers").write_text("localhost\n")
        (self.conf_dir / "masters").write_text(f"localhost:{self.rest_port}\n")

    def _script(self, script: str, *args: str) -> None:
        subprocess.run(
            ["bash", str(flink_bin(script)), *args],
            env=self.environ(),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self, timeout: float = 120.0) -> None:
        self.write_conf()
        self._script("jobmanager.sh", "start")
        wait_until(lambda: self.overview() is not None, timeout, f"Flink job manager on {self.rest_port}")
        for _ in range(self.taskmanagers):
            self.start_taskmanager()
        wait_until(
            lambda: self.registered_taskmanagers() >= self.taskmanagers,
            timeout,
            f"{self.taskmanagers} Flink task managers",
        )

    def start_taskmanager(self) -> None:
        self._script("taskmanager.sh", "start")

    def ensure_taskmanagers(self) -> int:
        """Start task managers until ``taskmanagers`` of them run (one may have exited on its own, e.g. a
        survivor of a kill that Beam's shutdown took down); returns how many were started."""
        started = 0
        while len(self.taskmanager_pids()) < self.taskmanagers and started < self.taskmanagers:
            self.start_taskmanager()
            started += 1
        return started

    def overview(self) -> dict[str, Any] | None:
        return self.rest("/overview")

    def registered_taskmanagers(self) -> int:
        o = self.overview()
        return int(o.get("taskmanagers", 0)) if o else 0

    def rest(self, path: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.rest_url + path, timeout=2) as r:
                data: dict[str, Any] = json.loads(r.read())
                return data
        except (OSError, ValueError):
            return None

    def jobs(self) -> list[dict[str, Any]]:
        o = self.rest("/jobs/overview")
        return list(o.get("jobs", [])) if o else []

    def taskmanager_pids(self) -> list[int]:
        pid_file = self.home / "pids"
        pids: list[int] = []
        for f in sorted(pid_file.glob("*taskexecutor.pid")):
            for line in f.read_text().split():
                if line.strip().isdigit() and pid_alive(int(line)):
                    pids.append(int(line))
        return pids

    def kill_taskmanager(self, pid: int, timeout: float = 15.0) -> bool:
        """SIGKILL a task manager; True once its process is gone (a JVM of a few GB takes the kernel a while
        to tear down on a loaded machine: half a second was not always enough)."""
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid not in self.taskmanager_pids():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        try:
            self._script("taskmanager.sh", "stop-all")
        except (subprocess.SubprocessError, OSError):
            pass
        for pid in self.taskmanager_pids():
            stop_pid(pid, timeout=10)
        try:
            self._script("jobmanager.sh", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        for f in (self.home / "pids").glob("*.pid"):
            for line in f.read_text().split():
                if line.strip().isdigit():
                    stop_pid(int(line), timeout=10)

    def submit_argv(
        self,
        job_file: Path,
        *job_args: str,
        parallelism: int | None = None,
        from_savepoint: str | None = None,
        detached: bool = True,
    ) -> list[str]:
        return flink_run_argv(
            self.address,
            job_file,
            *job_args,
            parallelism=parallelism,
            from_savepoint=from_savepoint,
            detached=detached,
        )
