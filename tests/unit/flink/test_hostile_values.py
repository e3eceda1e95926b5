"""No value in an event can fail a task (HARDENING 1, 4): the three jobs' operators, driven in memory with raw
Kafka records (flink/testing.py), each record carrying one number-range or non-finite value, or a number where
a string or an object belongs, in one of the fields its job reads.

Whatever the value, nothing raises out of an operator (which would fail the Flink task, replay the record and
end the job FAILED), every record is counted once, and a failed one is exactly one failed-topic record that
parses as JSON, carries a reason, is under `kafka.failed.max_record_bytes`, and replays as `replay` would
decide it: moved when its iteration counts (the hostile value elsewhere), never moved when the iteration
itself is no count. The services are a closed port, so every event that gets past its validation fails at its
first call (one attempt: `retries-exhausted`, or refused by the download guard), without waiting on anything.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.flink.testing import DriverResult, PipelineDriver, kafka_row
from cokreat_jobs.ops.replay import decide

# Nothing listens on port 1: a connection is refused at once.
CLOSED = "http://127.0.0.1:1"
MAX_ITERATION = 3  # the shipped maxIteration of each job
# kafka.failed.max_record_bytes's default (core/failed.py), under the broker's default message.max.bytes
FAILED_RECORD_LIMIT = 1_000_000

# The raw JSON text of each hostile value. 99999999999999999999 is beyond 64 bits (orjson reads it as 1e20);
# 1e400 and NaN are refused by the parser (the record is malformed); 12 is a number where a string belongs.
HOSTILE = {
    "1e20": b"1e20",
    "big-int": b"99999999999999999999",
    "big-int-string": b'"99999999999999999999"',
    "-1e19": b"-1e19",
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "NaN": b"NaN",
    "number-for-string": b"12",
    # strings float() reads as no finite number (a numeric field may be sent as a string)
    "nan-string": b'"NaN"',
    "inf-string": b'"1e400"',
}
# the values that are strings: in a field that takes strings they are just unusual ones
STRINGS = ("big-int-string", "nan-string", "inf-string")

# The fields each job reads (core/event.py getters, the jobs' validation and request modules, their key and
# their log lines); every one gets every hostile value.
FIELDS = {
    "user-delete": [
        "mid",
        "object",
        "object.id",
        "edata",
        "edata.action",
        "edata.userId",
        "edata.iteration",
    ],
    "content-auto-creator": [
        "mid",
        "object",
        "object.id",
        "context",
        "context.channel",
        "edata",
        "edata.iteration",
        "edata.action",
        "edata.objectType",
        "edata.repository",
        "edata.stage",
        "edata.identifier",
        "edata.originData",
        "edata.originData.identifier",
        "edata.collection",
        "edata.collection.0",
        "edata.collection.0.identifier",
        "edata.collection.0.unitId",
        "edata.metadata",
        "edata.metadata.name",
        "edata.metadata.code",
        "edata.metadata.mimeType",
        "edata.metadata.primaryCategory",
        "edata.metadata.artifactUrl",
        "edata.metadata.appIcon",
        "edata.metadata.lastPublishedBy",
        "edata.metadata.pkgVersion",
    ],
    "auto-creator-v2": [
        "mid",
        "object",
        "object.id",
        "context",
        "context.channel",
        "edata",
        "edata.iteration",
        "edata.action",
        "edata.objectType",
        "edata.repository",
        "edata.collection",
        "edata.collection.0",
        "edata.collection.0.identifier",
        "edata.collection.0.unitId",
        "edata.metadata",
        "edata.metadata.identifier",
        "edata.metadata.name",
        "edata.metadata.objectType",
        "edata.metadata.downloadUrl",
        "edata.metadata.processId",
        "edata.metadata.pkgVersion",
    ],
}

# (job, field, value) that are a skip, not a failure, as for any other value of the right type that is not
# for the job: an iteration of 1e20 or 12 past maxIteration (content-auto-creator reads it), and the strings
# ("99999999999999999999", "NaN", "1e400") as an action, object type, stage or a download URL that is no ECAR.
SKIPS = {
    *(("content-auto-creator", "edata.iteration", v) for v in ("1e20", "big-int", "number-for-string")),
    *(
        (job, path, value)
        for job, path in [
            ("user-delete", "edata.action"),
            ("content-auto-creator", "edata.action"),
            ("content-auto-creator", "edata.objectType"),
            ("content-auto-creator", "edata.stage"),
            ("auto-creator-v2", "edata.action"),
            ("auto-creator-v2", "edata.objectType"),
            ("auto-creator-v2", "edata.metadata.downloadUrl"),
        ]
        for value in STRINGS
    ),
}


def base_event(job: str) -> dict[str, Any]:
    """An event of `job` that passes its validation (and then fails at the first service call)."""
    if job == "user-delete":
        return {
            "eid": "BE_JOB_REQUEST",
            "ets": 1617174912468,
            "mid": "LP.hostile.1",
            "actor": {"id": "delete-user", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.lern", "ver": "1.0"}, "channel": "ch1"},
            "object": {"id": "user-hostile", "type": "User"},
            "edata": {"action": "delete-user", "userId": "user-hostile", "iteration": 1},
        }
    metadata: dict[str, Any] = {
        "identifier": "do_hostile",
        "name": "Hostile",
        "code": "hostile",
        "mimeType": "application/pdf",
        "primaryCategory": "Learning Resource",
        "artifactUrl": f"{CLOSED}/file.pdf",
        "appIcon": f"{CLOSED}/icon.png",
        "lastPublishedBy": "someone",
        "pkgVersion": 1,
        "objectType": "QuestionSet",
        "downloadUrl": f"{CLOSED}/source-ecar/do_hostile.ecar",
        "processId": "proc-1",
    }
    edata: dict[str, Any] = {
        "action": "auto-create",
        "iteration": 1,
        "objectType": "Content" if job == "content-auto-creator" else "QuestionSet",
        "repository": f"{CLOSED}/api/questionset/v1/read/do_hostile",
        "metadata": metadata,
        "collection": [{"identifier": "do_col", "unitId": "do_unit"}],
    }
    if job == "content-auto-creator":
        edata.update(stage="publish", identifier="do_hostile", originData={"identifier": "do_origin"})
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": 1617174912468,
        "mid": "LP.hostile.1",
        "actor": {"id": "Auto Creator", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": "ch1"},
        "object": {"id": "do_hostile", "ver": "1"},
        "edata": edata,
    }


MARK = "__hostile__"


def with_value(event: dict[str, Any], path: str, raw: bytes) -> bytes:
    """The event's JSON text with the field at `path` (dotted, list indexes as numbers) holding `raw` as it
    is written: a literal no Python value would serialise to (1e400, NaN, 99999999999999999999)."""
    event = copy.deepcopy(event)
    node: Any = event
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = MARK
    else:
        node[last] = MARK
    text = orjson.dumps(event)
    assert text.count(b'"' + MARK.encode() + b'"') == 1
    return text.replace(b'"' + MARK.encode() + b'"', raw)


def job_config(job: str, tmp: Path, extra: list[str] | None = None) -> JobConfig:
    common = ["http.retry.max_attempts=1", "http.retry.backoff_ms=1", *(extra or [])]
    if job == "user-delete":
        overrides = [f"program-service-baseUrl={CLOSED}"]
    elif job == "content-auto-creator":
        overrides = [
            f"service.search.basePath={CLOSED}/search",
            f"service.content_service.basePath={CLOSED}/content",
            f"service.lms.basePath={CLOSED}/lms",
            f"service.learning_service.basePath={CLOSED}/learning-service",
            "cloud_storage_type=local",
            f"cloud_storage.local.path={tmp / 'storage'}",
            f"content_auto_creator.temp_file_location={tmp / 'cac-tmp'}",
        ]
    else:
        overrides = [
            f"service.content.basePath={CLOSED}/content",
            f"source.baseUrl={CLOSED}/api",
            "graph.store=sqlite",
            f"graph.sqlite.url=sqlite:///{tmp / 'graph.db'}",
            "external.store=sqlite",
            f"external.sqlite.url=sqlite:///{tmp / 'external.db'}",
            "cloud_storage_type=local",
            f"cloud_storage.local.path={tmp / 'storage'}",
            f"auto_creator_v2.temp_file_location={tmp / 'acv2-tmp'}",
            "auto_creator_v2.link_wait_timeout_s=1",
        ]
    return load_config(job, overrides=[*overrides, *common], env={})


def definition(job: str) -> Any:
    return importlib.import_module(f"cokreat_jobs.jobs.{job.replace('-', '_')}.job").DEFINITION


def drive(job: str, rows: list[Any], tmp: Path, extra: list[str] | None = None) -> DriverResult:
    # run raises whatever an operator raised: that is the failure this file is about
    return PipelineDriver(definition(job), job_config(job, tmp, extra)).run(rows)


def assert_failed_records(
    result: DriverResult, n: int, cap: int = FAILED_RECORD_LIMIT
) -> list[dict[str, Any]]:
    assert len(result.failed_text) == n, result.failed_text
    records = []
    for text in result.failed_text:
        assert len(text.encode("utf-8")) <= cap
        record = orjson.loads(text)
        assert isinstance(record, dict)
        assert isinstance(record["failInfo"]["reason"], str) and record["failInfo"]["reason"]
        assert isinstance(record["failInfo"]["error"], str)
        records.append(record)
    return records


PATHS = [(job, path) for job, paths in FIELDS.items() for path in paths]
ETS = re.compile(r'"ets":(\d+)')


def check_failed_record(
    job: str, path: str, value: str, raw: bytes, offset: int, record: dict[str, Any]
) -> None:
    """What a failed record of `raw` (`value` at `path`) must be, for a person and for `replay`."""
    assert record["jobName"] == job
    verdict, event = decide(record, job, MAX_ITERATION)
    if "raw" in record:
        # no event to replay (the parser refused the value, or the record could not be written whole): its
        # text is there for a person, with where it came from
        assert verdict == "malformed"
        assert record["raw"] == raw.decode() and record["rawSize"] == len(raw) and not record["rawTruncated"]
        if record["failInfo"]["reason"] == "malformed":
            assert record["source"] == {"topic": "in", "partition": 1, "offset": offset}
        return
    if path == "edata":
        # the event as it came, with no edata to count in: replay leaves it for a person
        assert record["edata"] == orjson.loads(raw)["edata"] and verdict == "malformed"
        return
    iteration = record["edata"]["iteration"]
    if path == "edata.iteration":
        # no count of replays: never moved (a count that climbs from -1e19, or a value that cannot be written)
        assert verdict != "move", record
        if value == "number-for-string":
            assert iteration == 13 and verdict == "exhausted"
    else:
        if path == "edata.metadata.pkgVersion" and job == "content-auto-creator" and value in STRINGS[1:]:
            # a version that is no finite number is refused (NaN would never be newer, infinity always)
            assert record["failInfo"]["reason"] == "invalid-field", record["failInfo"]
        # the normal case: the event as it came (the value included), its iteration counted, and replayable
        assert iteration == 2 and verdict == "move"
        assert event is not None and orjson.loads(orjson.dumps(event))["edata"]["iteration"] == 2


@pytest.mark.parametrize(("job", "path"), PATHS, ids=[f"{j}:{p}" for j, p in PATHS])
def test_each_hostile_value_in_a_field_fails_its_event_alone(job: str, path: str, tmp_path: Path) -> None:
    # every value in flight at once, as in a Flink subtask; each event told apart by its ets
    values = list(HOSTILE)
    raws = []
    for i, name in enumerate(values):
        event = base_event(job)
        event["ets"] += i
        raws.append(with_value(event, path, HOSTILE[name]))
    rows = [kafka_row(raw, topic="in", partition=1, offset=40 + i) for i, raw in enumerate(raws)]
    result = drive(job, rows, tmp_path)

    skips = [name for name in values if (job, path, name) in SKIPS]
    counts = {k: n for k, n in result.counts.items() if n and k not in ("error", "retry")}
    expected = {"total": len(values), "failed": len(values) - len(skips), "skipped": len(skips)}
    assert counts == {k: n for k, n in expected.items() if n}, result.stage_counts
    records = assert_failed_records(result, len(values) - len(skips))
    seen: list[str] = []
    for record in records:
        ets = record["ets"] if "ets" in record else int(ETS.findall(record["raw"])[0])
        i = ets - base_event(job)["ets"]
        name = values[i]
        seen.append(name)
        try:
            check_failed_record(job, path, name, raws[i], 40 + i, record)
        except AssertionError as e:
            raise AssertionError(f"{job}: {path} = {name}: {e}; {record}") from e
    assert sorted(seen) == sorted(set(values) - set(skips))


@pytest.mark.parametrize("job", list(FIELDS))
def test_a_failed_record_for_a_1_mib_input_is_under_the_broker_limit(job: str, tmp_path: Path) -> None:
    # an event just under kafka.max_record_bytes (1 MiB), which fails: its failed record is larger than the
    # broker's default message.max.bytes (1,048,588) would take, so it is written cut, with its size
    event = base_event(job)
    event["edata"]["iteration"] = "99999999999999999999"  # and an iteration that could not be written
    event["pad"] = ""
    size = len(orjson.dumps(event))
    event["pad"] = "x" * (1024 * 1024 - size)
    raw = orjson.dumps(event)
    assert len(raw) == 1024 * 1024
    result = drive(job, [kafka_row(raw, topic="in", partition=0, offset=7)], tmp_path)

    [record] = assert_failed_records(result, 1)
    assert record["jobName"] == job and record["rawTruncated"] is True and record["rawSize"] == len(raw)
    assert raw.decode().startswith(record["raw"]) and len(record["raw"]) == 64 * 1024
    assert "exceeds kafka.failed.max_record_bytes (1000000)" in record["failInfo"]["error"]
    assert record["failInfo"]["reason"] != "malformed"
    assert decide(record, job, MAX_ITERATION)[0] == "malformed"  # left for a person, never looped on
    if job == "user-delete":  # an unkeyed job reads the record in its stage: it knows the coordinates
        assert record["source"] == {"topic": "in", "partition": 0, "offset": 7}


def test_the_cap_is_configurable(tmp_path: Path) -> None:
    job = "user-delete"
    event = base_event(job)
    event["pad"] = "y" * 5000
    rows = [kafka_row(orjson.dumps(event)), kafka_row(b"not json " * 1000)]
    result = drive(job, rows, tmp_path, ["kafka.failed.max_record_bytes=2000"])
    records = assert_failed_records(result, 2, cap=2000)
    assert {r["failInfo"]["reason"] for r in records} == {"retries-exhausted", "malformed"}
    assert all(r["rawTruncated"] for r in records)
    # under the cap, the record keeps its shape (and stays replayable)
    result = drive(job, rows[:1], tmp_path, ["kafka.failed.max_record_bytes=20000"])
    [record] = assert_failed_records(result, 1, cap=20000)
    assert "raw" not in record and decide(record, job, MAX_ITERATION)[0] == "move"
