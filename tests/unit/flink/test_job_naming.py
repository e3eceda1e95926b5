"""The names a job is known by: Flink job name, metric group, counter names and operator names.

The reference's by default when its config shape is loaded (user-delete's release-8 keys: the Scala job was
`cokreat-user-delete`, its counters `*-events-count`), ours otherwise; each configurable. Operator names may
follow the reference's, the uids (what savepoints restore by) never change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.flink import pipeline
from cokreat_jobs.flink.definition import COUNTER_NAMES, EVENTS_COUNT_NAMES
from cokreat_jobs.flink.testing import PipelineDriver, kafka_row
from cokreat_jobs.jobs import JOB_MODULES, job_definition
from cokreat_jobs.ops import cluster

RELEASE_8 = [
    ["kafka.input.user_delete_topic=sunbirddev.delete.user"],
    ["kafka.input.ownership_transfer_topic=sunbirddev.user.ownership.transfer"],
]


def cfg_of(job: str, overrides: list[str] | None = None) -> JobConfig:
    return load_config(job, overrides=overrides or [], env={})


@pytest.mark.parametrize("job", sorted(JOB_MODULES))
def test_our_names_by_default(job: str) -> None:
    definition, cfg = job_definition(job), cfg_of(job)
    assert definition.job_name(cfg) == job
    assert definition.metric_group(cfg) == job
    assert definition.counter_names(cfg) == COUNTER_NAMES


@pytest.mark.parametrize("overrides", RELEASE_8)
def test_user_delete_release_8_shape_gets_the_reference_names(overrides: list[str]) -> None:
    definition, cfg = job_definition("user-delete"), cfg_of("user-delete", overrides)
    assert definition.job_name(cfg) == "cokreat-user-delete"
    assert definition.metric_group(cfg) == "cokreat-user-delete"
    names = definition.counter_names(cfg)
    assert names == EVENTS_COUNT_NAMES
    assert [names[k] for k in ("total", "success", "skipped", "failed")] == [
        "total-events-count",
        "success-events-count",
        "skipped-events-count",
        "failed-events-count",
    ]
    # the reference had no error or retry counter: ours keep their names
    assert (names["error"], names["retry"]) == ("error-message-count", "retry-count")


def test_the_keys_win_over_either_default() -> None:
    definition = job_definition("user-delete")
    for shape in ([], RELEASE_8[0]):
        cfg = cfg_of(
            "user-delete",
            [*shape, "job.name=ud-prod", "metrics.group=ud-metrics", "metrics.total=all-events"],
        )
        assert definition.job_name(cfg) == "ud-prod"
        assert definition.metric_group(cfg) == "ud-metrics"
        assert definition.counter_names(cfg)["total"] == "all-events"
    # the group does not follow job.name (a job renamed for a second deployment keeps its series)
    cfg = cfg_of("user-delete", ["job.name=ud-prod"])
    assert definition.metric_group(cfg) == "user-delete"
    # blank means unset
    cfg = cfg_of("user-delete", [*RELEASE_8[0], 'job.name=""', 'metrics.group=""', 'metrics.total=""'])
    assert definition.job_name(cfg) == definition.metric_group(cfg) == "cokreat-user-delete"
    assert definition.counter_names(cfg)["total"] == "total-events-count"


def test_auto_creator_v2_keeps_its_names_without_a_shape_to_tell() -> None:
    # its Scala config has the same keys as ours: nothing says a dashboard reads *-events-count
    cfg = cfg_of("auto-creator-v2", ["metrics.total=total-events-count"])
    definition = job_definition("auto-creator-v2")
    assert definition.metric_group(cfg) == "auto-creator-v2"
    assert definition.counter_names(cfg)["total"] == "total-events-count"


def test_the_operator_counts_in_the_reference_group_under_release_8() -> None:
    definition = job_definition("user-delete")
    driver = PipelineDriver(definition, cfg_of("user-delete", RELEASE_8[0]))
    driver.run([kafka_row(b"not json")])
    groups = driver.contexts["process"].metric_group.groups
    assert "user-delete" not in groups
    counters = groups["cokreat-user-delete"].counters
    assert counters["total-events-count"].count == 1
    assert counters["failed-events-count"].count == 1


class FakeStream:
    """Records the `.name(...)` and `.uid(...)` of every operator add_operators builds."""

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self.log = log
        self.entry: dict[str, Any] = {}
        log.append(self.entry)

    def _next(self, *args: Any, **kwargs: Any) -> FakeStream:
        return FakeStream(self.log)

    map = filter = process = union = _next

    def key_by(self, *args: Any, **kwargs: Any) -> FakeStream:
        return self  # not an operator

    def name(self, name: str) -> FakeStream:
        self.entry["name"] = name
        return self

    def uid(self, uid: str) -> FakeStream:
        self.entry["uid"] = uid
        return self

    def set_parallelism(self, n: int) -> FakeStream:
        return self


class FakeAsync:
    @staticmethod
    def unordered_wait(stream: FakeStream, *args: Any) -> FakeStream:
        return FakeStream(stream.log)


@pytest.mark.parametrize(
    ("job", "named"),
    [
        ("content-auto-creator", {"content-auto-creator-process": "content-auto-creator-process"}),
        (
            "auto-creator-v2",
            {
                "auto-creator-v2": "auto-creator-v2-process",
                "link-collection-process": "auto-creator-v2-link-collection",
                "to-link-collection": "auto-creator-v2-to-link-collection",
            },
        ),
        ("user-delete", {"user-delete": "user-delete-process"}),
    ],
)
@pytest.mark.parametrize("mode", ["pyflink-async", "keyed-state"])
def test_operators_have_the_references_names_and_their_old_uids(
    job: str, named: dict[str, str], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "AsyncDataStream", FakeAsync)
    log: list[dict[str, Any]] = []
    pipeline.add_operators(job_definition(job), cfg_of(job, [f"task.async.operator={mode}"]), FakeStream(log))
    uids = {e["name"]: e["uid"] for e in log if "uid" in e}
    for name, uid in named.items():
        assert uids.get(name) == uid, uids
    assert "process" not in uids
    # every uid is one the previous release had: savepoints restore
    before = {
        "content-auto-creator": {"parse", "process"},
        "auto-creator-v2": {"parse", "process", "to-link-collection", "link-collection"},
        "user-delete": {"process"},
    }[job] | ({"failed-records", "failed-record-text"} if job == "auto-creator-v2" else set())
    assert set(uids.values()) == {f"{job}-{u}" for u in before}


def test_stop_finds_the_job_by_the_name_it_runs_under(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str | None] = []

    class Rest:
        def __init__(self, base: str) -> None:
            pass

        def running_job(self, name: str | None = None) -> str | None:
            asked.append(name)
            return None

    monkeypatch.setattr(cluster, "FlinkRest", Rest)
    for overrides, name in (([], "user-delete"), (RELEASE_8[0], "cokreat-user-delete")):
        with pytest.raises(RuntimeError, match=name):
            cluster.stop_job("user-delete", cfg_of("user-delete", overrides), "127.0.0.1:1")
    assert asked == ["user-delete", "cokreat-user-delete"]


def test_a_local_run_reads_its_counters_from_the_group_the_job_uses(tmp_path: Path) -> None:
    run = LocalJobRun("user-delete", RELEASE_8[1], env={})
    assert run.metric_group == "cokreat-user-delete"
    assert LocalJobRun("user-delete", [], env={}).metric_group == "user-delete"
