"""The Flink wiring every job reuses: Kafka in, parse, key, async processing, failed topic out.

Each job supplies only a `Processor` (plain Python, unit-tested without Flink) and a key function; this module
builds

    Kafka (raw bytes + topic/partition/offset) -> parse & key -> key_by -> async processor -> failed topic

and, for a job with a second stage (auto-creator-v2's link operator),

    ... -> async processor -+-> failed records ------------------------------------+-> failed topic
                            +-> handed-on requests -> key_by -> async next stage --+

The input is read through the Table API's Kafka connector in `raw` format because that is the one PyFlink
source that hands Python the record's bytes *and* its topic, partition and offset, which a malformed record's
failed-topic entry must carry. Offsets are committed to the consumer group on checkpoints.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pyflink.common import Configuration, Row, Time, Types
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import (
    AsyncDataStream,
    AsyncFunction,
    CheckpointingMode,
    MapFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
from pyflink.table import DataTypes, Schema, StreamTableEnvironment, TableDescriptor

from cokreat_jobs.adapters.protection import registered_services, service_stats
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Processor
from cokreat_jobs.core.errors import JobError, MalformedEvent
from cokreat_jobs.core.event import parse_record
from cokreat_jobs.core.failed import failed_event, malformed_record
from cokreat_jobs.core.logs import configure_job_logging, get_logger
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.flink.jars import connector_jars

# Kinds of element between the parse step and the async step, and out of a first stage that hands on.
EVENT = "event"
MALFORMED = "malformed"
FAILED = "failed"


def metric_names(cfg: JobConfig) -> dict[str, str]:
    names = {
        "total": "total-message-count",
        "success": "success-message-count",
        "skipped": "skipped-message-count",
        "failed": "failed-message-count",
        "error": "error-message-count",
        "retry": "retry-count",
    }
    for k in list(names):
        names[k] = cfg.get_str(f"metrics.{k}", names[k])
    return names


class _FlinkCounters:
    """Monotonic Flink counters, group = job name (the reference used read-and-reset gauges).

    PyFlink's counters are Beam metrics, recorded only on the thread that processes the bundle; the async
    operator runs our coroutines on a thread of its own, where an increment would be lost. So increments are
    kept here and applied to the Flink counters from a gauge callback, which PyFlink calls on the bundle
    thread when each bundle finishes (at least once a second, `python.fn-execution.bundle.time`).
    """

    def __init__(self, ctx: RuntimeContext | None, job: str, names: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._counters: dict[str, Any] = {}
        self.totals: dict[str, int] = {k: 0 for k in names}
        self.in_flight = 0
        self._group: Any = None
        # per target service (core/protection.py): <job>.http.<service>.<figure>, e.g. adaptive-limit
        self._service_gauges: set[str] = set()
        self._service_stats: dict[str, dict[str, float]] = {}
        if ctx is not None:
            group = self._group = ctx.get_metrics_group().add_group(job)
            self._counters = {k: group.counter(v) for k, v in names.items()}
            group.gauge("in-flight-events", self._flush)

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._pending[name] = self._pending.get(name, 0) + n
            self.totals[name] = self.totals.get(name, 0) + n

    def _flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
        for name, n in pending.items():
            counter = self._counters.get(name)
            if counter is not None:
                counter.inc(n)
        self._flush_services()
        return self.in_flight

    def _flush_services(self) -> None:
        # Clients (and their protection) are made lazily inside the processor, so a service's gauges are
        # registered on the first flush that sees it. PyFlink reads this group's gauges before its
        # subgroups', so the snapshot taken here is what the service gauges report in the same pass.
        if self._group is None:
            return
        self._service_stats = {name: service_stats(name) for name in registered_services()}
        for name, stats in self._service_stats.items():
            if name in self._service_gauges:
                continue
            self._service_gauges.add(name)
            sub = self._group.add_group("http").add_group(name)
            for stat in stats:
                sub.gauge(stat, self._service_gauge(name, stat))

    def _service_gauge(self, name: str, stat: str) -> Callable[[], int]:
        return lambda: int(self._service_stats.get(name, {}).get(stat, 0))


def parse_and_key(
    job: JobDefinition, max_record_bytes: int, row: Row
) -> tuple[str, str, str, dict[str, Any] | None]:
    """Raw Kafka record -> (key, kind, payload, event). Malformed input becomes its failed-topic record."""
    raw = bytes(row[0]) if row[0] is not None else b""
    try:
        event = parse_record(raw, max_record_bytes)
    except MalformedEvent as e:
        record = malformed_record(raw, job.name, str(e), row[1], row[2], row[3])
        return ("", MALFORMED, orjson.dumps(record).decode(), None)
    try:
        key = job.key_of(event)
    except Exception:  # a key we cannot read is the processor's to report, in order with nothing
        key = ""
    # The event travels as text: re-parsing with orjson is cheaper than pickling a dict.
    return (key, EVENT, raw.decode("utf-8"), event)


class ParseAndKey(MapFunction):
    """Raw Kafka record -> (key, kind, payload), before the key_by of a keyed job."""

    def __init__(self, job: JobDefinition, max_record_bytes: int) -> None:
        self._job = job
        self._max = max_record_bytes

    def map(self, row: Row) -> tuple[str, str, str]:
        return parse_and_key(self._job, self._max, row)[:3]


class ProcessEvents(AsyncFunction):
    """Runs a job's processor with many events in flight; events of one key run one after another."""

    def __init__(self, job: JobDefinition, config: dict[str, Any], stage: NextStage | None = None) -> None:
        self._job = job
        self._config = config
        # None: the job's first stage; else the next stage this operator runs.
        self._stage = stage
        # A first stage with a next stage emits (key, kind, payload) tuples: failed records and requests.
        self._tagged = stage is None and job.next_stage is not None
        # An unkeyed job's first stage takes the Kafka rows as they come and parses them itself.
        self._raw = stage is None and not job.keyed
        self._max_record_bytes = int(
            JobConfig(config, job=job.name).get_int("kafka.max_record_bytes", 1024 * 1024)
        )
        self._processor: Processor | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def open(self, runtime_context: RuntimeContext) -> None:
        cfg = JobConfig(self._config, job=self._job.name)
        configure_job_logging(cfg.get_str("log.level", "INFO"))
        self._log = get_logger(f"cokreat_jobs.{self._job.name}")
        self._metrics = _FlinkCounters(runtime_context, self._job.name, metric_names(cfg))
        self._cfg = cfg

    def _ensure_processor(self) -> Processor:
        # Created lazily on the operator's event loop thread: aiohttp sessions belong to the loop they
        # were made on.
        if self._processor is None:
            factory = self._stage.processor_factory if self._stage else self._job.processor_factory
            self._processor = factory(self._cfg, self._metrics)
        return self._processor

    async def async_invoke(self, value: Row) -> list[Any]:
        if self._raw:
            key, kind, payload, event = parse_and_key(self._job, self._max_record_bytes, value)
        else:
            key, kind, payload = value[1]
            event = None
        if self._stage is None:
            self._metrics.inc("total")
        self._metrics.in_flight += 1
        try:
            return await self._invoke(key, kind, payload, event)
        finally:
            self._metrics.in_flight -= 1

    async def _invoke(self, key: str, kind: str, payload: str, event: dict[str, Any] | None) -> list[Any]:
        if kind == MALFORMED:
            self._metrics.inc("failed")
            return [self._failed_out(payload)]
        if event is None:
            event = orjson.loads(payload)
        if not key:
            return await self._run(event)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        try:
            async with lock:
                return await self._run(event)
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)

    def _failed_out(self, record: str) -> Any:
        return ("", FAILED, record) if self._tagged else record

    async def _run(self, event: dict[str, Any]) -> list[Any]:
        processor = self._ensure_processor()
        started = time.monotonic()
        try:
            outcome = await processor.process(event)
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
            if self._tagged and outcome.next_request is not None:
                # counted by the next stage, which decides the event's outcome
                return [(outcome.next_key, EVENT, orjson.dumps(outcome.next_request).decode())]
            # no next stage to take it (a processor used on its own): the hand-off is its success
            outcome = Outcome.success("handed-on", outcome.detail)
        self._metrics.inc(outcome.kind)
        if outcome.kind == "failed" and outcome.failed_record is not None:
            return [self._failed_out(orjson.dumps(outcome.failed_record).decode())]
        return []

    def close(self) -> None:
        processor, self._processor = self._processor, None
        if processor is None:
            return
        # The operator's loop has stopped by now; close on a fresh loop (best effort: sockets die with us).
        try:
            asyncio.run(asyncio.wait_for(processor.close(), 5))
        except Exception:
            pass


def _prometheus_on_local_classpath() -> None:
    # A MiniCluster loads no plugins: its reporter factories come from the gateway JVM's classpath, which
    # PyFlink's launcher extends with HADOOP_CLASSPATH. Must run before the gateway starts (the first
    # Configuration()). On a real cluster the plugins/metrics-prometheus folder serves instead.
    from pyflink import __file__ as pyflink_init

    jars = sorted((Path(pyflink_init).parent / "plugins" / "metrics-prometheus").glob("*.jar"))
    current = os.environ.get("HADOOP_CLASSPATH", "")
    missing = [str(j) for j in jars if str(j) not in current.split(os.pathsep)]
    if missing:
        os.environ["HADOOP_CLASSPATH"] = os.pathsep.join([*missing, *([current] if current else [])])


# Local runs (the MiniCluster of `cokreat-jobs run`, so make demo, bench and the e2e tests too) keep its REST
# API, which has no auth and takes jar uploads, on loopback unless the config's `flink { ... }` names them;
# the bind hosts keep its blob server there too.
LOCAL_BIND = {
    "rest.bind-address": "127.0.0.1",
    "rest.address": "127.0.0.1",
    "jobmanager.bind-host": "127.0.0.1",
    "taskmanager.bind-host": "127.0.0.1",
}


def flink_options(cfg: JobConfig, *, local: bool = False) -> dict[str, str]:
    """The Flink options of the job, as text; ``local``: for the MiniCluster of a local run (LOCAL_BIND).

    Not for ``flink run -py`` (``local`` False): there the client's own configuration says where the cluster
    is, and a ``rest.address`` here would send the submission elsewhere.
    """
    opts: dict[str, str] = {}
    opts["python.executable"] = cfg.get_str("python.executable", sys.executable)
    opts["python.client.executable"] = cfg.get_str("python.executable", sys.executable)
    attempts = cfg.get_int("task.restart-strategy.attempts", 3)
    delay_ms = cfg.get_int("task.restart-strategy.delay", 30000)
    strategy = cfg.get_str("task.restart-strategy.type", "fixed-delay")
    opts["restart-strategy.type"] = strategy
    if strategy == "fixed-delay":
        opts["restart-strategy.fixed-delay.attempts"] = str(attempts)
        opts["restart-strategy.fixed-delay.delay"] = f"{delay_ms} ms"
    elif strategy == "exponential-delay":
        opts["restart-strategy.exponential-delay.initial-backoff"] = f"{delay_ms} ms"
        opts["restart-strategy.exponential-delay.max-backoff"] = (
            f"{cfg.get_int('task.restart-strategy.max-delay', 60000)} ms"
        )
        opts["restart-strategy.exponential-delay.attempts-before-reset-backoff"] = str(2**31 - 1)
    tolerable = cfg.get_int("task.checkpointing.tolerable-failures", 0)
    opts["execution.checkpointing.tolerable-failed-checkpoints"] = str(tolerable)
    # Prometheus scrape endpoint (the reporter jar ships in PyFlink's plugins/metrics-prometheus): a port or a
    # range ("9249-9259": each task manager of a host takes the next free one). Unset or 0: no reporter.
    prom_port = str(cfg.get("metrics.prometheus.port", "") or "").strip()
    if prom_port and prom_port != "0":
        opts["metrics.reporter.prom.factory.class"] = (
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        )
        opts["metrics.reporter.prom.port"] = prom_port
    if local:
        opts.update(LOCAL_BIND)
    # raw Flink options pass through (and win): `flink { rest.port = 8081 }` sets Flink's `rest.port`
    for k, v in _flatten(cfg.get_dict("flink", {})).items():
        opts[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return opts


def flink_configuration(cfg: JobConfig, *, local: bool = False) -> Configuration:
    prom_port = str(cfg.get("metrics.prometheus.port", "") or "").strip()
    if prom_port and prom_port != "0":
        _prometheus_on_local_classpath()
    conf = Configuration()
    for k, v in flink_options(cfg, local=local).items():
        conf.set_string(k, v)
    return conf


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def build_pipeline(
    job: JobDefinition, cfg: JobConfig, env: StreamExecutionEnvironment | None = None
) -> StreamExecutionEnvironment:
    """Assemble the job's graph on `env` (the MiniCluster's by default); the caller executes it."""
    env = env or StreamExecutionEnvironment.get_execution_environment(flink_configuration(cfg))
    env.add_jars(*connector_jars())
    parallelism = cfg.get_int("task.parallelism", 1)
    env.set_parallelism(parallelism)
    env.enable_checkpointing(
        cfg.get_int("task.checkpointing.interval", 60000), CheckpointingMode.EXACTLY_ONCE
    )
    t_env = StreamTableEnvironment.create(stream_execution_environment=env)

    brokers = cfg.get_str("kafka.broker-servers")
    source_table = f"{job.name.replace('-', '_')}_input"
    t_env.create_temporary_table(
        source_table,
        TableDescriptor.for_connector("kafka")
        .schema(
            Schema.new_builder()
            .column("value", DataTypes.BYTES())
            .column_by_metadata("topic", DataTypes.STRING(), "topic", True)
            .column_by_metadata("kpartition", DataTypes.INT(), "partition", True)
            .column_by_metadata("koffset", DataTypes.BIGINT(), "offset", True)
            .build()
        )
        # A pattern, not a topic name: Flink's Kafka source fails (and the job restarts until it gives up)
        # when a named topic does not exist yet; a pattern waits for it to appear.
        .option("topic-pattern", re.escape(cfg.get_str("kafka.input.topic")))
        .option("properties.bootstrap.servers", brokers)
        .option("properties.group.id", cfg.get_str("kafka.groupId"))
        # committed offsets first; a group without any starts where kafka.auto.offset.reset says
        .option("scan.startup.mode", "group-offsets")
        .option("properties.auto.offset.reset", cfg.get_str("kafka.auto.offset.reset", "earliest"))
        .option("properties.isolation.level", "read_committed")
        .option("properties.max.partition.fetch.bytes", str(8 * 1024 * 1024))
        .option(
            "scan.topic-partition-discovery.interval",
            f"{cfg.get_int('kafka.partition_discovery_ms', 5000)} ms",
        )
        .option("format", "raw")
        .build(),
    )
    records = t_env.to_data_stream(t_env.from_path(source_table))

    if job.keyed:
        parsed = (
            records.map(
                ParseAndKey(job, cfg.get_int("kafka.max_record_bytes", 1024 * 1024)),
                output_type=Types.TUPLE([Types.STRING(), Types.STRING(), Types.STRING()]),
            )
            .name("parse")
            .uid(f"{job.name}-parse")
        )
        first_input = parsed.key_by(_key, key_type=Types.STRING())
    else:
        first_input = records  # the async operator parses: see JobDefinition.keyed
    tuple_type = Types.TUPLE([Types.STRING(), Types.STRING(), Types.STRING()])
    capacity = cfg.get_int("task.async.capacity", 100)
    # Operator timeout 0: PyFlink starts an OS timer thread per element otherwise (halves throughput);
    # every call inside the processor carries its own deadline instead.
    processed = (
        AsyncDataStream.unordered_wait(
            first_input,
            ProcessEvents(job, cfg.as_dict()),
            Time.milliseconds(0),
            capacity,
            tuple_type if job.next_stage else Types.STRING(),
        )
        .name("process")
        .uid(f"{job.name}-process")
    )
    if job.next_stage is None:
        failed = processed
    else:
        stage = job.next_stage
        requests = (
            processed.filter(_is_request).name(f"to-{stage.name}").uid(f"{job.name}-to-{stage.name}")
        ).key_by(_key, key_type=Types.STRING())
        failed_next = (
            AsyncDataStream.unordered_wait(
                requests,
                ProcessEvents(job, cfg.as_dict(), stage),
                Time.milliseconds(0),
                capacity,
                Types.STRING(),
            )
            .name(stage.name)
            .uid(f"{job.name}-{stage.name}")
            .set_parallelism(max(1, cfg.get_int(stage.parallelism_key, 1)))
        )
        failed = (
            processed.filter(_is_failed)
            .name("failed-records")
            .uid(f"{job.name}-failed-records")
            .map(_payload, output_type=Types.STRING())
            .name("failed-record-text")
            .uid(f"{job.name}-failed-record-text")
            .union(failed_next)
        )

    failed.sink_to(_failed_sink(cfg, brokers)).name("failed-topic").uid(f"{job.name}-failed-sink")
    return env


def _failed_sink(cfg: JobConfig, brokers: str) -> KafkaSink:
    return (
        KafkaSink.builder()
        .set_bootstrap_servers(brokers)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(cfg.get_str("kafka.failed.topic"))
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .set_property("max.request.size", str(8 * 1024 * 1024))
        .build()
    )


def _key(t: tuple[str, str, str]) -> str:
    return t[0]


def _is_request(t: tuple[str, str, str]) -> bool:
    return t[1] == EVENT


def _is_failed(t: tuple[str, str, str]) -> bool:
    return t[1] == FAILED


def _payload(t: tuple[str, str, str]) -> str:
    return t[2]


def run(job: JobDefinition, cfg: JobConfig) -> None:
    env = build_pipeline(job, cfg)
    env.execute(cfg.get_str("job.name", job.name))
