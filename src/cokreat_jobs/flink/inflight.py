"""A keyed process function that keeps the events in flight in Flink state, so a slow event holds only itself.

PyFlink's async operator (`AsyncDataStream.unordered_wait`) keeps its in-flight events in a Python queue and
nowhere else: at every bundle end (`python.fn-execution.bundle.time`, 1 s) and before every checkpoint barrier
its `finish` waits until the queue is empty (pyflink/fn_execution/datastream/process/async_function/
operation.py). One event that takes ten minutes therefore stops its subtask, and every checkpoint, for ten
minutes. Flink's Java async operator does not wait: it writes the in-flight elements to its state at a
checkpoint and starts them again on restore. `InFlight` does the same with what PyFlink offers a Python
function, a keyed process function:

- The stage is keyed by **bucket** (`bucket_of`: a stable hash of the event's key, or of a Kafka row's topic
  and partition, modulo `task.async.buckets`), so that one event's order key always lands in one bucket.
- `process_element` (the bundle thread) puts the element in its bucket's map state and hands it to the stage's
  `async_invoke` on a long-lived event loop of its own (a thread). It never waits for a result; it waits only
  while `capacity` events are running (back-pressure, as the async operator's full queue).
- **Ticks** drive the rest: a small generated stream (`tick_rows`: `task.async.buckets` rows every
  `task.async.poll_ms`, unioned with the Kafka input) gives every bucket an element several times a second.
  On any element of a bucket, tick or event, the bucket's finished events are emitted and dropped from the
  state. A first stage hands its ticks on to the next stage, so that stage's buckets are ticked too.
- After a failure the map state comes back from the checkpoint; the first element of each bucket (a tick at
  the latest) starts again, in their order, the events in it that this process does not know, before any
  newer event of the bucket. Such an event is processed twice (its effects are idempotent, as with any replay
  from Kafka's committed offsets).

Why ticks and not processing-time timers: PyFlink 2.2 restores a timer that `process_element` registered,
but not one registered inside `on_timer` (measured: a poll timer chain re-registered in `on_timer`, on the
MiniCluster and on the standalone cluster after a task-manager kill, never fired after the restore, so the
events whose key saw no newer element were neither finished nor failed: 8 and 10 of 40 question sets in two
chaos runs). Ticks are ordinary elements: nothing about them has to survive a restore.

One key's events stay in order because the stage runs them one after another on the loop (its `KeyedOrder`),
in the order they were handed over. Counters: the stage's `FlinkCounters` keep increments made on the loop
thread and apply them from a gauge, which PyFlink reads on the bundle thread, as under the async operator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from typing import Any, Protocol

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor

from cokreat_jobs.flink.elements import Event, Failed, Malformed, Tick

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_POLL_MS",
    "TICK_TOPIC",
    "AsyncStage",
    "EventLoopThread",
    "InFlight",
    "bucket_of",
    "is_tick_row",
    "partition_key",
    "tick_rate",
]

DEFAULT_POLL_MS = 200
DEFAULT_BUCKETS = 32
# A tick row's topic: Kafka has no topic with an empty name, so no record can be taken for a tick.
TICK_TOPIC = ""


class AsyncStage(Protocol):
    """What `InFlight` drives: one of `flink/operators.py`'s stages (an AsyncFunction)."""

    def open(self, runtime_context: RuntimeContext) -> None: ...

    async def async_invoke(self, value: Any) -> list[Any]: ...

    def close(self) -> None: ...


def partition_key(row: Row) -> str:
    """An unkeyed job's Kafka row's order key: its topic and partition."""
    return f"{row[1]}/{row[2]}"


def is_tick_row(row: Any) -> bool:
    """A tick as a Kafka-shaped row (`tick_rows`): the empty topic, the bucket's number as its partition."""
    try:
        return bool(row[1] == TICK_TOPIC)
    except Exception:
        return False


def _bucket(text: str, buckets: int) -> str:
    return f"b{zlib.crc32(text.encode('utf-8', 'surrogatepass')) % max(1, buckets)}"


def bucket_of(value: Any, buckets: int) -> str:
    """The bucket (the key_by key of an `InFlight` stage) of an element or a Kafka row.

    Events go by their order key, so one key's events share a bucket (and a subtask); a Kafka row by its topic
    and partition; a tick names its bucket. Anything else (a malformed record, a failed one) by its text.
    """
    if isinstance(value, Tick):
        return value.bucket
    if isinstance(value, Event):
        return _bucket(value.key, buckets)
    if isinstance(value, Malformed | Failed):
        return _bucket(value.record, buckets)
    if is_tick_row(value):
        return f"b{value[2]}"
    return _bucket(partition_key(value), buckets)


def tick_rate(buckets: int, poll_ms: int) -> int:
    """Tick rows per second: each bucket about once per `poll_ms`."""
    return max(1, round(max(1, buckets) * 1000 / max(1, poll_ms)))


class EventLoopThread:
    """An asyncio loop running on a daemon thread of its own, for as long as the operator lives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="inflight-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        # the events still running are cancelled (their entries stay in state, for the next start)
        if self.loop.is_running():
            try:
                self.submit(self._cancel_all()).result(timeout=5)
            except Exception:  # best effort: the thread is a daemon and dies with the worker
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class InFlight(KeyedProcessFunction):
    """Drives `stage` with its in-flight events in keyed (bucket) state; see the module docstring.

    ``keyed``: the stage takes `Row(order key, element)`, as a key_by hands an async function; otherwise (an
    unkeyed job's first stage) the Kafka row itself. ``forward_ticks``: emit each tick (as a `Tick`) for the
    next stage.
    """

    def __init__(self, stage: AsyncStage, capacity: int, *, keyed: bool, forward_ticks: bool = False) -> None:
        self.stage = stage
        self.capacity = max(1, capacity)
        self.keyed = keyed
        self.forward_ticks = forward_ticks
        self._loop: EventLoopThread | None = None
        # bucket -> entry id -> its run on the loop; what this process started (a restored entry is not here
        # until its bucket's first element)
        self._running: dict[str, dict[str, concurrent.futures.Future[list[Any]]]] = {}
        self._resumed: set[str] = set()

    def open(self, runtime_context: RuntimeContext) -> None:
        self.stage.open(runtime_context)
        # entry id -> (sequence, the value as the stage takes it); pickled
        self._entries = runtime_context.get_map_state(
            MapStateDescriptor("in-flight", Types.STRING(), Types.PICKLED_BYTE_ARRAY())
        )
        self._loop = EventLoopThread()
        self._running = {}
        self._resumed = set()
        # arrival order across restores: the wall clock first (a restored entry is older than any new one)
        self._seq = itertools.count()

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        bucket = ctx.get_current_key()
        self._resume(bucket)
        tick = isinstance(value, Tick) or (not self.keyed and is_tick_row(value))
        if not tick:
            self._wait_for_room()
            entry_id = uuid.uuid4().hex
            item = Row(self._order_key(value), value) if self.keyed else value
            self._entries.put(entry_id, ((time.time_ns(), next(self._seq)), item))
            self._running.setdefault(bucket, {})[entry_id] = self._start(item)
        out = self._collect(bucket)
        if tick and self.forward_ticks:
            out.append(value if isinstance(value, Tick) else Tick(bucket))
        return out

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
        self._running = {}
        self.stage.close()

    @staticmethod
    def _order_key(value: Any) -> str:
        return value.key if isinstance(value, Event) else ""

    def _start(self, item: Any) -> concurrent.futures.Future[list[Any]]:
        assert self._loop is not None, "open() first"
        return self._loop.submit(self.stage.async_invoke(item))

    def _resume(self, bucket: str) -> None:
        # once per bucket and process: the entries restored from a checkpoint, in order, before any newer
        if bucket in self._resumed:
            return
        self._resumed.add(bucket)
        running = self._running.setdefault(bucket, {})
        restored = sorted(
            (
                (seq, entry_id, item)
                for entry_id, (seq, item) in self._entries.items()
                if entry_id not in running
            ),
            key=lambda t: t[0],
        )
        for _, entry_id, item in restored:
            running[entry_id] = self._start(item)

    def _collect(self, bucket: str) -> list[Any]:
        """The results of the bucket's finished events, which leave the state."""
        running = self._running.get(bucket)
        if not running:
            return []
        out: list[Any] = []
        for entry_id in [e for e, run in running.items() if run.done()]:
            run = running.pop(entry_id)
            self._entries.remove(entry_id)
            # an exception out of the stage fails the job, as out of the async operator
            out.extend(run.result())
        return out

    def _wait_for_room(self) -> None:
        # Back-pressure: the bundle thread waits (as the async operator's full queue makes it) only while
        # `capacity` events are running; their results are emitted by their buckets' next elements.
        while True:
            running = [r for runs in self._running.values() for r in runs.values() if not r.done()]
            if len(running) < self.capacity:
                return
            concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
