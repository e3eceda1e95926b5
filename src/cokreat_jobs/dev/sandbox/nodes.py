"""Content nodes (the knowledge graph the content service reads and writes), cached in memory.

Every node is kept in memory and written through to SQLite: search runs a filter over candidate nodes on every
call and must stay cheap under load, so lookups by identifier, `origin` and `processId` use in-memory indexes
instead of SQL. An image (the Draft copy the service edits while a content is Live) is a node of its own with
identifier `<id>.img` and objectType `<Type>Image`, exactly as the real graph stores it.

`indexed_ms` models the search index's lag: a node is visible to search from that time on.

Objects a job writes straight into another store (auto-creator-v2 writes the graph) are reached through
fallback readers (`add_fallback_reader`), consulted by content reads and `hierarchy/add` when the sandbox's
own store does not hold the id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from cokreat_jobs.dev.sandbox.state import Database

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS nodes ("
    " identifier TEXT PRIMARY KEY, indexed_ms INTEGER NOT NULL, metadata BLOB NOT NULL)",
)

IMAGE_SUFFIX = ".img"
INDEXED_FIELDS = ("origin", "processId")

FallbackReader = Callable[[str], dict[str, Any] | None]


def image_id(identifier: str) -> str:
    return identifier if identifier.endswith(IMAGE_SUFFIX) else identifier + IMAGE_SUFFIX


def base_id(identifier: str) -> str:
    return identifier.removesuffix(IMAGE_SUFFIX)


def base_object_type(object_type: str) -> str:
    return object_type.removesuffix("Image") if object_type.endswith("Image") else object_type


@dataclass(slots=True)
class StoredNode:
    metadata: dict[str, Any]
    indexed_ms: int
    order: int


class NodeStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)
        self._nodes: dict[str, StoredNode] = {}
        self._index: dict[str, dict[str, set[str]]] = {f: {} for f in INDEXED_FIELDS}
        self._order = 0
        self._last_version = 0
        self._fallbacks: list[FallbackReader] = []
        for identifier, indexed_ms, blob in db.query("SELECT identifier, indexed_ms, metadata FROM nodes"):
            self._remember(identifier, orjson.loads(blob), indexed_ms)

    # -- versions -----------------------------------------------------------------------------------------

    def next_version_key(self) -> str:
        """Epoch ms of the write, strictly increasing so every write changes the key."""
        now = time.time_ns() // 1_000_000
        self._last_version = max(now, self._last_version + 1)
        return str(self._last_version)

    # -- reads --------------------------------------------------------------------------------------------

    def get(self, identifier: str) -> dict[str, Any] | None:
        """The stored metadata (shared: copy before changing it), or None."""
        stored = self._nodes.get(identifier)
        return stored.metadata if stored else None

    def lookup(self, identifier: str) -> dict[str, Any] | None:
        """Like get, then the fallback readers (objects other writers keep elsewhere)."""
        found = self.get(identifier)
        if found is not None:
            return found
        for reader in self._fallbacks:
            found = reader(identifier)
            if found is not None:
                return found
        return None

    def add_fallback_reader(self, reader: FallbackReader) -> None:
        self._fallbacks.append(reader)

    def indexed_ms(self, identifier: str) -> int:
        stored = self._nodes.get(identifier)
        return stored.indexed_ms if stored else 0

    def ids_with(self, field: str, values: Iterable[Any]) -> set[str]:
        """Ids whose indexed `field` equals one of `values` (case-insensitive)."""
        index = self._index[field]
        out: set[str] = set()
        for value in values:
            if isinstance(value, str):
                out |= index.get(value.lower(), set())
        return out

    def ordered(self, ids: Iterable[str]) -> list[tuple[str, StoredNode]]:
        found = [(i, self._nodes[i]) for i in ids if i in self._nodes]
        found.sort(key=lambda pair: pair[1].order)
        return found

    def all(self) -> Iterator[tuple[str, StoredNode]]:
        return iter(list(self._nodes.items()))

    def __len__(self) -> int:
        return len(self._nodes)

    # -- writes -------------------------------------------------------------------------------------------

    def put(self, metadata: dict[str, Any], indexed_ms: int | None = None) -> None:
        """Store a node (insert or replace). `indexed_ms` defaults to the node's current value, or now."""
        identifier = metadata["identifier"]
        if indexed_ms is None:
            current = self._nodes.get(identifier)
            indexed_ms = current.indexed_ms if current else time.time_ns() // 1_000_000
        self._db.execute(
            "INSERT OR REPLACE INTO nodes (identifier, indexed_ms, metadata) VALUES (?, ?, ?)",
            (identifier, indexed_ms, orjson.dumps(metadata)),
        )
        self._remember(identifier, metadata, indexed_ms)

    def delete(self, identifier: str) -> bool:
        stored = self._nodes.pop(identifier, None)
        if stored is None:
            return False
        self._unindex(identifier, stored.metadata)
        self._db.execute("DELETE FROM nodes WHERE identifier = ?", (identifier,))
        return True

    def clear(self) -> None:
        self._nodes.clear()
        for index in self._index.values():
            index.clear()
        self._db.execute("DELETE FROM nodes")

    def _remember(self, identifier: str, metadata: dict[str, Any], indexed_ms: int) -> None:
        previous = self._nodes.get(identifier)
        if previous is not None:
            self._unindex(identifier, previous.metadata)
            order = previous.order
        else:
            self._order += 1
            order = self._order
        self._nodes[identifier] = StoredNode(metadata, indexed_ms, order)
        for field in INDEXED_FIELDS:
            for value in _index_values(metadata.get(field)):
                self._index[field].setdefault(value, set()).add(identifier)

    def _unindex(self, identifier: str, metadata: dict[str, Any]) -> None:
        for field in INDEXED_FIELDS:
            for value in _index_values(metadata.get(field)):
                ids = self._index[field].get(value)
                if ids is not None:
                    ids.discard(identifier)
                    if not ids:
                        del self._index[field][value]


def _index_values(value: Any) -> list[str]:
    # Search compares strings case-insensitively, so the index keys are lower-cased.
    if isinstance(value, str):
        return [value.lower()]
    if isinstance(value, list):
        return [v.lower() for v in value if isinstance(v, str)]
    return []
