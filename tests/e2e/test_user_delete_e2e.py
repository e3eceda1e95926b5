"""user-delete end to end: real Kafka, the job on Flink's MiniCluster, the sandbox, injected faults.

Every event is accounted for (success / skipped / failed topic), every seeded target is deleted, nothing
else is.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def delete_event(uid: Any, action: str = "delete-user", n: int = 0) -> bytes:
    return json.dumps(
        {
            "eid": "BE_JOB_REQUEST",
            "ets": 1617174912468 + n,
            "mid": f"LP.{n}.{uuid.uuid4()}",
            "actor": {"id": "delete-user", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.lern", "ver": "1.0"}, "channel": "ch1"},
            "object": {"id": uid, "type": "User"},
            "edata": {"action": action, "userId": uid},
        }
    ).encode()


def build_batch(rng: random.Random) -> tuple[list[bytes], dict[str, Any]]:
    targets = [f"user-{i:04d}" for i in range(430)] + ["name/with slash", "ünïcode-ü", "q?x=1&y#z"]
    admins = [f"admin-{i}" for i in range(5)]
    bystanders = [f"keep-{i}" for i in range(30)]
    unknown = [f"ghost-{i}" for i in range(50)]
    records: list[bytes] = []
    records += [delete_event(u, n=i) for i, u in enumerate(targets)]
    records += [delete_event(u) for u in admins]
    records += [delete_event(u) for u in unknown]
    skipped = [delete_event(f"user-{i:04d}", action="block-user") for i in range(6)]
    skipped += [delete_event(" ") for _ in range(3)] + [delete_event("") for _ in range(3)]
    records += skipped
    malformed = [
        b"not json at all",
        b"[1, 2, 3]",
        b"\xff\xfe\xfa invalid utf-8",
        b'{"edata": ',
        b'"a string"',
        b"",
        b"null",
    ]
    invalid_field = [delete_event(12345), delete_event(["a"])]  # userId of the wrong type
    # keep the events of one user in order but mix the rest
    records += malformed + invalid_field
    rng.shuffle(records)
    expected = {
        "targets": targets,
        "admins": admins,
        "bystanders": bystanders,
        "unknown": unknown,
        "skipped": len(skipped),
        "malformed": len(malformed),
        "invalid_field": len(invalid_field),
    }
    return records, expected


# faults with a fixed budget; the job's retry bound must exceed their sum (see the run's overrides)
LIMITED_502 = 10
LIMITED_404 = 10
LIMITED_FAULTS = LIMITED_502 + LIMITED_404


def test_user_delete_end_to_end(kafka_broker: Any, sandbox: Any, tmp_path: Path) -> None:
    rng = random.Random(7)
    records, exp = build_batch(rng)
    total = len(records)
    assert total >= 500 and 0.01 <= (exp["malformed"] + exp["invalid_field"]) / total <= 0.03

    sandbox.seed(
        users=exp["targets"] + exp["bystanders"] + [{"id": a, "roles": ["admin"]} for a in exp["admins"]]
    )
    before = max((r["seq"] for r in sandbox.requests()), default=0)
    # program-service trouble: 503s, gateway HTML pages, the sticky 404, and slow answers
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", status=503, rate=0.08)
    sandbox.add_fault(
        method="DELETE",
        path="/program/v1/user/*",
        status=502,
        times=LIMITED_502,
        raw_body="<html><body>502 Bad Gateway</body></html>",
        content_type="text/html",
    )
    sandbox.add_fault(
        method="DELETE",
        path="/program/v1/user/*",
        status=404,
        times=LIMITED_404,
        body={"responseCode": "SERVER_ERROR", "result": {"response": "Unable to reach registry"}},
    )
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", latency_ms=20)

    topic = f"delete-user-{uuid.uuid4().hex[:8]}"
    failed_topic = f"{topic}.failed"
    produce_records(kafka_broker.bootstrap, topic, records)

    run = LocalJobRun(
        "user-delete",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={failed_topic}",
            f"kafka.groupId=g-{topic}",
            f"program-service-baseUrl={sandbox.base_url}",
            "http.retry.backoff_ms=50",
            # more attempts than the limited faults together (10 x 502, 10 x 404), so no event can be
            # handed every one of them and run out of retries: only the 8% rate can fail a call, and it
            # would have to hit the same call 6 more times in a row (0.08^6 ~ 3e-7 per call)
            f"http.retry.max_attempts={LIMITED_FAULTS + 6}",
            "task.checkpointing.interval=2000",
        ],
        log_file=tmp_path / "job.log",
    )
    run.start()
    try:
        counters = run.wait_for_total(total, timeout=300)
    finally:
        code = run.stop()
    assert code == 0, "SIGTERM stops the job cleanly"

    failed = [
        json.loads(v)
        for v in consume_records(
            kafka_broker.bootstrap, failed_topic, from_beginning=True, max_records=100, timeout=20
        )
    ]
    expected_failed = len(exp["admins"]) + exp["malformed"] + exp["invalid_field"]
    assert len(failed) == expected_failed, [f.get("failInfo") for f in failed]
    reasons = Counter(f["failInfo"]["reason"] for f in failed)
    assert reasons == {"permanent": 5, "malformed": exp["malformed"], "invalid-field": exp["invalid_field"]}
    for f in failed:
        assert f["jobName"] == "user-delete" and f["failInfo"]["error"]
        if f["failInfo"]["reason"] == "malformed":
            assert f["source"]["topic"] == topic and f["source"]["offset"] >= 0
            assert f["rawEncoding"] in ("utf-8", "base64") and "rawSize" in f
        else:
            assert f["edata"]["iteration"] == 2

    # every event accounted for, by the job's own counters
    assert counters["total"] == total
    assert counters["success"] == len(exp["targets"]) + len(exp["unknown"])
    assert counters["skipped"] == exp["skipped"]
    assert counters["failed"] == expected_failed
    assert counters["error"] > 0, "the injected faults were retried"

    # every seeded target deleted, nothing else
    ours = set(exp["targets"]) | set(exp["bystanders"]) | set(exp["admins"]) | set(exp["unknown"])
    remaining = set(sandbox.users()) & ours  # the sandbox is shared with other tests of the session
    assert remaining == set(exp["bystanders"]) | set(exp["admins"])

    # the service saw each target deleted (200) and its id as one decoded path segment
    log = sandbox.requests(since=before)
    deleted = {
        r["path"].rsplit("/user/", 1)[1] for r in log if r["method"] == "DELETE" and r["status"] == 200
    }
    assert set(exp["targets"]) <= deleted
    statuses = Counter(r["status"] for r in log if r["method"] == "DELETE")
    assert statuses[503] > 0 and statuses[502] == 10
