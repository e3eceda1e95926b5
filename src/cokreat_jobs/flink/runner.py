"""Running a job on the local MiniCluster (`run`), or as the entry point of `flink run -py <job.py>`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from pyflink.datastream import StreamExecutionEnvironment

from cokreat_jobs.core.checks import raise_for_problems
from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.flink.pipeline import build_pipeline, flink_configuration

TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


CONFIG_FLAGS = ("--config", "--config.file.path")


def check_at_start(definition: JobDefinition, cfg: JobConfig) -> None:
    """The job's start-up checks (``jobs/<job>/checks.py``): a ConfigError listing every problem found."""
    raise_for_problems(definition.name, definition.checks.startup(cfg))


def run_local(definition: JobDefinition, cfg: JobConfig) -> int:
    """Run until the job ends or SIGINT/SIGTERM arrives; cancel it cleanly then. Returns the exit code.

    The configuration is checked first (:func:`check_at_start`): a ConfigError, before any Flink work.
    """
    check_at_start(definition, cfg)
    stop = {"signal": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["signal"] = signum

    job = definition.name
    # the MiniCluster's REST API on loopback unless the config says otherwise (pipeline.LOCAL_BIND)
    local_env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(cfg, local=True))
    env = build_pipeline(definition, cfg, local_env)
    client = env.execute_async(definition.job_name(cfg))
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


def parse_job_args(prog: str, argv: Sequence[str]) -> argparse.Namespace:
    """``[--config FILE | --config.file.path FILE] [--set KEY=VALUE]...`` (also ``--flag=VALUE``).

    ``--config.file.path`` is how Sunbird's chart passes the file to the Scala jobs (Flink's ParameterTool);
    it means exactly ``--config``.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument(*CONFIG_FLAGS, dest="config", default=None, metavar="FILE")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(list(argv))


def job_main(job: JobDefinition, argv: Sequence[str] | None = None) -> None:
    """Entry point of a job file under `flink run -py <job.py> [--config FILE] [--set KEY=VALUE]...`.

    The configuration is loaded (a missing include is an error) and checked before the graph is built, so a
    job that cannot work stops at start, naming every problem, instead of failing on its first event.
    """
    args = parse_job_args(job.name, argv if argv is not None else sys.argv[1:])
    cfg = load_config(job.name, config_file=args.config, overrides=args.overrides)
    check_at_start(job, cfg)
    env = build_pipeline(job, cfg)
    env.execute(job.job_name(cfg))
