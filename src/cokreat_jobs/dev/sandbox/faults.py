"""Fault rules: make matching service requests slow, fail, hang or be throttled.

A rule matches a method (or any) and a glob on the percent-decoded path (or any). When it fires (for the
next `times` matching requests, for a `rate` fraction of them, or for every one when neither is given) it
adds `latency_ms` and, when it names a failure (`status`, `body`, `raw_body` or `hang`), answers that failure
instead of the service. `max_rps` throttles like a gateway: matching requests beyond N in the current second
are answered 429 with `Retry-After`. Rules are kept in memory for speed and written through to SQLite so they
survive a restart of the sandbox, as the rest of its state does.
"""

from __future__ import annotations

import fnmatch
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from cokreat_jobs.dev.sandbox.state import Database

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fault_rules (id TEXT PRIMARY KEY, pos INTEGER NOT NULL, rule BLOB NOT NULL)",
)

_FIELDS = {
    "method",
    "path",
    "status",
    "times",
    "rate",
    "latency_ms",
    "body",
    "raw_body",
    "content_type",
    "hang",
    "max_rps",
}


class FaultRuleError(ValueError):
    """A rule the sandbox cannot apply (answered 400 by the inspection API)."""


@dataclass(slots=True)
class FaultRule:
    id: str
    methods: frozenset[str] | None
    path: str | None
    status: int | None = None
    times: int | None = None
    rate: float | None = None
    latency_ms: int = 0
    body: Any = None
    has_body: bool = False
    raw_body: str | None = None
    content_type: str | None = None
    hang: bool = False
    max_rps: int | None = None
    _window: int = field(default=-1)
    _window_count: int = field(default=0)

    @property
    def fails(self) -> bool:
        return self.hang or self.status is not None or self.has_body or self.raw_body is not None

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.methods is not None:
            out["method"] = sorted(self.methods)
        if self.path is not None:
            out["path"] = self.path
        for name in ("status", "times", "rate", "raw_body", "content_type", "max_rps"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.latency_ms:
            out["latency_ms"] = self.latency_ms
        if self.has_body:
            out["body"] = self.body
        if self.hang:
            out["hang"] = True
        return out

    @classmethod
    def from_json(cls, spec: Any, rule_id: str | None = None) -> FaultRule:
        if not isinstance(spec, dict):
            raise FaultRuleError("a fault rule is a JSON object")
        unknown = set(spec) - _FIELDS - {"id"}
        if unknown:
            raise FaultRuleError(f"unknown fault rule fields: {sorted(unknown)}")
        method = spec.get("method")
        if method is None or method == "*":
            methods = None
        elif isinstance(method, str):
            methods = frozenset({method.upper()})
        elif isinstance(method, list) and all(isinstance(m, str) for m in method):
            methods = frozenset(m.upper() for m in method)
        else:
            raise FaultRuleError("method must be a string or a list of strings")
        path = spec.get("path")
        if path is not None and not isinstance(path, str):
            raise FaultRuleError("path must be a glob string")

        def opt_int(name: str, minimum: int) -> int | None:
            value = spec.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise FaultRuleError(f"{name} must be an integer >= {minimum}")
            return value

        status = opt_int("status", 100)
        if status is not None and status > 599:
            raise FaultRuleError("status must be an HTTP status")
        times = opt_int("times", 0)
        rate = spec.get("rate")
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise FaultRuleError("rate must be a number between 0 and 1")
            rate = float(rate)
        if times is not None and rate is not None:
            raise FaultRuleError("give times or rate, not both")
        raw_body = spec.get("raw_body")
        if raw_body is not None and not isinstance(raw_body, str):
            raise FaultRuleError("raw_body must be a string")
        content_type = spec.get("content_type")
        if content_type is not None and not isinstance(content_type, str):
            raise FaultRuleError("content_type must be a string")
        hang = spec.get("hang", False)
        if not isinstance(hang, bool):
            raise FaultRuleError("hang must be a boolean")
        rule = cls(
            id=rule_id or spec.get("id") or uuid.uuid4().hex[:12],
            methods=methods,
            path=path,
            status=status,
            times=times,
            rate=rate,
            latency_ms=opt_int("latency_ms", 0) or 0,
            body=spec.get("body"),
            has_body="body" in spec and spec["body"] is not None,
            raw_body=raw_body,
            content_type=content_type,
            hang=hang,
            max_rps=opt_int("max_rps", 0),
        )
        if not rule.fails and not rule.latency_ms and rule.max_rps is None:
            raise FaultRuleError("a rule needs status, body, raw_body, hang, latency_ms or max_rps")
        return rule


@dataclass(slots=True)
class FaultDecision:
    """What the fault rules decided for one request."""

    latency_ms: int = 0
    rule: FaultRule | None = None
    """The rule whose failure is answered (None: serve the request normally after the latency)."""
    throttled: bool = False


class FaultRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)
        self._rules: list[FaultRule] = []
        for rule_id, _pos, blob in db.query("SELECT id, pos, rule FROM fault_rules ORDER BY pos"):
            self._rules.append(FaultRule.from_json(orjson.loads(blob), rule_id))
        self._pos = len(self._rules)

    @property
    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def add(self, spec: Any) -> FaultRule:
        rule = FaultRule.from_json(spec)
        self._pos += 1
        self._db.execute(
            "INSERT OR REPLACE INTO fault_rules (id, pos, rule) VALUES (?, ?, ?)",
            (rule.id, self._pos, orjson.dumps(rule.to_json())),
        )
        self._rules = [r for r in self._rules if r.id != rule.id] + [rule]
        return rule

    def clear(self) -> None:
        self._rules = []
        self._db.execute("DELETE FROM fault_rules")

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        self._db.execute("DELETE FROM fault_rules WHERE id = ?", (rule_id,))
        return len(self._rules) != before

    def decide(self, method: str, path: str) -> FaultDecision | None:
        """Apply the rules to one request; None when no rule fired (the common, fast case)."""
        if not self._rules:
            return None
        decision: FaultDecision | None = None
        for rule in self._rules:
            if not rule.matches(method, path):
                continue
            if rule.max_rps is not None:
                second = int(time.monotonic())
                if rule._window != second:
                    rule._window, rule._window_count = second, 0
                rule._window_count += 1
                if rule._window_count > rule.max_rps:
                    decision = decision or FaultDecision()
                    decision.latency_ms += rule.latency_ms
                    if decision.rule is None:
                        decision.rule, decision.throttled = rule, True
                continue
            if rule.fails and decision is not None and decision.rule is not None:
                # an earlier rule answers this request: a later one keeps its `times` for a request it answers
                continue
            if not self._fires(rule):
                continue
            decision = decision or FaultDecision()
            decision.latency_ms += rule.latency_ms
            if rule.fails and decision.rule is None:
                decision.rule = rule
        return decision

    def _fires(self, rule: FaultRule) -> bool:
        if rule.times is not None:
            if rule.times <= 0:
                return False
            rule.times -= 1
            # Written through so a restart does not hand out the same failures again.
            self._db.execute(
                "UPDATE fault_rules SET rule = ? WHERE id = ?", (orjson.dumps(rule.to_json()), rule.id)
            )
            return True
        if rule.rate is not None:
            return random.random() < rule.rate
        return True
