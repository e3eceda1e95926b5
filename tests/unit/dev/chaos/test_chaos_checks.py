"""Every check of `cokreat-jobs chaos` can fail (HARDENING 9): each is fed the evidence of a run whose
guarantee was broken on purpose (a repeated create, an event without its effect, a leaked secret, the
never-give-up settings in a defaults run) and fails; fed the evidence of a sound run, it passes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cokreat_jobs.core.config import load_config
from cokreat_jobs.dev.chaos import scenarios
from cokreat_jobs.dev.chaos.accounting import judge, reprocessing_problems
from cokreat_jobs.dev.chaos.config import (
    NEVER_GIVE_UP,
    SEEDED_SECRET,
    defaults_problems,
    job_config,
    seeded_service_account,
)
from cokreat_jobs.dev.chaos.content import origin_duplicates
from cokreat_jobs.dev.chaos.effects import (
    ACV2,
    CAC,
    USER_DELETE,
    count_reprocessing,
    effect_keys,
    recovery_times,
)
from cokreat_jobs.dev.chaos.protection import scan_for_leaks
from cokreat_jobs.dev.chaos.report import Result

_seq = iter(range(1, 10_000))


def call(method: str, path: str, status: int, ts: int, body: Any = None) -> dict[str, Any]:
    return {"seq": next(_seq), "ts_ms": ts, "method": method, "path": path, "status": status, "body": body}


def create(ident: str, status: int, ts: int) -> dict[str, Any]:
    return call("POST", "/content/v4/create", status, ts, {"request": {"content": {"identifier": ident}}})


# --------------------------------------------------------------------------- re-processing, duplicate effects


def test_a_delete_repeated_after_a_recovery_is_reprocessing_whatever_its_answer() -> None:
    log = [
        call("DELETE", "/program/v1/user/u1", 200, 1000),
        call("DELETE", "/program/v1/user/u2", 200, 1100),
        # the job restarted at 1500: u1 deleted again (the sandbox answers 404 the second time)
        call("DELETE", "/program/v1/user/u1", 404, 2000),
    ]
    rep = count_reprocessing(USER_DELETE, log, recoveries_ms=[1500])
    assert (rep.effect_calls, rep.targets, rep.reprocessed, rep.retried) == (3, 2, 1, 0)
    assert rep.reprocessed_by_op == {"delete-user": 1} and rep.reprocessed_targets == 1
    assert rep.duplicate_effects == []  # a second delete answered 404 applied nothing
    # with no recovery and no re-run, nothing is re-processed: the check counts, it does not invent
    assert count_reprocessing(USER_DELETE, log[:2]).reprocessed == 0


def test_a_retry_after_a_transient_answer_is_not_reprocessing_but_after_a_recovery_it_is() -> None:
    log = [
        call("DELETE", "/program/v1/user/u1", 503, 1000),
        call("DELETE", "/program/v1/user/u1", 499, 1200),  # hung, the client gave up
        call("DELETE", "/program/v1/user/u1", 200, 1400),
    ]
    rep = count_reprocessing(USER_DELETE, log)
    assert (rep.reprocessed, rep.retried) == (0, 2)
    # the same calls with a replay begun between the 503 and the next call: the event ran again (the call
    # after the replay), and that run retried once (the last call)
    rep = count_reprocessing(USER_DELETE, log, recoveries_ms=[1100])
    assert (rep.reprocessed, rep.retried) == (1, 1)


def test_a_call_repeated_after_its_success_is_reprocessing_even_without_a_seen_recovery() -> None:
    log = [
        call("POST", "/content/v4/review/do_1", 200, 1000),
        call("POST", "/content/v4/review/do_1", 400, 1100),
    ]
    assert count_reprocessing(CAC, log).reprocessed == 1


def test_a_second_successful_delete_or_create_is_a_duplicate_effect_and_fails_the_scenario() -> None:
    deletes = [
        call("DELETE", "/program/v1/user/u1", 200, 1000),
        call("DELETE", "/program/v1/user/u1", 200, 2000),
    ]
    rep = count_reprocessing(USER_DELETE, deletes, recoveries_ms=[1500])
    assert rep.duplicate_effects == ["delete-user u1"]
    res = Result("tm-kill", True)
    judge(res, {"u1"}, {"u1"}, set(), rep.duplicate_effects)
    assert res.duplicates == 1 and not res.passed, res.problems

    # content-auto-creator: the create repeated after a recovery, refused the second time: re-processing only
    refused = [create("do_1", 200, 1000), create("do_1", 400, 2000)]
    rep = count_reprocessing(CAC, refused, recoveries_ms=[1500])
    assert rep.reprocessed == 1 and rep.duplicate_effects == []
    res = Result("tm-kill:content-auto-creator", True)
    judge(res, {"do_1"}, {"do_1"}, set(), rep.duplicate_effects)
    assert res.passed and res.duplicates == 0
    # ... accepted the second time (a service that does not refuse it): a content created twice
    accepted = [create("do_1", 200, 1000), create("do_1", 200, 2000)]
    rep = count_reprocessing(CAC, accepted, recoveries_ms=[1500])
    assert rep.duplicate_effects == ["create do_1"]
    res = Result("tm-kill:content-auto-creator", True)
    judge(res, {"do_1"}, {"do_1"}, set(), rep.duplicate_effects)
    assert not res.passed and "effects applied twice" in res.problems[0]


def test_two_contents_with_one_origin_are_a_duplicate_effect() -> None:
    assert origin_duplicates({"do_1": {"do_1"}, "do_2": {"do_2"}}) == []
    dups = origin_duplicates({"do_1": {"do_1", "do_11f3a"}, "do_2": {"do_2"}})
    assert dups == ["origin do_1 (do_1, do_11f3a)"]
    res = Result("tm-kill:content-auto-creator", True)
    judge(res, {"do_1", "do_2"}, {"do_1", "do_2"}, set(), dups)
    assert not res.passed


def test_the_effectful_calls_of_each_job() -> None:
    link = call(
        "PATCH",
        "/content/v3/hierarchy/add",
        200,
        1,
        {"request": {"rootId": "b", "unitId": "u", "children": ["c1", "c2"]}},
    )
    assert effect_keys(CAC, link) == [("hierarchy-add", "b/u/c1"), ("hierarchy-add", "b/u/c2")]
    assert effect_keys(ACV2, link) == effect_keys(CAC, link)
    assert effect_keys(CAC, create("do_9", 200, 1)) == [("create", "do_9")]
    for path, op in [
        ("/content/v4/update/do_9", "update"),
        ("/content/v4/system/update/do_9", "system-update"),
    ]:
        assert effect_keys(CAC, call("PATCH", path, 200, 1)) == [(op, "do_9")]
    for verb in ("upload", "review", "publish"):
        assert effect_keys(CAC, call("POST", f"/content/v4/{verb}/do_9", 200, 1)) == [(verb, "do_9")]
    # reads are not effects, nor another job's calls
    assert effect_keys(CAC, call("GET", "/content/v4/read/do_9", 200, 1)) == []
    assert effect_keys(CAC, call("POST", "/v3/search", 200, 1)) == []
    assert effect_keys(USER_DELETE, create("do_9", 200, 1)) == []
    assert effect_keys(ACV2, create("do_9", 200, 1)) == []


def test_recoveries_come_from_flinks_exception_history() -> None:
    history = {"exceptionHistory": {"entries": [{"timestamp": 5}, {"timestamp": 3}, {"no": 1}]}}
    assert recovery_times(history) == [5, 3]
    assert recovery_times({}) == []


def test_a_request_log_without_the_runs_calls_fails_the_reprocessing_check() -> None:
    # a log that does not hold the run's calls (cleared, another sandbox, a path filter gone wrong) would
    # report 0 re-processed and prove nothing
    empty = count_reprocessing(USER_DELETE, [call("GET", "/program/v1/user/u1", 200, 1)])
    assert reprocessing_problems(empty)
    assert not reprocessing_problems(
        count_reprocessing(USER_DELETE, [call("DELETE", "/program/v1/user/u1", 200, 1)])
    )


# --------------------------------------------------------------------------------------------------- lost


def test_an_event_with_neither_its_effect_nor_a_failed_record_is_lost() -> None:
    res = Result("tm-kill", True)
    lost = judge(res, {"u1", "u2", "u3"}, {"u1"}, {"u2"}, [])
    assert lost == {"u3"} and res.lost == 1 and not res.passed
    assert "1 events lost" in res.problems[0]
    res = Result("tm-kill", True)
    judge(res, {"u1", "u2", "u3"}, {"u1", "u3"}, {"u2"}, [])
    assert res.lost == 0 and res.passed


# ----------------------------------------------------------------------------------------- data protection


def test_a_seeded_secret_in_a_log_a_failed_record_or_an_import_error_is_found(tmp_path: Path) -> None:
    _, key_lines = seeded_service_account("http://127.0.0.1:1/oauth2/token")
    assert len(key_lines) > 10 and all(len(line) >= 32 for line in key_lines)
    secrets = [SEEDED_SECRET, *key_lines]
    log = tmp_path / "taskmanager.log"
    log.write_text('{"msg": "content-auto-creator success", "id": "do_1"}\n')
    clean = scan_for_leaks([log], [{"failInfo": {"reason": "x"}}], secrets, texts=["download failed: 503"])
    assert clean["problems"] == [] and clean["log_lines"] == 1 and clean["texts_scanned"] == 1

    # one line of the key in a log line
    leaky = tmp_path / "flink-python-udf-boot.log"
    leaky.write_text(f"token request failed with key {key_lines[3]}\n")
    found = scan_for_leaks([log, leaky], [], secrets)
    assert found["problems"] and "flink-python-udf-boot.log" in found["problems"][0]
    # the key JSON-escaped in a failed-topic record
    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(key_lines) + "\n-----END PRIVATE KEY-----\n"
    record = {"failInfo": {"reason": "x", "error": json.dumps({"private_key": pem})}}
    assert scan_for_leaks([], [record], secrets)["problems"]
    # the storage secret in a content's importError
    assert scan_for_leaks([], [], secrets, texts=[f"upload refused: secret={SEEDED_SECRET}"])["problems"]


def test_a_user_id_in_a_log_line_is_found(tmp_path: Path) -> None:
    log = tmp_path / "taskmanager.log"
    log.write_text("user-delete success user=ab12cd\nuser-delete failed user=tm-kill-1a2b-u00007\n")
    found = scan_for_leaks(
        [log], [], [SEEDED_SECRET], user_ids=["tm-kill-1a2b-u00007"], markers=[b"user-delete"]
    )
    assert found["job_event_lines"] == 2 and len(found["problems"]) == 1


# ------------------------------------------------------------------------------------------------ defaults


def _stack() -> Any:
    return SimpleNamespace(
        broker=SimpleNamespace(bootstrap="127.0.0.1:9"), server=SimpleNamespace(url="http://s")
    )


SHIPPED_CHECKPOINTS = {"interval": 60000, "timeout": 600000, "tolerable_failed_checkpoints": 0}


def test_a_defaults_run_has_the_shipped_restart_and_checkpoint_settings() -> None:
    cfg = job_config(_stack(), "t", defaults=True)
    settings, problems = defaults_problems("user-delete", cfg, SHIPPED_CHECKPOINTS)
    assert problems == [], problems
    assert settings["submitted"] == settings["shipped"]
    assert settings["submitted"]["task.restart-strategy.attempts"] == 3
    # the never-give-up overrides are not in it, and are in the other runs
    assert cfg.get("task.restart-strategy.type", "fixed-delay") != "exponential-delay"
    assert cfg.get("task.checkpointing.tolerable-failures", 0) != 100000
    other = job_config(_stack(), "t")
    assert other.get("task.restart-strategy.type") == "exponential-delay"
    assert other.get("task.checkpointing.tolerable-failures") == 100000


def test_the_defaults_check_fails_on_the_never_give_up_settings_or_a_job_that_ran_otherwise() -> None:
    overridden = job_config(_stack(), "t")  # NEVER_GIVE_UP
    _, problems = defaults_problems("user-delete", overridden, SHIPPED_CHECKPOINTS)
    assert len(problems) >= len(NEVER_GIVE_UP) - 1, problems  # max-delay aside, each key differs
    assert all(p.startswith("not the shipped defaults") for p in problems)
    # the configuration says defaults, but the running job tolerates checkpoint failures
    cfg = job_config(_stack(), "t", defaults=True)
    running = {**SHIPPED_CHECKPOINTS, "tolerable_failed_checkpoints": 100000}
    _, problems = defaults_problems("user-delete", cfg, running)
    assert problems and "tolerable_failed_checkpoints" in problems[0]
    # the running job's checkpoint configuration could not be read: not a pass
    _, problems = defaults_problems("user-delete", cfg, None)
    assert problems


def test_one_scenario_per_fault_runs_with_the_shipped_defaults() -> None:
    assert {"tm-kill", "broker-bounce", "service-storm", "poison"} <= scenarios.DEFAULTS
    assert set(scenarios.DEFAULTS) <= set(scenarios.USER_DELETE_SCENARIOS)


@pytest.mark.parametrize("job", ["content-auto-creator", "auto-creator-v2"])
def test_the_content_jobs_shipped_settings_are_read_from_their_conf(job: str) -> None:
    shipped = load_config(job, env={})
    assert shipped.get("task.checkpointing.tolerable-failures", None) is None  # Flink's 0
    assert shipped.get("task.restart-strategy.attempts") == 3


def test_the_log_check_fails_when_it_read_none_of_the_jobs_event_lines(tmp_path: Path) -> None:
    # the cluster's own log, without a line of the job's events (its Python workers' logs not found)
    log = tmp_path / "taskmanager.log"
    log.write_text("INFO Starting TaskManager\n")
    found = scan_for_leaks([log], [], [SEEDED_SECRET], markers=[b"content-auto-creator success"])
    assert found["job_event_lines"] == 0 and found["problems"], found
    log.write_text('INFO Starting TaskManager\n{"msg": "content-auto-creator success"}\n')
    assert (
        scan_for_leaks([log], [], [SEEDED_SECRET], markers=[b"content-auto-creator success"])["problems"]
        == []
    )


def test_a_scenarios_stack_directory_has_no_path_separator(tmp_path: Path) -> None:
    # Flink splits io.tmp.dirs at ":"; a stack under "tm-kill:content-auto-creator" sent the Python workers'
    # logs elsewhere and the log check read none of them
    from cokreat_jobs.dev.chaos.run import SCENARIOS, stack_dir

    for name in SCENARIOS:
        assert ":" not in str(stack_dir(tmp_path, name)), name
    assert stack_dir(tmp_path, "tm-kill:auto-creator-v2") != stack_dir(
        tmp_path, "tm-kill:content-auto-creator"
    )
