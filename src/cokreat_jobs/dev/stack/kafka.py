"""A single-node KRaft Kafka broker run from the Maven-resolved jars (no Docker, no ZooKeeper)."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cokreat_jobs.dev.stack.process import (
    accepts_connections,
    free_port,
    java_executable,
    pid_alive,
    spawn,
    stop_pid,
    wait_until,
)
from cokreat_jobs.flink.jars import jar_files

# The local broker takes records up to 4 MiB so the jobs' own size cap (kafka.max_record_bytes) is what
# decides about oversized input, as it must in production where the broker limit is the operator's.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's own `Uuid.randomUuid()` makes one: URL-safe base64 of 16 random bytes,
    drawn again while it starts with '-' (Kafka's tools would read such an id as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass
class KafkaBroker:
    """One broker+controller process. Data lives in `data_dir`; it keeps its cluster id across restarts."""

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    partitions: int = 2
    heap: str = "512m"
    pid: int | None = None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.log_file = self.data_dir / "broker.log"
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        logs = self.data_dir / "kraft-logs"
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={logs}",
                f"num.partitions={self.partitions}",
                "auto.create.topics.enable=true",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                f"message.max.bytes={MAX_MESSAGE_BYTES}",
                f"replica.fetch.max.bytes={MAX_MESSAGE_BYTES}",
                "log.retention.hours=168",
                "",
            ]
        )

    def _cluster_id(self) -> str:
        id_file = self.data_dir / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        cid = new_cluster_id()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(cid)
        return cid

    def _classpath(self) -> str:
        return os.pathsep.join(str(p) for p in jar_files("kafka"))

    def _java_argv(self, main: str, *args: str) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dlog4j2.level=WARN",
            "-cp",
            self._classpath(),
            main,
            *args,
        ]

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(self._properties())
        cid = self._cluster_id()
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
            fmt = subprocess.run(
                self._java_argv(
                    "kafka.tools.StorageTool",
                    "format",
                    # one token: an id starting with '-' (from an older stack) is then not read as an option
                    f"--cluster-id={cid}",
                    "-c",
                    str(props),
                    "--ignore-formatted",
                ),
                capture_output=True,
                text=True,
                timeout=120,
            )
            if fmt.returncode != 0:
                raise RuntimeError(f"kafka storage format failed: {fmt.stdout}{fmt.stderr}")
        proc = spawn(self._java_argv("kafka.Kafka", str(props)), self.log_file)
        self.pid = proc.pid
        wait_until(
            self.ready,
            timeout,
            f"Kafka broker on port {self.port}",
            alive=lambda: proc.poll() is None,
            log_file=self.log_file,
        )

    def ready(self) -> bool:
        if not accepts_connections(self.port):
            return False
        from confluent_kafka.admin import AdminClient

        try:
            md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=2)
            return bool(md.brokers)
        except Exception:
            return False

    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=timeout)
            self.pid = None
