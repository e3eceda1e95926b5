"""The one retry loop: RetryPolicy's backoff, the Retry-After reading, and the loop in both colours."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import pickle
import time
from typing import Any

import orjson
import pytest

from cokreat_jobs.adapters.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    call_with_retries_sync,
    retry_after_s,
)
from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError
from cokreat_jobs.core.logs import JsonFormatter
from cokreat_jobs.core.response import HttpResponse

# ------------------------------------------------------------------------------------------------ policy


def test_retry_policy_delays() -> None:
    p = RetryPolicy(max_attempts=5, backoff_ms=200, max_backoff_ms=10_000)
    assert p.delay(1, rand=0.0) == 0.1 and p.delay(1, rand=0.999999) == pytest.approx(0.2)
    assert p.delay(2, rand=0.0) == 0.2
    assert p.delay(3, rand=1.0) == 0.8
    assert p.delay(10, rand=1.0) == 10.0  # capped
    assert p.delay(10_000, rand=0.0) == 5.0  # no overflow
    for attempt in range(1, 8):
        ceiling = min(0.2 * 2 ** (attempt - 1), 10.0)
        assert ceiling / 2 <= p.delay(attempt) <= ceiling


def test_retry_policy_validation_and_config() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(backoff_ms=-1)
    cfg = load_config(
        "user-delete", overrides=["http.retry.max_attempts=2", "http.retry.backoff_ms=50"], env={}
    )
    assert RetryPolicy.from_config(cfg) == RetryPolicy(2, 50, 10_000)
    assert RetryPolicy.from_config(JobConfig({})) == RetryPolicy()


# ----------------------------------------------------------------------------------------------- Retry-After

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def http_date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("0.3", 0.3),
        ("0", 0.0),
        ("-5", 0.0),  # never negative
        (http_date(NOW + 30), 30.0),
        (http_date(NOW - 3600), 0.0),  # a date gone by: no wait
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),
        ("Tue, 14 Nov 2023 22:14:20", 60.0),  # no zone: HTTP-dates are GMT
        ("Tuesday, 14-Nov-23 22:14:20 GMT", 60.0),  # RFC 850, which recipients must accept
        ("Tue Nov 14 22:14:20 2023", 60.0),  # asctime, likewise
    ],
)
def test_retry_after_seconds_or_http_date(value: str, expected: float) -> None:
    assert retry_after_s({"Retry-After": value}, now=lambda: NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["", "   ", "not a number", "soon", "nan", "inf", "Tue, 99 Nov 2023"])
def test_unreadable_retry_after_is_none(value: str) -> None:
    assert retry_after_s({"Retry-After": value}, now=lambda: NOW) is None


def test_no_retry_after_header() -> None:
    assert retry_after_s({}) is None
    assert retry_after_s({"Content-Type": "text/plain"}) is None


def test_http_date_against_the_real_clock() -> None:
    wait = retry_after_s({"Retry-After": http_date(time.time() + 100)})
    assert wait is not None and 98 <= wait <= 100


# ------------------------------------------------------------------------------------------------ the loop

FAST = RetryPolicy(max_attempts=3, backoff_ms=100, max_backoff_ms=1_000)


class Script:
    """An attempt that fails with the scripted exceptions in turn, then answers "done"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"

    async def coroutine(self) -> str:
        return self()


def run_async(script: Script, policy: RetryPolicy = FAST, **kw: Any) -> tuple[str, list[float]]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    result = asyncio.run(call_with_retries(script.coroutine, policy, what="test call", sleep=sleep, **kw))
    return result, slept


def test_retries_until_success_with_backoff() -> None:
    script = Script(Retryable("HTTP 503"), Retryable("TimeoutError"))
    result, slept = run_async(script)
    assert result == "done" and script.calls == 3
    assert 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    script = Script(Retryable("HTTP 429", retry_after=0.7), Retryable("HTTP 429", retry_after=60))
    _, slept = run_async(script)
    assert slept == [0.7, 1.0]  # the second capped at max_backoff_ms


def test_gives_up_with_a_transient_error_carrying_the_last_failure() -> None:
    answer = HttpResponse(503, {}, b"")
    script = Script(
        Retryable("HTTP 502", status=502),
        Retryable("HTTP 503", status=503),
        Retryable("HTTP 503 SERVER_ERROR", status=503, response=answer),
    )
    with pytest.raises(TransientError) as info:
        run_async(script)
    error = info.value
    assert str(error) == "test call failed after 3 attempts: HTTP 503 SERVER_ERROR"
    assert error.attempts == 3 and error.status == 503 and error.response is answer
    assert error.__cause__ is None and error.__context__ is None, "no chained Retryable in failInfo"


def test_one_attempt_is_singular() -> None:
    with pytest.raises(TransientError, match="failed after 1 attempt: HTTP 503$"):
        run_async(Script(Retryable("HTTP 503")), RetryPolicy(max_attempts=1))


def test_anything_but_retryable_passes_through_at_once() -> None:
    refusal = PermanentError("HTTP 404")
    script = Script(Retryable("HTTP 503"), refusal)
    with pytest.raises(PermanentError) as info:
        run_async(script)
    assert info.value is refusal and script.calls == 2


def test_on_retry_is_told_each_retried_attempt_but_not_the_last() -> None:
    seen: list[tuple[int, str, float]] = []
    script = Script(Retryable("a", retry_after=0.25), Retryable("b", retry_after=0.5), Retryable("c"))
    with pytest.raises(TransientError):
        run_async(script, on_retry=lambda n, failure, delay: seen.append((n, failure.reason, delay)))
    assert seen == [(1, "a", 0.25), (2, "b", 0.5)]


def test_each_retry_is_logged_on_the_callers_logger(caplog: pytest.LogCaptureFixture) -> None:
    caller = logging.getLogger("cokreat_jobs.test_retry_caller")
    with caplog.at_level(logging.INFO, logger=caller.name):
        run_async(
            Script(Retryable("HTTP 503", retry_after=0.2)),
            log=caller,
            log_message="retrying a test call",
            log_fields={"host": "files.example"},
        )
    [record] = [r for r in caplog.records if r.name == caller.name]
    line = orjson.loads(JsonFormatter().format(record))
    assert line["msg"] == "retrying a test call" and line["logger"] == caller.name
    assert {k: line[k] for k in ("host", "attempt", "reason", "delay_ms")} == {
        "host": "files.example",
        "attempt": 1,
        "reason": "HTTP 503",
        "delay_ms": 200,
    }


def test_the_blocking_loop_behaves_the_same() -> None:
    slept: list[float] = []
    seen: list[int] = []
    script = Script(Retryable("HTTP 503", retry_after=0.3), Retryable("OSError"))
    result = call_with_retries_sync(
        script, FAST, what="upload", sleep=slept.append, on_retry=lambda n, *_: seen.append(n)
    )
    assert result == "done" and script.calls == 3 and seen == [1, 2]
    assert slept[0] == 0.3 and 0.1 <= slept[1] <= 0.2

    with pytest.raises(TransientError, match="^upload failed after 3 attempts: c$"):
        call_with_retries_sync(
            Script(Retryable("a"), Retryable("b"), Retryable("c")), FAST, what="upload", sleep=slept.append
        )
    with pytest.raises(ValueError):
        call_with_retries_sync(Script(ValueError("bad")), FAST, what="upload", sleep=slept.append)


def test_retryable_pickles() -> None:
    failure = Retryable("HTTP 429", retry_after=1.5, status=429)
    copy = pickle.loads(pickle.dumps(failure))
    assert (copy.reason, copy.retry_after, copy.status, copy.response) == ("HTTP 429", 1.5, 429, None)
