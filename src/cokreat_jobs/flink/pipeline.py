"""The Flink graph every job reuses: Kafka in, parse, key, async processing, failed topic out.

Each job supplies only a `Processor` (plain Python, unit-tested without Flink) and a key function; this module
builds, from the operators of `flink/operators.py`,

    Kafka (raw bytes + topic/partition/offset) -> parse & key -> key_by -> async processor -> failed topic

and, for a job with a second stage (auto-creator-v2's link operator),

    ... -> async processor -+-> Failed ---------------------------------------+-> failed topic
                            +-> Event (handed on) -> key_by -> async next stage --+

An unkeyed job (`JobDefinition.keyed`) has no parse map: its process stage reads Kafka's rows (not keyed
under PyFlink's operator).

"async processor" is PyFlink's `AsyncDataStream.unordered_wait` by default (`pyflink-async`), whose every
bundle end and checkpoint waits for all the events in flight; opt-in, `inflight.InFlight` (`keyed-state`): a
keyed process function that keeps them in keyed state, so bundle ends and checkpoints do not wait for a slow
event (docs/RELIABILITY.md, "In-flight events"). Under keyed-state every stage's key_by is by bucket
(`inflight.bucket_of`) instead, and the Kafka table carries tick rows among its records (`tick_rows`).

The input is read through the Table API's Kafka connector in `raw` format because that is the one PyFlink
source that hands Python the record's bytes *and* its topic, partition and offset, which a malformed record's
failed-topic entry must carry. Offsets are committed to the consumer group on checkpoints.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Time, Types
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import AsyncDataStream, CheckpointingMode, DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
from pyflink.table import DataTypes, Schema, StreamTableEnvironment, TableDescriptor

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.flink.elements import (
    ELEMENT_TYPE,
    element_key,
    failed_text,
    is_event,
    is_failed,
    is_handed_on,
)
from cokreat_jobs.flink.inflight import (
    DEFAULT_BUCKETS,
    DEFAULT_POLL_MS,
    TICK_TOPIC,
    InFlight,
    bucket_of,
    tick_rate,
)
from cokreat_jobs.flink.jars import connector_jars
from cokreat_jobs.flink.operators import job_operators

__all__ = ["add_operators", "build_pipeline", "flink_configuration", "run"]


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
    # The Scala jobs' checkpoint timeout (Flink's own default is 10 min whatever the config said).
    opts["execution.checkpointing.timeout"] = f"{cfg.get_int('task.checkpointing.timeout', 600000)} ms"
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
        .option("topic-pattern", topic_pattern(job.topics(cfg)))
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
    table = t_env.from_path(source_table)
    if async_mode(cfg) == IN_FLIGHT_STATE:
        table = tick_rows(t_env, cfg, source_table)
    records = t_env.to_data_stream(table)
    failed = add_operators(job, cfg, records)
    failed.sink_to(_failed_sink(cfg, brokers)).name("failed-topic").uid(f"{job.name}-failed-sink")
    return env


def tick_rows(t_env: StreamTableEnvironment, cfg: JobConfig, source_table: str) -> Any:
    """The Kafka table with keyed-state's ticks among its rows (flink/inflight.py): a generated row for a
    random bucket, `task.async.buckets` rows every `task.async.poll_ms`, shaped as a Kafka row whose topic
    is empty (no Kafka topic is) and whose partition is the bucket's number."""
    buckets = max(1, cfg.get_int("task.async.buckets", DEFAULT_BUCKETS))
    rate = tick_rate(buckets, cfg.get_int("task.async.poll_ms", DEFAULT_POLL_MS))
    ticks = f"{source_table}_ticks"
    t_env.create_temporary_table(
        ticks,
        TableDescriptor.for_connector("datagen")
        .schema(Schema.new_builder().column("bucket", DataTypes.INT()).build())
        .option("rows-per-second", str(rate))
        .option("fields.bucket.kind", "random")
        .option("fields.bucket.min", "0")
        .option("fields.bucket.max", str(buckets - 1))
        .build(),
    )
    return t_env.sql_query(
        f"SELECT `value`, topic, kpartition, koffset FROM {source_table} "
        f"UNION ALL SELECT CAST(NULL AS BYTES), CAST('{TICK_TOPIC}' AS STRING), bucket, CAST(-1 AS BIGINT) "
        f"FROM {ticks}"
    )


def topic_pattern(topics: list[str]) -> str:
    """The source's topic pattern: exactly these topics (Java's full match of an alternation)."""
    return "|".join(re.escape(t) for t in dict.fromkeys(topics))


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


# task.async.operator: how the process stages hold their events in flight (docs/RELIABILITY.md)
IN_FLIGHT_STATE = "keyed-state"  # flink/inflight.py: in keyed state, a slow event holds only itself (opt-in)
PYFLINK_ASYNC = "pyflink-async"  # PyFlink's async operator: every bundle end and checkpoint waits for all
ASYNC_OPERATORS = (IN_FLIGHT_STATE, PYFLINK_ASYNC)


def async_mode(cfg: JobConfig) -> str:
    """`task.async.operator`, checked."""
    mode = cfg.get_str("task.async.operator", PYFLINK_ASYNC)
    if mode not in ASYNC_OPERATORS:
        raise ValueError(f"task.async.operator must be one of {', '.join(ASYNC_OPERATORS)}, not {mode!r}")
    return mode


def add_operators(job: JobDefinition, cfg: JobConfig, records: DataStream) -> DataStream:
    """The operators between the Kafka rows (`Row(value, topic, kpartition, koffset)`, and under keyed-state
    the tick rows of `tick_rows` among them) and the failed topic; returns the failed-topic records, as text.
    Operator uids are what savepoints restore by: keep them."""
    ops = job_operators(job, cfg)
    mode = async_mode(cfg)
    capacity = cfg.get_int("task.async.capacity", 100)
    buckets = max(1, cfg.get_int("task.async.buckets", DEFAULT_BUCKETS))
    in_state = mode == IN_FLIGHT_STATE

    def stage(
        stream: DataStream, op: Any, output_type: Any, *, keyed: bool = True, forward_ticks: bool = False
    ) -> DataStream:
        if in_state:
            by_bucket = stream.key_by(lambda v: bucket_of(v, buckets), key_type=Types.STRING())
            fn = InFlight(op, capacity, keyed=keyed, forward_ticks=forward_ticks)
            return by_bucket.process(fn, output_type)
        # Operator timeout 0: PyFlink starts an OS timer thread per element otherwise (halves throughput);
        # the per-event deadline (task.event_deadline_ms) bounds each event instead.
        return AsyncDataStream.unordered_wait(stream, op, Time.milliseconds(0), capacity, output_type)

    if ops.parse is not None:
        parsed = records.map(ops.parse, output_type=ELEMENT_TYPE).name("parse").uid(f"{job.name}-parse")
        # keyed-state keys by bucket inside `stage`; PyFlink's operator takes the events keyed by their key
        first_input = parsed if in_state else parsed.key_by(element_key, key_type=Types.STRING())
    else:
        first_input = records  # the first stage parses: see JobDefinition.keyed
    processed = (
        stage(
            first_input,
            ops.first,
            ELEMENT_TYPE if ops.next is not None else Types.STRING(),
            keyed=ops.parse is not None,
            forward_ticks=ops.next is not None,
        )
        .name(job.process_name)  # the reference's operator name; the uid is what savepoints restore by
        .uid(f"{job.name}-process")
    )
    if ops.next is None:
        return processed
    next_stage = ops.next.stage
    requests = processed.filter(is_handed_on if in_state else is_event)
    requests = requests.name(f"to-{next_stage.name}").uid(f"{job.name}-to-{next_stage.name}")
    failed_next = (
        stage(
            requests if in_state else requests.key_by(element_key, key_type=Types.STRING()),
            ops.next,
            Types.STRING(),
        )
        .name(next_stage.operator_name or next_stage.name)
        .uid(f"{job.name}-{next_stage.name}")
        .set_parallelism(max(1, cfg.get_int(next_stage.parallelism_key, 1)))
    )
    return (
        processed.filter(is_failed)
        .name("failed-records")
        .uid(f"{job.name}-failed-records")
        .map(failed_text, output_type=Types.STRING())
        .name("failed-record-text")
        .uid(f"{job.name}-failed-record-text")
        .union(failed_next)
    )


def run(job: JobDefinition, cfg: JobConfig) -> None:
    env = build_pipeline(job, cfg)
    env.execute(job.job_name(cfg))
