"""Re-processing and duplicate effects, counted from the sandbox's request log.

The sandbox answers 200 only once per user, refuses a second create of an identifier and de-duplicates the
children of a unit, so its final state cannot show an event processed twice. Its request log can: every
effectful call the jobs made, with its answer. Each job's effectful calls and their targets:

- user-delete: ``DELETE /program/v1/user/{id}`` (the user)
- content-auto-creator: ``POST /content/v4/create`` (the identifier in the body), ``PATCH
  /content/v4/update/{id}``, ``POST /content/v4/upload/{id}``, ``POST /content/v4/review/{id}``, ``POST
  /content/v4/publish/{id}``, ``PATCH /content/v4/system/update/{id}`` (the content), and ``PATCH
  /content/v3/hierarchy/add`` (each (collection, unit, child) it names)
- auto-creator-v2: ``PATCH /content/v3/hierarchy/add``; its graph-store writes (the stack's sqlite stores)
  and both content jobs' storage puts (a local directory) do not go through the sandbox, so they are not in
  the log.

A call for a target that already had the same call is a repeat. A repeat is **re-processing** when a
recovery (a job restart, a replay of the failed topic) lies between the two calls, or when the earlier call
succeeded (no client retries a success): the event was processed again, whatever the repeat was answered.
Any other repeat (after a 429/5xx or a hung call, with no recovery in between) is a **retry** inside one
processing. At-least-once allows re-processing; it is reported, not failed.

A **duplicate effect** is an effect applied twice: a second successful delete of a user, a second successful
create of an identifier (or, from the final state, two contents with the same origin; a child twice under a
unit). It must be 0.
"""

from __future__ import annotations

import bisect
import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

USER_DELETE = "user-delete"
CAC = "content-auto-creator"
ACV2 = "auto-creator-v2"

# (method, path glob, operation); the target is the path's last segment unless `_targets` says otherwise
_CALLS: dict[str, list[tuple[str, str, str]]] = {
    USER_DELETE: [("DELETE", "/program/v1/user/*", "delete-user")],
    CAC: [
        ("POST", "/content/v4/create", "create"),
        ("PATCH", "/content/v4/update/*", "update"),
        ("POST", "/content/v4/upload/*", "upload"),
        ("POST", "/content/v4/review/*", "review"),
        ("POST", "/content/v4/publish/*", "publish"),
        ("PATCH", "/content/v4/system/update/*", "system-update"),
        ("PATCH", "/content/v3/hierarchy/add", "hierarchy-add"),
    ],
    ACV2: [("PATCH", "/content/v3/hierarchy/add", "hierarchy-add")],
}


def _request_object(r: dict[str, Any]) -> dict[str, Any]:
    body = r.get("body")
    req = body.get("request") if isinstance(body, dict) else None
    return req if isinstance(req, dict) else {}


def effect_keys(job: str, r: dict[str, Any]) -> list[tuple[str, str]]:
    """The (operation, target) pairs one logged request is an effectful call for (none for a read)."""
    method, path = r.get("method"), str(r.get("path") or "")
    for m, glob, op in _CALLS.get(job, []):
        if method != m or not fnmatch.fnmatchcase(path, glob):
            continue
        if op == "create":
            content = _request_object(r).get("content")
            ident = content.get("identifier") if isinstance(content, dict) else None
            return [(op, str(ident))]
        if op == "hierarchy-add":
            req = _request_object(r)
            children = req.get("children")
            if not isinstance(children, list):
                children = []
            return [(op, f"{req.get('rootId')}/{req.get('unitId')}/{c}") for c in children]
        return [(op, path.rsplit("/", 1)[1])]
    return []


def succeeded(r: dict[str, Any]) -> bool:
    return 200 <= int(r.get("status") or 0) < 300


@dataclass
class Reprocessing:
    """What the request log says about the effectful calls of one run."""

    effect_calls: int = 0  # effectful calls in the log
    targets: int = 0  # distinct (operation, target)
    reprocessed: int = 0  # repeats after a recovery or after a success
    reprocessed_targets: int = 0
    reprocessed_by_op: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # repeats after a transient answer, no recovery in between
    recoveries: int = 0
    duplicate_effects: list[str] = field(default_factory=list)  # "<operation> <target>" applied twice

    def as_dict(self) -> dict[str, Any]:
        return {
            "effect_calls": self.effect_calls,
            "targets": self.targets,
            "reprocessed": self.reprocessed,
            "reprocessed_targets": self.reprocessed_targets,
            "reprocessed_by_op": dict(self.reprocessed_by_op),
            "retried": self.retried,
            "recoveries": self.recoveries,
            "duplicate_effects": len(self.duplicate_effects),
        }


# operations whose second success is a second effect (a delete or a create applied twice); the others
# (update, upload, review, publish, a link the service de-duplicates) may succeed again on a re-run
_ONCE = {"delete-user", "create"}


def count_reprocessing(
    job: str, requests: Iterable[dict[str, Any]], recoveries_ms: Iterable[int] = ()
) -> Reprocessing:
    """Re-processing, retries and duplicate effects of `job` in `requests` (the request log, any order);
    `recoveries_ms`: when the job restarted or a replay began (epoch ms)."""
    marks = sorted(int(t) for t in recoveries_ms)
    out = Reprocessing(recoveries=len(marks))
    last: dict[tuple[str, str], dict[str, Any]] = {}  # the latest call for each key
    succeeded_before: set[tuple[str, str]] = set()
    successes: Counter[tuple[str, str]] = Counter()
    again: set[tuple[str, str]] = set()
    by_op: Counter[str] = Counter()
    for r in sorted(requests, key=lambda r: int(r.get("seq") or 0)):
        for key in effect_keys(job, r):
            out.effect_calls += 1
            prev = last.get(key)
            if prev is not None:
                # a recovery after the earlier call arrived and no later than this one
                i = bisect.bisect_right(marks, int(prev.get("ts_ms") or 0))
                recovered = i < len(marks) and marks[i] <= int(r.get("ts_ms") or 0)
                if recovered or key in succeeded_before:
                    out.reprocessed += 1
                    by_op[key[0]] += 1
                    again.add(key)
                else:
                    out.retried += 1
            last[key] = r
            if succeeded(r):
                succeeded_before.add(key)
                successes[key] += 1
    out.targets = len(last)
    out.reprocessed_targets = len(again)
    out.reprocessed_by_op = dict(by_op)
    out.duplicate_effects = sorted(f"{op} {t}" for (op, t), c in successes.items() if op in _ONCE and c > 1)
    return out


def recovery_times(exception_history: dict[str, Any]) -> list[int]:
    """When the job failed over, from Flink's ``/jobs/{id}/exceptions`` (each entry's ``timestamp``, ms)."""
    entries = (exception_history.get("exceptionHistory") or {}).get("entries") or []
    out = []
    for e in entries:
        try:
            out.append(int(e["timestamp"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out
