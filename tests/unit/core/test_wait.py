"""poll_until on a fake clock: backoff, the deadline, pending exceptions, and what it hands back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cokreat_jobs.core.wait import DeadlinePassed, poll_until


class Clock:
    """Time that passes only when slept; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Busy(Exception):
    pass


def answers(*values: Any) -> Any:
    """A probe giving ``values`` in turn (an exception instance is raised), the last one repeating."""
    script = list(values)
    calls: list[int] = []

    async def probe() -> Any:
        calls.append(1)
        value = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(value, BaseException):
            raise value
        return value

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


def poll(probe: Any, clock: Clock, **kw: Any) -> Any:
    kw.setdefault("timeout_s", 10.0)
    kw.setdefault("backoff_s", 0.2)
    kw.setdefault("max_backoff_s", 1.0)
    return asyncio.run(poll_until(probe, clock=clock, sleep=clock.sleep, **kw))


def test_ready_at_once_does_not_sleep() -> None:
    clock = Clock()
    assert poll(answers(True), clock) is True
    assert clock.sleeps == []


def test_backoff_doubles_up_to_its_cap() -> None:
    clock = Clock()
    probe = answers(*[False] * 5, "ready")
    assert poll(probe, clock) == "ready"
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(probe.calls) == 6


def test_the_predicate_decides_and_the_answer_is_returned() -> None:
    clock = Clock()
    answer = poll(
        answers({"status": "Processing"}, {"status": "Live"}), clock, until=lambda c: c["status"] == "Live"
    )
    assert answer == {"status": "Live"} and clock.sleeps == [0.2]


def test_no_sleep_ends_past_the_deadline() -> None:
    clock = Clock()
    probe = answers(False)
    with pytest.raises(DeadlinePassed) as info:
        poll(probe, clock, timeout_s=3.0)
    # 0.2 + 0.4 + 0.8 + 1.0 = 2.4; another 1.0 would end at 3.4, past the 3 s deadline
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.0] and sum(clock.sleeps) <= 3.0
    assert len(probe.calls) == 5
    assert info.value.last is False and info.value.timeout_s == 3.0
    assert "3 s" in str(info.value)


def test_a_zero_timeout_probes_once() -> None:
    clock = Clock()
    probe = answers(False)
    with pytest.raises(DeadlinePassed):
        poll(probe, clock, timeout_s=0.0)
    assert len(probe.calls) == 1 and clock.sleeps == []


def test_pending_exceptions_mean_not_yet() -> None:
    clock = Clock()
    probe = answers(Busy("processing"), Busy("processing"), "published")
    assert poll(probe, clock, until=lambda _: True, pending=(Busy,)) == "published"
    assert clock.sleeps == [0.2, 0.4]


def test_the_last_pending_exception_is_handed_back() -> None:
    clock = Clock()
    last = Busy("still processing")
    with pytest.raises(DeadlinePassed) as info:
        poll(answers(Busy("first"), last), clock, timeout_s=1.0, until=lambda _: True, pending=(Busy,))
    assert info.value.last is last
    assert info.value.__context__ is None, "raised outside the handler: the caller chains what it quotes"


def test_other_exceptions_pass_through_at_once() -> None:
    clock = Clock()
    probe = answers(False, ValueError("refused"))
    with pytest.raises(ValueError, match="refused"):
        poll(probe, clock, pending=(Busy,))
    assert len(probe.calls) == 2 and clock.sleeps == [0.2]


def test_the_deadline_is_measured_from_the_call_on_the_given_clock() -> None:
    clock = Clock()

    async def slow_probe() -> bool:
        clock.now += 2.0  # each probe itself takes 2 s
        return False

    with pytest.raises(DeadlinePassed):
        poll(slow_probe, clock, timeout_s=5.0)
    # probe (at 2 s), sleep 0.2, probe (4.2 s), sleep 0.4 (ends at 4.6 s, before the deadline), probe (6.6 s):
    # a sleep never ends past the deadline; a probe begun before it is awaited to its end
    assert clock.sleeps == [0.2, 0.4]
