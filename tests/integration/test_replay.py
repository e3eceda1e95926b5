"""`replay` moves a job's retryable failed events back to its input topic, once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from cokreat_jobs.core.config import load_config
from cokreat_jobs.ops.kafka_io import consume_records, produce_records
from cokreat_jobs.ops.replay import decide, replay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def failed(job: str, iteration: int, uid: str) -> dict[str, Any]:
    return {
        "object": {"id": uid},
        "edata": {"action": "delete-user", "userId": uid, "iteration": iteration},
        "jobName": job,
        "failInfo": {"error": "x : : List()", "reason": "retries-exhausted"},
    }


def test_decide() -> None:
    assert decide(failed("user-delete", 3, "a"), "user-delete", 3)[0] == "move"
    assert decide(failed("user-delete", 4, "a"), "user-delete", 3) == ("exhausted", None)
    assert decide(failed("content-auto-creator", 2, "a"), "user-delete", 3) == ("other", None)
    assert decide({"jobName": "user-delete", "raw": "x", "failInfo": {}}, "user-delete", 3) == (
        "malformed",
        None,
    )
    verdict, event = decide(failed("user-delete", 2, "a"), "user-delete", 3)
    assert verdict == "move" and event is not None and "failInfo" not in event and "jobName" not in event
    assert event["edata"]["iteration"] == 2


def test_replay_moves_once(kafka_broker: Any) -> None:
    t = f"replay-{uuid.uuid4().hex[:8]}"
    cfg = load_config(
        "user-delete",
        overrides=[
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={t}",
            f"kafka.failed.topic={t}.failed",
        ],
    )
    records = [
        failed("user-delete", 2, "u1"),
        failed("user-delete", 3, "u2"),
        failed("user-delete", 4, "u3"),
        failed("content-auto-creator", 2, "c1"),
        {"jobName": "user-delete", "raw": "not json", "failInfo": {"reason": "malformed"}},
    ]
    produce_records(
        kafka_broker.bootstrap, f"{t}.failed", [json.dumps(r).encode() for r in records] + [b"junk"]
    )
    report = replay("user-delete", cfg, idle_timeout=3)
    assert (report.moved, report.exhausted, report.malformed, report.other_jobs) == (2, 1, 2, 1)
    back = [
        json.loads(v)
        for v in consume_records(kafka_broker.bootstrap, t, from_beginning=True, max_records=2, timeout=20)
    ]
    assert sorted(e["edata"]["userId"] for e in back) == ["u1", "u2"]
    assert all("failInfo" not in e for e in back)
    # its own consumer group: a second run sends nothing again
    again = replay("user-delete", cfg, idle_timeout=3)
    assert again.moved == 0 and again.exhausted == 0
