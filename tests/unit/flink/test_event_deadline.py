"""`task.event_deadline_ms`: one event's outer bound, enforced by the wiring around each processor call.

An event past it ends in the failed topic (replayable reason, the deadline named) and the others are not held;
nothing raises out of the operator (which would restart the job and replay the same event).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.flink.testing import PipelineDriver, kafka_row
from cokreat_jobs.ops.replay import decide

JOB = "deadline-test"
# what a stalled event would take without the deadline: long enough that the test tells, short enough that a
# run without the deadline fails by its assertions rather than hanging
STALL_S = 4.0


class Stalling:
    """Succeeds at once, except for events with `"stall": true` (STALL_S) or `"stall": <seconds>`, which take
    that long and then succeed."""

    def __init__(self, cfg: JobConfig, metrics: Metrics) -> None:
        self.cancelled: list[str] = []

    async def process(self, event: dict[str, Any]) -> Outcome:
        if event.get("stall"):
            try:
                stall = event["stall"]
                await asyncio.sleep(STALL_S if stall is True else float(stall))
            except asyncio.CancelledError:
                self.cancelled.append(event["id"])
                raise
        if event.get("hand_on"):
            request = {"id": event["id"], "stall": event.get("stall_next", False)}
            return Outcome.handed_on(event["id"], request)
        return Outcome.success()

    async def close(self) -> None:
        pass


def stalling(cfg: JobConfig, metrics: Metrics) -> Processor:
    return Stalling(cfg, metrics)


def job(*, keyed: bool = True, next_stage: bool = False) -> JobDefinition:
    return JobDefinition(
        name=JOB,
        processor_factory=stalling,
        key_of=lambda e: str(e["id"]),
        keyed=keyed,
        next_stage=NextStage("link", stalling, "task.link.parallelism") if next_stage else None,
    )


def test_an_event_past_its_deadline_fails_replayably_and_holds_nobody() -> None:
    for keyed in (True, False):
        rows = [kafka_row({"id": "do_slow", "stall": True, "edata": {"iteration": 1}}, offset=0)]
        rows += [kafka_row({"id": f"do_{i}"}, offset=i) for i in range(1, 6)]
        driver = PipelineDriver(job(keyed=keyed), JobConfig({"task": {"event_deadline_ms": 300}}, job=JOB))
        started = time.monotonic()
        result = driver.run(rows)
        took = time.monotonic() - started

        assert {k: n for k, n in result.counts.items() if n} == {"total": 6, "success": 5, "failed": 1}
        [record] = result.failed
        assert record["id"] == "do_slow"
        assert record["failInfo"]["reason"] == "retries-exhausted"
        assert "task.event_deadline_ms (300 ms)" in record["failInfo"]["error"]
        assert record["edata"]["iteration"] == 2
        assert decide(record, JOB, 3)[0] == "move"  # replay sends it back
        assert took < STALL_S, f"the run took {took:.1f} s: the deadline did not stop the stalled event"


def test_the_next_stage_has_the_same_deadline() -> None:
    rows = [
        kafka_row({"id": "do_1", "hand_on": True, "stall_next": True}),
        kafka_row({"id": "do_2"}, offset=1),
    ]
    driver = PipelineDriver(job(next_stage=True), JobConfig({"task": {"event_deadline_ms": 300}}, job=JOB))
    result = driver.run(rows)
    [record] = result.failed
    assert record["failInfo"]["reason"] == "retries-exhausted" and record["id"] == "do_1"
    assert result.stage_counts["link"]["failed"] == 1


def test_zero_means_no_deadline() -> None:
    rows = [kafka_row({"id": "do_slow", "stall": 0.5})]
    driver = PipelineDriver(job(), JobConfig({"task": {"event_deadline_ms": 0}}, job=JOB))
    result = driver.run(rows)
    assert result.failed == [] and result.counts["success"] == 1


def test_the_shipped_deadline_is_below_every_jobs_checkpoint_timeout() -> None:
    for name in ("content-auto-creator", "auto-creator-v2", "user-delete"):
        cfg = load_config(name, env={})
        deadline = cfg.get_int("task.event_deadline_ms", 0)
        assert 0 < deadline < cfg.get_int("task.checkpointing.timeout", 0), name
