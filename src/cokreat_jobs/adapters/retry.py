"""The one retry loop of outbound calls (API calls, downloads, Google Drive, cloud storage) and its parts.

- :class:`RetryPolicy`: bounded attempts (``http.retry.max_attempts``) and exponential backoff with equal
  jitter, capped at ``http.retry.max_backoff_ms``.
- :func:`retry_after_s`: the one reading of a ``Retry-After`` header: delay-seconds or an HTTP-date, never
  negative.
- :class:`Retryable`: what an attempt raises for a failure worth another attempt. The caller classifies:
  its attempt returns (done), raises :class:`Retryable` (transient) or raises anything else (permanent,
  passed through untouched).
- :func:`call_with_retries` (coroutines) and :func:`call_with_retries_sync` (blocking code, e.g. fsspec in a
  worker thread): run the attempt until it succeeds, fails permanently or the attempts run out; then
  :class:`~cokreat_jobs.core.errors.TransientError` ``"<what> failed after <n> attempts: <last reason>"``.

After each failed attempt that will be retried, the wait is the ``Retry-After`` the failure carries (capped at
``max_backoff_ms``) or else the policy's backoff; ``on_retry(attempt, failure, delay_s)`` is called (the
processors count retries through it, the API client pauses its service), the retry is logged, then slept.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from cokreat_jobs.core.errors import ConfigError, TransientError
from cokreat_jobs.core.logs import log_event

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig
    from cokreat_jobs.core.response import HttpResponse

__all__ = [
    "RetryPolicy",
    "Retryable",
    "call_with_retries",
    "call_with_retries_sync",
    "retry_after_s",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
OnRetry = Callable[[int, "Retryable", float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``max_attempts`` counts every attempt, the first included (1 = no retry). The wait after failed attempt
    ``n`` is drawn from ``[d/2, d]`` with ``d = min(backoff_ms * 2**(n-1), max_backoff_ms)`` ("equal
    jitter"): spread out so that many events failing together do not retry in step, yet never close to 0.
    """

    max_attempts: int = 5
    backoff_ms: int = 200
    max_backoff_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"http.retry.max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_ms < 0 or self.max_backoff_ms < 0:
            raise ConfigError("http.retry.backoff_ms and http.retry.max_backoff_ms must not be negative")

    def delay(self, attempt: int, rand: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand`` in [0, 1) for tests."""
        exponent = min(max(attempt, 1) - 1, 40)
        ceiling_ms = min(self.backoff_ms * (1 << exponent), self.max_backoff_ms)
        r = random.random() if rand is None else rand
        return (ceiling_ms / 2 + ceiling_ms / 2 * r) / 1000.0

    @property
    def max_delay_s(self) -> float:
        return self.max_backoff_ms / 1000.0

    @classmethod
    def from_config(cls, cfg: JobConfig) -> RetryPolicy:
        return cls(
            max_attempts=cfg.get_int("http.retry.max_attempts", 5),
            backoff_ms=cfg.get_int("http.retry.backoff_ms", 200),
            max_backoff_ms=cfg.get_int("http.retry.max_backoff_ms", 10_000),
        )


def retry_after_s(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds the ``Retry-After`` header asks to wait, or None when it is absent or unreadable.

    RFC 9110 allows delay-seconds (``120``; fractions such as ``0.3`` are read too) or an HTTP-date (``Wed,
    21 Oct 2015 07:28:00 GMT``, always GMT; a date without a zone is read as GMT). A date in the past or a
    negative number is 0: the server asks for no wait, not for travel back in time.
    """
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


class Retryable(Exception):
    """An attempt failed in a way worth another: raised by the caller's attempt, caught by the loop.

    ``reason`` names the failure in logs, in ``on_retry`` and in the final error (never personal data: no
    bodies, no query strings). ``retry_after`` is the server's ``Retry-After`` in seconds. ``status`` and
    ``response`` (the last transient answer) are handed on to the final :class:`TransientError`.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        response: HttpResponse | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.reason, self.retry_after, self.status, self.response))


def _rebuild(
    reason: str, retry_after: float | None, status: int | None, response: HttpResponse | None
) -> Retryable:
    return Retryable(reason, retry_after=retry_after, status=status, response=response)


@dataclass(frozen=True, slots=True)
class _Call:
    """What the two loops share: after a failed attempt, give up or say how long to wait."""

    policy: RetryPolicy
    what: str
    on_retry: OnRetry | None
    logger: logging.Logger
    log_message: str
    log_fields: Mapping[str, Any]

    def after(self, attempt: int, failure: Retryable) -> float:
        """The delay before the next attempt; raises TransientError when ``attempt`` was the last one."""
        if attempt >= self.policy.max_attempts:
            plural = "s" if attempt > 1 else ""
            raise TransientError(
                f"{self.what} failed after {attempt} attempt{plural}: {failure.reason}",
                status=failure.status,
                attempts=attempt,
                response=failure.response,
            )
        wait = failure.retry_after
        delay = self.policy.delay(attempt) if wait is None else min(wait, self.policy.max_delay_s)
        if self.on_retry is not None:
            self.on_retry(attempt, failure, delay)
        log_event(
            self.logger,
            logging.INFO,
            self.log_message,
            **self.log_fields,
            attempt=attempt,
            reason=failure.reason,
            delay_ms=round(delay * 1000),
        )
        return delay


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    log: logging.Logger = logger,
    log_message: str = "retrying a call",
    log_fields: Mapping[str, Any] | None = None,
) -> T:
    """Await ``attempt()`` until it returns, raises other than :class:`Retryable`, or the attempts run out.

    ``what`` names the call in the final error; ``log_message`` and ``log_fields`` (before ``attempt``,
    ``reason`` and ``delay_ms``) make the log line of each retry, on the caller's ``log``.
    """
    call = _Call(policy, what, on_retry, log, log_message, log_fields or {})
    n = 0
    while True:
        n += 1
        try:
            return await attempt()
        except Retryable as e:
            failure = e
        # outside the except: the final TransientError carries no chained Retryable (failInfo stays short)
        await sleep(call.after(n, failure))


def call_with_retries_sync(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    log: logging.Logger = logger,
    log_message: str = "retrying a call",
    log_fields: Mapping[str, Any] | None = None,
) -> T:
    """:func:`call_with_retries` for blocking code (run it in a worker thread, never on the event loop)."""
    call = _Call(policy, what, on_retry, log, log_message, log_fields or {})
    n = 0
    while True:
        n += 1
        try:
            return attempt()
        except Retryable as e:
            failure = e
        sleep(call.after(n, failure))
