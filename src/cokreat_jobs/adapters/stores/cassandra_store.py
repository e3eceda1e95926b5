"""The external store on Cassandra (or YugabyteDB YCQL) with ``cassandra-driver``.

``upsert`` writes only the columns it is given, with a prepared ``INSERT`` per (keyspace, table, column set)
that is prepared once and reused; the primary key alone writes the key row (as the reference's
``saveExternalData`` did for an object without external props). Column and table names are never taken from
the caller as text: each one must be a column of the table in the cluster's schema metadata, and the
statement names it as the metadata does (quoted when needed). Blob columns are bound through
``textAsBlob(?)`` as the reference wrote them; values for text and blob columns that are not strings (dicts,
lists, numbers, booleans) are stored as their JSON strings. A ``None`` value is bound as null, which clears
the column (a cell tombstone), as the reference's writes of a prop nulled at the source did. ``read`` returns
the row's non-null columns with blob columns decoded to UTF-8 text, or ``None``.

Config (the Scala job's keys): ``lms-cassandra.host`` (one host or a comma-separated list) and
``lms-cassandra.port`` (9042).

Blocking driver calls (connecting, preparing, refreshing metadata) run in a worker thread; statements are run
with ``execute_async`` whose callbacks complete an asyncio future on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.values import compact_json

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, ResponseFuture, Session
    from cassandra.metadata import TableMetadata
    from cassandra.query import PreparedStatement

    from cokreat_jobs.core.config import JobConfig

__all__ = ["CassandraExternalStore"]

_TEXT_TYPES = frozenset({"text", "varchar", "ascii"})


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    return compact_json(value)


def _decode_blob(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return value


@dataclass(frozen=True)
class _Prepared:
    statement: PreparedStatement
    types: tuple[str, ...]  # CQL type of each bound column, in the order of the names it was prepared for
    blobs: frozenset[str]  # the table's blob columns (decoded to text on read)


class CassandraExternalStore:
    """:class:`cokreat_jobs.adapters.stores.ExternalStore` on Cassandra / YugabyteDB YCQL."""

    def __init__(
        self,
        hosts: list[str] | str,
        port: int = 9042,
        request_timeout: float = 20.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if isinstance(hosts, str):
            hosts = [h.strip() for h in hosts.split(",") if h.strip()]
        if not hosts:
            raise ConfigError("external.store = cassandra needs lms-cassandra.host")
        self.hosts = list(hosts)
        self.port = int(port)
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[tuple[str, str, str, tuple[str, ...]], _Prepared] = {}
        self.prepare_count = 0  # statements actually prepared (the rest came from the cache)

    @classmethod
    def from_config(cls, cfg: JobConfig) -> CassandraExternalStore:
        return cls(
            hosts=cfg.get_str("lms-cassandra.host", "localhost"), port=cfg.get_int("lms-cassandra.port", 9042)
        )

    # -- connection and metadata (blocking: called in a worker thread) ------------------------------------

    def _session_sync(self) -> Session:
        with self._lock:
            if self._session is None:
                from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
                from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
                from cassandra.query import dict_factory

                profile = ExecutionProfile(
                    load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                    request_timeout=self.request_timeout,
                    row_factory=dict_factory,
                )
                cluster = Cluster(
                    self.hosts,
                    port=self.port,
                    execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                    connect_timeout=self.connect_timeout,
                    control_connection_timeout=self.connect_timeout,
                )
                try:
                    self._session = cluster.connect()
                except BaseException:
                    cluster.shutdown()
                    raise
                self._cluster = cluster
            return self._session

    def _table_sync(self, keyspace: str, table: str) -> TableMetadata:
        self._session_sync()
        assert self._cluster is not None
        meta = self._cluster.metadata
        found = self._find_table(meta, keyspace, table)
        if found is None:  # created after we connected and no schema event seen yet
            try:
                self._cluster.refresh_table_metadata(keyspace, table)
            except Exception:
                self._cluster.refresh_schema_metadata()
            found = self._find_table(meta, keyspace, table)
        if found is None:
            raise LookupError(f"no table {keyspace}.{table} in the Cassandra schema")
        return found

    @staticmethod
    def _find_table(meta: Any, keyspace: str, table: str) -> TableMetadata | None:
        ks = meta.keyspaces.get(keyspace) or meta.keyspaces.get(keyspace.lower())
        if ks is None:
            return None
        return ks.tables.get(table) or ks.tables.get(table.lower())

    @staticmethod
    def _column(table: TableMetadata, name: str) -> str:
        if name in table.columns:
            return name
        if name.lower() in table.columns:
            return name.lower()
        raise KeyError(f"no column {name!r} in {table.keyspace_name}.{table.name}")

    def _statement_sync(self, kind: str, keyspace: str, table: str, names: tuple[str, ...]) -> _Prepared:
        """The prepared statement for these column names (as the caller spells them), prepared once."""
        key = (kind, keyspace, table, names)
        with self._lock:
            cached = self._prepared.get(key)
        if cached is not None:
            return cached
        from cassandra.metadata import protect_name

        tmeta = self._table_sync(keyspace, table)
        columns = tuple(self._column(tmeta, n) for n in names)
        if len(set(columns)) != len(columns):
            raise ValueError(f"columns given twice (names differ only in case): {sorted(names)}")
        types = tuple(tmeta.columns[c].cql_type for c in columns)
        target = f"{protect_name(tmeta.keyspace_name)}.{protect_name(tmeta.name)}"
        if kind == "insert":
            cols = ", ".join(protect_name(c) for c in columns)
            marks = ", ".join("textAsBlob(?)" if t == "blob" else "?" for t in types)
            cql = f"INSERT INTO {target} ({cols}) VALUES ({marks})"
        else:
            where = " AND ".join(f"{protect_name(c)} = ?" for c in columns)
            cql = f"SELECT * FROM {target} WHERE {where}"
        statement = self._session_sync().prepare(cql)
        blobs = frozenset(c for c, m in tmeta.columns.items() if m.cql_type == "blob")
        prepared = _Prepared(statement, types, blobs)
        with self._lock:
            winner = self._prepared.setdefault(key, prepared)
            if winner is prepared:
                self.prepare_count += 1
        return winner

    async def _statement(self, kind: str, keyspace: str, table: str, names: tuple[str, ...]) -> _Prepared:
        cached = self._prepared.get((kind, keyspace, table, names))
        if cached is not None and self._session is not None:
            return cached
        return await asyncio.to_thread(self._statement_sync, kind, keyspace, table, names)

    # -- running statements -----------------------------------------------------------------------------

    async def _execute(self, stmt: PreparedStatement, params: list[Any]) -> list[Any]:
        session = self._session  # set by _statement_sync, which runs before the first statement
        assert session is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()

        def done(result: Any) -> None:
            if not fut.done():
                fut.set_result(result)

        def failed(exc: BaseException) -> None:
            if not fut.done():
                fut.set_exception(exc)

        response: ResponseFuture = session.execute_async(stmt, params, timeout=self.request_timeout)
        response.add_callbacks(
            lambda rows: loop.call_soon_threadsafe(done, list(rows or [])),
            lambda exc: loop.call_soon_threadsafe(failed, exc),
        )
        return await fut

    async def upsert(
        self, keyspace: str, table: str, primary_key: dict[str, Any], values: dict[str, Any]
    ) -> None:
        if not primary_key:
            raise ValueError("upsert needs a primary key")
        if any(v is None for v in primary_key.values()):
            raise ValueError("upsert needs a value for every primary key column")
        row = {str(k): v for k, v in {**values, **primary_key}.items()}
        names = tuple(sorted(row))
        prepared = await self._statement("insert", keyspace, table, names)
        params = [
            None if row[n] is None else _as_text(row[n]) if t == "blob" or t in _TEXT_TYPES else row[n]
            for n, t in zip(names, prepared.types, strict=True)
        ]
        await self._execute(prepared.statement, params)

    async def read(self, keyspace: str, table: str, primary_key: dict[str, Any]) -> dict[str, Any] | None:
        if not primary_key:
            raise ValueError("read needs a primary key")
        names = tuple(sorted(str(k) for k in primary_key))
        prepared = await self._statement("select", keyspace, table, names)
        rows = await self._execute(prepared.statement, [primary_key[n] for n in names])
        if not rows:
            return None
        return {
            col: _decode_blob(value) if col in prepared.blobs else value
            for col, value in rows[0].items()
            if value is not None
        }

    async def close(self) -> None:
        def shutdown() -> None:
            with self._lock:
                cluster, self._cluster, self._session = self._cluster, None, None
                self._prepared.clear()
            if cluster is not None:
                cluster.shutdown()

        await asyncio.to_thread(shutdown)

    def __repr__(self) -> str:
        return f"CassandraExternalStore({self.hosts!r}, port={self.port})"
