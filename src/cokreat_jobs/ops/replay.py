"""`cokreat-jobs replay --job JOB`: bring failed events home once their cause is gone.

Reads the job's failed topic with a consumer group of its own (`<job>-replay`, so a second run does not send
the same records again), keeps the records whose `jobName` is this job's (the Scala jobs' failed topics are
shared between jobs), and sends back to the input topic those whose `edata.iteration <= maxIteration`, as the
original event (the failure envelope removed, the incremented iteration kept). Records without an event
(malformed input) stay where they are, for a person to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.jobs.user_delete.logic import event_action, input_shape
from cokreat_jobs.ops.kafka_io import producer

ENVELOPE_KEYS = ("jobName", "failInfo")


@dataclass
class ReplayReport:
    moved: int = 0
    exhausted: int = 0
    malformed: int = 0
    other_jobs: int = 0

    def __str__(self) -> str:
        return (
            f"moved {self.moved}, skipped {self.exhausted} as exhausted (iteration > maxIteration), "
            f"skipped {self.malformed} as malformed (left for a person to read), "
            f"ignored {self.other_jobs} of other jobs"
        )


def max_iteration(job: str, cfg: JobConfig) -> int:
    key = "content_auto_creator.maxIteration" if job == "content-auto-creator" else f"{job}.maxIteration"
    return cfg.get_int(key, 3)


def decide(record: dict[str, Any], job: str, limit: int) -> tuple[str, dict[str, Any] | None]:
    """'move' with the event to send, or 'exhausted' / 'malformed' / 'other' with None."""
    if record.get("jobName") != job:
        return "other", None
    if "raw" in record or not isinstance(record.get("edata"), dict):
        return "malformed", None
    iteration = record["edata"].get("iteration", 1)
    if not isinstance(iteration, int) or isinstance(iteration, bool):
        return "malformed", None
    if iteration > limit:
        return "exhausted", None
    return "move", {k: v for k, v in record.items() if k not in ENVELOPE_KEYS}


def input_topic_of(job: str, cfg: JobConfig) -> Callable[[dict[str, Any]], str]:
    """Where a replayed event of ``job`` goes: ``kafka.input.topic``, or for user-delete its action's topic
    under the config shape in use (release-8: transfers to ``kafka.input.ownership_transfer_topic``)."""
    if job == "user-delete":
        shape = input_shape(cfg)
        return lambda event: shape.topic_for(event_action(event))
    topic = cfg.get_str("kafka.input.topic")
    return lambda event: topic


def _caught_up(consumer: Consumer, parts: list[TopicPartition]) -> bool:
    """Every assigned partition read to its end (so a replay of a quiet topic ends at once)."""
    for tp, pos in zip(parts, consumer.position(parts), strict=True):
        _, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
        if high > 0 and (pos.offset < 0 or pos.offset < high):
            return False
    return True


def replay(job: str, cfg: JobConfig, idle_timeout: float = 5.0, max_wait: float = 300.0) -> ReplayReport:
    brokers = cfg.get_str("kafka.broker-servers")
    failed_topic = cfg.get_str("kafka.failed.topic")
    topic_of = input_topic_of(job, cfg)
    limit = max_iteration(job, cfg)
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"{job}-replay",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "log_level": 3,
        }
    )
    out = producer(brokers)
    report = ReplayReport()
    assigned: list[TopicPartition] = []
    consumer.subscribe([failed_topic], on_assign=lambda c, parts: assigned.extend(parts))
    deadline = time.monotonic() + max_wait
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                # the quiet period counts only once the group has its partitions (joining takes seconds)
                if not assigned:
                    last_record = time.monotonic()
                elif time.monotonic() - last_record >= idle_timeout or _caught_up(consumer, assigned):
                    break
                continue
            error = msg.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise RuntimeError(f"reading {failed_topic}: {error}")
            last_record = time.monotonic()
            try:
                record = orjson.loads(msg.value() or b"")
            except orjson.JSONDecodeError:
                record = None
            verdict, event = decide(record, job, limit) if isinstance(record, dict) else ("malformed", None)
            if verdict == "move" and event is not None:
                key = (
                    str(event.get("object", {}).get("id", ""))
                    if isinstance(event.get("object"), dict)
                    else ""
                )
                out.produce(topic_of(event), value=orjson.dumps(event), key=key.encode() or None)
                out.poll(0)
                report.moved += 1
            elif verdict == "exhausted":
                report.exhausted += 1
            elif verdict == "malformed":
                report.malformed += 1
            else:
                report.other_jobs += 1
            # commit only what has reached the input topic: a crash here re-sends, never loses
            if out.flush(30) != 0:
                raise RuntimeError("could not deliver replayed events to the input topic")
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None  # a record has them
            consumer.commit(offsets=[TopicPartition(topic, partition, offset + 1)], asynchronous=False)
    finally:
        consumer.close()
    return report
