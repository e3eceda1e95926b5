"""user-delete's failed topic: named by `kafka.failed.topic` (which wins over the `job.env`-derived default),
never one of the topics the job reads, and not the content jobs' shared failed topic (personal data)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cokreat_jobs.core.config import load_config
from cokreat_jobs.jobs import job_definition
from cokreat_jobs.jobs.user_delete.logic import UserDeletion
from cokreat_jobs.ops.replay import decide

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


def test_failed_records_keep_the_jobs_name_for_replay_whatever_job_name_says() -> None:
    """`job.name = "cokreat-user-delete"` (the Scala job's, which docs/OPERATIONS.md suggests for a release-7
    config) renames the Flink job; the failed records keep jobName user-delete, which replay looks for."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"responseCode": "CLIENT_ERROR", "result": {}}, status=400)

    async def go() -> Any:
        app = web.Application()
        app.router.add_delete("/program/v1/user/{uid}", refuse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        cfg = load_config(
            "user-delete",
            overrides=[f"program-service-baseUrl=http://127.0.0.1:{port}", "job.name=cokreat-user-delete"],
            env={},
        )
        job = UserDeletion.from_config(cfg)
        try:
            return await job.process({"edata": {"action": "delete-user", "userId": "u-1"}})
        finally:
            await job.close()
            await runner.cleanup()

    outcome = asyncio.run(go())
    assert outcome.failed_record is not None
    assert outcome.failed_record["jobName"] == "user-delete"
    assert decide(outcome.failed_record, "user-delete", 3)[0] == "move"
