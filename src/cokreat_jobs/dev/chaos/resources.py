"""What the soak scenario samples: the task managers' and their Python workers' RSS, their open files,
and the files under the stack's temp directory."""

from __future__ import annotations

from typing import Any

from cokreat_jobs.dev.chaos.stack import Stack


def _procs(stack: Stack) -> tuple[list[Any], list[Any]]:
    import psutil

    jvms: list[Any] = []
    workers: list[Any] = []
    for pid in stack.cluster.taskmanager_pids():
        try:
            p = psutil.Process(pid)
            jvms.append(p)
            for c in p.children(recursive=True):
                if "python" in (c.name() or "").lower():
                    workers.append(c)
        except psutil.Error:
            continue
    return jvms, workers


def resource_sample(stack: Stack) -> dict[str, Any]:
    import psutil

    jvms, workers = _procs(stack)

    def rss(ps: list[Any]) -> float:
        total = 0
        for p in ps:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return round(total / 2**20, 1)

    def fds(ps: list[Any]) -> int:
        total = 0
        for p in ps:
            try:
                total += p.num_fds()
            except psutil.Error:
                pass
        return total

    tmp_files = sum(1 for p in stack.tmp_dir.rglob("*") if p.is_file()) if stack.tmp_dir.exists() else 0
    return {
        "jvm_rss_mib": rss(jvms),
        "python_rss_mib": rss(workers),
        "python_workers": len(workers),
        "open_files": fds(jvms + workers),
        "tmp_files": tmp_files,
    }
