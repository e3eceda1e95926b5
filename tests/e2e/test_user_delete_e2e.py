"""user-delete end to end: real Kafka, the job on Flink's MiniCluster, the sandbox, injected faults.

Every event is accounted for (success / skipped / failed topic), every seeded target is deleted, nothing
else is. The job runs with release-8's keys: the deletions' topic (`kafka.input.user_delete_topic`) and the
ownership transfers' (`kafka.input.ownership_transfer_topic`), read by one source; every valid transfer
reaches program-service once, as the whole event, and the invalid ones are skipped or failed.
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


def transfer_event(n: int, tag: str, object_type: str = "User", **to: Any) -> dict[str, Any]:
    profile = {
        "userId": f"to-{n}",
        "firstName": "Asha",
        "lastName": "Rao",
        "roles": ["CONTENT_CREATOR"],
        **to,
    }
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": f"OT.{tag}.{n}",
        "actor": {"id": "ownership-transfer", "type": "System"},
        "object": {"id": f"from-{n}", "type": object_type},
        "edata": {
            "action": "ownership-transfer",
            "fromUserProfile": {
                "userId": f"from-{n}",
                "firstName": "Ravi",
                "lastName": "Iyer",
                "roles": ["x"],
            },
            "toUserProfile": profile,
            "iteration": 1,
        },
    }


def build_transfers(tag: str) -> tuple[list[bytes], list[bytes], dict[str, Any]]:
    """(records for the transfer topic, records for the deletions' topic, what to expect)."""
    valid = [transfer_event(n, tag) for n in range(4)]
    invalid = [transfer_event(10, tag, firstName=" "), transfer_event(11, tag, roles=[])]
    invalid += [transfer_event(12, tag, object_type="Content")]
    wrong_type = [transfer_event(13, tag, roles="CONTENT_CREATOR")]
    # program-service republishes what it accepts to the deletions' topic: read there, it is not sent again
    republished = [transfer_event(0, tag)]
    on_transfer_topic = [json.dumps(e).encode() for e in valid + invalid + wrong_type]
    expected = {"valid": valid, "skipped": len(invalid) + len(republished), "invalid_field": len(wrong_type)}
    return on_transfer_topic, [json.dumps(e).encode() for e in republished], expected


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
    # program-service could not publish two transfers to Kafka (its 400): retried
    sandbox.add_fault(
        method="POST",
        path="/program/v1/user/transfer",
        status=400,
        times=2,
        body={
            "params": {"err": "ERR_DELETING_USER_FAILED", "errmsg": "Unable to delete given user"},
            "result": {},
        },
    )
    # a deletion whose object is not a user is skipped under release-8's object.type rule
    not_a_user = json.loads(delete_event(exp["bystanders"][0]))
    not_a_user["object"]["type"] = "Content"
    records.append(json.dumps(not_a_user).encode())

    topic = f"delete-user-{uuid.uuid4().hex[:8]}"
    transfer_topic = f"{topic}.transfer"
    failed_topic = f"{topic}.failed"
    to_transfer_topic, republished, texp = build_transfers(topic)
    records += republished
    produce_records(kafka_broker.bootstrap, topic, records)
    produce_records(kafka_broker.bootstrap, transfer_topic, to_transfer_topic)
    total += len(to_transfer_topic) + len(republished) + 1

    run = LocalJobRun(
        "user-delete",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            # release-8's keys: kafka.input.topic (the packaged ${job.env}.delete.user) is not read
            f"kafka.input.user_delete_topic={topic}",
            f"kafka.input.ownership_transfer_topic={transfer_topic}",
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
    invalid_field = exp["invalid_field"] + texp["invalid_field"]
    expected_failed = len(exp["admins"]) + exp["malformed"] + invalid_field
    assert len(failed) == expected_failed, [f.get("failInfo") for f in failed]
    reasons = Counter(f["failInfo"]["reason"] for f in failed)
    assert reasons == {"permanent": 5, "malformed": exp["malformed"], "invalid-field": invalid_field}
    failed_transfer = [f for f in failed if f.get("edata", {}).get("action") == "ownership-transfer"]
    assert [f["mid"] for f in failed_transfer] == [f"OT.{topic}.13"]
    for f in failed:
        assert f["jobName"] == "user-delete" and f["failInfo"]["error"]
        if f["failInfo"]["reason"] == "malformed":
            assert f["source"]["topic"] == topic and f["source"]["offset"] >= 0
            assert f["rawEncoding"] in ("utf-8", "base64") and "rawSize" in f
        else:
            assert f["edata"]["iteration"] == 2

    # every event accounted for, by the job's own counters
    assert counters["total"] == total
    assert counters["success"] == len(exp["targets"]) + len(exp["unknown"]) + len(texp["valid"])
    assert counters["skipped"] == exp["skipped"] + texp["skipped"] + 1
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

    # each valid transfer reached program-service as the whole event, once (the two 400s were retried)
    ours_transfers = [t for t in sandbox.transfers() if str(t.get("mid", "")).startswith(f"OT.{topic}.")]
    assert sorted(ours_transfers, key=lambda t: t["mid"]) == texp["valid"]
    posts = Counter(
        r["status"] for r in log if r["method"] == "POST" and r["path"].endswith("/user/transfer")
    )
    assert posts == {200: len(texp["valid"]), 400: 2}
