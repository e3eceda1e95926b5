"""Plain Kafka producing and consuming for the CLI, the demo and the tests (confluent-kafka)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

MAX_RECORD_BYTES = 4 * 1024 * 1024 + 64 * 1024


class ProduceError(RuntimeError):
    pass


def producer(brokers: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": brokers,
            "message.max.bytes": MAX_RECORD_BYTES,
            "linger.ms": 5,
            "enable.idempotence": True,
            "log_level": 3,
        }
    )


def produce_records(
    brokers: str,
    topic: str,
    records: Iterable[bytes | tuple[bytes | None, bytes]],
    flush_timeout: float = 60.0,
) -> int:
    """Send records (a value, or (key, value)); raises ProduceError naming the 1-based record refused."""
    p = producer(brokers)
    errors: list[str] = []
    sent = 0

    def delivered(err: KafkaError | None, msg: object, n: int) -> None:
        if err is not None:
            errors.append(f"record {n}: {err.str()}")

    for n, record in enumerate(records, start=1):
        key, value = record if isinstance(record, tuple) else (None, record)
        while True:
            try:
                p.produce(topic, value=value, key=key, on_delivery=functools.partial(delivered, n=n))
                break
            except BufferError:
                p.poll(0.1)
            except KafkaException as e:
                raise ProduceError(f"record {n}: {e}") from e
        sent += 1
        p.poll(0)
        if errors:
            break
    remaining = p.flush(flush_timeout)
    if errors:
        raise ProduceError("; ".join(errors[:5]))
    if remaining:
        raise ProduceError(f"{remaining} records not delivered within {flush_timeout:.0f} s")
    return sent


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """One record per line; the bytes exactly as in the file (only the line break removed)."""
    for line in stream:
        if line.endswith(b"\r\n"):
            line = line[:-2]
        elif line.endswith(b"\n"):
            line = line[:-1]
        yield line


def produce_lines(brokers: str, topic: str, stream: BinaryIO) -> int:
    return produce_records(brokers, topic, (line for line in read_lines(stream)))


def consume_records(
    brokers: str,
    topic: str,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    timeout: float | None = None,
    group: str | None = None,
) -> Iterator[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group or f"cokreat-jobs-consume-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": group is not None,
            "isolation.level": "read_committed",
            "log_level": 3,
        }
    )
    c.subscribe([topic])
    deadline = time.monotonic() + timeout if timeout is not None else None
    count = 0
    try:
        while max_records is None or count < max_records:
            wait = 0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                return
            msg = c.poll(wait)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise KafkaException(error)
            count += 1
            yield msg.value() or b""
    finally:
        c.close()
