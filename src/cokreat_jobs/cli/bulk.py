"""`cokreat-jobs import upload|status`: bulk upload from a CSV through the import API, and its live status."""

from __future__ import annotations

import json
import sys

import click

from cokreat_jobs.ops.bulk import status as status_mod

# upload pulls in the sandbox's import logic and content-auto-creator's checks: imported when used.


def _upload():
    from cokreat_jobs.ops.bulk import upload

    return upload


def _stack_sandbox() -> str | None:
    from cokreat_jobs.dev.stack.local import read_endpoints

    endpoints = read_endpoints()
    return str(endpoints["sandbox"]) if endpoints and endpoints.get("sandbox") else None


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    try:
        return _upload().parse_headers(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--header") from exc


header_option = click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'Name: value'",
    help="An HTTP header to send (e.g. Authorization). Repeatable.",
)


@click.group("import")
def import_group() -> None:
    """Bulk upload of contents through the import API, and where an import stands."""


@import_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--to",
    "base_url",
    default=None,
    metavar="BASE_URL",
    help="The content service (default: the stack's sandbox).",
)
@click.option("--channel", default=None, help="metadata.channel of rows that have none.")
@click.option(
    "--stage", default=None, help="The stage of rows that name none (create, upload, review, publish)."
)
@click.option("--collection", default=None, metavar="ID", help="Link every content into this collection...")
@click.option(
    "--unit", default=None, metavar="ID", help="...under this unit (rows' collectionId/unitId win)."
)
@click.option("--batch-size", type=int, default=None, help="Objects per request [import.request_size_limit].")
@click.option("--process-id", default=None, help="The processId to use (default: a new UUID).")
@header_option
def upload_cmd(
    file: str,
    base_url: str | None,
    channel: str | None,
    stage: str | None,
    collection: str | None,
    unit: str | None,
    batch_size: int | None,
    process_id: str | None,
    headers: tuple[str, ...],
) -> None:
    """Check FILE.csv row by row, then send it to BASE_URL/content/v4/import; prints the processId.

    Rows the import API would refuse and rows content-auto-creator would skip are listed by line (on stderr)
    and nothing is sent (exit 1).
    """
    from cokreat_jobs.sunbird.imports import load_import_config

    if bool(collection) != bool(unit):
        raise click.UsageError("--collection and --unit go together")
    base_url = base_url or _stack_sandbox()
    if not base_url:
        raise click.UsageError("no stack is up: pass --to BASE_URL")
    extra = _headers(headers)
    rows, problems = _upload().read_csv(file, channel=channel, stage=stage, collection=collection, unit=unit)
    cfg = load_import_config()
    problems += _upload().precheck(rows, cfg)
    if problems:
        bad_lines = {p.line for p in problems}
        click.echo(
            f"{file}: {len(bad_lines)} of {len(rows)} rows would not be imported; nothing sent:", err=True
        )
        for p in sorted(problems, key=lambda p: p.line):
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    if not rows:
        click.echo(f"{file}: no rows; nothing sent", err=True)
        sys.exit(1)
    size = batch_size or cfg.request_size_limit
    if size < 1 or size > cfg.request_size_limit:
        raise click.BadParameter(f"between 1 and {cfg.request_size_limit}", param_hint="--batch-size")

    def progress(n: int, total: int, sent: int) -> None:
        click.echo(f"batch {n}/{total} imported ({sent}/{len(rows)} rows)", err=True)

    try:
        result = _upload().send(
            base_url, rows, process_id=process_id, batch_size=size, headers=extra, on_batch=progress
        )
    except _upload().UploadError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    others = sorted(set(result.process_ids) - {result.process_id})
    if others:
        click.echo(
            f"warning: the server chose its own processIds for some batches: {', '.join(others)}", err=True
        )
    click.echo(
        f"{result.sent} contents sent to {_upload().import_url(base_url)} in {result.batches} batch(es)",
        err=True,
    )
    click.echo(result.process_id)


@import_group.command("status")
@click.argument("process_id")
@click.option(
    "--search",
    "search_base",
    default=None,
    metavar="BASE_URL",
    help="The search service (default: the stack's sandbox).",
)
@click.option("--expect", type=int, default=None, help="How many contents the import holds.")
@click.option(
    "--stage", default="publish", type=click.Choice(status_mod.STAGES), help="The import's stage [publish]."
)
@click.option(
    "--watch", is_flag=True, help="Refresh until every content is final for its stage, or --timeout."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --watch waits.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between refreshes.")
@header_option
def status_cmd(
    process_id: str,
    search_base: str | None,
    expect: int | None,
    stage: str,
    watch: bool,
    as_json: bool,
    timeout: float,
    interval: float,
    headers: tuple[str, ...],
) -> None:
    """Where the contents of PROCESS_ID stand: status and importError of each, counts per status.

    With --watch, exits 0 once every content is final (and --expect are found), 1 on timeout.
    """
    from rich.console import Console

    search_base = search_base or _stack_sandbox()
    if not search_base:
        raise click.UsageError("no stack is up: pass --search BASE_URL")
    extra = _headers(headers)
    finished = True
    try:
        if not watch:
            contents = status_mod.aggregate(status_mod.fetch_hits(search_base, process_id, headers=extra))
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=console,
                transient=as_json,
            ) as bar:
                task = bar.add_task(f"import {process_id[:8]}", total=expect or None, counts="")

                def update(found: list[status_mod.Content]) -> None:
                    final = sum(status_mod.is_final(c, stage) for c in found)
                    text = ", ".join(f"{k} {v}" for k, v in status_mod.counts(found).items())
                    if expect is not None and len(found) < expect:
                        text += f", not found {expect - len(found)}"
                    bar.update(task, completed=final, total=max(expect or 0, len(found)) or None, counts=text)

                contents, finished = status_mod.watch(
                    search_base,
                    process_id,
                    stage=stage,
                    expect=expect,
                    timeout=timeout,
                    interval=interval,
                    headers=extra,
                    on_update=update,
                )
    except status_mod.SearchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(status_mod.report(process_id, contents), ensure_ascii=False))
    else:
        Console().print(status_mod.status_table(process_id, contents, expect))
    if not finished:
        click.echo(f"timed out after {timeout:.0f} s before every content was final", err=True)
        sys.exit(1)
