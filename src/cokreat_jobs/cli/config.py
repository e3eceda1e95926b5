"""The one configuration every command resolves, the options that name it, and `cokreat-jobs config`.

``resolve_config(job, config_file, overrides)``: the job's packaged configuration or ``--config``, then
``--set``, then the local stack's endpoints (broker, sandbox base URLs, stores) for the keys that neither
the file nor ``--set`` names, when a stack is up (INTERFACE.md). ``job_choice``, ``config_option`` and
``set_option`` are the click parts the job commands share; ``--config.file.path`` is ``--config`` as
Sunbird's chart spells it.

- ``config show JOB``: the resolved configuration, sorted, as HOCON (default) or JSON, secrets masked
  (``core/redaction.py``'s secret keys and values, and any key ending in ``_key``);
- ``config check JOB``: the job's start-up and advisory checks and a TCP connect to each endpoint
  (``ops/config_check.py``); one line per problem and exit 1, or ``ok`` and exit 0.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from cokreat_jobs.jobs import JOB_MODULES

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

job_choice = click.Choice(sorted(JOB_MODULES))
config_option = click.option(
    "--config",
    "--config.file.path",
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


# ------------------------------------------------------------------------------------------ config show


def _secret_key(key: str) -> bool:
    from cokreat_jobs.core.redaction import is_secret_key

    # cloud_storage_key (an account name or access key id) is no secret in logs' prose, but is one here
    return is_secret_key(key) or key.lower().endswith(("_key", "-key"))


def masked(value: Any) -> Any:
    """``value`` (the config as plain data) with secret keys' values and secrets inside strings masked."""
    from cokreat_jobs.core.redaction import MASK, redact

    if isinstance(value, dict):
        return {
            k: MASK if _secret_key(str(k)) and value[k] not in (None, "", [], {}) else masked(value[k])
            for k in sorted(value)
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _hocon(data: dict[str, Any]) -> str:
    from pyhocon import ConfigFactory, HOCONConverter

    return HOCONConverter.to_hocon(ConfigFactory.from_dict(data))


@click.group("config")
def config_group() -> None:
    """Show or check a job's resolved configuration without starting the job."""


@config_group.command("show")
@click.argument("job", type=job_choice)
@config_option
@set_option
@click.option("--format", "fmt", type=click.Choice(["hocon", "json"]), default="hocon", show_default=True)
def config_show(job: str, config_file: str | None, overrides: tuple[str, ...], fmt: str) -> None:
    """Print JOB's resolved configuration (sorted), secrets masked."""
    data = masked(resolve_config(job, config_file, overrides).as_dict())
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if fmt == "json" else _hocon(data))


@config_group.command("check")
@click.argument("job", type=job_choice)
@config_option
@set_option
@click.option("--no-connect", is_flag=True, help="Skip the TCP connect to each endpoint.")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds per TCP connect.")
def config_check(
    job: str, config_file: str | None, overrides: tuple[str, ...], no_connect: bool, timeout: float
) -> None:
    """Print every problem of JOB's configuration (exit 1), or ok (exit 0)."""
    from cokreat_jobs.core.errors import ConfigError
    from cokreat_jobs.jobs import job_definition
    from cokreat_jobs.ops.config_check import check_job_config

    try:
        cfg = resolve_config(job, config_file, overrides)
    except ConfigError as e:
        click.echo(f"error: {e}")
        sys.exit(1)
    problems = check_job_config(job_definition(job).checks, cfg, probe=not no_connect, timeout=timeout)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        sys.exit(1)
    click.echo("ok")
