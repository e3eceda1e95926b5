"""A scenario's result, and the report of a run: the Markdown table and the results JSON."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    scenario: str
    short: bool
    events: int = 0
    hostile: int = 0
    deleted: int = 0
    lost: int = 0
    # repeated effectful calls after a recovery or a success (the request log; `effects`): reported,
    # allowed under at-least-once
    reprocessed: int = 0
    duplicates: int = 0  # effects applied twice: must be 0
    failed: int = 0
    failed_with_reason: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    restarts: int = -1
    fault: dict[str, Any] = field(default_factory=dict)
    recovery_s: list[float] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    protection: dict[str, Any] = field(default_factory=dict)
    # the request log's account (`effects.Reprocessing.as_dict`): effectful calls, re-processed, retried
    reprocessing: dict[str, Any] = field(default_factory=dict)
    # run with the shipped restart and checkpoint settings (not the never-give-up overrides), and what the
    # job ran with (`config.defaults_problems`)
    defaults: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def table(results: list[Result]) -> str:
    head = (
        "| scenario | events | lost | re-processed | duplicates | failed (with reason) | replayed | restarts "
        "| recovery (s) | memory (RSS MiB start -> end) | settings | result |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        mem = ""
        if r.memory:
            s, e = r.memory["start"], r.memory["end"]
            mem = (
                f"Python {s['python_rss_mib']} -> {e['python_rss_mib']}; JVM {s['jvm_rss_mib']} -> "
                f"{e['jvm_rss_mib']}; fds {s['open_files']} -> {e['open_files']}; tmp {s['tmp_files']} -> "
                f"{e['tmp_files']}"
            )
        rows.append(
            f"| {r.scenario} | {r.events} | {r.lost} | {r.reprocessed} | {r.duplicates} "
            f"| {r.failed} ({r.failed_with_reason}) "
            f"| {r.replayed} | {r.restarts} | {', '.join(str(x) for x in r.recovery_s) or '-'} "
            f"| {mem or '-'} "
            f"| {'shipped defaults' if r.defaults else 'never give up'} "
            f"| {'pass' if r.passed else 'FAIL'} |"
        )
    return head + "\n".join(rows) + "\n"


def write_results(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "scenarios": [r.as_dict() for r in results],
            },
            indent=2,
        )
        + "\n"
    )
