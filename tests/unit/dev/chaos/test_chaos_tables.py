"""The parts of `cokreat-jobs chaos` that need no cluster: the scenario names and their runners, the batches
(hostile records known by kind), the storm's rules and the report's table."""

from __future__ import annotations

import json
from pathlib import Path

from cokreat_jobs.dev.chaos import content, scenarios
from cokreat_jobs.dev.chaos.batches import HOSTILE_KINDS, make_batch
from cokreat_jobs.dev.chaos.faults import storm_rules
from cokreat_jobs.dev.chaos.report import Result, table, write_results
from cokreat_jobs.dev.chaos.run import RUNNERS, SCENARIOS


def test_the_scenarios_user_delete_first_then_each_content_job() -> None:
    assert SCENARIOS == (
        "tm-kill",
        "broker-bounce",
        "service-storm",
        "poison",
        "soak",
        "tm-kill:content-auto-creator",
        "broker-bounce:content-auto-creator",
        "service-storm:content-auto-creator",
        "tm-kill:auto-creator-v2",
        "broker-bounce:auto-creator-v2",
        "service-storm:auto-creator-v2",
    )
    assert list(RUNNERS) == list(SCENARIOS)
    assert set(scenarios.RUNNERS) == set(scenarios.USER_DELETE_SCENARIOS)
    assert set(content.RUNNERS) == set(content.SCENARIOS)


def test_a_batch_knows_each_hostile_record_by_kind() -> None:
    batch = make_batch("t", 200, hostile_fraction=0.05)
    assert len(batch.users) == 200
    assert len(batch.records) == 200 + len(batch.hostile)
    assert sorted(set(batch.hostile.values())) == sorted(HOSTILE_KINDS)
    for i, kind in batch.hostile.items():
        assert batch.records[i][0].startswith(b"hostile-"), kind
    users = [json.loads(v)["edata"]["userId"] for k, v in batch.records if not k.startswith(b"hostile-")]
    assert users == batch.users


def test_the_storm_serves_5xx_hangs_and_latency_on_its_target() -> None:
    rules = storm_rules("DELETE", "/x/*")
    assert all(r["path"] == "/x/*" and r["method"] == "DELETE" for r in rules)
    assert {r.get("status") for r in rules} == {None, 503, 504}
    assert any(r.get("hang") for r in rules) and any(r.get("latency_ms") for r in rules)
    assert all("method" not in r for r in storm_rules(None, "/y"))


def test_the_report_has_a_row_per_scenario_and_the_json_says_passed(tmp_path: Path) -> None:
    ok = Result("tm-kill", True, events=10, recovery_s=[3.5])
    bad = Result("soak", True, problems=["grew"])
    text = table([ok, bad])
    rows = text.strip().splitlines()
    assert len(rows) == 4
    assert rows[2].startswith("| tm-kill | 10 |") and rows[2].endswith("| pass |") and "| 3.5 |" in rows[2]
    assert rows[3].startswith("| soak |") and rows[3].endswith("| FAIL |")
    out = tmp_path / "r" / "chaos.json"
    write_results([ok, bad], out)
    written = json.loads(out.read_text())
    assert [s["passed"] for s in written["scenarios"]] == [True, False]
