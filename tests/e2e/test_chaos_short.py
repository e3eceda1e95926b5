"""The short forms of `make chaos` (issue 8): each fault on a standalone Flink cluster (1 JM + 2 TMs,
user-delete at parallelism 2), every event accounted for from the sandbox's state, its request log and the
failed topic. The scenarios share one stack (broker, sandbox, cluster) to keep `make test` short; `make chaos`
gives each its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cokreat_jobs.chaos import SCENARIOS, Result, run_scenarios, table, write_results

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def short_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    home = tmp_path_factory.mktemp("chaos")
    results = run_scenarios(SCENARIOS, short=True, home=home, keep=True)
    write_results(results, home / "chaos-short.json")
    print("\n" + table(results))
    return {r.scenario: r for r in results}


def _check(r: Result) -> None:
    assert r.passed, json.dumps(r.as_dict(), indent=1)[:4000]
    assert r.lost == 0 and r.duplicates == 0
    assert r.failed == r.failed_with_reason


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chaos_short(short_results: dict[str, Result], scenario: str) -> None:
    r = short_results[scenario]
    _check(r)
    if scenario == "tm-kill":
        assert r.fault["kills"] and all(k["killed"] and k["restart_counted"] for k in r.fault["kills"])
        assert len(r.recovery_s) == 1
    elif scenario == "broker-bounce":
        assert r.fault["refused"] > 0
    elif scenario == "service-storm":
        assert r.fault["statuses"].get(503) and r.fault["statuses"].get(504)
        assert r.deleted == r.events, "replay brought every event home"
    elif scenario == "poison":
        assert r.restarts == 0
        assert set(r.fault["in_failed_topic"]) == set(r.fault["hostile"])
    elif scenario == "soak":
        assert r.memory["start"]["python_workers"] > 0


def test_no_secret_in_cluster_logs(short_results: dict[str, Any]) -> None:
    for r in short_results.values():
        assert r.protection and not r.protection["problems"], r.protection
        assert r.protection["log_lines"] > 0
