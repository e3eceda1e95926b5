"""user-delete: on a user deleted in Sunbird ED, delete that user's personal information in coKreat.

One call per event, `DELETE {program-service-baseUrl}/program/v1/user/{userId}`; the decisions are all in how
program-service's answer is read (JOBS.md, user-delete):

- 200 with responseCode OK: deleted.
- "Can only delete Individual or contributing org user" (admin / sourcing roles), whatever the status: a
  permanent refusal; the reason decides, not the code.
- 404 whose result.response says the user was not found: nothing to delete, a success.
- Any other 404: transient. After its first 404 program-service answers every error with 404 (a defect of
  the service), so a 404 that does not say "not found" is an error in disguise, retried.
- Every 5xx, 429, connection error and timeout: transient, retried with backoff, then the failed topic.
- Any other 4xx, and a 200 without OK: permanent, the failed topic without retry.

The user id is personal data: logs carry its hash only, never the id (nor object.id, which Lern sets to the
same id).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import CountingProcessor, Metrics
from cokreat_jobs.core.errors import InvalidField, PermanentError, TransientError
from cokreat_jobs.core.event import Event
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.logs import get_logger, hash_id, log_event
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.response import HttpResponse

JOB_NAME = "user-delete"
DELETE_ACTION = "delete-user"
NOT_FOUND_MARKERS = ("user not found in sunbird", "user not found in os", "user not found")
REFUSED_MARKER = "can only delete individual or contributing org user"

log = get_logger("cokreat_jobs.user_delete")


def reason_text(resp: HttpResponse) -> str:
    """program-service puts its reason in result.response (a string), errmsg is generic."""
    value = resp.result.get("response") if isinstance(resp.result, dict) else None
    return value if isinstance(value, str) else ""


def says_not_found(resp: HttpResponse) -> bool:
    return any(m in reason_text(resp).lower() for m in NOT_FOUND_MARKERS)


def says_refused(resp: HttpResponse) -> bool:
    return REFUSED_MARKER in reason_text(resp).lower() or REFUSED_MARKER in (resp.text or "").lower()


def is_transient(resp: HttpResponse) -> bool:
    if says_refused(resp):
        return False
    if resp.status == 404:
        return not says_not_found(resp)
    return resp.status == 429 or resp.status >= 500


def interpret(resp: HttpResponse) -> str:
    """Classify a final (non-retried) answer: 'deleted' | 'not-found'; raises PermanentError otherwise."""
    if says_refused(resp):
        raise PermanentError("Can only delete Individual or contributing org user", status=resp.status)
    if resp.status == 200 and resp.response_code == "OK":
        return "deleted"
    if resp.status == 404 and says_not_found(resp):
        return "not-found"
    if is_transient(resp):  # only reached when the caller did not retry
        raise TransientError(f"program-service answered {resp.status}", status=resp.status)
    detail = reason_text(resp) or resp.errmsg or (resp.text or "")[:200]
    raise PermanentError(
        f"program-service refused the deletion: HTTP {resp.status} {detail}".strip(), status=resp.status
    )


def delete_path(user_id: str) -> str:
    # one path segment, percent-encoded (the reference sent the id raw, so '/' or '?' broke the path)
    return f"/program/v1/user/{quote(user_id, safe='')}"


class UserDeletion(CountingProcessor):
    """The job's processor: one event in, one Outcome out; counts retries and errors as the other jobs do."""

    def __init__(self, cfg: JobConfig, program: ServiceClient, metrics: Metrics | None = None) -> None:
        self._program = program
        self.metrics = metrics
        self._job = cfg.get_str("job.name", JOB_NAME)

    @classmethod
    def from_config(cls, cfg: JobConfig, metrics: Metrics | None = None) -> UserDeletion:
        program = ServiceClient.from_config(
            "program-service",
            cfg.get_str("program-service-baseUrl"),
            cfg,
            default_headers={"Content-Type": "application/json"},
        )
        return cls(cfg, program, metrics)

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        return [self._program.close]

    async def process(self, data: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        event = Event(data)
        try:
            action = event.get_str("edata.action")
            user_id = event.get_str("edata.userId")
        except InvalidField as e:
            return self._failed(data, e, e.reason, started, None)
        uid_hash = hash_id(user_id) if user_id else ""
        if action != DELETE_ACTION or not user_id.strip():
            reason = "not a delete-user event" if action != DELETE_ACTION else "edata.userId is blank"
            self._log("skipped", event, uid_hash, started, reason=reason)
            return Outcome.skipped(reason)
        try:
            resp = await self._program.request(
                "DELETE",
                delete_path(user_id),
                is_transient=is_transient,
                # the id is personal data: errors and logs name the call, not the path
                label="DELETE /program/v1/user/{userId}",
                on_retry=self.on_retry,
            )
            result = interpret(resp)
        except TransientError as e:
            self.count("error")
            return self._failed(data, e, "retries-exhausted", started, uid_hash, event)
        except PermanentError as e:
            self.count("error")
            return self._failed(data, e, "permanent", started, uid_hash, event)
        self._log("success", event, uid_hash, started, result=result)
        return Outcome.success(detail={"result": result})

    def _failed(
        self,
        data: dict[str, Any],
        error: Exception,
        reason: str,
        started: float,
        uid_hash: str | None,
        event: Event | None = None,
    ) -> Outcome:
        # The failed record keeps the original event so it can be replayed: the failed topic holds personal
        # data and needs the input topic's retention and access limits (see docs).
        record = failed_event(data, self._job, error, reason)
        self._log("failed", event, uid_hash or "", started, reason=reason, error=_scrub(str(error)))
        return Outcome.failed(record, reason)

    def _log(self, outcome: str, event: Event | None, uid_hash: str, started: float, **fields: Any) -> None:
        mid = event.get("mid") if event is not None else None
        log_event(
            log,
            "INFO",
            f"user-delete {outcome}",
            job=self._job,
            mid=mid,
            user=uid_hash,
            outcome=outcome,
            duration_ms=int((time.monotonic() - started) * 1000),
            **fields,
        )


def _scrub(message: str) -> str:
    # error messages name the path, which holds the user id: keep only what precedes it
    marker = "/program/v1/user/"
    if marker in message:
        head, _, tail = message.partition(marker)
        rest = tail.split(" ", 1)[1] if " " in tail else ""
        return f"{head}{marker}<user> {rest}".strip()
    return message
