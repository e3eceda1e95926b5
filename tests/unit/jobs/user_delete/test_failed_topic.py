"""user-delete's failed topic: named by `kafka.failed.topic` (which wins over the `job.env`-derived default),
never one of the topics the job reads, and not the content jobs' shared failed topic (personal data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cokreat_jobs.core.config import load_config
from cokreat_jobs.jobs import job_definition

CHECKS = job_definition("user-delete").checks


def failed_problems(overrides: list[str]) -> list[tuple[str, str]]:
    cfg = load_config("user-delete", overrides=overrides, env={})
    problems = CHECKS.startup(cfg) + CHECKS.advisory(cfg)
    return [(p.level, p.message) for p in problems if p.key == "kafka.failed.topic"]


def test_the_default_derives_from_job_env_and_the_key_wins(tmp_path: Path) -> None:
    assert load_config("user-delete", overrides=["job.env=prod"], env={}).get_str("kafka.failed.topic") == (
        "prod.delete.user.failed"
    )
    conf = tmp_path / "user-delete.conf"
    conf.write_text('job.env = "prod"\nkafka.failed.topic = "gdpr.user-delete.failed"\n')
    cfg = load_config("user-delete", config_file=conf, env={})
    assert cfg.get_str("kafka.failed.topic") == "gdpr.user-delete.failed"
    assert cfg.get_str("kafka.input.topic") == "prod.delete.user"
    # through the environment too (a deployment's ConfigMap-free override)
    cfg = load_config("user-delete", env={"COKREAT__KAFKA__FAILED__TOPIC": "env.failed"})
    assert cfg.get_str("kafka.failed.topic") == "env.failed"
    assert failed_problems(["kafka.failed.topic=gdpr.user-delete.failed"]) == []


@pytest.mark.parametrize(
    "overrides",
    [
        ["kafka.failed.topic=sunbirddev.delete.user"],  # release-7's input
        ["kafka.input.user_delete_topic=ud.in", "kafka.failed.topic=ud.in"],
        [
            "kafka.input.ownership_transfer_topic=transfers",
            "kafka.input.user_delete_topic=ud",
            "kafka.failed.topic=transfers",
        ],
    ],
)
def test_a_failed_topic_the_job_reads_stops_it_at_start(overrides: list[str]) -> None:
    cfg = load_config("user-delete", overrides=overrides, env={})
    problems = [p for p in CHECKS.startup(cfg) if p.key == "kafka.failed.topic"]
    assert [p.level for p in problems] == ["error"]
    assert "a topic the job reads" in problems[0].message


def test_an_empty_failed_topic_stops_it_at_start() -> None:
    assert [level for level, _ in failed_problems(['kafka.failed.topic=""'])] == ["error"]


def test_the_content_jobs_failed_topic_is_flagged_as_personal_data_beside_theirs() -> None:
    # what the Scala cokreat-user-delete.conf shipped (copied from auto-creator-v2's)
    found = failed_problems(["kafka.failed.topic=sunbirddev.auto.creation.job.request.failed"])
    assert [level for level, _ in found] == ["warning"]
    assert "user ids" in found[0][1]
