"""The job's Flink metrics, in the group `JobDefinition.metric_group` (`metrics.group`, default the job's
name): the outcome counters (names configurable, as the Scala jobs' dashboards read them), the in-flight
gauge and the per-service HTTP gauges."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pyflink.datastream import RuntimeContext

from cokreat_jobs.adapters.protection import registered_services, service_stats
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.flink.definition import counter_names

__all__ = ["FlinkCounters", "metric_names"]


def metric_names(cfg: JobConfig, defaults: dict[str, str] | None = None) -> dict[str, str]:
    """Outcome -> Flink counter name, e.g. "retry" -> "retry-count"; each set by `metrics.<outcome>`.

    ``defaults``: the names when unset (ours, `definition.COUNTER_NAMES`, unless given); a job's own are
    `JobDefinition.counter_names`, which gives the reference's for the reference's config shape."""
    return counter_names(cfg, defaults)


class FlinkCounters:
    """Monotonic Flink counters in group ``job`` (the reference used read-and-reset gauges).

    PyFlink's counters are Beam metrics, recorded only on the thread that processes the bundle; the async
    operator runs our coroutines on a thread of its own, where an increment would be lost. So increments are
    kept here and applied to the Flink counters from a gauge callback, which PyFlink calls on the bundle
    thread when each bundle finishes (at least once a second, `python.fn-execution.bundle.time`).
    """

    def __init__(self, ctx: RuntimeContext | None, job: str, names: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._counters: dict[str, Any] = {}
        self.totals: dict[str, int] = {k: 0 for k in names}
        self.in_flight = 0
        self._group: Any = None
        # per target service (adapters/protection.py): <job>.http.<service>.<figure>, e.g. adaptive-limit
        self._service_gauges: set[str] = set()
        self._service_stats: dict[str, dict[str, float]] = {}
        if ctx is not None:
            group = self._group = ctx.get_metrics_group().add_group(job)
            self._counters = {k: group.counter(v) for k, v in names.items()}
            group.gauge("in-flight-events", self._flush)

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._pending[name] = self._pending.get(name, 0) + n
            self.totals[name] = self.totals.get(name, 0) + n

    def _flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
        for name, n in pending.items():
            counter = self._counters.get(name)
            if counter is not None:
                counter.inc(n)
        self._flush_services()
        return self.in_flight

    def _flush_services(self) -> None:
        # Clients (and their protection) are made lazily inside the processor, so a service's gauges are
        # registered on the first flush that sees it. PyFlink reads this group's gauges before its
        # subgroups', so the snapshot taken here is what the service gauges report in the same pass.
        if self._group is None:
            return
        self._service_stats = {name: service_stats(name) for name in registered_services()}
        for name, stats in self._service_stats.items():
            if name in self._service_gauges:
                continue
            self._service_gauges.add(name)
            sub = self._group.add_group("http").add_group(name)
            for stat in stats:
                sub.gauge(stat, self._service_gauge(name, stat))

    def _service_gauge(self, name: str, stat: str) -> Callable[[], int]:
        return lambda: int(self._service_stats.get(name, {}).get(stat, 0))
