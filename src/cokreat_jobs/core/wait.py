"""Poll until a condition holds or a deadline passes: how a job waits for the state its next step needs.

The Scala jobs slept a fixed time between calls (after an upload, before linking). Here a probe is awaited
again and again, with a backoff that doubles from ``backoff_s`` up to ``max_backoff_s``, until its answer
satisfies ``until`` or, for a probe that refuses while it is not yet ready, until it stops raising one of the
``pending`` exceptions. No wait ever ends past the deadline: when the next backoff would, polling stops at
once with :class:`DeadlinePassed`, which the caller turns into its own error and message.

Clock and sleep are injected, so tests run the waits without time passing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["DeadlinePassed", "poll_until"]

T = TypeVar("T")


class DeadlinePassed(Exception):
    """Polling gave up: the condition did not hold before the deadline.

    ``last`` is the probe's last answer, or the ``pending`` exception it last raised (a caller quoting why
    it gave up chains that one as the cause); ``timeout_s`` the time allowed.
    """

    def __init__(self, last: Any, timeout_s: float) -> None:
        super().__init__(f"the condition did not hold within {timeout_s:g} s")
        self.last = last
        self.timeout_s = timeout_s


async def poll_until(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], object] = bool,
    timeout_s: float,
    backoff_s: float,
    max_backoff_s: float,
    pending: tuple[type[BaseException], ...] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Await ``probe()`` until ``until(answer)`` is true; return that answer.

    A ``pending`` exception from the probe means "not yet", as a false answer does; any other passes
    through at once. Between probes it sleeps ``backoff_s``, doubled each time up to ``max_backoff_s``;
    when the next sleep would end past ``clock() + timeout_s`` (measured from the call), it raises
    :class:`DeadlinePassed` instead. The first probe is awaited at once, whatever the timeout.
    """
    deadline = clock() + timeout_s
    backoff = backoff_s
    while True:
        last: Any
        try:
            answer = await probe()
        except pending as e:
            last = e
        else:
            if until(answer):
                return answer
            last = answer
        if clock() + backoff > deadline:
            raise DeadlinePassed(last, timeout_s)
        await sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
