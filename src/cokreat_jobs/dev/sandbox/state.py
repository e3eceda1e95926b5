"""The sandbox's persistent state: one SQLite database in WAL mode.

One connection serves the whole process. The sandbox runs on a single asyncio event loop, every statement is
short (key lookups and small writes), so a connection per request or a pool would only add overhead; commits
happen per write so a crash loses at most the request being answered (the request log batches, see
requestlog.py). Service modules declare their own tables through `Database.ensure_schema`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

DB_FILE = "sandbox.db"

_CORE_SCHEMA = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",)


class Database:
    """A thin wrapper over one sqlite3 connection with JSON helpers."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # check_same_thread=False: the app is built on one thread and served on another (uvicorn's loop, or
        # the TestClient portal); the lock keeps the rare cross-thread use (tests, shutdown) safe.
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: durable across a process crash, only an OS crash may lose the last commits.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self.ensure_schema(_CORE_SCHEMA)

    def ensure_schema(self, statements: Iterable[str]) -> None:
        with self._lock:
            for statement in statements:
                self._conn.execute(statement)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement (autocommit); answer the number of rows changed."""
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Several writes committed together (e.g. a node and its image at publish)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return row

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(value: bytes | str) -> Any:
    return orjson.loads(value)
