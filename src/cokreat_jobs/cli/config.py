"""The one configuration every command resolves, and the options that name it.

``resolve_config(job, config_file, overrides)``: the job's packaged configuration or ``--config``, then
``--set``, then the local stack's endpoints (broker, sandbox base URLs, stores) for the keys that neither
the file nor ``--set`` names, when a stack is up (INTERFACE.md). ``job_choice``, ``config_option`` and
``set_option`` are the click parts the job commands share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cokreat_jobs.jobs import JOB_MODULES

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

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


def resolve_config(job: str, config_file: str | None, overrides: tuple[str, ...]) -> JobConfig:
    """The job's config: packaged defaults or --config, the stack's endpoints, then --set."""
    from cokreat_jobs.core.config import load_config
    from cokreat_jobs.dev.stack.endpoints import stack_overrides
    from cokreat_jobs.dev.stack.local import read_endpoints

    cfg = load_config(job, config_file=config_file, overrides=overrides)
    stack_keys = stack_overrides(read_endpoints(), config_file, overrides)
    return cfg.with_overrides(stack_keys) if stack_keys else cfg
