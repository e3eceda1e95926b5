"""A job on a Flink cluster: submit its file (`flink run -d`), stop it with a savepoint (Flink's REST API)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.flink.jars import flink_bin
from cokreat_jobs.jobs import job_definition, job_file
from cokreat_jobs.ops.flink_rest import FlinkRest

__all__ = ["flink_run_argv", "stop_job", "submit_job"]


def flink_run_argv(
    jobmanager: str,
    job_file: Path,
    *job_args: str,
    parallelism: int | None = None,
    from_savepoint: str | None = None,
    detached: bool = True,
) -> list[str]:
    argv = ["bash", str(flink_bin("flink")), "run", "-m", jobmanager]
    if detached:
        argv.append("-d")
    if parallelism:
        argv += ["-p", str(parallelism)]
    if from_savepoint:
        argv += ["-s", from_savepoint]
    argv += ["-pyexec", sys.executable, "-pyclientexec", sys.executable, "-py", str(job_file), *job_args]
    return argv


def _flink_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def submit_job(
    job: str, cfg: JobConfig, jobmanager: str, savepoint: str | None = None, timeout: float = 300.0
) -> str:
    """`flink run -d` the job's file against a cluster; returns the Flink job id."""
    with tempfile.TemporaryDirectory(prefix="cokreat-submit-") as tmp:
        # The client builds the graph from this file at submit time; the config then travels in the graph.
        conf_file = Path(tmp) / f"{job}.conf"
        conf_file.write_text(json.dumps(cfg.as_dict()))
        argv = flink_run_argv(
            jobmanager,
            job_file(job),
            "--config",
            str(conf_file),
            parallelism=cfg.get_int("task.parallelism", 1),
            from_savepoint=savepoint,
        )
        proc = subprocess.run(
            argv, env=_flink_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    out = proc.stdout + proc.stderr
    match = re.search(r"JobID\s+([0-9a-f]{32})", out)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"flink run failed (exit {proc.returncode}):\n{out[-4000:]}")
    return match.group(1)


def stop_job(
    job: str, cfg: JobConfig, jobmanager: str, savepoint_dir: str | None = None, timeout: float = 600.0
) -> str:
    """Stop-with-savepoint the running job named ``job.name`` (default: the job's name, or the reference's for
    the reference's config shape, `JobDefinition.job_name`) on a cluster.

    Through Flink's REST API: ``POST /jobs/{id}/stop`` (``targetDirectory``: ``savepoint_dir``, else the
    cluster's ``execution.checkpointing.savepoint-dir``), then the trigger is polled until the savepoint is
    complete and the job has stopped. Sources stop first, so every offset in the savepoint is one whose
    records' outcomes are in it too; ``submit --from-savepoint`` resumes there. Returns the savepoint path.
    """
    base = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
    rest = FlinkRest(base)
    name = job_definition(job).job_name(cfg)
    jid = rest.running_job(name)
    if jid is None:
        raise RuntimeError(f"no running job named {name!r} on {jobmanager}")
    body: dict[str, object] = {"drain": False}
    if savepoint_dir:
        body["targetDirectory"] = savepoint_dir
    trigger = rest.post(f"/jobs/{jid}/stop", body)["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rest.get(f"/jobs/{jid}/savepoints/{trigger}")
        if status.get("status", {}).get("id") == "COMPLETED":
            operation = status.get("operation") or {}
            if "location" in operation:
                return str(operation["location"])
            cause = operation.get("failure-cause", {})
            raise RuntimeError(
                f"stop-with-savepoint of {name} failed: {cause.get('stack-trace', cause)}"[:4000]
            )
        time.sleep(1)
    raise TimeoutError(f"stop-with-savepoint of {name} not complete after {timeout:.0f} s")
