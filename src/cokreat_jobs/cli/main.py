"""The `cokreat-jobs` command: run the jobs, feed them, and the local stack they run against.

The group and `--version`; each command group lives in a module of its own (see the package's docstring).
"""

from __future__ import annotations

import click

from cokreat_jobs import __version__
from cokreat_jobs.cli.bulk import import_group
from cokreat_jobs.cli.inspect import inspect
from cokreat_jobs.cli.jobs import hash_id_cmd, run, stop, submit
from cokreat_jobs.cli.kafka import consume, produce, replay
from cokreat_jobs.cli.stack import stack
from cokreat_jobs.cli.tools import bench, chaos, demo


@click.group()
@click.version_option(__version__, "--version", message="%(version)s")
def main() -> None:
    """coKreat's Flink jobs: run them, feed them, and the local stack they run against."""


for command in (
    stack,
    run,
    submit,
    stop,
    produce,
    consume,
    replay,
    hash_id_cmd,
    import_group,
    inspect,
    bench,
    chaos,
    demo,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
