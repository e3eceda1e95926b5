"""`cokreat-jobs produce|consume|replay`: records onto a topic and off it, and a job's failed events back to
its input topic. The broker is `--brokers`, else the local stack's."""

from __future__ import annotations

import sys

import click

from cokreat_jobs.cli.config import config_option, job_choice, resolve_config, set_option


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


@click.command()
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


@click.command()
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


@click.command()
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
