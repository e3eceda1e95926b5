"""The pipeline's operators: parse and key the Kafka rows, run a job's processor, run its next stage.

- `RecordReader`: a raw Kafka row (bytes + topic/partition/offset) -> `Event`, or `Malformed` (its
  failed-topic record); `ParseAndKey` is that as a map before the key_by of a keyed job.
- `ProcessEvents`: a keyed job's first stage, fed with the `Event | Malformed` elements after the key_by.
- `ProcessRecords`: an unkeyed job's first stage, fed with the Kafka rows as they come; it parses them itself.
- `ProcessHandedOn`: a job's next stage, fed with the requests its first stage's `handed-on` outcomes carry.

A first stage counts each input (`total`); the stage that decides an event's outcome counts that outcome. What
a stage emits is its outlet's choice: failed-topic text (the last stage), or typed elements for the next stage
(`Failed`, and `Event` for a hand-off). `job_operators` builds all of them from the job's definition and its
configuration, once, for the pipeline and for the in-memory driver (`flink/testing.py`) alike.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from pyflink.common import Row
from pyflink.datastream import AsyncFunction, MapFunction, RuntimeContext

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.core.errors import JobError, MalformedEvent, TransientError
from cokreat_jobs.core.event import parse_record
from cokreat_jobs.core.failed import failed_event, malformed_record
from cokreat_jobs.core.logs import configure_job_logging, get_logger
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.flink.elements import Element, Event, Failed, Malformed
from cokreat_jobs.flink.metrics import FlinkCounters, metric_names

__all__ = [
    "DEFAULT_EVENT_DEADLINE_MS",
    "DEFAULT_MAX_RECORD_BYTES",
    "KeyedOrder",
    "Operators",
    "ParseAndKey",
    "ProcessEvents",
    "ProcessHandedOn",
    "ProcessRecords",
    "RecordReader",
    "job_operators",
]

DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
# task.event_deadline_ms: the outer bound of one event's processing (0 = none). Below Flink's checkpoint
# timeout, so that PyFlink's async operator, which waits for every event in flight before a checkpoint, lets
# checkpoints complete; above what an honest event takes (a 50 MiB artifact at 0.5 MiB/s is under 2 min).
DEFAULT_EVENT_DEADLINE_MS = 300_000

T = TypeVar("T")


class RecordReader:
    """A raw Kafka row (value, topic, partition, offset) -> its `Event`, or `Malformed` with the reason."""

    def __init__(self, job: JobDefinition, max_record_bytes: int) -> None:
        self.job = job
        self.max_record_bytes = max_record_bytes

    def read(self, row: Row) -> tuple[Event, dict[str, Any]] | tuple[Malformed, None]:
        """The element, and the parsed event for a stage that processes it at once."""
        raw = bytes(row[0]) if row[0] is not None else b""
        try:
            event = parse_record(raw, self.max_record_bytes)
        except MalformedEvent as e:
            record = malformed_record(raw, self.job.name, str(e), row[1], row[2], row[3])
            return Malformed(orjson.dumps(record).decode()), None
        try:
            key = self.job.key_of(event)
        except Exception:  # a key we cannot read is the processor's to report, in order with nothing
            key = ""
        # The event travels as the record's text (parse_record accepted it, byte-order mark and all; orjson
        # refuses the mark, so the text goes without it).
        text = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
        return Event(key, text.decode("utf-8")), event


class ParseAndKey(MapFunction):
    """Raw Kafka row -> `Event | Malformed`, before the key_by of a keyed job."""

    def __init__(self, reader: RecordReader) -> None:
        self.reader = reader

    def map(self, row: Row) -> Event | Malformed:
        return self.reader.read(row)[0]


class KeyedOrder:
    """Runs the work of one key one piece after another, other keys' concurrently (one event loop).

    One asyncio.Lock per key in use, forgotten as soon as nobody holds or waits for it: the users of each
    lock are counted here (asyncio keeps a lock's waiters private).
    """

    def __init__(self) -> None:
        self._keys: dict[str, _KeyLock] = {}

    def __len__(self) -> int:
        """Keys in use."""
        return len(self._keys)

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                return await work()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._keys[key]


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        # the holder and the waiters
        self.users = 0


class _Outlet(Protocol):
    def failed(self, record: str) -> list[Any]: ...

    def handed_on(self, outcome: Outcome) -> list[Any] | None: ...


class _ToFailedTopic:
    """The last stage's outlet: failed records as text; a hand-off, with no next stage to take it, is none."""

    def failed(self, record: str) -> list[Any]:
        return [record]

    def handed_on(self, outcome: Outcome) -> list[Any] | None:
        return None


class _ToNextStage:
    """A first stage's outlet when the job has a next stage: `Failed`, and `Event` for each hand-off."""

    def failed(self, record: str) -> list[Any]:
        return [Failed(record)]

    def handed_on(self, outcome: Outcome) -> list[Any] | None:
        if outcome.next_request is None:
            return None
        # counted by the next stage, which decides the event's outcome
        return [Event(outcome.next_key, orjson.dumps(outcome.next_request).decode())]


class _Stage(AsyncFunction):
    """What the three operators share: open, the processor (made on the operator's loop), one key's events
    in order, the safety net around the processor, counting the outcome, and close."""

    def __init__(
        self,
        job: JobDefinition,
        config: dict[str, Any],
        factory: Callable[[JobConfig, Metrics], Processor],
        outlet: _Outlet,
    ) -> None:
        self._job = job
        self._config = config
        self._factory = factory
        self._outlet = outlet
        self._processor: Processor | None = None
        self.order = KeyedOrder()

    def open(self, runtime_context: RuntimeContext) -> None:
        cfg = JobConfig(self._config, job=self._job.name)
        configure_job_logging(cfg.get_str("log.level", "INFO"))
        self._log = get_logger(f"cokreat_jobs.{self._job.name}")
        self._metrics = FlinkCounters(runtime_context, self._job.name, metric_names(cfg))
        self._cfg = cfg
        self._deadline_ms = cfg.get_int("task.event_deadline_ms", DEFAULT_EVENT_DEADLINE_MS)

    def _ensure_processor(self) -> Processor:
        # Created lazily on the operator's event loop thread: aiohttp sessions belong to the loop they
        # were made on.
        if self._processor is None:
            self._processor = self._factory(self._cfg, self._metrics)
        return self._processor

    async def _element(self, element: Element, event: dict[str, Any] | None = None) -> list[Any]:
        self._metrics.in_flight += 1
        try:
            if isinstance(element, Malformed):
                self._metrics.inc("failed")
                return self._outlet.failed(element.record)
            if not isinstance(element, Event):
                raise TypeError(
                    f"{type(self).__name__} takes Event or Malformed, not {type(element).__name__}"
                )
            parsed: dict[str, Any] = orjson.loads(element.text) if event is None else event
            if not element.key:
                return await self._run(parsed)
            return await self.order.run(element.key, lambda: self._run(parsed))
        finally:
            self._metrics.in_flight -= 1

    async def _run(self, event: dict[str, Any]) -> list[Any]:
        processor = self._ensure_processor()
        started = time.monotonic()
        try:
            outcome = await self._within_deadline(processor.process(event))
        except JobError as e:  # a processor should return outcomes; this is the safety net
            outcome = Outcome.failed(failed_event(event, self._job.name, e, e.reason), e.reason)
        except Exception as e:  # never restart the job because of one event
            self._metrics.inc("error")
            outcome = Outcome.failed(failed_event(event, self._job.name, e, "permanent"), "permanent")
        self._log.debug(
            "event done",
            extra={"outcome": outcome.kind, "duration_ms": int((time.monotonic() - started) * 1000)},
        )
        if outcome.kind == "handed-on":
            handed = self._outlet.handed_on(outcome)
            if handed is not None:
                return handed
            # no next stage to take it (a processor used on its own): the hand-off is its success
            outcome = Outcome.success("handed-on", outcome.detail)
        self._metrics.inc(outcome.kind)
        if outcome.kind == "failed" and outcome.failed_record is not None:
            return self._outlet.failed(orjson.dumps(outcome.failed_record).decode())
        return []

    async def _within_deadline(self, work: Awaitable[Outcome]) -> Outcome:
        # The outer bound of one event, whatever its calls' own timeouts add up to (retries times a download
        # that drips a byte at a time): past it the processing is cancelled and the event fails, replayable,
        # instead of holding its subtask (and, under PyFlink's async operator, every checkpoint) for longer.
        if self._deadline_ms <= 0:
            return await work
        try:
            async with asyncio.timeout(self._deadline_ms / 1000) as scope:
                return await work
        except TimeoutError:
            if not scope.expired():
                raise
            raise TransientError(
                f"event not done within task.event_deadline_ms ({self._deadline_ms} ms): stopped"
            ) from None

    def close(self) -> None:
        processor, self._processor = self._processor, None
        if processor is None:
            return
        # The operator's loop has stopped by now; close on a fresh loop (best effort: sockets die with us).
        try:
            asyncio.run(asyncio.wait_for(processor.close(), 5))
        except Exception:
            pass


def _first_outlet(job: JobDefinition) -> _Outlet:
    return _ToNextStage() if job.next_stage is not None else _ToFailedTopic()


class ProcessEvents(_Stage):
    """A keyed job's first stage: runs its processor with many events in flight, one key's events in order.

    Takes what the key_by hands an async function: `Row(key, Event | Malformed)`.
    """

    def __init__(self, job: JobDefinition, config: dict[str, Any]) -> None:
        super().__init__(job, config, job.processor_factory, _first_outlet(job))

    async def async_invoke(self, value: Row) -> list[Any]:
        self._metrics.inc("total")
        return await self._element(value[1])


class ProcessRecords(_Stage):
    """An unkeyed job's first stage: takes the Kafka rows as they come and parses them itself (one Python
    operator, each record crosses the JVM/Python boundary once); events of one key still run in order here."""

    def __init__(self, job: JobDefinition, config: dict[str, Any], reader: RecordReader) -> None:
        super().__init__(job, config, job.processor_factory, _first_outlet(job))
        self.reader = reader

    async def async_invoke(self, value: Row) -> list[Any]:
        element, event = self.reader.read(value)
        self._metrics.inc("total")
        return await self._element(element, event)


class ProcessHandedOn(_Stage):
    """A job's next stage: takes `Row(key, Event)` (a handed-on request) and decides the event's outcome."""

    def __init__(self, job: JobDefinition, config: dict[str, Any], stage: NextStage) -> None:
        super().__init__(job, config, stage.processor_factory, _ToFailedTopic())
        self.stage = stage

    async def async_invoke(self, value: Row) -> list[Any]:
        return await self._element(value[1])


@dataclass(frozen=True)
class Operators:
    """A job's operators, in the order the pipeline places them."""

    # keyed jobs: the map before the key_by (an unkeyed job's first stage parses instead)
    parse: ParseAndKey | None
    first: ProcessEvents | ProcessRecords
    # the job's next stage, fed with the first stage's `Event` elements
    next: ProcessHandedOn | None


def job_operators(job: JobDefinition, cfg: JobConfig) -> Operators:
    """The operators of `job` under `cfg` (`kafka.max_record_bytes` is read here, once)."""
    reader = RecordReader(job, cfg.get_int("kafka.max_record_bytes", DEFAULT_MAX_RECORD_BYTES))
    config = cfg.as_dict()
    if job.keyed:
        parse: ParseAndKey | None = ParseAndKey(reader)
        first: ProcessEvents | ProcessRecords = ProcessEvents(job, config)
    else:
        parse, first = None, ProcessRecords(job, config, reader)
    stage = job.next_stage
    return Operators(parse, first, ProcessHandedOn(job, config, stage) if stage is not None else None)
