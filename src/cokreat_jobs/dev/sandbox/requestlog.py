"""The log of every service request the sandbox answered, kept in SQLite.

Entries are buffered and written in batches (a flush every `flush_every` entries, on a short timer, before
every read of the log and at shutdown), so logging costs a list append on the hot path while a reader of
`GET /_sandbox/requests` still sees every request answered so far. Sequence numbers are assigned when a
request is answered, so a reader polling with `since` never misses a slow request that arrived earlier;
they keep growing across restarts and across `DELETE /_sandbox/requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from cokreat_jobs.dev.sandbox.state import Database

SCHEMA = ("CREATE TABLE IF NOT EXISTS request_log (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)",)
_SEQ_META = "request_log.last_seq"


class RequestLog:
    def __init__(self, db: Database, flush_every: int = 256, flush_interval_s: float = 0.2) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)
        row = db.query_one("SELECT MAX(seq) FROM request_log")
        last = max(int(row[0]) if row and row[0] is not None else 0, int(db.get_meta(_SEQ_META, "0") or 0))
        self._next_seq = last + 1
        self._buffer: list[tuple[int, bytes]] = []
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._timer: asyncio.Task[None] | None = None

    def record(self, entry: dict[str, Any]) -> int:
        seq = self._next_seq
        self._next_seq += 1
        self._buffer.append((seq, orjson.dumps({"seq": seq, **entry})))
        if len(self._buffer) >= self._flush_every:
            self.flush()
        return seq

    def flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        self._db.executemany("INSERT OR REPLACE INTO request_log (seq, entry) VALUES (?, ?)", rows)

    def entries_json(self, since: int | None = None, limit: int | None = None) -> bytes:
        """`{"requests": [...]}` built from the stored JSON without re-parsing each entry."""
        self.flush()
        sql = "SELECT entry FROM request_log WHERE seq > ? ORDER BY seq"
        params: list[Any] = [since if since is not None else -1]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._db.query(sql, params)
        return b'{"requests":[' + b",".join(bytes(r[0]) for r in rows) + b"]}"

    def entries(self, since: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = orjson.loads(self.entries_json(since, limit))["requests"]
        return result

    def clear(self) -> None:
        self._buffer = []
        self._db.set_meta(_SEQ_META, str(self._next_seq - 1))
        self._db.execute("DELETE FROM request_log")

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            self.flush()

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._timer
            self._timer = None
        self.flush()
