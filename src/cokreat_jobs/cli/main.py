"""The `cokreat-jobs` command: run the jobs, feed them, and the local stack they run against."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cokreat_jobs import __version__
from cokreat_jobs.cli.bulk import import_group
from cokreat_jobs.cli.inspect import inspect
from cokreat_jobs.jobs import JOB_MODULES


@click.group()
@click.version_option(__version__, "--version", message="%(version)s")
def main() -> None:
    """coKreat's Flink jobs: run them, feed them, and the local stack they run against."""


main.add_command(import_group)
main.add_command(inspect)


# ---- stack -------------------------------------------------------------------------------------------------


@main.group()
def stack() -> None:
    """The local Kafka broker and sandbox (state under .stack/)."""


@stack.command("up")
@click.option("--fresh", is_flag=True, help="Start from nothing (deletes .stack/ state).")
def stack_up_cmd(fresh: bool) -> None:
    """Start the broker and the sandbox in the background; write .stack/endpoints.json."""
    from cokreat_jobs.dev.stack.local import layout, stack_up

    endpoints, started = stack_up(fresh=fresh)
    if not started:
        click.echo(f"stack already up: kafka {endpoints['kafka']}, sandbox {endpoints['sandbox']}")
        return
    click.echo(f"kafka    {endpoints['kafka']}")
    click.echo(f"sandbox  {endpoints['sandbox']}")
    click.echo(f"endpoints written to {layout().endpoints}; logs in {layout().logs}")


@stack.command("down")
def stack_down_cmd() -> None:
    """Stop what runs (state stays for the next `stack up`)."""
    from cokreat_jobs.dev.stack.local import stack_down

    stopped = stack_down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command("status")
def stack_status_cmd() -> None:
    """Say what runs."""
    from cokreat_jobs.dev.stack.local import stack_status

    status = stack_status()
    for name, s in status.items():
        state = f"running (pid {s['pid']}) at {s['endpoint']}" if s["running"] else "not running"
        click.echo(f"{name:8} {state}")
    if not all(s["running"] for s in status.values()):
        sys.exit(3)


# ---- jobs --------------------------------------------------------------------------------------------------

job_choice = click.Choice(sorted(JOB_MODULES))
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A HOCON file (may include files beside it).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one key; VALUE is parsed as HOCON. Repeatable.",
)


def resolve_config(job: str, config_file: str | None, overrides: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The job's config: packaged defaults or --config, the stack's endpoints, then --set."""
    from cokreat_jobs.core.config import load_config
    from cokreat_jobs.dev.stack.endpoints import stack_overrides
    from cokreat_jobs.dev.stack.local import read_endpoints

    cfg = load_config(job, config_file=config_file, overrides=overrides)
    stack_keys = stack_overrides(read_endpoints(), config_file, overrides)
    return cfg.with_overrides(stack_keys) if stack_keys else cfg


@main.command()
@click.argument("job", type=job_choice)
@config_option
@set_option
def run(job: str, config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Run JOB on the local MiniCluster until SIGINT/SIGTERM."""
    from cokreat_jobs.flink.runner import run_local
    from cokreat_jobs.jobs import job_definition

    cfg = resolve_config(job, config_file, overrides)
    sys.exit(run_local(job_definition(job), cfg))


@main.command()
@click.argument("job", type=job_choice)
@click.option("--jobmanager", required=True, metavar="HOST:PORT", help="The cluster's REST address.")
@click.option("--from-savepoint", "savepoint", default=None, help="Restore from this savepoint path.")
@config_option
@set_option
def submit(
    job: str, jobmanager: str, savepoint: str | None, config_file: str | None, overrides: tuple[str, ...]
) -> None:
    """Submit JOB to a Flink cluster (detached); prints the Flink job id."""
    from cokreat_jobs.ops.cluster import submit_job

    cfg = resolve_config(job, config_file, overrides)
    job_id = submit_job(job, cfg, jobmanager, savepoint=savepoint)
    click.echo(job_id)


@main.command()
@click.argument("job", type=job_choice)
@click.option("--jobmanager", required=True, metavar="HOST:PORT", help="The cluster's REST address.")
@click.option(
    "--savepoint",
    "savepoint_dir",
    default=None,
    help="Directory for the savepoint (default: the cluster's execution.checkpointing.savepoint-dir).",
)
@config_option
@set_option
def stop(
    job: str, jobmanager: str, savepoint_dir: str | None, config_file: str | None, overrides: tuple[str, ...]
) -> None:
    """Stop JOB on a cluster with a savepoint; prints its path (for submit --from-savepoint)."""
    from cokreat_jobs.ops.cluster import stop_job

    cfg = resolve_config(job, config_file, overrides)
    click.echo(stop_job(job, cfg, jobmanager, savepoint_dir))


# ---- Kafka -------------------------------------------------------------------------------------------------


def _brokers(brokers: str | None) -> str:
    if brokers:
        return brokers
    from cokreat_jobs.dev.stack.local import read_endpoints

    endpoints = read_endpoints()
    if not endpoints:
        raise click.UsageError("no stack is up: start one with `cokreat-jobs stack up` or pass --brokers")
    return str(endpoints["kafka"])


brokers_option = click.option(
    "--brokers", default=None, help="Kafka bootstrap servers (default: the stack's)."
)


@main.command()
@click.argument("topic")
@click.argument("source", type=click.Path(allow_dash=True, dir_okay=False))
@brokers_option
def produce(topic: str, source: str, brokers: str | None) -> None:
    """Send each line of SOURCE (a file, or - for stdin) as one record, bytes as they are."""
    from cokreat_jobs.ops.kafka_io import produce_lines

    stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    with stream:
        sent = produce_lines(_brokers(brokers), topic, stream)
    click.echo(f"sent {sent} records to {topic}", err=True)


@main.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset.")
@click.option("--max", "max_records", type=int, default=None, help="Stop after N records.")
@click.option("--timeout", type=float, default=None, help="Stop after S seconds.")
@click.option("--group", default=None, help="Consumer group (default: a new one each run).")
@brokers_option
def consume(
    topic: str,
    from_beginning: bool,
    max_records: int | None,
    timeout: float | None,
    group: str | None,
    brokers: str | None,
) -> None:
    """Print each record's value on its own line (diagnostics on stderr)."""
    from cokreat_jobs.ops.kafka_io import consume_records

    out = sys.stdout.buffer
    for value in consume_records(
        _brokers(brokers),
        topic,
        from_beginning=from_beginning,
        max_records=max_records,
        timeout=timeout,
        group=group,
    ):
        out.write(value.replace(b"\n", b"\\n") + b"\n")
        out.flush()


@main.command()
@click.option("--job", "job", type=job_choice, required=True, help="Whose failed events to bring back.")
@click.option(
    "--idle-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Stop once the failed topic has been quiet this many seconds.",
)
@config_option
@set_option
def replay(job: str, idle_timeout: float, config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Move JOB's failed events back to its input topic while their iteration allows it."""
    from cokreat_jobs.ops.replay import replay as run_replay

    cfg = resolve_config(job, config_file, overrides)
    report = run_replay(job, cfg, idle_timeout=idle_timeout)
    click.echo(str(report))


@main.command()
@click.argument("jobs", nargs=-1)
@click.option("--events", type=int, default=None, help="Events per run (default 10000; 1000 with --quick).")
@click.option("--api-latency-ms", type=int, default=20, show_default=True, help="Sandbox latency per call.")
@click.option(
    "--quick", is_flag=True, help="Ours against the reference, small batch (user-delete unless JOBS named)."
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="bench/results", show_default=True
)
@click.option("--profile", is_flag=True, help="py-spy the Python workers during 'ours': OUT/profile-JOB.txt.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config for our runs (not the reference)."
)
def bench(
    jobs: tuple[str, ...],
    events: int | None,
    api_latency_ms: int,
    quick: bool,
    out_dir: str,
    profile: bool,
    overrides: tuple[str, ...],
) -> None:
    """Throughput and latency of each job against the reference discipline, in one run."""
    from cokreat_jobs.dev.bench import SCENARIOS, run_bench, summary

    chosen = list(jobs) or (["user-delete"] if quick else list(SCENARIOS))
    unknown = [j for j in chosen if j not in SCENARIOS]
    if unknown:
        raise click.UsageError(
            f"no benchmark scenario for {', '.join(unknown)}; have: {', '.join(SCENARIOS)}"
        )
    results = run_bench(
        chosen, events, api_latency_ms, quick, Path(out_dir), profile=profile, overrides=list(overrides)
    )
    click.echo(summary(results))


@main.command()
@click.argument("scenarios", nargs=-1)
@click.option("--events", type=int, default=None, help="Events per scenario (default: the scenario's own).")
@click.option("--short", is_flag=True, help="The CI form: small batches, one kill, a 5 s bounce, 10 s storm.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Results JSON (default bench/results/chaos.json, chaos-short.json with --short).",
)
@click.option("--keep", is_flag=True, help="Keep the stacks' directories (logs) after the run.")
def chaos(
    scenarios: tuple[str, ...], events: int | None, short: bool, out_file: str | None, keep: bool
) -> None:
    """Fault-injection scenarios on a standalone Flink cluster; every event accounted for."""
    from cokreat_jobs.dev.chaos.report import table, write_results
    from cokreat_jobs.dev.chaos.run import SCENARIOS, run_scenarios

    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise click.UsageError(f"unknown scenario {', '.join(unknown)}; have: {', '.join(SCENARIOS)}")
    results = run_scenarios(scenarios, short=short, events=events, keep=keep)
    out = Path(out_file or ("bench/results/chaos-short.json" if short else "bench/results/chaos.json"))
    write_results(results, out)
    click.echo(table(results))
    click.echo(f"results in {out}")
    sys.exit(0 if all(r.passed for r in results) else 1)


@main.command()
def demo() -> None:
    """Stack up, run the jobs on sample batches, print what happened, stack down."""
    from cokreat_jobs.dev.demo.main import run_demo

    sys.exit(run_demo())


def _print_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
