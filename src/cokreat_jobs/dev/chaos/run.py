"""`cokreat-jobs chaos`: the run loop. Each scenario on a stack of its own, or all on one shared stack (the
short form); a scenario that raises is a failed result, and the run goes on."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cokreat_jobs.dev.chaos import content, scenarios
from cokreat_jobs.dev.chaos.log import log
from cokreat_jobs.dev.chaos.report import Result
from cokreat_jobs.dev.chaos.stack import Stack

SCENARIOS = scenarios.USER_DELETE_SCENARIOS + content.SCENARIOS
RUNNERS: dict[str, Callable[[Stack, bool, int | None], Result]] = {**scenarios.RUNNERS, **content.RUNNERS}


def run_scenarios(
    names: Iterable[str],
    short: bool = False,
    events: int | None = None,
    home: Path | None = None,
    share_stack: bool | None = None,
    keep: bool = False,
) -> list[Result]:
    """Run the scenarios; each on a stack of its own unless `share_stack` (the short form shares one)."""
    names = list(names) or list(SCENARIOS)
    share = short if share_stack is None else share_stack
    base = Path(home) if home else Path(tempfile.mkdtemp(prefix="cokreat-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    shared: Stack | None = None
    old_tmp = os.environ.get("TMPDIR")
    try:
        for name in names:
            started = time.monotonic()
            stack = shared
            if stack is None:
                stack = Stack(stack_dir(base, "stack" if share else name))
                stack.start()
                if share:
                    shared = stack
            else:
                # a shared stack starts each scenario whole: a task manager that exited in the previous one
                # (Beam's shutdown can take a survivor of a kill down) would leave the job short of a slot
                replaced = stack.cluster.ensure_taskmanagers()
                if replaced:
                    log(f"{name}: started {replaced} task manager(s) missing after the previous scenario")
            log(f"{name}: start ({'short' if short else 'full'})")
            try:
                res = RUNNERS[name](stack, short, events)
            except Exception as e:
                res = Result(name, short, problems=[f"{type(e).__name__}: {e}"])
            res.wall_s = round(time.monotonic() - started, 1)
            log(f"{name}: {'PASS' if res.passed else 'FAIL'} in {res.wall_s} s {res.problems}")
            results.append(res)
            if not share:
                stack.stop()
    finally:
        if shared is not None:
            shared.stop()
        if old_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmp
        if not keep and home is None:
            shutil.rmtree(base, ignore_errors=True)
    return results


def stack_dir(base: Path, name: str) -> Path:
    """The directory of a scenario's stack. Without the `:` of `<fault>:<job>`: Flink splits `io.tmp.dirs`
    (under the stack) at the path separator, so the content jobs' Python workers put their logs outside the
    stack, where the data-protection check did not find them."""
    return base / name.replace(os.pathsep, "-").replace(":", "-")
