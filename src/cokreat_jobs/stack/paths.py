"""Where the project's runtime files live: the Maven-resolved jars and the local stack's state."""

from __future__ import annotations

import os
from pathlib import Path


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


def stack_dir() -> Path:
    """The local stack's state folder (.stack/ in the working directory unless COKREAT_STACK_DIR)."""
    return Path(os.environ.get("COKREAT_STACK_DIR") or Path.cwd() / ".stack").resolve()
