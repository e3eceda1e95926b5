"""The graph store on Neo4j, over Bolt with the official async driver.

One parameterised query writes a node, the same on create and on match::

    MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props

Nothing is string-built: the identifier and every property (keys included) travel as parameters, so a name
with quotes or a value like ``'}) DETACH DELETE n //`` is stored as it is. Values are prepared as the
reference stored them: a dict, or a list holding a dict (or a list), becomes its JSON string; other lists are
de-duplicated in order; ``None`` values are left out (``SET n += {k: null}`` would remove the property).

Config (the Scala job's keys): ``neo4j.routePath`` (``bolt://host:port``), optional ``neo4j.user`` and
``neo4j.password`` (no auth by default), optional ``graph.neo4j.database`` (the server's default database
otherwise), ``graph.neo4j.ensure_constraint`` (true: before the first write, create the uniqueness constraint
on ``:domain(IL_UNIQUE_ID)`` if it is missing, so concurrent merges of one new id make one node).

The driver is created lazily, on the event loop of the first call (PyFlink runs coroutines on a loop in a
thread of its own), and closed with :meth:`close` on that loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.values import compact_json

if TYPE_CHECKING:
    from neo4j import AsyncDriver

    from cokreat_jobs.core.config import JobConfig

__all__ = ["CONSTRAINT_QUERY", "MERGE_QUERY", "READ_QUERY", "Neo4jGraphStore", "prepare_properties"]

MERGE_QUERY = "MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props"
READ_QUERY = "MATCH (n:domain {IL_UNIQUE_ID: $id}) RETURN properties(n) AS props LIMIT 1"
# Without it two concurrent MERGEs of one new id may both create a node. Sunbird's graph has this constraint;
# creating it is tried once per store and a refusal (no privilege, Neo4j < 4.4 syntax) is only logged.
CONSTRAINT_QUERY = (
    "CREATE CONSTRAINT domain_il_unique_id IF NOT EXISTS FOR (n:domain) REQUIRE n.IL_UNIQUE_ID IS UNIQUE"
)

log = logging.getLogger(__name__)


def _prepare_value(value: Any) -> Any:
    if isinstance(value, dict):
        return compact_json(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if any(isinstance(v, dict | list | tuple | set | frozenset) for v in items):
            return compact_json(items if not isinstance(value, set | frozenset) else sorted(items, key=str))
        seen: set[Any] = set()
        out: list[Any] = []
        for item in items:
            if item is None:
                continue
            marker = (type(item), item)
            if marker not in seen:
                seen.add(marker)
                out.append(item)
        return out
    return value


def prepare_properties(identifier: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The ``$props`` map: None dropped, JSON-valued props as JSON strings, lists de-duplicated."""
    props = {str(k): _prepare_value(v) for k, v in properties.items() if v is not None}
    props["IL_UNIQUE_ID"] = identifier
    return props


class Neo4jGraphStore:
    """:class:`cokreat_jobs.adapters.stores.GraphStore` on Neo4j (label ``domain``, key ``IL_UNIQUE_ID``)."""

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        connection_timeout: float = 10.0,
        max_pool_size: int = 50,
        ensure_constraint: bool = True,
    ) -> None:
        if not uri:
            raise ConfigError("graph.store = neo4j needs neo4j.routePath (e.g. bolt://localhost:7687)")
        self.uri = uri
        self.user = user or None
        self.password = password
        self.database = database or None
        self.connection_timeout = connection_timeout
        self.max_pool_size = max_pool_size
        self.ensure_constraint = ensure_constraint
        self._driver: AsyncDriver | None = None
        self._constraint_checked = False
        self._constraint_lock: asyncio.Lock | None = None

    @classmethod
    def from_config(cls, cfg: JobConfig) -> Neo4jGraphStore:
        return cls(
            uri=cfg.get_str("neo4j.routePath", ""),
            user=cfg.get_str("neo4j.user", "") or None,
            password=cfg.get_str("neo4j.password", "") or None,
            database=cfg.get_str("graph.neo4j.database", "") or None,
            ensure_constraint=bool(cfg.get("graph.neo4j.ensure_constraint", True)),
        )

    def _get_driver(self) -> AsyncDriver:
        if self._driver is None:
            from neo4j import AsyncGraphDatabase

            auth = (self.user, self.password or "") if self.user else None
            self._driver = AsyncGraphDatabase.driver(
                self.uri,
                auth=auth,
                connection_timeout=self.connection_timeout,
                max_connection_pool_size=self.max_pool_size,
            )
        return self._driver

    async def _ensure_constraint(self) -> None:
        if self._constraint_checked or not self.ensure_constraint:
            return
        if self._constraint_lock is None:
            self._constraint_lock = asyncio.Lock()
        async with self._constraint_lock:
            if self._constraint_checked:
                return
            from neo4j.exceptions import ClientError

            try:
                await self._get_driver().execute_query(CONSTRAINT_QUERY, database_=self.database)
            except ClientError as exc:
                log.warning("could not ensure the uniqueness constraint on :domain(IL_UNIQUE_ID): %s", exc)
            self._constraint_checked = True

    async def merge_node(self, identifier: str, properties: dict[str, Any]) -> None:
        if not identifier:
            raise ValueError("merge_node needs an identifier")
        props = prepare_properties(identifier, properties)
        await self._ensure_constraint()
        from neo4j import RoutingControl

        await self._get_driver().execute_query(
            MERGE_QUERY,
            {"id": identifier, "props": props},
            database_=self.database,
            routing_=RoutingControl.WRITE,
        )

    async def read_node(self, identifier: str) -> dict[str, Any] | None:
        from neo4j import RoutingControl

        records, _, _ = await self._get_driver().execute_query(
            READ_QUERY, {"id": identifier}, database_=self.database, routing_=RoutingControl.READ
        )
        if not records:
            return None
        return dict(records[0]["props"])

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        self._constraint_lock = None
        if driver is not None:
            await driver.close()

    def __repr__(self) -> str:
        return f"Neo4jGraphStore({self.uri!r}, database={self.database!r})"
