"""The chaos run's progress lines, on stdout with the time of day."""

from __future__ import annotations

import time


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)
