"""The one `java` lookup of the JVM launchers (Kafka, Neo4j, Cassandra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cokreat_jobs.dev.stack import process


def test_java_home_wins_over_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setattr(process.shutil, "which", lambda name: "/usr/bin/java")
    assert process.java_executable() == str(java)


def test_the_path_when_java_home_has_no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setattr(process.shutil, "which", lambda name: f"/opt/jdk/bin/{name}")
    assert process.java_executable() == "/opt/jdk/bin/java"


def test_no_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(process.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="JDK 17"):
        process.java_executable()
