"""`cokreat-jobs stack up|down|status`: the local Kafka broker and sandbox, state under `.stack/`."""

from __future__ import annotations

import sys

import click


@click.group()
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
