"""user-delete's batches: one delete event per seeded user, and hostile records (not JSON, invalid UTF-8, a
JSON array, wrong types, deep nesting, 2 MB, and numbers out of range or not finite: 1e20, 2^64 and more,
its string, -1e19, 1e400, NaN) mixed in for the poison scenario.

Each kind ends in the failed topic with the reason `EXPECTED_REASON` names: malformed (as raw text, found by
its Kafka coordinates), or invalid-field (the event itself, found by its mid, `wrong-<kind>-<n>`)."""

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


HOSTILE_KINDS = (
    "not-json",
    "invalid-utf8",
    "json-array",
    "wrong-types",
    "deep-nesting",
    "2mb-record",
    # numbers: an iteration that failed_event once turned into a value orjson cannot write (the task failed,
    # the record replayed for ever), beside a user id that is a number, so that the event fails
    "huge-numbers",
    "huge-iteration-string",
    "negative-numbers",
    # refused by the parser: no JSON number
    "infinity",
    "nan",
)
# the failInfo.reason each kind must end with
EXPECTED_REASON = {
    kind: "invalid-field"
    if kind in ("wrong-types", "huge-numbers", "huge-iteration-string", "negative-numbers")
    else "malformed"
    for kind in HOSTILE_KINDS
}


def _numbers(kind: str, n: int, object_id: str, user_id: str, iteration: str) -> bytes:
    # written as text: no Python value serialises to 99999999999999999999 as an integer literal that orjson
    # would read back as 1e20, nor to 1e400 or NaN
    return (
        f'{{"mid": "wrong-{kind}-{n}", "eid": "BE_JOB_REQUEST", "object": {{"id": {object_id}}}, '
        f'"edata": {{"action": "delete-user", "userId": {user_id}, "iteration": {iteration}}}}}'
    ).encode()


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
    if kind == "huge-numbers":
        return _numbers(kind, n, "1e20", "99999999999999999999", "1e20")
    if kind == "huge-iteration-string":
        return _numbers(kind, n, "12", "12", '"99999999999999999999"')
    if kind == "negative-numbers":
        return _numbers(kind, n, "-1e19", "-1e19", "-1e19")
    if kind == "infinity":
        return _numbers(kind, n, '"x"', f'"inf-{n}"', "1e400")
    if kind == "nan":
        return _numbers(kind, n, '"x"', "NaN", "1")
    raise ValueError(kind)


def failed_kind(record: dict[str, Any]) -> str | None:
    """The hostile kind of a failed-topic record that carries its event (mid `wrong-...`), else None."""
    mid = record.get("mid")
    if not isinstance(mid, str) or not mid.startswith("wrong-"):
        return None
    rest = mid[len("wrong-") :]
    return next((k for k in HOSTILE_KINDS if rest.startswith(f"{k}-")), "wrong-types")


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
        kinds: dict[bytes, str] = {}
        for j in range(count):
            kind = HOSTILE_KINDS[j % len(HOSTILE_KINDS)]
            at = min(len(records), j * step + step // 2 + j)
            key = f"hostile-{j}".encode()
            kinds[key] = kind
            records.insert(at, (key, hostile_record(kind, j)))
        # by the record's key: indexes move as later records are inserted
        hostile = {i: kinds[r[0]] for i, r in enumerate(records) if r[0] in kinds}
    return Batch(users, records, hostile)
