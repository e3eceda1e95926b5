"""The `cokreat-jobs` command: run the jobs, feed them, and the local stack they run against.

The group and `--version`; each command group lives in a module of its own (see the package's docstring).
"""

from __future__ import annotations

from typing import Any

import click

from cokreat_jobs import __version__
from cokreat_jobs.cli.bulk import import_group
from cokreat_jobs.cli.config import config_group
from cokreat_jobs.cli.inspect import inspect
from cokreat_jobs.cli.jobs import hash_id_cmd, run, stop, submit
from cokreat_jobs.cli.kafka import consume, produce, replay
from cokreat_jobs.cli.stack import stack
from cokreat_jobs.cli.tools import bench, chaos, demo


class _Main(click.Group):
    """The group, turning a configuration error into its message and exit 1 instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from cokreat_jobs.core.errors import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Main)
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
    config_group,
    bench,
    chaos,
    demo,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
