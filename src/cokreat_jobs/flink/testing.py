"""The job's operators driven in memory, for unit tests of the wiring: no Flink running, no JVM.

    driver = PipelineDriver(DEFINITION, cfg)
    result = driver.run([kafka_row(b'{"object": {"id": "do_1"}}', offset=7), kafka_row(b"not json")])
    result.counts["failed"], result.failed[0]["failInfo"]["reason"]

`PipelineDriver` places the operators `job_operators` builds for the pipeline as `pipeline.add_operators`
does: parse and key (keyed jobs), the first stage, and for a job with a next stage the filter of its `Event`
elements into the next stage and the `Failed` ones to the failed topic. Each element that crosses between
operators goes through the Flink type's own coder (`ELEMENT_TYPE`), as it would between Python operators.
The async stages run on one event loop, every record in flight at once, after `open` with a runtime context
whose metric group records the counters; their flush gauge is read at the end, so the counts are those Flink
would report. An exception out of an operator (which would fail the Flink job) is raised by `run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pyflink.common import Row, Types
from pyflink.fn_execution.coders import from_type_info

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.flink.elements import ELEMENT_TYPE, Element, element_key, failed_text, is_event, is_failed
from cokreat_jobs.flink.operators import Operators, job_operators

__all__ = [
    "DriverResult",
    "FakeCounter",
    "FakeMetricGroup",
    "FakeRuntimeContext",
    "PipelineDriver",
    "kafka_row",
]


def kafka_row(
    value: bytes | str | dict[str, Any] | None,
    *,
    topic: str = "input",
    partition: int = 0,
    offset: int = 0,
) -> Row:
    """A record as the Kafka table source hands it over: `Row(value, topic, kpartition, koffset)`.

    A dict is written as JSON, a str as UTF-8; bytes go as they are; None is a tombstone.
    """
    if isinstance(value, dict):
        data: bytes | None = orjson.dumps(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = value
    return Row(value=data, topic=topic, kpartition=partition, koffset=offset)


class FakeCounter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n

    def get_count(self) -> int:
        return self.count


class FakeMetricGroup:
    """The part of PyFlink's metric group the operators use: subgroups, counters and gauges."""

    def __init__(self, path: tuple[str, ...] = ()) -> None:
        self.path = path
        self.groups: dict[str, FakeMetricGroup] = {}
        self.counters: dict[str, FakeCounter] = {}
        self.gauges: dict[str, Callable[[], int]] = {}

    def add_group(self, name: str, extra: str | None = None) -> FakeMetricGroup:
        key = name if extra is None else f"{name}.{extra}"
        if key not in self.groups:
            self.groups[key] = FakeMetricGroup((*self.path, key))
        return self.groups[key]

    def counter(self, name: str) -> FakeCounter:
        return self.counters.setdefault(name, FakeCounter())

    def gauge(self, name: str, obj: Callable[[], int]) -> None:
        self.gauges[name] = obj

    def read_gauges(self) -> dict[str, int]:
        """Every gauge here and in the subgroups, by dotted name; this group's first, as PyFlink reads."""
        values = {".".join((*self.path, name)): fn() for name, fn in self.gauges.items()}
        for group in list(self.groups.values()):
            values.update(group.read_gauges())
        return values


class FakeRuntimeContext:
    """Stands in for PyFlink's RuntimeContext in `open`: a metric group, the task's name and index."""

    def __init__(self, task_name: str = "process") -> None:
        self.metric_group = FakeMetricGroup()
        self.task_name = task_name

    def get_metrics_group(self) -> FakeMetricGroup:
        return self.metric_group

    def get_task_name(self) -> str:
        return self.task_name

    def get_index_of_this_subtask(self) -> int:
        return 0

    def get_number_of_parallel_subtasks(self) -> int:
        return 1


@dataclass
class DriverResult:
    # failed-topic records, as the sink would write them, in the order they came out
    failed_text: list[str] = field(default_factory=list)
    # outcome -> count, summed over the stages (outcome names: total, success, skipped, failed, error, retry)
    counts: dict[str, int] = field(default_factory=dict)
    # operator name ("process", or the next stage's) -> outcome -> count, as its Flink counters read
    stage_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # the elements the first stage handed to the next stage
    handed_on: list[Element] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [orjson.loads(t) for t in self.failed_text]


class PipelineDriver:
    """Runs raw Kafka rows through a job's operators, in memory; see the module docstring."""

    def __init__(self, job: JobDefinition, cfg: JobConfig) -> None:
        self.job = job
        self.cfg = cfg
        self.operators: Operators = job_operators(job, cfg)
        self._element_coder = from_type_info(ELEMENT_TYPE).get_impl()
        self._text_coder = from_type_info(Types.STRING()).get_impl()
        self.contexts: dict[str, FakeRuntimeContext] = {}

    def run(self, rows: Iterable[Row]) -> DriverResult:
        """Every row through the operators, then their close; returns what reached the failed topic."""
        ops = self.operators
        stages: list[tuple[str, Any]] = [("process", ops.first)]
        if ops.next is not None:
            stages.append((ops.next.stage.name, ops.next))
        for name, op in stages:
            ctx = self.contexts[name] = FakeRuntimeContext(name)
            op.open(ctx)
        result = DriverResult()
        try:
            asyncio.run(self._run(list(rows), result))
        except ExceptionGroup as raised:  # the TaskGroup's: raise what the operator raised
            raise raised.exceptions[0] from None
        finally:
            for _, op in stages:
                op.close()
        names = self.job.counter_names(self.cfg)
        for name, _ in stages:
            group = self.contexts[name].metric_group
            group.read_gauges()  # the flush: pending increments reach the counters
            counters = group.add_group(self.job.metric_group(self.cfg)).counters
            counts = {k: counters[v].count for k, v in names.items() if v in counters}
            result.stage_counts[name] = counts
            for k, n in counts.items():
                result.counts[k] = result.counts.get(k, 0) + n
        return result

    def _cross(self, element: Element) -> Element:
        # between two operators an element is encoded and decoded with its Flink type's coder
        decoded: Element = self._element_coder.decode(self._element_coder.encode(element))
        return decoded

    def _text(self, text: str) -> str:
        decoded: str = self._text_coder.decode(self._text_coder.encode(text))
        return decoded

    async def _run(self, rows: list[Row], result: DriverResult) -> None:
        ops = self.operators
        async with asyncio.TaskGroup() as tasks:
            for row in rows:
                if ops.parse is not None:
                    element = self._cross(ops.parse.map(row))
                    value = Row(element_key(element), element)  # what the key_by hands the async operator
                else:
                    value = row
                tasks.create_task(self._first(value, result, tasks))

    async def _first(self, value: Row, result: DriverResult, tasks: asyncio.TaskGroup) -> None:
        ops = self.operators
        out = await ops.first.async_invoke(value)
        if ops.next is None:
            result.failed_text.extend(self._text(t) for t in out)
            return
        for element in out:
            element = self._cross(element)
            if is_failed(element):
                result.failed_text.append(self._text(failed_text(element)))
            elif is_event(element):
                result.handed_on.append(element)
                tasks.create_task(self._next(Row(element_key(element), element), result))
            else:
                raise TypeError(f"the first stage emitted {element!r}")

    async def _next(self, value: Row, result: DriverResult) -> None:
        assert self.operators.next is not None
        out = await self.operators.next.async_invoke(value)
        result.failed_text.extend(self._text(t) for t in out)
