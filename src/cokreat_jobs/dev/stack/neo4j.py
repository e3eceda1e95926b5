"""An embedded Neo4j 5.x with Bolt, run from the Maven-resolved jars through a single-file Java launcher.

`Neo4jLauncher.java` (next to this module) is run as a source-file program, compiled in memory by the JDK at
start (no build step): ``java -cp 'jars/neo4j/*' Neo4jLauncher.java <home dir> <bolt port>``. It starts a
community DBMS with Bolt on 127.0.0.1 (no auth, no TLS, HTTP disabled) and blocks until it is stopped.
Neo4j 2025.x needs Java 21: the jars are the 5.26 LTS line.
"""

from __future__ import annotations

import os
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

LAUNCHER = Path(__file__).with_name("Neo4jLauncher.java")

# The module flags of Neo4j 5's own neo4j.conf (server.jvm.additional) for JDK 17.
JDK17_FLAGS: tuple[str, ...] = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dlog4j2.disable.jmx=true",
)


@dataclass
class Neo4jServer:
    """One embedded DBMS; its databases, transaction logs and logs live in `data_dir`; `port` is Bolt's."""

    data_dir: Path
    port: int = 0
    heap: str = "512m"
    pid: int | None = None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.log_file = self.data_dir / "neo4j.log"
        self.port = self.port or free_port()

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        classpath = os.pathsep.join(str(p) for p in jar_files("neo4j"))
        return [
            java_executable(),
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:+ExitOnOutOfMemoryError",
            # A local/test server on a small shared machine: the C1 JIT only, less CPU and memory at start.
            "-XX:TieredStopAtLevel=1",
            "-XX:CICompilerCount=1",
            "-Djava.awt.headless=true",
            *JDK17_FLAGS,
            "-cp",
            classpath,
            str(LAUNCHER),
            str(self.data_dir / "home"),
            str(self.port),
        ]

    def start(self, timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = spawn(self.argv(), self.log_file, cwd=self.data_dir)
        self.pid = proc.pid
        wait_until(
            self.ready,
            timeout,
            f"Neo4j (Bolt) on port {self.port}",
            alive=lambda: proc.poll() is None,
            log_file=self.log_file,
        )

    def ready(self) -> bool:
        """True once a Bolt session runs a query on the default database (not just an open port)."""
        if not accepts_connections(self.port):
            return False
        from neo4j import GraphDatabase

        try:
            with GraphDatabase.driver(self.uri, auth=None, connection_timeout=3) as driver:
                records, _, _ = driver.execute_query("RETURN 1 AS ok")
                return bool(records) and records[0]["ok"] == 1
        except Exception:
            return False

    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=timeout)
            self.pid = None
