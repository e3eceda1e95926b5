"""`InFlight` (flink/inflight.py) driven in memory: keyed list state, processing-time timers and the bundle
thread as PyFlink gives them to a keyed process function, the job's real stage (`ProcessEvents`) inside.

What it must hold: a slow event holds only itself (the others are emitted while it runs, nothing waits for
it); its events are in state until their result is emitted; after a failure the events restored from state
run again, before any newer event of their key; back-pressure at `capacity`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.flink.elements import Event
from cokreat_jobs.flink.inflight import InFlight, partition_key
from cokreat_jobs.flink.operators import job_operators
from cokreat_jobs.flink.testing import FakeRuntimeContext, kafka_row

JOB = "inflight-test"


class Gate:
    """Events wait at the gate named by their `wait` field until the test opens it."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.lock = threading.Lock()

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())


class Gated:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def process(self, event: dict[str, Any]) -> Outcome:
        with self.gate.lock:
            self.gate.started.append(event["n"])
        if "wait" in event:
            gate = self.gate.gate(event["wait"])
            while not gate.is_set():
                await asyncio.sleep(0.005)
        if event.get("fail"):
            return Outcome.failed({"n": event["n"], "failInfo": {"reason": "permanent"}}, "permanent")
        return Outcome.success()

    async def close(self) -> None:
        pass


class ListState:
    """A keyed list state: the harness's current key picks the list."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def get(self) -> Iterable[Any]:
        return list(self.harness.state.get(self.harness.key, []))

    def update(self, values: list[Any]) -> None:
        self.harness.state[self.harness.key] = list(values)

    def clear(self) -> None:
        self.harness.state.pop(self.harness.key, None)


class Context:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def get_current_key(self) -> str:
        return self.harness.key

    def timer_service(self) -> Context:
        return self

    def current_processing_time(self) -> int:
        return int(time.time() * 1000)

    def register_processing_time_timer(self, ts: int) -> None:
        self.harness.timers.add((ts, self.harness.key))


class Harness:
    """One subtask: the function, its keyed state and timers; `state` and `timers` survive a `crash`."""

    def __init__(self, job: JobDefinition, capacity: int = 100, keyed: bool = True) -> None:
        self.job = job
        self.capacity = capacity
        self.keyed = keyed
        self.state: dict[str, list[Any]] = {}
        self.timers: set[tuple[int, str]] = set()
        self.key = ""
        self.out: list[Any] = []
        self.start()

    def start(self) -> None:
        ops = job_operators(self.job, JobConfig({}, job=JOB))
        self.fn = InFlight(ops.first, self.capacity, keyed=self.keyed, poll_ms=10)
        ctx = FakeRuntimeContext()
        ctx.get_list_state = lambda descriptor: ListState(self)  # type: ignore[attr-defined]
        self.fn.open(ctx)  # type: ignore[arg-type]

    def crash(self) -> None:
        """What a failover keeps: the checkpointed state and timers; the process and its loop are gone."""
        self.fn.close()
        self.start()

    def element(self, value: Any) -> None:
        self.key = value.key if isinstance(value, Event) else partition_key(value)
        self.out.extend(self.fn.process_element(value, Context(self)))  # type: ignore[arg-type]

    def fire_due(self) -> None:
        now = int(time.time() * 1000)
        for ts, key in sorted(t for t in self.timers if t[0] <= now):
            self.timers.discard((ts, key))
            self.key = key
            self.out.extend(self.fn.on_timer(ts, Context(self)))  # type: ignore[arg-type]

    def until(self, done: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
            self.fire_due()

    def failed_ns(self) -> list[int]:
        return [orjson.loads(t)["n"] for t in self.out]


def definition(gate: Gate) -> JobDefinition:
    def factory(cfg: JobConfig, metrics: Metrics) -> Processor:
        return Gated(gate)

    return JobDefinition(name=JOB, processor_factory=factory, key_of=lambda e: str(e["id"]))


def event(n: int, key: str, **fields: Any) -> Event:
    return Event(key, orjson.dumps({"id": key, "n": n, **fields}).decode())


def test_a_slow_event_holds_only_itself() -> None:
    gate = Gate()
    h = Harness(definition(gate))
    h.element(event(0, "slow", wait="slow", fail=True))
    for n in range(1, 21):
        h.element(event(n, f"k{n}", fail=True))
    # all 20 others come out while the slow one still runs; process_element never waited for it
    h.until(lambda: len(h.out) == 20)
    assert sorted(h.failed_ns()) == list(range(1, 21))
    assert list(h.state) == ["slow"]  # only the slow event is still in state
    gate.gate("slow").set()
    h.until(lambda: len(h.out) == 21)
    assert h.state == {} and h.timers == set()
    h.fn.close()


def test_one_keys_events_stay_in_order() -> None:
    gate = Gate()
    h = Harness(definition(gate))
    h.element(event(0, "a", wait="first", fail=True))
    for n in range(1, 6):
        h.element(event(n, "a", fail=True))
    h.until(lambda: gate.started == [0])
    time.sleep(0.1)
    h.fire_due()
    assert gate.started == [0] and h.out == []  # the key's next events wait for its first
    gate.gate("first").set()
    h.until(lambda: len(h.out) == 6)
    assert h.failed_ns() == [0, 1, 2, 3, 4, 5]
    h.fn.close()


def test_events_in_state_run_again_after_a_failure_before_newer_ones_of_their_key() -> None:
    gate = Gate()
    h = Harness(definition(gate))
    h.element(event(0, "a", wait="never", fail=True))
    h.element(event(1, "a", fail=True))
    h.element(event(2, "b", wait="never", fail=True))
    h.until(lambda: 0 in gate.started and 2 in gate.started)
    h.crash()  # the running events are lost with the process; their entries are in state
    gate.started.clear()
    gate.gate("never").set()
    h.element(event(3, "a", fail=True))  # newer: after the restored 0 and 1
    h.until(lambda: len(h.out) == 4)
    assert [n for n in gate.started if n != 2] == [0, 1, 3]
    assert [n for n in h.failed_ns() if n != 2] == [0, 1, 3]
    assert sorted(h.failed_ns()) == [0, 1, 2, 3]
    assert h.state == {}
    h.fn.close()


def test_restored_events_are_started_by_their_timer_alone() -> None:
    gate = Gate()
    h = Harness(definition(gate))
    h.element(event(0, "a", wait="never", fail=True))
    h.until(lambda: gate.started == [0])
    h.crash()
    gate.gate("never").set()
    h.until(lambda: len(h.out) == 1)  # no new element: the restored timer restarts it
    assert h.failed_ns() == [0] and gate.started == [0, 0]
    h.fn.close()


def test_back_pressure_at_capacity_waits_for_a_running_event_not_an_emitted_one() -> None:
    gate = Gate()
    h = Harness(definition(gate), capacity=2)
    h.element(event(0, "a", wait="a", fail=True))
    h.element(event(1, "b", wait="b", fail=True))
    blocked = threading.Thread(target=h.element, args=(event(2, "c", fail=True),))
    blocked.start()
    time.sleep(0.2)
    assert blocked.is_alive()  # two running: the third waits
    gate.gate("b").set()
    blocked.join(5)
    assert not blocked.is_alive()
    gate.gate("a").set()
    h.until(lambda: len(h.out) == 3)
    h.fn.close()


def test_an_unkeyed_job_is_keyed_by_partition() -> None:
    gate = Gate()
    job = JobDefinition(
        name=JOB,
        processor_factory=definition(gate).processor_factory,
        key_of=lambda e: str(e["id"]),
        keyed=False,
    )
    h = Harness(job, keyed=False)
    h.element(kafka_row({"id": "x", "n": 0, "wait": "x", "fail": True}, partition=0, offset=0))
    h.element(kafka_row({"id": "y", "n": 1, "fail": True}, partition=0, offset=1))
    h.element(kafka_row(b"not json", partition=1, offset=0))
    h.until(lambda: len(h.out) == 2)  # y and the malformed record pass the slow x of the same partition
    assert set(h.state) == {"input/0"}
    gate.gate("x").set()
    h.until(lambda: len(h.out) == 3)
    h.fn.close()
