"""The stack every scenario runs on: a Kafka broker, the sandbox (with the sqlite stores auto-creator-v2
writes and the sandbox reads) and a standalone Flink cluster of 1 job manager and 2 task managers of one
slot each, under one directory; and the Python workers a killed task manager leaves behind."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cokreat_jobs.dev.chaos.log import log
from cokreat_jobs.dev.stack.flink_cluster import FlinkCluster
from cokreat_jobs.dev.stack.kafka import KafkaBroker
from cokreat_jobs.dev.stack.sandbox import SandboxServer
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient


@dataclass
class Stack:
    """A broker, a sandbox and a standalone Flink cluster (1 JM + 2 TMs) under one directory."""

    home: Path
    broker: KafkaBroker = field(init=False)
    server: SandboxServer = field(init=False)
    cluster: FlinkCluster = field(init=False)
    sandbox: SandboxClient = field(init=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.broker = KafkaBroker(self.home / "kafka")
        self.server = SandboxServer(
            self.home / "sandbox",
            storage_dir=self.storage_dir,
            # auto-creator-v2 writes these stores; the sandbox's content APIs read what it wrote
            graph_store=f"sqlite:///{self.graph_db.resolve()}",
            external_store=f"sqlite:///{self.external_db.resolve()}",
        )
        self.cluster = FlinkCluster(
            self.home / "flink",
            taskmanagers=2,
            slots_per_taskmanager=1,
            extra_conf={
                "heartbeat.interval": 2000,
                "execution.checkpointing.interval": 2000,
            },
        )

    @property
    def tmp_dir(self) -> Path:
        return self.cluster.tmp_dir

    @property
    def storage_dir(self) -> Path:
        return self.home / "sandbox" / "storage"

    @property
    def graph_db(self) -> Path:
        return self.home / "stores" / "graph.db"

    @property
    def external_db(self) -> Path:
        return self.home / "stores" / "external.db"

    def start(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.graph_db.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.broker.start()
        self.server.start()
        self.sandbox = SandboxClient(self.server.url)
        # task managers and their Python workers put their temp files here, so growth is measurable
        os.environ["TMPDIR"] = str(self.tmp_dir.resolve())
        self.cluster.start()
        log(f"stack up in {time.monotonic() - t0:.0f} s under {self.home}")

    def stop(self) -> None:
        for stop in (self.cluster.stop, self.reap_orphan_workers, self.server.stop, self.broker.stop):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                log(f"stop: {e}")

    def reap_orphan_workers(self) -> None:
        """Stop the Python workers a SIGKILLed task manager left behind. Such a worker (and the
        `pyflink-udf-runner.sh` shell and `tee` that log it to this stack's `flink-python-udf-boot.log`)
        outlives its task manager, holding ~200 MiB, until it is stopped; found by that `tee`'s argument."""
        import psutil

        home = str(self.home.resolve())
        reaped: list[int] = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info.get("cmdline") or []
            if not (len(cmd) >= 2 and cmd[0].endswith("tee") and cmd[-1].startswith(home)):
                continue
            if not cmd[-1].endswith("flink-python-udf-boot.log"):
                continue
            try:
                runner = p.parent()
                if runner is None or "pyflink-udf-runner" not in " ".join(runner.cmdline()):
                    continue
                for child in runner.children():
                    if child.pid != p.pid:
                        child.terminate()
                        reaped.append(child.pid)
            except psutil.Error:
                continue
        # a worker whose shell and tee are gone too: known by the stack's FLINK_PID_DIR in its environment
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if "beam_boot" not in cmd or p.pid in reaped:
                continue
            try:
                if p.environ().get("FLINK_PID_DIR", "").startswith(home):
                    p.terminate()
                    reaped.append(p.pid)
            except psutil.Error:
                continue
        if reaped:
            log(f"stopped {len(reaped)} Python workers left by killed task managers: {reaped}")
