"""jobs/<job>/checks.py: each job's start-up and advisory checks, over its packaged configuration."""

from __future__ import annotations

import pytest

from cokreat_jobs.core.checks import Endpoint
from cokreat_jobs.core.config import load_config
from cokreat_jobs.jobs import JOB_MODULES, job_definition


@pytest.mark.parametrize("job", sorted(JOB_MODULES))
def test_the_packaged_configuration_passes_its_own_checks(job: str) -> None:
    checks = job_definition(job).checks
    cfg = load_config(job, env={})
    problems = checks.startup(cfg)
    if job == "user-delete":
        assert problems == []
    else:
        # an unset cloud_storage_type is azure, as in the Scala jobs: a deployment names its container
        assert [(p.key, p.level) for p in problems] == [("cloud_storage_container", "error")]
        assert "'azure'" in problems[0].message
        cfg = cfg.with_overrides({"cloud_storage_type": "local"})
        assert checks.startup(cfg) == []
    assert checks.advisory(cfg) == []
    assert Endpoint("kafka.broker-servers", "localhost", 9092) in checks.endpoints(cfg)


def test_content_auto_creator_lists_every_start_up_problem() -> None:
    cfg = load_config(
        "content-auto-creator",
        overrides=[
            "kafka.broker-servers=",
            "service.search.basePath=localhost:9000/search",
            "service.content_service.basePath=http:///content",
            "cloud_storage_type=dropbox",
        ],
        env={},
    )
    keys = [p.key for p in job_definition("content-auto-creator").checks.startup(cfg)]
    assert keys == [
        "kafka.broker-servers",
        "service.search.basePath",
        "service.content_service.basePath",
        "cloud_storage_type",
    ]


def test_content_auto_creator_warns_of_allow_list_entries_that_match_nothing() -> None:
    cfg = load_config(
        "content-auto-creator",
        overrides=[
            'content_auto_creator.artifact_upload_allowed_source="drive.google.com,/drive,docs.google"'
        ],
        env={},
    )
    problems = job_definition("content-auto-creator").checks.advisory(cfg)
    assert [(p.level, p.message.split()[0]) for p in problems] == [
        ("warning", "'/drive'"),
        ("warning", "'docs.google'"),
    ]


def test_auto_creator_v2_checks_its_stores_and_its_schema_url() -> None:
    cfg = load_config(
        "auto-creator-v2",
        overrides=[
            "cloud_storage_type=local",
            "graph.store=sqlite",
            "external.store=cassandra",
            "lms-cassandra.host=",
            "schema.basePath=https://",
        ],
        env={},
    )
    keys = [p.key for p in job_definition("auto-creator-v2").checks.startup(cfg)]
    assert keys == ["schema.basePath", "graph.sqlite.url", "lms-cassandra.host"]
    endpoints = job_definition("auto-creator-v2").checks.endpoints(cfg)
    assert Endpoint("source.baseUrl", "localhost", 9000) in endpoints


def test_auto_creator_v2_warns_of_repository_allow_list_entries_that_match_nothing() -> None:
    cfg = load_config(
        "auto-creator-v2",
        overrides=['auto_creator_v2.repository_allowed_sources=["/api/questionset"]'],
        env={},
    )
    problems = job_definition("auto-creator-v2").checks.advisory(cfg)
    assert [p.key for p in problems] == ["auto_creator_v2.repository_allowed_sources"]


def test_user_delete_needs_program_service_url() -> None:
    cfg = load_config("user-delete", overrides=["program-service-baseUrl=program-service:9000"], env={})
    assert [p.key for p in job_definition("user-delete").checks.startup(cfg)] == ["program-service-baseUrl"]


@pytest.mark.parametrize(
    ("overrides", "flagged"),
    [
        # release-7 shape only: no release-8 key
        (["kafka.input.topic=prod.delete.user"], False),
        # release-8 shape only: the release-7 key keeps its packaged, job.env-derived value
        (["kafka.input.user_delete_topic=prod.delete.user"], False),
        (["job.env=production", "kafka.input.user_delete_topic=prod.delete.user"], False),
        # both named, the same topic
        (["kafka.input.topic=prod.delete.user", "kafka.input.user_delete_topic=prod.delete.user"], False),
        # both named, different topics: a mix-up
        (
            ["kafka.input.topic=prod.delete.user", "kafka.input.user_delete_topic=production.delete.user"],
            True,
        ),
        (
            [
                "job.env=qa",
                "kafka.input.topic=qa.user.delete",
                "kafka.input.user_delete_topic=qa.deleted.users",
            ],
            True,
        ),
    ],
)
def test_user_delete_release_7_and_8_topic_mix_up(overrides: list[str], flagged: bool) -> None:
    cfg = load_config("user-delete", overrides=overrides, env={})
    problems = job_definition("user-delete").checks.advisory(cfg)
    assert bool(problems) is flagged, problems
    if flagged:
        assert (
            problems[0].key == "kafka.input.user_delete_topic" and "kafka.input.topic" in problems[0].message
        )
