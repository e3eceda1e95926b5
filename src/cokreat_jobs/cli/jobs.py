"""`cokreat-jobs run|submit|stop JOB`: a job on the local MiniCluster, or on a Flink cluster and off it with a
savepoint; `cokreat-jobs hash-id`: the hash under which user-delete logs a user id."""

from __future__ import annotations

import sys

import click

from cokreat_jobs.cli.config import config_option, job_choice, resolve_config, set_option


@click.command()
@click.argument("job", type=job_choice)
@config_option
@set_option
def run(job: str, config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Run JOB on the local MiniCluster until SIGINT/SIGTERM."""
    from cokreat_jobs.flink.runner import run_local
    from cokreat_jobs.jobs import job_definition

    cfg = resolve_config(job, config_file, overrides)
    sys.exit(run_local(job_definition(job), cfg))


@click.command()
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


@click.command()
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


@click.command("hash-id")
@click.argument("ids", nargs=-1)
@config_option
@set_option
def hash_id_cmd(ids: tuple[str, ...], config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Print the hash user-delete logs for each of IDS (or each line of stdin), with log.id_hash_salt.

    Reading stdin keeps the ids out of the shell's history: `... | cokreat-jobs hash-id --config prod.conf`.
    """
    from cokreat_jobs.core.logs import ID_HASH_SALT_KEY, IdHasher

    hasher = IdHasher.from_config(resolve_config("user-delete", config_file, overrides))
    if not hasher.keyed:
        click.echo(f"{ID_HASH_SALT_KEY} is not set: the built-in salt is used", err=True)
    for uid in ids or tuple(line.rstrip("\r\n") for line in sys.stdin):
        click.echo(hasher(uid))
