"""The stores auto-creator-v2 writes straight into, behind two small interfaces.

- :class:`GraphStore`: the knowledge graph (Neo4j in a deployment). ``merge_node(identifier, properties)`` is
  ``MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props``: the same on create and on match; a ``None``
  value removes the property (Neo4j's ``+=`` semantics, the reference's ``SET n.k=null``).
- :class:`ExternalStore`: the external (Cassandra / YugabyteDB YCQL) tables. ``upsert(keyspace, table,
  primary_key, values)`` writes only the columns present (column names lowercased by the caller); empty
  ``values`` write the key row alone; a ``None`` value clears its column.

Values contract: the job prepares properties (lists de-duplicated, ``object``-typed definition props and dict
values as JSON strings); adapters also JSON-encode, defensively, any dict or list-of-dict value they get.
External values are strings (an adapter decides blob columns from its table's schema; sqlite keeps text).

Selected by config:

====================== ============================================================================
``graph.store``        ``neo4j`` (default; ``neo4j.routePath`` ...) or ``sqlite`` (``graph.sqlite.url``)
``external.store``     ``cassandra`` (default; ``lms-cassandra.host``/``port``) or ``sqlite``
                       (``external.sqlite.url``)
====================== ============================================================================

A sqlite URL is ``sqlite:///abs/path.db`` (or a plain path). The adapters: ``neo4j_store``,
``cassandra_store``, ``sqlite_store``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cokreat_jobs.core.errors import ConfigError

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "ExternalStore",
    "GraphStore",
    "external_store_from_config",
    "graph_store_from_config",
    "sqlite_path",
]


@runtime_checkable
class GraphStore(Protocol):
    async def merge_node(self, identifier: str, properties: dict[str, Any]) -> None: ...

    async def read_node(self, identifier: str) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...


@runtime_checkable
class ExternalStore(Protocol):
    async def upsert(
        self, keyspace: str, table: str, primary_key: dict[str, Any], values: dict[str, Any]
    ) -> None: ...

    async def read(self, keyspace: str, table: str, primary_key: dict[str, Any]) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///abs/path.db`` URL (a plain path is taken as it is)."""
    text = url.strip()
    if text.startswith("sqlite:///"):
        return "/" + text[len("sqlite:///") :].lstrip("/")
    if text.startswith("sqlite://"):
        return text[len("sqlite://") :]
    if text.startswith("sqlite:"):
        return text[len("sqlite:") :]
    return text


def _lazy(module: str, cls: str) -> Any:
    return getattr(importlib.import_module(module), cls)


def graph_store_from_config(cfg: JobConfig) -> GraphStore:
    kind = cfg.get_str("graph.store", "neo4j").strip().lower()
    if kind == "neo4j":
        impl = _lazy("cokreat_jobs.adapters.stores.neo4j_store", "Neo4jGraphStore")
        return impl.from_config(cfg)
    if kind == "sqlite":
        from cokreat_jobs.adapters.stores.sqlite_store import SqliteGraphStore

        url = cfg.get_str("graph.sqlite.url", "")
        if not url:
            raise ConfigError(
                "graph.store = sqlite needs graph.sqlite.url (e.g. sqlite:///abs/path/graph.db)"
            )
        return SqliteGraphStore(sqlite_path(url))
    raise ConfigError(f"graph.store must be neo4j or sqlite, got {kind!r}")


def external_store_from_config(cfg: JobConfig) -> ExternalStore:
    kind = cfg.get_str("external.store", "cassandra").strip().lower()
    if kind == "cassandra":
        impl = _lazy("cokreat_jobs.adapters.stores.cassandra_store", "CassandraExternalStore")
        return impl.from_config(cfg)
    if kind == "sqlite":
        from cokreat_jobs.adapters.stores.sqlite_store import SqliteExternalStore

        url = cfg.get_str("external.sqlite.url", "")
        if not url:
            raise ConfigError(
                "external.store = sqlite needs external.sqlite.url (e.g. sqlite:///abs/path/external.db)"
            )
        return SqliteExternalStore(sqlite_path(url))
    raise ConfigError(f"external.store must be cassandra or sqlite, got {kind!r}")
