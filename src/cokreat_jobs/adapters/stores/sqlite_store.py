"""The embedded sqlite stores: the default of the local stack, the demo and the tests.

Same semantics as the Neo4j and Cassandra adapters: ``merge_node`` sets the given properties over the node's
(``SET n += $props``: a ``None`` value removes the property), ``upsert`` writes only the columns present (the
primary key alone writes the row; a ``None`` value clears the column, as binding a null in CQL does). One
file per store, WAL mode, so the sandbox process reads what the job writes while it writes. Blocking sqlite
calls run in a thread, on one connection per store guarded by a lock, so a store is safe to share between the
coroutines of one event loop.

Tables (also read by the sandbox and by ``cokreat-jobs inspect``, see :func:`read_node_sync` and
:func:`read_record_sync`)::

    graph_nodes(identifier TEXT PRIMARY KEY, properties TEXT)          -- properties: a JSON object
    external_records(keyspace TEXT, tbl TEXT, pk TEXT, vals TEXT,      -- pk: JSON of the primary key
                     PRIMARY KEY (keyspace, tbl, pk))                   -- vals: JSON object of columns
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "SqliteExternalStore",
    "SqliteGraphStore",
    "encode_value",
    "read_node_sync",
    "read_record_sync",
]

T = TypeVar("T")

_GRAPH_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS graph_nodes (identifier TEXT PRIMARY KEY, properties TEXT NOT NULL)"
)
_EXTERNAL_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS external_records (keyspace TEXT NOT NULL, tbl TEXT NOT NULL,"
    " pk TEXT NOT NULL,"
    " vals TEXT NOT NULL, PRIMARY KEY (keyspace, tbl, pk))"
)


def encode_value(value: Any) -> Any:
    """Defensive encoding: a dict, or a list holding a dict, becomes its JSON string."""
    if isinstance(value, dict) or (
        isinstance(value, list | tuple) and any(isinstance(v, dict) for v in value)
    ):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, tuple):
        return list(value)
    return value


def _pk_text(primary_key: dict[str, Any]) -> str:
    return json.dumps({k.lower(): primary_key[k] for k in sorted(primary_key)}, sort_keys=True)


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class _SqliteBase:
    _schema: str = ""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = _connect(self.path)
            conn.execute(self._schema)
            self._conn = conn
        return self._conn

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._connection())

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class SqliteGraphStore(_SqliteBase):
    """Graph nodes (label ``domain``) keyed by ``IL_UNIQUE_ID``."""

    _schema = _GRAPH_SCHEMA

    async def merge_node(self, identifier: str, properties: dict[str, Any]) -> None:
        props = {k: encode_value(v) for k, v in properties.items() if v is not None}
        props["IL_UNIQUE_ID"] = identifier
        removed = [k for k, v in properties.items() if v is None and k != "IL_UNIQUE_ID"]

        def merge(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT properties FROM graph_nodes WHERE identifier = ?", (identifier,)
                ).fetchone()
                current = json.loads(row[0]) if row else {}
                for key in removed:
                    current.pop(key, None)
                current.update(props)
                conn.execute(
                    "INSERT INTO graph_nodes (identifier, properties) VALUES (?, ?) "
                    "ON CONFLICT(identifier) DO UPDATE SET properties = excluded.properties",
                    (identifier, json.dumps(current, ensure_ascii=False)),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(merge)

    async def read_node(self, identifier: str) -> dict[str, Any] | None:
        if self._conn is None and not Path(self.path).is_file():
            return None  # nothing written yet: do not create the file for a read

        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT properties FROM graph_nodes WHERE identifier = ?", (identifier,)
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._run(read)


class SqliteExternalStore(_SqliteBase):
    """External tables as rows of (keyspace, table, primary key) with their columns as a JSON object."""

    _schema = _EXTERNAL_SCHEMA

    async def upsert(
        self, keyspace: str, table: str, primary_key: dict[str, Any], values: dict[str, Any]
    ) -> None:
        pk = _pk_text(primary_key)
        cols = {k.lower(): encode_value(v) for k, v in values.items() if v is not None}
        cols.update({k.lower(): v for k, v in primary_key.items()})
        cleared = [k.lower() for k, v in values.items() if v is None and k.lower() not in cols]

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT vals FROM external_records WHERE keyspace = ? AND tbl = ? AND pk = ?",
                    (keyspace, table, pk),
                ).fetchone()
                current = json.loads(row[0]) if row else {}
                for key in cleared:
                    current.pop(key, None)
                current.update(cols)
                conn.execute(
                    "INSERT INTO external_records (keyspace, tbl, pk, vals) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(keyspace, tbl, pk) DO UPDATE SET vals = excluded.vals",
                    (keyspace, table, pk, json.dumps(current, ensure_ascii=False)),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(upsert)

    async def read(self, keyspace: str, table: str, primary_key: dict[str, Any]) -> dict[str, Any] | None:
        pk = _pk_text(primary_key)
        if self._conn is None and not Path(self.path).is_file():
            return None

        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT vals FROM external_records WHERE keyspace = ? AND tbl = ? AND pk = ?",
                (keyspace, table, pk),
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._run(read)


# -- synchronous readers for other processes (the sandbox, the inspect command) ---------------------------


def _read_sync(path: str, sql: str, args: tuple[Any, ...]) -> str | None:
    if not Path(path).is_file():
        return None
    conn = _connect(path, readonly=True)
    try:
        row = conn.execute(sql, args).fetchone()
    except sqlite3.OperationalError:  # no table yet: nothing written
        return None
    finally:
        conn.close()
    return row[0] if row else None


class NodeReader:
    """Reads graph nodes from another process (the sandbox's content reads) over one kept read-only
    connection: a connection per read was most of the sandbox's CPU when a hierarchy listed many nodes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __call__(self, identifier: str) -> dict[str, Any] | None:
        if self._conn is None:
            if not Path(self.path).is_file():
                return None
            self._conn = _connect(self.path, readonly=True)
        try:
            row = self._conn.execute(
                "SELECT properties FROM graph_nodes WHERE identifier = ?", (identifier,)
            ).fetchone()
        except sqlite3.OperationalError:  # no table yet: nothing written
            return None
        return json.loads(row[0]) if row else None


def read_node_sync(path: str, identifier: str) -> dict[str, Any] | None:
    text = _read_sync(path, "SELECT properties FROM graph_nodes WHERE identifier = ?", (identifier,))
    return json.loads(text) if text is not None else None


def read_record_sync(
    path: str, keyspace: str, table: str, primary_key: dict[str, Any]
) -> dict[str, Any] | None:
    text = _read_sync(
        path,
        "SELECT vals FROM external_records WHERE keyspace = ? AND tbl = ? AND pk = ?",
        (keyspace, table, _pk_text(primary_key)),
    )
    return json.loads(text) if text is not None else None
