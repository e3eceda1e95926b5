"""A Neo4j 3.3 community server (Bolt 1 and HTTP), the line Sunbird ships, run from the Maven-resolved jars.

`Neo4jLegacyLauncher.java` (next to this module) runs Neo4j's own server entry point as a source-file program
(``java ... Neo4jLegacyLauncher.java jars/neo4j3 --home-dir=... --config-dir=...``), with a ``neo4j.conf``
written here: Bolt and HTTP on 127.0.0.1, no auth, no TLS. Neo4j 3.x is built for Java 8; on the JDK 17 here
it needs the module opens below (without ``java.lang`` its start fails with ``Could not get Throwable message
field``) and the launcher's hidden Bolt encoder (see the launcher). The graph store's tests use it to show
that the store reaches a Bolt-1-only server, which the pinned 5.x driver cannot.
"""

from __future__ import annotations

import json
import urllib.request
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
from cokreat_jobs.flink.jars import jars_dir

__all__ = ["JDK17_FLAGS", "LAUNCHER", "Neo4jLegacyServer"]

LAUNCHER = Path(__file__).with_name("Neo4jLegacyLauncher.java")

JDK17_FLAGS: tuple[str, ...] = (
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
)


@dataclass
class Neo4jLegacyServer:
    """One server; its store, logs and neo4j.conf live in `data_dir`. `port` is Bolt's, `http_port` HTTP's."""

    data_dir: Path
    port: int = 0
    http_port: int = 0
    heap: str = "384m"
    # The jars/<kind>/ folder: neo4j3 (3.3.9, make setup); another 3.x resolved there runs the same way.
    jars_kind: str = "neo4j3"
    pid: int | None = None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.log_file = self.data_dir / "neo4j.log"
        self.port = self.port or free_port()
        self.http_port = self.http_port or free_port()

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> str:
        return "\n".join(
            [
                "dbms.connector.bolt.enabled=true",
                f"dbms.connector.bolt.listen_address=127.0.0.1:{self.port}",
                "dbms.connector.bolt.tls_level=DISABLED",
                "dbms.connector.http.enabled=true",
                f"dbms.connector.http.listen_address=127.0.0.1:{self.http_port}",
                "dbms.connector.https.enabled=false",
                "dbms.security.auth_enabled=false",
                "dbms.memory.pagecache.size=32m",
                "dbms.udc.enabled=false",
                "dbms.tx_log.rotation.retention_policy=false",
                "",
            ]
        )

    def argv(self) -> list[str]:
        home = self.data_dir / "home"
        return [
            java_executable(),
            "-Xms64m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:TieredStopAtLevel=1",
            "-XX:CICompilerCount=1",
            "-Djava.awt.headless=true",
            *JDK17_FLAGS,
            str(LAUNCHER),
            str(jars_dir(self.jars_kind)),
            f"--home-dir={home}",
            f"--config-dir={home / 'conf'}",
        ]

    def start(self, timeout: float = 120.0) -> None:
        conf = self.data_dir / "home" / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "neo4j.conf").write_text(self.config(), encoding="utf-8")
        proc = spawn(self.argv(), self.log_file, cwd=self.data_dir)
        self.pid = proc.pid
        wait_until(
            self.ready,
            timeout,
            f"Neo4j 3 (Bolt {self.port}, HTTP {self.http_port})",
            alive=lambda: proc.poll() is None,
            log_file=self.log_file,
        )

    def ready(self) -> bool:
        """True once the HTTP endpoint commits a query and Bolt accepts connections."""
        if not accepts_connections(self.http_port) or not accepts_connections(self.port):
            return False
        body = json.dumps({"statements": [{"statement": "RETURN 1"}]}).encode()
        request = urllib.request.Request(
            f"{self.http_url}/db/data/transaction/commit",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=3) as resp:  # noqa: S310 (our own loopback server)
                answer = json.loads(resp.read())
        except Exception:
            return False
        return not answer.get("errors") and answer["results"][0]["data"][0]["row"] == [1]

    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        if self.pid is not None:
            stop_pid(self.pid, timeout=timeout)
            self.pid = None
