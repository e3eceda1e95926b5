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

Nothing an event holds can raise out of an operator (an exception there fails the task, the record replays
and the job ends FAILED): every failed record is written by `core/failed.failed_record_text`, which never
raises and keeps it under `kafka.failed.max_record_bytes` (a raw-text record with the reason when the record
cannot be written whole), and whatever else goes wrong after the processor, or in reading a record, ends the
event in the failed topic with its reason and raw text. Only a processor that cannot be made (the job's
configuration) fails the job.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
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
from cokreat_jobs.core.event import parse_record, reading_topic
from cokreat_jobs.core.failed import (
    FAILED_RECORD_LIMIT,
    error_text,
    failed_event,
    failed_record_text,
    malformed_record,
    raw_record,
)
from cokreat_jobs.core.logs import configure_job_logging, get_logger
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.flink.elements import Element, Event, Failed, Malformed, Tick
from cokreat_jobs.flink.inflight import is_tick_row
from cokreat_jobs.flink.metrics import FlinkCounters

__all__ = [
    "DEFAULT_EVENT_DEADLINE_MS",
    "DEFAULT_FAILED_MAX_RECORD_BYTES",
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
# below the broker's default message.max.bytes (1,048,588): see core/failed.py
DEFAULT_FAILED_MAX_RECORD_BYTES = FAILED_RECORD_LIMIT
FAILED_MAX_KEY = "kafka.failed.max_record_bytes"
# task.event_deadline_ms: the outer bound of one event's processing (0 = none). Below Flink's checkpoint
# timeout, so that PyFlink's async operator, which waits for every event in flight before a checkpoint, lets
# checkpoints complete; above what an honest event takes (a 50 MiB artifact at 0.5 MiB/s is under 2 min).
DEFAULT_EVENT_DEADLINE_MS = 300_000

T = TypeVar("T")


class RecordReader:
    """A raw Kafka row (value, topic, partition, offset) -> its `Event`, or `Malformed` with the reason."""

    def __init__(
        self,
        job: JobDefinition,
        max_record_bytes: int,
        failed_max_bytes: int = DEFAULT_FAILED_MAX_RECORD_BYTES,
    ) -> None:
        self.job = job
        self.max_record_bytes = max_record_bytes
        self.failed_max_bytes = failed_max_bytes

    def read(self, row: Row) -> tuple[Event, dict[str, Any]] | tuple[Malformed, None]:
        """The element, and the parsed event for a stage that processes it at once. Never raises."""
        try:
            return self._read(row)
        except Exception as e:  # a bug here would fail the task on this record for ever: the record fails
            raw = _field(row, 0)
            raw = raw if isinstance(raw, bytes | bytearray | memoryview | str) else None
            record = raw_record(raw, self.job.name, error_text(e), "permanent", _source(row))
            return Malformed(failed_record_text(record, self.job.name, max_bytes=self.failed_max_bytes)), None

    def _read(self, row: Row) -> tuple[Event, dict[str, Any]] | tuple[Malformed, None]:
        raw = bytes(row[0]) if row[0] is not None else b""
        try:
            event = parse_record(raw, self.max_record_bytes)
        except MalformedEvent as e:
            record = malformed_record(raw, self.job.name, str(e), row[1], row[2], row[3])
            return Malformed(failed_record_text(record, self.job.name, max_bytes=self.failed_max_bytes)), None
        try:
            key = self.job.key_of(event)
        except Exception:  # a key we cannot read is the processor's to report, in order with nothing
            key = ""
        # The event travels as the record's text (parse_record accepted it, byte-order mark and all; orjson
        # refuses the mark, so the text goes without it).
        text = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
        return Event(key if isinstance(key, str) else "", text.decode("utf-8")), event


def _field(row: Row, i: int) -> Any:
    try:
        return row[i]
    except Exception:
        return None


def _source(row: Row) -> dict[str, Any] | None:
    """The row's Kafka coordinates, for a failed record (None when the row does not have them)."""
    topic, partition, offset = _field(row, 1), _field(row, 2), _field(row, 3)
    if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
        return {"topic": topic, "partition": partition, "offset": offset}
    return None


class ParseAndKey(MapFunction):
    """Raw Kafka row -> `Event | Malformed`, before the key_by of a keyed job."""

    def __init__(self, reader: RecordReader) -> None:
        self.reader = reader

    def map(self, row: Row) -> Event | Malformed | Tick:
        if is_tick_row(row):  # keyed-state's ticks (flink/inflight.py), unioned with the Kafka rows
            return Tick(f"b{row[2]}")
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
        group, names = self._job.metric_group(cfg), self._job.counter_names(cfg)
        self._metrics = FlinkCounters(runtime_context, group, names)
        self._failed_max = cfg.get_int(FAILED_MAX_KEY, DEFAULT_FAILED_MAX_RECORD_BYTES)
        self._cfg = cfg
        self._deadline_ms = cfg.get_int("task.event_deadline_ms", DEFAULT_EVENT_DEADLINE_MS)

    def _ensure_processor(self) -> Processor:
        # Created lazily on the operator's event loop thread: aiohttp sessions belong to the loop they
        # were made on.
        if self._processor is None:
            self._processor = self._factory(self._cfg, self._metrics)
        return self._processor

    async def _element(
        self, element: Element, event: dict[str, Any] | None = None, source: dict[str, Any] | None = None
    ) -> list[Any]:
        self._metrics.in_flight += 1
        try:
            if isinstance(element, Event):
                # outside the safety net: a processor that cannot be made is the job's configuration, and
                # fails the job, as it should
                self._ensure_processor()
            try:
                return await self._element_outcome(element, event, source)
            except Exception as e:  # the last safety net: nothing about one event may fail the task
                return self._failed_anyway(element, e, source)
        finally:
            self._metrics.in_flight -= 1

    async def _element_outcome(
        self, element: Element, event: dict[str, Any] | None, source: dict[str, Any] | None
    ) -> list[Any]:
        if isinstance(element, Malformed):
            self._metrics.inc("failed")
            return self._outlet.failed(element.record)
        if not isinstance(element, Event):
            raise TypeError(f"{type(self).__name__} takes Event or Malformed, not {type(element).__name__}")
        parsed: dict[str, Any] = orjson.loads(element.text) if event is None else event
        if not element.key:
            return await self._run(parsed, element.text, source)
        return await self.order.run(element.key, lambda: self._run(parsed, element.text, source))

    def _failed_anyway(self, element: Any, error: Exception, source: dict[str, Any] | None) -> list[Any]:
        """The failed-topic record of an event whose handling raised outside the processor (counted failed
        and error: it is a bug, in the wiring or in what the processor returned)."""
        with contextlib.suppress(Exception):
            self._metrics.inc("error")
            self._metrics.inc("failed")
        with contextlib.suppress(Exception):
            self._log.error("failed record written from the raw event", exc_info=error)
        text = element.text if isinstance(element, Event) else getattr(element, "record", None)
        raw = text if isinstance(text, str) else None
        record = raw_record(raw, self._job.name, error_text(error), "permanent", source)
        return self._outlet.failed(failed_record_text(record, self._job.name, max_bytes=self._failed_max))

    def _failed_outcome(self, event: dict[str, Any], error: Exception, reason: str, raw: str) -> Outcome:
        try:
            record = failed_event(event, self._job.name, error, reason)
        except Exception:  # the event cannot even be copied: its raw text is written instead
            record = raw_record(raw, self._job.name, error_text(error), reason)
        return Outcome.failed(record, reason)

    async def _run(self, event: dict[str, Any], raw: str, source: dict[str, Any] | None) -> list[Any]:
        processor = self._ensure_processor()
        started = time.monotonic()
        try:
            topic = source.get("topic") if source is not None else None
            with reading_topic(topic if isinstance(topic, str) else None):
                outcome = await self._within_deadline(processor.process(event))
        except JobError as e:  # a processor should return outcomes; this is the safety net
            outcome = self._failed_outcome(event, e, e.reason, raw)
        except Exception as e:  # never restart the job because of one event
            self._metrics.inc("error")
            outcome = self._failed_outcome(event, e, "permanent", raw)
        with contextlib.suppress(Exception):
            self._log.debug(
                "event done",
                extra={"outcome": outcome.kind, "duration_ms": int((time.monotonic() - started) * 1000)},
            )
        # What the outcome emits is made before it is counted, so that an event whose output cannot be made
        # is counted once, as failed, by the safety net.
        kind = outcome.kind
        out: list[Any] = []
        if kind == "handed-on":
            handed = self._outlet.handed_on(outcome)
            if handed is not None:
                return handed
            # no next stage to take it (a processor used on its own): the hand-off is its success
            kind = "success"
        elif kind == "failed":
            record = outcome.failed_record
            if record is None:  # a processor's slip: the event still reaches the failed topic
                record = raw_record(None, self._job.name, "no failed record", outcome.reason or "permanent")
            text = failed_record_text(record, self._job.name, raw, source, self._failed_max)
            out = self._outlet.failed(text)
        self._metrics.inc(kind)
        return out

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
        return await self._element(element, event, _source(value))


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
    """The operators of `job` under `cfg` (`kafka.max_record_bytes` is read here, once; the stages read
    `kafka.failed.max_record_bytes` again when they open)."""
    reader = RecordReader(
        job,
        cfg.get_int("kafka.max_record_bytes", DEFAULT_MAX_RECORD_BYTES),
        cfg.get_int(FAILED_MAX_KEY, DEFAULT_FAILED_MAX_RECORD_BYTES),
    )
    config = cfg.as_dict()
    if job.keyed:
        parse: ParseAndKey | None = ParseAndKey(reader)
        first: ProcessEvents | ProcessRecords = ProcessEvents(job, config)
    else:
        parse, first = None, ProcessRecords(job, config, reader)
    stage = job.next_stage
    return Operators(parse, first, ProcessHandedOn(job, config, stage) if stage is not None else None)
