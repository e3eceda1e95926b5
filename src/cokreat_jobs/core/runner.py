"""Running a job: on the local MiniCluster (`run`), on a cluster (`submit`), or as `flink run -py` entry."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.flink import JobDefinition, build_pipeline
from cokreat_jobs.jobs import job_file, job_module

TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


def definition(job: str) -> JobDefinition:
    d: JobDefinition = job_module(job).DEFINITION
    return d


def run_local(job: str, cfg: JobConfig) -> int:
    """Run until the job ends or SIGINT/SIGTERM arrives; cancel it cleanly then. Returns the exit code."""
    stop = {"signal": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["signal"] = signum

    env = build_pipeline(definition(job), cfg)
    client = env.execute_async(cfg.get_str("job.name", job))
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"{job} running as Flink job {client.get_job_id()} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        while True:
            if stop["signal"]:
                try:
                    client.cancel().result()
                except Exception:  # already finished or the cluster is shutting down
                    pass
                print(f"{job} stopped", file=sys.stderr, flush=True)
                return 0
            try:
                status = str(client.get_job_status().result())
            except Exception:
                # a per-job MiniCluster shuts down once its job has failed for good
                print(
                    f"{job} ended: the job failed (restarts exhausted); see the log above",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            if status in TERMINAL:
                print(f"{job} ended: {status}", file=sys.stderr, flush=True)
                return 0 if status in ("FINISHED", "CANCELED") else 1
            time.sleep(0.5)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _flink_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def submit_job(
    job: str, cfg: JobConfig, jobmanager: str, savepoint: str | None = None, timeout: float = 300.0
) -> str:
    """`flink run -d` the job's file against a cluster; returns the Flink job id."""
    from cokreat_jobs.stack.flink_cluster import flink_run_argv

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


def job_main(job: JobDefinition, argv: Sequence[str] | None = None) -> None:
    """Entry point of a job file under `flink run -py <job.py> [--config FILE] [--set KEY=VALUE]...`."""
    parser = argparse.ArgumentParser(prog=job.name)
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    cfg = load_config(job.name, config_file=args.config, overrides=args.overrides)
    env = build_pipeline(job, cfg)
    env.execute(cfg.get_str("job.name", job.name))


def stop_job(
    job: str, cfg: JobConfig, jobmanager: str, savepoint_dir: str | None = None, timeout: float = 600.0
) -> str:
    """Stop-with-savepoint the running job named ``job.name`` (default: the job's name) on a cluster.

    Through Flink's REST API: ``POST /jobs/{id}/stop`` (``targetDirectory``: ``savepoint_dir``, else the
    cluster's ``execution.checkpointing.savepoint-dir``), then the trigger is polled until the savepoint is
    complete and the job has stopped. Sources stop first, so every offset in the savepoint is one whose
    records' outcomes are in it too; ``submit --from-savepoint`` resumes there. Returns the savepoint path.
    """
    from cokreat_jobs.stack.jobrun import FlinkRest

    base = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
    rest = FlinkRest(base)
    name = cfg.get_str("job.name", job)
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
