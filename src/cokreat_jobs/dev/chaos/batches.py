"""user-delete's batches: one delete event per seeded user, and hostile records (not JSON, invalid UTF-8, a
JSON array, wrong types, deep nesting, 2 MB) mixed in for the poison scenario."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any


def delete_event(uid: Any, n: int, action: str = "delete-user") -> bytes:
    return json.dumps(
        {
            "eid": "BE_JOB_REQUEST",
            "ets": 1617174912468 + n,
            "mid": f"LP.chaos.{n}.{uuid.uuid4()}",
            "actor": {"id": "delete-user", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.lern", "ver": "1.0"}, "channel": "ch1"},
            "object": {"id": uid, "type": "User"},
            "edata": {"action": action, "userId": uid},
        }
    ).encode()


HOSTILE_KINDS = ("not-json", "invalid-utf8", "json-array", "wrong-types", "deep-nesting", "2mb-record")


def hostile_record(kind: str, n: int) -> bytes:
    if kind == "not-json":
        return f"this is not json #{n} <html>".encode()
    if kind == "invalid-utf8":
        return b"\xff\xfe\xfa\x80 invalid utf-8 #" + str(n).encode()
    if kind == "json-array":
        return json.dumps([{"edata": {"userId": f"x{n}"}}, n]).encode()
    if kind == "wrong-types":
        return json.dumps(
            {"mid": f"wrong-{n}", "object": {"id": n}, "edata": {"action": "delete-user", "userId": [n]}}
        ).encode()
    if kind == "deep-nesting":
        depth = 100_000
        return b'{"edata": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "2mb-record":
        pad = "x" * (2 * 1024 * 1024)
        return json.dumps({"edata": {"action": "delete-user", "userId": f"big-{n}"}, "pad": pad}).encode()
    raise ValueError(kind)


@dataclass
class Batch:
    users: list[str]
    records: list[tuple[bytes, bytes]]
    hostile: dict[int, str]  # record index -> kind


def make_batch(prefix: str, n: int, hostile_fraction: float = 0.0) -> Batch:
    users = [f"{prefix}-u{i:05d}" for i in range(n)]
    records: list[tuple[bytes, bytes]] = [(u.encode(), delete_event(u, i)) for i, u in enumerate(users)]
    hostile: dict[int, str] = {}
    if hostile_fraction > 0:
        count = max(len(HOSTILE_KINDS), round(n * hostile_fraction))
        step = max(1, len(records) // count)
        for j in range(count):
            kind = HOSTILE_KINDS[j % len(HOSTILE_KINDS)]
            at = min(len(records), j * step + step // 2 + j)
            records.insert(at, (f"hostile-{j}".encode(), hostile_record(kind, j)))
        hostile = {i: _kind_of(r[1]) for i, r in enumerate(records) if r[0].startswith(b"hostile-")}
    return Batch(users, records, hostile)


def _kind_of(value: bytes) -> str:
    if len(value) > 1024 * 1024:
        return "2mb-record"
    if value.startswith(b"this is not json"):
        return "not-json"
    if value.startswith(b"\xff"):
        return "invalid-utf8"
    if value.startswith(b"["):
        return "json-array"
    if value.startswith(b'{"mid": "wrong-'):
        return "wrong-types"
    if value.startswith(b'{"edata": ['):
        return "deep-nesting"
    return "2mb-record"
