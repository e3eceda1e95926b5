"""The traffic of a run on Kafka: a producer at a fixed rate that keeps where each record landed, and a
reader of the failed topic from its beginning."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


class RateProducer(threading.Thread):
    """Sends records at a fixed rate (records/s) in the background; keeps each delivery's partition/offset."""

    def __init__(self, brokers: str, topic: str, records: list[tuple[bytes, bytes]], rate: float) -> None:
        super().__init__(daemon=True)
        self.brokers, self.topic, self.records, self.rate = brokers, topic, records, rate
        self.delivered: dict[int, tuple[int, int]] = {}
        self.errors: list[str] = []
        self.sent = 0
        self.finished_at: float | None = None

    def run(self) -> None:
        p = Producer(
            {
                "bootstrap.servers": self.brokers,
                "message.max.bytes": 4 * 1024 * 1024 + 64 * 1024,
                "linger.ms": 5,
                "enable.idempotence": True,
                "message.timeout.ms": 300000,
                "log_level": 0,
            }
        )
        start = time.monotonic()
        for n, (key, value) in enumerate(self.records):
            wait = start + n / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)

            def cb(err: Any, msg: Any, n: int = n) -> None:
                if err is not None:
                    self.errors.append(f"record {n}: {err}")
                else:
                    self.delivered[n] = (msg.partition(), msg.offset())

            while True:
                try:
                    p.produce(self.topic, value=value, key=key, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.1)
            self.sent += 1
            p.poll(0)
        p.flush(300)
        self.finished_at = time.monotonic()


class TopicReader:
    """Reads a topic from the beginning, incrementally (the failed topic exists only once it has a record)."""

    def __init__(self, brokers: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": f"chaos-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 0,
                "fetch.message.max.bytes": 8 * 1024 * 1024,
            }
        )
        self.assigned = False
        self.records: list[dict[str, Any]] = []

    def poll(self, seconds: float = 1.0) -> list[dict[str, Any]]:
        if not self.assigned:
            try:
                md = self.consumer.list_topics(self.topic, timeout=2)
            except Exception:
                return self.records
            meta = md.topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                return self.records
            self.consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])
            self.assigned = True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                continue
            try:
                rec = json.loads(msg.value() or b"")
            except ValueError:
                rec = {"unparseable": True}
            self.records.append(rec if isinstance(rec, dict) else {"unparseable": True})
        return self.records

    def close(self) -> None:
        self.consumer.close()
