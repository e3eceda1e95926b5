"""What every job's processor shares: counting into the job's metrics, and closing its clients.

Kept apart from the Flink wiring (`cokreat_jobs.flink`) so that the processors (plain Python, unit-tested
without Flink) import no Flink.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cokreat_jobs.core.outcome import Outcome

__all__ = ["CountingProcessor", "Metrics", "Processor"]


class Metrics(Protocol):
    def inc(self, name: str, n: int = 1) -> None: ...


class Processor(Protocol):
    """A job's logic for one event. Returns an Outcome; never raises for a bad event."""

    async def process(self, event: dict[str, Any]) -> Outcome: ...

    async def close(self) -> None: ...


class CountingProcessor:
    """Base of the processors: `count` into the job's metrics, `on_retry` (the hook the HTTP clients call on
    each retried call), `closers` (the clients a subclass owns) and `close`.

    A subclass sets `metrics` (None: nothing is counted, as in unit tests that do not read the counters).
    """

    metrics: Metrics | None = None

    def count(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name)

    def on_retry(self, attempt: int, reason: str) -> None:
        # the Scala jobs counted a retried call as an error too; dashboards read both
        self.count("retry")
        self.count("error")

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        """The clients this processor owns, closed in this order."""
        return []

    async def close(self) -> None:
        for closer in self.closers():
            with contextlib.suppress(Exception):  # best effort: the worker is going away
                await closer()
