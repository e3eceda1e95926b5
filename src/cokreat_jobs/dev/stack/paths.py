"""Where the local stack keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["stack_dir"]


def stack_dir() -> Path:
    """The local stack's state folder (.stack/ in the working directory unless COKREAT_STACK_DIR)."""
    return Path(os.environ.get("COKREAT_STACK_DIR") or Path.cwd() / ".stack").resolve()
