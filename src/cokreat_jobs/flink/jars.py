"""Where the Java runtime artifacts live: the jars Maven resolved into ``jars/<kind>/`` (``make setup``).

``COKREAT_JARS_DIR`` names the ``jars/`` root (an image sets it); without it, the checkout the package was
installed from (found by its ``pyproject.toml`` and ``pom.xml``), else the working directory.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["FLINK_HOME", "connector_jars", "flink_bin", "jar_files", "jars_dir", "project_root"]

# the Flink distribution inside the PyFlink wheel: bin/ scripts, conf/, lib/, plugins/
FLINK_HOME = Path(importlib.util.find_spec("pyflink").origin or "").parent  # type: ignore[union-attr]


def project_root() -> Path:
    """The checkout this package was installed from (editable install), found by its pyproject.toml."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "pom.xml").exists():
            return parent
    return Path.cwd()


def jars_dir(kind: str) -> Path:
    """jars/<kind>/ as `make setup` fills it (COKREAT_JARS_DIR overrides the jars/ root)."""
    root = Path(os.environ.get("COKREAT_JARS_DIR") or project_root() / "jars")
    path = root / kind
    if not path.is_dir() or not any(path.glob("*.jar")):
        raise FileNotFoundError(f"no jars in {path}: run `make setup` first")
    return path


def jar_files(kind: str) -> list[Path]:
    return sorted(jars_dir(kind).glob("*.jar"))


def connector_jars() -> list[str]:
    """The Kafka connector, as the URLs `env.add_jars` takes."""
    return [p.resolve().as_uri() for p in jar_files("flink")]


def flink_bin(script: str) -> Path:
    return FLINK_HOME / "bin" / script
