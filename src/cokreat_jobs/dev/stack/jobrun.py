"""Drive a job from outside: start `cokreat-jobs run` as a process, read its counters over Flink's REST API.

Used by the demo, the end-to-end tests and the benchmark, so that each watches a job the way an operator
would: through the job's metrics, the sandbox's state and the failed topic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cokreat_jobs.core.config import load_config
from cokreat_jobs.dev.stack.process import free_port
from cokreat_jobs.jobs import job_definition
from cokreat_jobs.ops.flink_rest import COUNTERS, FlinkRest


class LocalJobRun:
    """`cokreat-jobs run JOB [--config.file.path FILE] --set ...` in the background, with a known REST port
    for its MiniCluster. ``config_file`` is passed as Sunbird's chart passes it (``--config.file.path``)."""

    def __init__(
        self,
        job: str,
        overrides: Sequence[str] = (),
        log_file: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.job = job
        self.config_file = config_file
        self.rest_port = free_port()
        self.overrides = [*overrides, f"flink.rest.port={self.rest_port}"]
        self.log_file = log_file
        self.cwd = cwd
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.rest = FlinkRest(f"http://127.0.0.1:{self.rest_port}")
        self.jid: str | None = None
        self._group: str | None = None

    @property
    def metric_group(self) -> str:
        """The group the job's counters are in (`metrics.group`; user-delete's release-8 shape: the
        reference's `cokreat-user-delete`), as the job reads its configuration."""
        if self._group is None:
            cfg = load_config(self.job, self.config_file, overrides=self.overrides, env=self.env)
            self._group = job_definition(self.job).metric_group(cfg)
        return self._group

    def start(self, timeout: float = 180.0) -> None:
        argv = [sys.executable, "-m", "cokreat_jobs.cli.main", "run", self.job]
        if self.config_file is not None:
            argv += ["--config.file.path", str(self.config_file)]
        for o in self.overrides:
            argv += ["--set", o]
        env = dict(self.env or os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, env=env
        )
        if self.log_file:
            out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.job} exited with {self.proc.returncode} while starting"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            self.jid = self.rest.running_job()
            if self.jid and self._tasks_running():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.job} not running after {timeout:.0f} s")

    def _tasks_running(self) -> bool:
        try:
            job = self.rest.get(f"/jobs/{self.jid}")
        except OSError:
            return False
        return all(v.get("status") == "RUNNING" for v in job.get("vertices", []))

    def counters(self) -> dict[str, int]:
        assert self.jid is not None
        try:
            return self.rest.counters(self.jid, self.metric_group)
        except OSError:
            return {k: 0 for k in COUNTERS}

    def wait_for_total(self, n: int, timeout: float, on_progress: Any = None) -> dict[str, int]:
        """Until `total` reaches n and every event has an outcome (success+skipped+failed == total)."""
        deadline = time.monotonic() + timeout
        counters = self.counters()
        while time.monotonic() < deadline:
            counters = self.counters()
            if on_progress is not None:
                on_progress(counters)
            done = counters["success"] + counters["skipped"] + counters["failed"]
            if counters["total"] >= n and done >= n:
                return counters
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.job} exited with {self.proc.returncode}")
            time.sleep(0.5)
        raise TimeoutError(f"{self.job}: {counters} after {timeout:.0f} s, expected {n} events")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return int(code)
