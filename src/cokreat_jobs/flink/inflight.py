"""A keyed process function that keeps the events in flight in Flink state, so a slow event holds only itself.

PyFlink's async operator (`AsyncDataStream.unordered_wait`) keeps its in-flight events in a Python queue and
nowhere else: at every bundle end (`python.fn-execution.bundle.time`, 1 s) and before every checkpoint barrier
its `finish` waits until the queue is empty (pyflink/fn_execution/datastream/process/async_function/
operation.py). One event that takes ten minutes therefore stops its subtask, and every checkpoint, for ten
minutes. Flink's Java async operator does not wait: it writes the in-flight elements to its state at a
checkpoint and starts them again on restore. `InFlight` does the same with what PyFlink offers a Python
function, a keyed process function:

- `process_element` (the bundle thread) appends the element to the key's list state and hands it to the
  stage's `async_invoke` on a long-lived event loop of its own (a thread), then registers a processing-time
  timer. It never waits for a result; it waits only while `capacity` events are running (back-pressure, as
  the async operator's full queue).
- `on_timer` (the bundle thread, with the key's state) emits the results of the key's events that are done,
  drops them from the state, and registers the next timer while some are still running.
- After a failure the list state (and the timers) come back from the checkpoint; the events in it that this
  process does not know are started again, in their order, before any newer event of the key. Such an event
  is processed twice (its effects are idempotent, as with any replay from Kafka's committed offsets).

One key's events stay in order because the stage runs them one after another on the loop (its `KeyedOrder`),
in the order they were handed over. An unkeyed job is keyed by its record's topic and partition
(`partition_key`). Counters: the stage's `FlinkCounters` keep increments made on the loop thread and apply
them from a gauge, which PyFlink reads on the bundle thread, as under the async operator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor

__all__ = ["AsyncStage", "EventLoopThread", "InFlight", "partition_key"]

DEFAULT_POLL_MS = 200


class AsyncStage(Protocol):
    """What `InFlight` drives: one of `flink/operators.py`'s stages (an AsyncFunction)."""

    def open(self, runtime_context: RuntimeContext) -> None: ...

    async def async_invoke(self, value: Any) -> list[Any]: ...

    def close(self) -> None: ...


def partition_key(row: Row) -> str:
    """The key of an unkeyed job's Kafka row: its topic and partition (one key's list holds that partition's
    events in flight in this subtask)."""
    return f"{row[1]}/{row[2]}"


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
    """Drives `stage` with its in-flight events in keyed state; see the module docstring.

    ``keyed``: the stage takes what a key_by hands an async function, `Row(key, element)`; otherwise (an
    unkeyed job's first stage) the element itself, a Kafka row.
    """

    def __init__(
        self, stage: AsyncStage, capacity: int, *, keyed: bool, poll_ms: int = DEFAULT_POLL_MS
    ) -> None:
        self.stage = stage
        self.capacity = max(1, capacity)
        self.keyed = keyed
        self.poll_ms = max(1, poll_ms)
        self._loop: EventLoopThread | None = None
        # entry id -> its run on the loop; what this process started (a restored entry is not here)
        self._running: dict[str, concurrent.futures.Future[list[Any]]] = {}

    def open(self, runtime_context: RuntimeContext) -> None:
        self.stage.open(runtime_context)
        # (entry id, the value as the stage takes it), in arrival order; pickled
        self._entries = runtime_context.get_list_state(
            ListStateDescriptor("in-flight", Types.PICKLED_BYTE_ARRAY())
        )
        self._loop = EventLoopThread()
        self._running = {}

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        key = ctx.get_current_key()
        entries = list(self._entries.get() or [])
        # entries restored from a checkpoint first, so that the key's events keep their order
        self._resume(entries)
        self._wait_for_room()
        entry_id = uuid.uuid4().hex
        item = Row(key, value) if self.keyed else value
        entries.append((entry_id, item))
        self._entries.update(entries)
        self._running[entry_id] = self._start(item)
        self._next_poll(ctx)
        return []

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Any]:
        entries = list(self._entries.get() or [])
        if not entries:
            return []
        self._resume(entries)
        out: list[Any] = []
        left = []
        for entry_id, item in entries:
            run = self._running[entry_id]
            if run.done():
                del self._running[entry_id]
                # an exception out of the stage fails the job, as out of the async operator
                out.extend(run.result())
            else:
                left.append((entry_id, item))
        if left:
            self._entries.update(left)
            self._next_poll(ctx)
        else:
            self._entries.clear()
        return out

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
        self._running = {}
        self.stage.close()

    def _start(self, item: Any) -> concurrent.futures.Future[list[Any]]:
        assert self._loop is not None, "open() first"
        return self._loop.submit(self.stage.async_invoke(item))

    def _resume(self, entries: list[tuple[str, Any]]) -> None:
        for entry_id, item in entries:
            if entry_id not in self._running:
                self._running[entry_id] = self._start(item)

    def _wait_for_room(self) -> None:
        # Back-pressure: the bundle thread waits (as the async operator's full queue makes it) only while
        # `capacity` events are running; their results are emitted by the timers once it goes on.
        while True:
            running = [r for r in self._running.values() if not r.done()]
            if len(running) < self.capacity:
                return
            concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)

    def _next_poll(self, ctx: KeyedProcessFunction.Context) -> None:
        # rounded to the poll interval, so that a key's timers coincide (Flink keeps one per key and time)
        now = ctx.timer_service().current_processing_time()
        ctx.timer_service().register_processing_time_timer((now // self.poll_ms + 1) * self.poll_ms)
