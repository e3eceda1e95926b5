"""The operators between Kafka and the failed topic, driven in memory with raw records (flink/testing.py).

Every record is accounted for: counted as an outcome, and when it failed, written to the failed topic with its
reason; nothing raises out of an operator (an exception there would fail the Flink job and replay it forever).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import orjson
import pytest

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.core.errors import TransientError
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.flink.elements import Event
from cokreat_jobs.flink.operators import ProcessEvents, ProcessHandedOn, ProcessRecords, job_operators
from cokreat_jobs.flink.testing import DriverResult, PipelineDriver, kafka_row

JOB = "wiring-test"


class Scripted:
    """A processor that does what each event's `do` says: success, skip, fail, hand-on, raise, job-error."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.closed = False

    async def process(self, event: dict[str, Any]) -> Outcome:
        self.seen.append(event)
        do = event.get("do", "success")
        if do == "success":
            return Outcome.success()
        if do == "skip":
            return Outcome.skipped("not for us")
        if do == "fail":
            return Outcome.failed(failed_event(event, JOB, "it broke", "permanent"), "permanent")
        if do == "hand-on":
            return Outcome.handed_on(str(event["id"]), {"identifier": event["id"], "parents": ["do_unit"]})
        if do == "job-error":
            raise TransientError("service down, retries spent")
        raise RuntimeError("a bug in the processor")

    async def close(self) -> None:
        self.closed = True


class Stage:
    """A processor factory that keeps the processors it made."""

    def __init__(self) -> None:
        self.made: list[Scripted] = []

    def __call__(self, cfg: JobConfig, metrics: Metrics) -> Processor:
        p = Scripted()
        self.made.append(p)
        return p

    @property
    def seen(self) -> list[dict[str, Any]]:
        return [e for p in self.made for e in p.seen]


def by_id(event: dict[str, Any]) -> str:
    return str(event["id"])  # raises for an event without an id: an invalid key


def definition(first: Stage, *, keyed: bool = True, next_stage: Stage | None = None) -> JobDefinition:
    return JobDefinition(
        name=JOB,
        processor_factory=first,
        key_of=by_id,
        keyed=keyed,
        next_stage=NextStage("link", next_stage, "task.link.parallelism") if next_stage else None,
    )


def drive(job: JobDefinition, rows: list[Any], **config: Any) -> tuple[DriverResult, PipelineDriver]:
    driver = PipelineDriver(job, JobConfig(config, job=JOB))
    return driver.run(rows), driver


def outcome_counts(result: DriverResult) -> dict[str, int]:
    return {k: n for k, n in result.counts.items() if n}


KEYED = pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])


@KEYED
def test_malformed_records_go_to_the_failed_topic_with_their_source(keyed: bool) -> None:
    first = Stage()
    rows = [
        kafka_row(b"{not json", topic="in", partition=2, offset=10),
        kafka_row(b"[1, 2, 3]", topic="in", partition=2, offset=11),  # JSON, not an object
        kafka_row({"id": "do_big", "pad": "x" * 200}, topic="in", partition=2, offset=12),  # over the limit
        kafka_row(None, topic="in", partition=2, offset=13),  # a tombstone
        kafka_row(b"\xff\xfe{}", topic="in", partition=2, offset=14),  # not UTF-8
    ]
    result, _ = drive(definition(first, keyed=keyed), rows, kafka={"max_record_bytes": 100})

    assert outcome_counts(result) == {"total": 5, "failed": 5}
    assert first.seen == []  # the processor never sees them
    failed = sorted(result.failed, key=lambda r: r["source"]["offset"])
    assert [r["source"] for r in failed] == [
        {"topic": "in", "partition": 2, "offset": o} for o in range(10, 15)
    ]
    assert {r["jobName"] for r in failed} == {JOB}
    assert {r["failInfo"]["reason"] for r in failed} == {"malformed"}
    errors = [r["failInfo"]["error"] for r in failed]
    assert "not valid JSON" in errors[0]
    assert "not an object (a list)" in errors[1]
    assert "exceeds kafka.max_record_bytes (100)" in errors[2]
    assert "empty record" in errors[3]
    assert "not valid UTF-8" in errors[4]
    assert failed[0]["raw"] == "{not json" and failed[0]["rawEncoding"] == "utf-8"
    assert failed[4]["rawEncoding"] == "base64"


@KEYED
def test_outcomes_are_counted_and_failed_records_emitted(keyed: bool) -> None:
    first = Stage()
    rows = [
        kafka_row({"id": "do_1", "do": "success"}, offset=0),
        kafka_row({"id": "do_2", "do": "skip"}, offset=1),
        kafka_row({"id": "do_3", "do": "fail", "edata": {"iteration": 1}}, offset=2),
    ]
    result, _ = drive(definition(first, keyed=keyed), rows)

    assert outcome_counts(result) == {"total": 3, "success": 1, "skipped": 1, "failed": 1}
    assert sorted(e["id"] for e in first.seen) == ["do_1", "do_2", "do_3"]
    [record] = result.failed
    assert record["id"] == "do_3" and record["jobName"] == JOB
    assert record["failInfo"]["reason"] == "permanent" and "it broke" in record["failInfo"]["error"]
    assert record["edata"]["iteration"] == 2
    assert all(p.closed for p in first.made)


@KEYED
def test_a_processor_that_raises_fails_its_event_only(keyed: bool) -> None:
    first = Stage()
    rows = [
        kafka_row({"id": "do_bug", "do": "raise"}, offset=0),
        kafka_row({"id": "do_down", "do": "job-error"}, offset=1),
        kafka_row({"id": "do_ok"}, offset=2),
    ]
    result, _ = drive(definition(first, keyed=keyed), rows)

    # an unexpected exception is an error as well as a failure; a JobError carries its own reason
    assert outcome_counts(result) == {"total": 3, "success": 1, "failed": 2, "error": 1}
    records = {r["id"]: r for r in result.failed}
    assert records["do_bug"]["failInfo"]["reason"] == "permanent"
    assert "a bug in the processor" in records["do_bug"]["failInfo"]["error"]
    assert records["do_down"]["failInfo"]["reason"] == "retries-exhausted"
    assert "service down" in records["do_down"]["failInfo"]["error"]
    assert {r["jobName"] for r in records.values()} == {JOB}


@KEYED
def test_an_event_whose_key_cannot_be_read_still_reaches_the_processor(keyed: bool) -> None:
    first = Stage()
    rows = [kafka_row({"no-id": True, "do": "fail"}, offset=0), kafka_row({"no-id": 2}, offset=1)]
    result, _ = drive(definition(first, keyed=keyed), rows)

    # the processor reports what is wrong with the event; the wiring only loses the ordering key
    assert outcome_counts(result) == {"total": 2, "success": 1, "failed": 1}
    assert sorted(str(e["no-id"]) for e in first.seen) == ["2", "True"]
    [record] = result.failed
    assert record["no-id"] is True and record["failInfo"]["reason"] == "permanent"


def test_a_record_with_a_byte_order_mark_is_processed_in_a_keyed_job() -> None:
    # parse_record accepts the mark (as Jackson did); the event text handed to the process stage must not
    # carry it, or orjson refuses it there and the job fails on the record for ever
    first = Stage()
    result, _ = drive(definition(first, keyed=True), [kafka_row(b'\xef\xbb\xbf{"id": "do_bom"}')])
    assert outcome_counts(result) == {"total": 1, "success": 1}
    assert first.seen == [{"id": "do_bom"}]


def test_handed_on_requests_go_to_the_next_stage_which_decides_the_outcome() -> None:
    first, link = Stage(), Stage()
    rows = [
        kafka_row({"id": "do_a", "do": "hand-on"}, offset=0),
        kafka_row({"id": "do_b", "do": "fail"}, offset=1),  # fails in the first stage
        kafka_row({"id": "do_c", "do": "hand-on"}, offset=2),
        kafka_row(b"oops", offset=3),
    ]
    result, _ = drive(definition(first, next_stage=link), rows)

    assert sorted(result.handed_on) == [
        Event("do_a", '{"identifier":"do_a","parents":["do_unit"]}'),
        Event("do_c", '{"identifier":"do_c","parents":["do_unit"]}'),
    ]
    assert sorted(r["identifier"] for r in link.seen) == ["do_a", "do_c"]
    # the first stage counts the input and its own final outcomes; the next stage those it decides
    assert result.stage_counts["process"] == {
        "total": 4,
        "success": 0,
        "skipped": 0,
        "failed": 2,
        "error": 0,
        "retry": 0,
    }
    assert result.stage_counts["link"] == {
        "total": 0,
        "success": 2,
        "skipped": 0,
        "failed": 0,
        "error": 0,
        "retry": 0,
    }
    assert sorted(r["failInfo"]["reason"] for r in result.failed) == ["malformed", "permanent"]


def test_a_next_stage_failure_reaches_the_failed_topic() -> None:
    first, link = Stage(), Stage()

    class Hands(Scripted):
        async def process(self, event: dict[str, Any]) -> Outcome:
            return Outcome.handed_on(event["id"], {"id": event["id"], "do": event["then"]})

    def hands(cfg: JobConfig, metrics: Metrics) -> Processor:
        return Hands()

    job = JobDefinition(JOB, hands, by_id, next_stage=NextStage("link", link, "task.link.parallelism"))
    rows = [kafka_row({"id": "do_x", "then": "fail"}), kafka_row({"id": "do_y", "then": "raise"})]
    result, _ = drive(job, rows)

    assert outcome_counts(result) == {"total": 2, "failed": 2, "error": 1}
    assert result.stage_counts["link"]["failed"] == 2
    records = {r["id"]: r for r in result.failed}
    assert records["do_x"]["failInfo"]["reason"] == "permanent"
    assert "a bug in the processor" in records["do_y"]["failInfo"]["error"]
    assert first.made == []


@KEYED
def test_a_hand_off_without_a_next_stage_is_a_success(keyed: bool) -> None:
    first = Stage()
    result, _ = drive(definition(first, keyed=keyed), [kafka_row({"id": "do_1", "do": "hand-on"})])
    assert outcome_counts(result) == {"total": 1, "success": 1}
    assert result.failed == [] and result.handed_on == []


@KEYED
def test_one_keys_events_run_in_order_others_concurrently(keyed: bool) -> None:
    running: set[str] = set()
    overlapped: list[tuple[str, str]] = []
    order: list[tuple[str, int]] = []

    class Slow(Scripted):
        async def process(self, event: dict[str, Any]) -> Outcome:
            key = event["id"]
            overlapped.extend((key, other) for other in running)
            running.add(key)
            await asyncio.sleep(0.02 if event["n"] == 0 else 0.001)  # the first of each key is the slowest
            running.discard(key)
            order.append((key, event["n"]))
            return Outcome.success()

    def slow(cfg: JobConfig, metrics: Metrics) -> Processor:
        return Slow()

    job = JobDefinition(JOB, slow, by_id, keyed=keyed)
    rows = [kafka_row({"id": k, "n": n}, offset=2 * n + j) for n in range(3) for j, k in enumerate("ab")]
    result, driver = drive(job, rows)

    assert outcome_counts(result) == {"total": 6, "success": 6}
    assert [n for k, n in order if k == "a"] == [0, 1, 2]
    assert [n for k, n in order if k == "b"] == [0, 1, 2]
    assert all(a != b for a, b in overlapped) and overlapped  # never one key twice at once; keys overlap
    assert len(driver.operators.first.order) == 0  # every key's lock forgotten


def test_an_exception_out_of_an_operator_is_raised_by_the_driver() -> None:
    # a processor that cannot be made (bad configuration) fails the job, as it should; the driver shows it
    def broken(cfg: JobConfig, metrics: Metrics) -> Processor:
        raise ValueError("no such service")

    with pytest.raises(ValueError, match="no such service"):
        drive(JobDefinition(JOB, broken, by_id), [kafka_row({"id": "do_1"})])


def test_metric_names_are_configurable() -> None:
    first = Stage()
    driver = PipelineDriver(definition(first), JobConfig({"metrics": {"failed": "failed-events"}}, job=JOB))
    driver.run([kafka_row(b"nope")])
    group = driver.contexts["process"].metric_group.groups[JOB]
    assert group.counters["failed-events"].count == 1
    assert group.counters["total-message-count"].count == 1
    assert "failed-message-count" not in group.counters


@pytest.mark.parametrize(
    ("job", "first", "has_next"),
    [
        ("content-auto-creator", ProcessEvents, False),
        ("auto-creator-v2", ProcessEvents, True),
        ("user-delete", ProcessRecords, False),
    ],
)
def test_each_jobs_operators(job: str, first: type, has_next: bool) -> None:
    definition = importlib.import_module(f"cokreat_jobs.jobs.{job.replace('-', '_')}.job").DEFINITION
    ops = job_operators(definition, load_config(job, overrides=["kafka.max_record_bytes=2048"]))
    assert type(ops.first) is first
    # a keyed job parses before its key_by, an unkeyed one in its first stage: with the one limit
    reader = ops.parse.reader if ops.parse is not None else ops.first.reader  # type: ignore[union-attr]
    assert (ops.parse is not None) is (first is ProcessEvents)
    assert reader.max_record_bytes == 2048
    assert isinstance(ops.next, ProcessHandedOn) is has_next


class Unwritable(Scripted):
    """A processor whose outputs cannot be written: what core/failed.py or a job could get wrong."""

    async def process(self, event: dict[str, Any]) -> Outcome:
        self.seen.append(event)
        do = event["do"]
        if do == "huge-int":  # what failed_event once made of edata.iteration 1e20
            return Outcome.failed({**event, "edata": {"iteration": 10**20 + 1}}, "permanent")
        if do == "surrogate":
            return Outcome.failed({**event, "failInfo": {"error": "\ud800", "reason": "x"}}, "x")
        if do == "no-record":
            return Outcome("failed", "permanent")
        if do == "hand-on-unwritable":
            return Outcome.handed_on(event["id"], {"identifier": event["id"], "n": 10**30})
        if do == "not-an-outcome":
            return "done"  # type: ignore[return-value]
        raise AssertionError(do)


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_an_output_that_cannot_be_written_still_fails_its_event_once(keyed: bool) -> None:
    def factory(cfg: JobConfig, metrics: Metrics) -> Processor:
        return Unwritable()

    kinds = ["huge-int", "surrogate", "no-record", "hand-on-unwritable", "not-an-outcome"]
    job = JobDefinition(
        JOB, factory, by_id, keyed=keyed, next_stage=NextStage("link", Stage(), "task.link.parallelism")
    )
    rows = [
        kafka_row({"id": f"do_{k}", "do": k}, topic="in", partition=3, offset=i) for i, k in enumerate(kinds)
    ]
    result, _ = drive(job, rows)

    assert result.counts["total"] == result.counts["failed"] == len(kinds)
    assert result.handed_on == []
    records = result.failed
    assert len(records) == len(kinds)
    by_raw = {r["raw"]: r for r in records if "raw" in r}
    for i, kind in enumerate(kinds):
        raw = orjson.dumps({"id": f"do_{kind}", "do": kind}).decode()
        if kind == "no-record":
            assert any(r["failInfo"]["error"] == "no failed record" for r in records)
            continue
        record = by_raw[raw]  # the event's own text, where the record could not be written
        assert record["failInfo"]["reason"] in ("permanent", "x") and record["jobName"] == JOB
        if not keyed:  # an unkeyed stage read the Kafka row itself: it knows where the event came from
            assert record["source"] == {"topic": "in", "partition": 3, "offset": i}
    # a bug in what the processor returned is an error too
    assert result.counts["error"] == 2


def test_a_record_reader_that_fails_still_writes_the_record() -> None:
    def bad_key(event: dict[str, Any]) -> str:
        return 12  # type: ignore[return-value]  # a key that is no string: no key, in order with nothing

    first = Stage()
    job = JobDefinition(JOB, first, bad_key)
    result, _ = drive(job, [kafka_row({"id": "do_1"})])
    assert outcome_counts(result) == {"total": 1, "success": 1}
    # a row that is not even a Kafka row (a bug upstream): a failed record, not a failed task
    reader = job_operators(job, JobConfig({}, job=JOB)).parse
    assert reader is not None
    element = reader.map(("text, not bytes", "t", 0, 9))  # type: ignore[arg-type]
    record = orjson.loads(element.record)  # type: ignore[union-attr]
    assert record["failInfo"]["reason"] == "permanent" and record["source"] == {
        "topic": "t",
        "partition": 0,
        "offset": 9,
    }


def test_an_unkeyed_stage_tells_the_processor_its_records_topic() -> None:
    from cokreat_jobs.core.event import record_topic

    seen: list[Any] = []

    class TopicAware(Scripted):
        async def process(self, event: dict[str, Any]) -> Outcome:
            seen.append((event["id"], record_topic()))
            return Outcome.success()

    job = JobDefinition(name=JOB, processor_factory=lambda cfg, m: TopicAware(), key_of=by_id, keyed=False)
    rows = [
        kafka_row({"id": "a"}, topic="deletions", partition=0, offset=1),
        kafka_row({"id": "b"}, topic="transfers", partition=0, offset=1),
    ]
    result, _ = drive(job, rows)
    assert outcome_counts(result) == {"total": 2, "success": 2}
    assert sorted(seen) == [("a", "deletions"), ("b", "transfers")]
    assert record_topic() is None  # set only around the processor's call
