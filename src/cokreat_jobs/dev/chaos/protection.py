"""The data-protection check of a run: no user id in any job log line, no seeded secret in any log line,
failed-topic record or importError (the cluster's logs and the Python workers' own)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cokreat_jobs.dev.chaos.config import SEEDED_SECRETS
from cokreat_jobs.dev.chaos.stack import Stack


def python_worker_logs(stack: Stack) -> list[Path]:
    """The Python workers' own logs: PyFlink starts each worker in `<io.tmp.dirs>/python-dist-<uuid>/` and
    sends its stdout/stderr (our JSON log lines among them) to `flink-python-udf-boot.log` there; the
    directory goes away when the worker's environment is closed (job cancelled), so it is read while the job
    runs. A killed task manager leaves its workers' directories behind."""
    home = stack.cluster.home
    return sorted(p for p in home.rglob("flink-python-udf-boot.log") if p.is_file()) if home.exists() else []


def protection_check(
    stack: Stack,
    user_ids: list[str],
    failed: list[dict[str, Any]],
    markers: Iterable[bytes] = (b"user-delete success", b"user-delete failed"),
    secrets: Iterable[str] = (),
    texts: Iterable[str] = (),
) -> dict[str, Any]:
    """No user id in any job log line; no seeded secret in any log line, failed-topic record or other text
    that left the job (`texts`: the contents' importError). The logs are the cluster's log dir (job manager,
    task managers, their .out files) and the Python workers' own logs. `secrets`: the run's own seeded
    secrets (a service-account key made for it), besides the ones every run seeds. `markers`: a line
    holding one of them shows the job logged an event (so the check is not vacuous)."""
    workers = python_worker_logs(stack)
    files = sorted(stack.cluster.log_dir.glob("*")) + workers
    found = scan_for_leaks(files, failed, [*SEEDED_SECRETS, *secrets], user_ids, markers, texts)
    found["worker_logs"] = len(workers)
    return found


def scan_for_leaks(
    files: Iterable[Path],
    failed: list[dict[str, Any]],
    secrets: Iterable[str],
    user_ids: Iterable[str] = (),
    markers: Iterable[bytes] = (),
    texts: Iterable[str] = (),
) -> dict[str, Any]:
    """Every line of `files`, every failed-topic record and every text in `texts` searched for each secret;
    the log lines for each user id (failed records of user-delete keep the original event, so ids are
    expected there). `log_lines` and `job_event_lines` say how much was read."""
    problems: list[str] = []
    wanted = [s for s in secrets if s]
    ids = {u.encode() for u in user_ids}
    marks = tuple(markers)
    lines = 0
    evidence = 0  # lines that show the job did log its events (so the check is not vacuous)
    for f in files:
        if not f.is_file():
            continue
        try:
            data = f.read_bytes()
        except OSError:  # a worker's directory removed under us
            continue
        for line in data.splitlines():
            lines += 1
            if any(m in line for m in marks):
                evidence += 1
            for s in wanted:
                if s.encode() in line:
                    problems.append(f"secret in {f.name}: {line[:160]!r}")
            if ids and b"-u0" in line:
                for u in ids:
                    if u in line:
                        problems.append(f"user id in {f.name}: {line[:160]!r}")
                        break
            if len(problems) > 5:
                break
    for r in failed:
        text = json.dumps(r)
        for s in wanted:
            if s in text or json.dumps(s)[1:-1] in text:
                problems.append(f"secret in a failed-topic record: {text[:160]}")
    scanned = 0
    for t in texts:
        scanned += 1
        for s in wanted:
            if s in t:
                problems.append(f"secret in an importError: {t[:160]}")
    if marks and not evidence:
        # nothing the job logged about its events was read (its workers' logs not found): a secret or id it
        # logged could not be found, so the check would pass without having looked
        problems.insert(0, "no log line of the job's events was read: the log check could not find a leak")
    return {
        "log_lines": lines,
        "job_event_lines": evidence,
        "texts_scanned": scanned,
        "secrets_sought": len(wanted),
        "problems": problems[:10],
    }
