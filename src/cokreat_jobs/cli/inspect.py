"""`cokreat-jobs inspect`: the operator's view of what auto-creator-v2 wrote (INTERFACE.md).

- `inspect graph ID`: the graph node (label `domain`, `IL_UNIQUE_ID = ID`) as one JSON object;
- `inspect external OBJECTTYPE ID`: the external record of that object (keyspace `<objecttype>.keyspace`,
  table and primary key from the object's definition), blob columns as UTF-8 text.

Both read through whichever store adapters auto-creator-v2's configuration selects (`graph.store`,
`external.store`; the stack's sqlite stores when a stack is up and neither the config nor `--set` names
them). Absent: exit 1 and nothing on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from cokreat_jobs.cli.config import resolve_config

JOB = "auto-creator-v2"


def _text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value


def _emit(found: dict[str, Any] | None) -> None:
    if found is None:
        sys.exit(1)
    click.echo(json.dumps({k: _text(v) for k, v in found.items()}, ensure_ascii=False, default=str))


config_option = click.option(
    "--config", "--config.file.path", "config_file", type=click.Path(exists=True, dir_okay=False)
)
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")


@click.group()
def inspect() -> None:
    """Show what auto-creator-v2 wrote into the graph and external stores."""


@inspect.command("graph")
@click.argument("identifier")
@config_option
@set_option
def inspect_graph(identifier: str, config_file: str | None, overrides: tuple[str, ...]) -> None:
    """Print the graph node ID as JSON (exit 1 when absent)."""
    from cokreat_jobs.adapters.stores import graph_store_from_config

    cfg = resolve_config(JOB, config_file, overrides)

    async def read() -> dict[str, Any] | None:
        store = graph_store_from_config(cfg)
        try:
            return await store.read_node(identifier)
        finally:
            await store.close()

    _emit(asyncio.run(read()))


@inspect.command("external")
@click.argument("object_type")
@click.argument("identifier")
@config_option
@set_option
def inspect_external(
    object_type: str, identifier: str, config_file: str | None, overrides: tuple[str, ...]
) -> None:
    """Print the external record of OBJECTTYPE ID as JSON (exit 1 when absent)."""
    from cokreat_jobs.adapters.stores import external_store_from_config
    from cokreat_jobs.core.errors import JobError
    from cokreat_jobs.sunbird.definitions import DefinitionLoader, definition_folder

    cfg = resolve_config(JOB, config_file, overrides)
    folder = definition_folder(object_type)

    async def read() -> dict[str, Any] | None:
        loader = DefinitionLoader.from_config(cfg)
        try:
            try:
                definition = await loader.get(folder)
            except JobError as e:
                click.echo(f"no definition for object type {object_type}: {e}", err=True)
                sys.exit(2)
        finally:
            await loader.close()
        keyspace = cfg.get_str(f"{folder}.keyspace", "")
        if not keyspace or not definition.external_table:
            click.echo(f"no external keyspace or table for {object_type}", err=True)
            sys.exit(2)
        pk = {definition.primary_key[0]: identifier}
        store = external_store_from_config(cfg)
        try:
            return await store.read(keyspace, definition.external_table, pk)
        finally:
            await store.close()

    _emit(asyncio.run(read()))
