"""The outcome of one input event: every event ends as exactly one of success, skipped or failed.

A job with a second operator (auto-creator-v2's link stage) may also hand an event on: the outcome
`handed-on` carries the request for the next stage, whose own outcome is the event's final one.

Outcomes are values that a job's logic returns and the wiring routes (failed records to the failed topic,
counters, the log line), so the logic itself never touches Kafka or metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Outcome", "OutcomeKind"]

OutcomeKind = Literal["success", "skipped", "failed", "handed-on"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    # A short code: why it was skipped or failed (failInfo.reason when failed), or a note on a success.
    reason: str = ""
    # What a person reading the log needs, e.g. {"unit_missing": ["do_123"]}; no personal data.
    detail: dict[str, Any] = field(default_factory=dict)
    # The record for the failed topic (failed outcomes only).
    failed_record: dict[str, Any] | None = None
    # The request for the job's next operator (handed-on outcomes only), keyed by `next_key`.
    next_request: dict[str, Any] | None = None
    next_key: str = ""

    @classmethod
    def success(cls, reason: str = "", detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("success", reason, dict(detail or {}))

    @classmethod
    def skipped(cls, reason: str, detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("skipped", reason, dict(detail or {}))

    @classmethod
    def failed(cls, record: dict[str, Any], reason: str, detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("failed", reason, dict(detail or {}), record)

    @classmethod
    def handed_on(cls, key: str, request: dict[str, Any], detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("handed-on", "", dict(detail or {}), None, request, key)

    @property
    def is_success(self) -> bool:
        return self.kind == "success"

    @property
    def is_skipped(self) -> bool:
        return self.kind == "skipped"

    @property
    def is_failed(self) -> bool:
        return self.kind == "failed"
