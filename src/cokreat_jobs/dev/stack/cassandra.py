"""A single-node Cassandra 5.0 run from the Maven-resolved `cassandra-all` jars (no Docker, no tarball).

The daemon (`org.apache.cassandra.service.CassandraDaemon`) runs in the foreground of its own process with
the JDK 17 module flags of Cassandra's own `conf/jvm17-server.options`, a `cassandra.yaml` generated into the
data dir (one node, native transport on a free port, every directory under the data dir, small caches and
memtables) and a quiet logback config. JMX is not started. Cassandra 4.1 does not run on Java 17: stay on 5.0.
"""

from __future__ import annotations

import os
import re
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

# conf/jvm17-server.options of Cassandra 5.0: the "JPMS" section, plus its Netty properties.
JDK17_FLAGS: tuple[str, ...] = (
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)

SCHEMA_FILE = Path(__file__).with_name("cassandra_schema.cql")
DEFAULT_QUESTIONSET_KEYSPACE = "dev_hierarchy_store"
DEFAULT_QUESTION_KEYSPACE = "dev_question_store"

_LOGBACK = """<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="{level}"/>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


@dataclass
class CassandraNode:
    """One Cassandra node: data, commit log, hints and caches under `data_dir`; `port` is the CQL port."""

    data_dir: Path
    port: int = 0
    storage_port: int = 0
    heap: str = "512m"
    log_level: str = "INFO"
    pid: int | None = None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.log_file = self.data_dir / "cassandra.log"
        self.port = self.port or free_port()
        self.storage_port = self.storage_port or free_port()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _yaml(self) -> str:
        d = self.data_dir
        return "\n".join(
            [
                "cluster_name: cokreat-local",
                "num_tokens: 1",
                "initial_token: 0",
                "allocate_tokens_for_local_replication_factor: 1",
                "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
                "endpoint_snitch: SimpleSnitch",
                "seed_provider:",
                "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
                "    parameters:",
                f'      - seeds: "127.0.0.1:{self.storage_port}"',
                "listen_address: 127.0.0.1",
                f"storage_port: {self.storage_port}",
                "rpc_address: 127.0.0.1",
                "start_native_transport: true",
                f"native_transport_port: {self.port}",
                "authenticator: AllowAllAuthenticator",
                "authorizer: AllowAllAuthorizer",
                "role_manager: CassandraRoleManager",
                "network_authorizer: AllowAllNetworkAuthorizer",
                "data_file_directories:",
                f"  - {d / 'data'}",
                f"commitlog_directory: {d / 'commitlog'}",
                f"saved_caches_directory: {d / 'saved_caches'}",
                f"hints_directory: {d / 'hints'}",
                f"cdc_raw_directory: {d / 'cdc_raw'}",
                "commitlog_sync: periodic",
                "commitlog_sync_period: 10000ms",
                "commitlog_segment_size: 16MiB",
                "disk_failure_policy: stop",
                "commit_failure_policy: stop",
                "auto_snapshot: false",
                "snapshot_before_compaction: false",
                "incremental_backups: false",
                "concurrent_reads: 8",
                "concurrent_writes: 8",
                "concurrent_counter_writes: 4",
                "concurrent_materialized_view_writes: 4",
                "concurrent_compactors: 1",
                "memtable_heap_space: 64MiB",
                "memtable_offheap_space: 64MiB",
                "memtable_allocation_type: heap_buffers",
                "file_cache_size: 32MiB",
                "networking_cache_size: 16MiB",
                "key_cache_size: 8MiB",
                "counter_cache_size: 0MiB",
                "index_summary_capacity: 8MiB",
                "prepared_statements_cache_size: 8MiB",
                "dynamic_snitch: false",
                "hinted_handoff_enabled: false",
                "native_transport_max_threads: 32",
                "read_request_timeout: 10000ms",
                "write_request_timeout: 10000ms",
                "request_timeout: 20000ms",
                "",
            ]
        )

    def _classpath(self) -> str:
        return os.pathsep.join(str(p) for p in jar_files("cassandra"))

    def argv(self) -> list[str]:
        d = self.data_dir
        return [
            java_executable(),
            "-ea",
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-Xss512k",
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:MaxGCPauseMillis=300",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:MaxDirectMemorySize=256m",
            # A local/test server on a small shared machine: the C1 JIT only, less CPU and memory at start.
            "-XX:TieredStopAtLevel=1",
            "-XX:CICompilerCount=1",
            "-Djava.net.preferIPv4Stack=true",
            "-Djava.awt.headless=true",
            *JDK17_FLAGS,
            f"-Dcassandra.config=file://{d / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile=file://{d / 'logback.xml'}",
            f"-Dcassandra.logdir={d / 'logs'}",
            f"-Dcassandra.storagedir={d}",
            f"-Dcassandra.triggers_dir={d / 'triggers'}",
            "-Dcassandra-foreground=yes",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            "-Dcassandra.load_ring_state=false",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.initial_token=0",
            "-Dcassandra.num_tokens=1",
            "-Dcassandra.auto_bootstrap=false",
            "-cp",
            self._classpath(),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def start(self, timeout: float = 180.0) -> None:
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs", "triggers"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.data_dir / "cassandra.yaml").write_text(self._yaml())
        (self.data_dir / "logback.xml").write_text(_LOGBACK.replace("{level}", self.log_level))
        proc = spawn(self.argv(), self.log_file, cwd=self.data_dir)
        self.pid = proc.pid
        wait_until(
            self.ready,
            timeout,
            f"Cassandra on port {self.port}",
            alive=lambda: proc.poll() is None,
            log_file=self.log_file,
        )

    def ready(self) -> bool:
        """True once the node answers CQL over the native protocol (not just an open port)."""
        if not accepts_connections(self.port):
            return False
        from cassandra.cluster import Cluster

        cluster = Cluster([self.host], port=self.port, connect_timeout=3, control_connection_timeout=3)
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local", timeout=5).one()
            return row is not None
        except Exception:
            return False
        finally:
            cluster.shutdown()

    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=timeout)
            self.pid = None


def schema_statements(
    questionset_keyspace: str = DEFAULT_QUESTIONSET_KEYSPACE,
    question_keyspace: str = DEFAULT_QUESTION_KEYSPACE,
) -> list[str]:
    """The statements of cassandra_schema.cql, with the keyspaces renamed as asked."""
    for name in (questionset_keyspace, question_keyspace):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", name):
            raise ValueError(f"not a valid keyspace name: {name!r}")
    text = "\n".join(
        line for line in SCHEMA_FILE.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    text = re.sub(rf"\b{DEFAULT_QUESTIONSET_KEYSPACE}\b", questionset_keyspace, text)
    text = re.sub(rf"\b{DEFAULT_QUESTION_KEYSPACE}\b", question_keyspace, text)
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def apply_schema(
    host: str,
    port: int,
    questionset_keyspace: str = DEFAULT_QUESTIONSET_KEYSPACE,
    question_keyspace: str = DEFAULT_QUESTION_KEYSPACE,
    timeout: float = 60.0,
) -> None:
    """Create the keyspaces and the question_data / questionset_hierarchy tables (idempotent)."""
    from cassandra.cluster import Cluster

    cluster = Cluster([host], port=port, connect_timeout=10)
    try:
        session = cluster.connect()
        for stmt in schema_statements(questionset_keyspace, question_keyspace):
            session.execute(stmt, timeout=timeout)
        if not cluster.control_connection.wait_for_schema_agreement(wait_time=timeout):
            raise TimeoutError("Cassandra schema agreement not reached")
    finally:
        cluster.shutdown()
