"""The short forms of `make chaos` (issue 8): each fault on a standalone Flink cluster (1 JM + 2 TMs, the job
at parallelism 2), every event accounted for from the sandbox's state, its request log and the failed topic.
user-delete runs every scenario; content-auto-creator and auto-creator-v2 run tm-kill and service-storm
(`<fault>:<job>`, accounted in dev/chaos/content.py). The scenarios share one stack (broker, sandbox,
cluster) to keep `make test` short; `make chaos` gives each its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cokreat_jobs.dev.chaos.report import Result, table, write_results
from cokreat_jobs.dev.chaos.run import run_scenarios
from cokreat_jobs.dev.chaos.scenarios import DEFAULTS, USER_DELETE_SCENARIOS

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

# the content jobs' short forms: one kill in 40 events, a 10 s storm over 45 (broker-bounce:<job> is in
# `make chaos` only, to keep `make test` within its budget)
CONTENT_SHORT = (
    "tm-kill:content-auto-creator",
    "service-storm:content-auto-creator",
    "tm-kill:auto-creator-v2",
    "service-storm:auto-creator-v2",
)
SHORT = USER_DELETE_SCENARIOS + CONTENT_SHORT


@pytest.fixture(scope="module")
def short_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    home = tmp_path_factory.mktemp("chaos")
    results = run_scenarios(SHORT, short=True, home=home, keep=True)
    write_results(results, home / "chaos-short.json")
    print("\n" + table(results))
    return {r.scenario: r for r in results}


def _check(r: Result) -> None:
    assert r.passed, json.dumps(r.as_dict(), indent=1)[:4000]
    assert r.lost == 0 and r.duplicates == 0
    assert r.failed == r.failed_with_reason
    # re-processing counted from the request log, which holds the run's effectful calls
    assert r.reprocessing["effect_calls"] > 0 and r.reprocessed == r.reprocessing["reprocessed"]
    # the scenarios of DEFAULTS ran with the shipped restart and checkpoint settings (seen on the job)
    assert r.defaults == (r.scenario in DEFAULTS)
    if r.defaults:
        assert r.settings["submitted"] == r.settings["shipped"], r.settings
        assert r.settings["running_checkpoints"]["tolerable_failed_checkpoints"] == 0, r.settings


@pytest.mark.parametrize("scenario", SHORT)
def test_chaos_short(short_results: dict[str, Result], scenario: str) -> None:
    r = short_results[scenario]
    _check(r)
    kind = scenario.split(":", 1)[0]
    if kind == "tm-kill":
        assert r.fault["kills"] and all(k["killed"] and k["restart_counted"] for k in r.fault["kills"])
        assert len(r.recovery_s) == 1
        # the kill is a recovery the re-processing count is measured across
        assert r.reprocessing["recoveries"] >= 1, r.reprocessing
    elif kind == "broker-bounce":
        assert r.fault["refused"] > 0
    elif kind == "service-storm":
        assert r.fault["statuses"].get(503) and r.fault["statuses"].get(504)
        assert r.deleted == r.events, "replay brought every event home"
    elif kind == "poison":
        assert r.restarts == 0
        assert set(r.fault["in_failed_topic"]) == set(r.fault["hostile"])
    elif kind == "soak":
        assert r.memory["start"]["python_workers"] > 0
    assert r.settings["in_flight"] == "pyflink-async"  # the shipped default
    if ":" in scenario:
        # a content job: each event has its effect (Live / in the graph store, linked) or failed with a reason
        acc = r.fault["accounting"]
        assert acc["with_effect"] + acc["failed_ids"] >= r.events, acc
        assert acc["links"] > 0
        if scenario.endswith(":content-auto-creator"):
            assert acc["creates"] >= acc["with_effect"] > 0, acc
            # the seeded service account was used: Drive files downloaded with its token
            assert acc["drive_downloads"] > 0, acc


def test_no_secret_in_cluster_logs(short_results: dict[str, Any]) -> None:
    for r in short_results.values():
        assert r.protection and not r.protection["problems"], r.protection
        assert r.protection["log_lines"] > 0
        assert r.protection["job_event_lines"] > 0, (r.scenario, r.protection)
        # the Python workers' own logs (flink-python-udf-boot.log) were read too
        assert r.protection["worker_logs"] > 0, (r.scenario, r.protection)
        if ":" in r.scenario:
            # the run's own service-account key was sought, besides the secrets every run seeds
            assert r.protection["secrets_sought"] > 10, (r.scenario, r.protection)


@pytest.mark.timeout(900)
def test_keyed_state_keeps_every_event_through_a_task_manager_kill(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`task.async.operator = keyed-state` (flink/inflight.py) on the same kill: events in flight come back
    from the checkpoint's state and finish. auto-creator-v2, whose every event is a key of its own, so an
    event restored from state has no newer event of its key to start it: its bucket's ticks must. The first
    design (poll timers re-registered in on_timer, which PyFlink does not restore) lost 8 and 10 of 40."""
    monkeypatch.setenv("COKREAT__TASK__ASYNC__OPERATOR", "keyed-state")
    (r,) = run_scenarios(("tm-kill:auto-creator-v2",), short=True, home=tmp_path)
    print("\n" + table([r]))
    assert r.settings["in_flight"] == "keyed-state", r.settings
    _check(r)
    assert r.fault["kills"] and all(k["killed"] and k["restart_counted"] for k in r.fault["kills"])
    acc = r.fault["accounting"]
    assert acc["with_effect"] + acc["failed_ids"] >= r.events and acc["links"] > 0, acc
