"""Service protection against a throttling gateway: the sandbox answers 429 + Retry-After beyond N requests/s.

user-delete runs on the MiniCluster over a batch several times N; its calls to program-service must converge
near N/s, draw few 429s once the first seconds have passed, and every user must still be deleted.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.ops.kafka_io import produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MAX_RPS = 40
LATENCY_MS = 100
USERS = 800
WARM_UP_S = 5.0


def test_job_converges_near_the_throttled_rate(kafka_broker: Any, sandbox: Any, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    users = [f"throttle-{run_id}-{i:04d}" for i in range(USERS)]
    sandbox.seed(users=users)
    before = max((r["seq"] for r in sandbox.requests()), default=0)
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", max_rps=MAX_RPS)
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", latency_ms=LATENCY_MS)

    topic = f"throttle-{run_id}"
    produce_records(
        kafka_broker.bootstrap,
        topic,
        [
            (
                u.encode(),
                json.dumps({"object": {"id": u}, "edata": {"action": "delete-user", "userId": u}}).encode(),
            )
            for u in users
        ],
    )
    run = LocalJobRun(
        "user-delete",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={topic}.failed",
            f"kafka.groupId=g-{topic}",
            f"program-service-baseUrl={sandbox.base_url}",
            # generous retries: this test is about the pace, nothing may end on the failed topic
            "http.retry.max_attempts=30",
            "http.retry.max_backoff_ms=2000",
            "task.checkpointing.interval=2000",
        ],
        log_file=tmp_path / "job.log",
    )
    run.start()
    try:
        counters = run.wait_for_total(USERS, timeout=600)
    finally:
        run.stop()
    sandbox.clear_faults()

    log = [r for r in sandbox.requests(since=before) if r["method"] == "DELETE"]
    statuses = Counter(r["status"] for r in log)
    t0 = min(r["ts_ms"] for r in log) / 1000.0
    t_end = max(r["ts_ms"] for r in log) / 1000.0
    steady = [r for r in log if r["ts_ms"] / 1000.0 >= t0 + WARM_UP_S]
    steady_ok = [r for r in steady if r["status"] == 200]
    steady_429 = [r for r in steady if r["status"] == 429]
    steady_span = max(t_end - (t0 + WARM_UP_S), 1e-3)
    rate = len(steady_ok) / steady_span
    early_429 = statuses[429] - len(steady_429)
    print(
        f"\nthrottling: gateway max {MAX_RPS}/s, latency {LATENCY_MS} ms, {USERS} users in "
        f"{t_end - t0:.1f} s; converged to {rate:.1f} deletions/s after the first {WARM_UP_S:.0f} s; "
        f"429s: {statuses[429]} in all ({early_429} in the first {WARM_UP_S:.0f} s, {len(steady_429)} after, "
        f"{100 * len(steady_429) / max(len(steady), 1):.1f}% of later requests); statuses {dict(statuses)}"
    )

    # nothing lost: every user deleted once, every event a success
    assert counters["success"] == USERS and counters["failed"] == 0, counters
    deleted = Counter(r["path"].rsplit("/user/", 1)[1] for r in log if r["status"] == 200)
    assert set(deleted) == set(users) and max(deleted.values()) == 1
    assert not set(users) & set(sandbox.users())
    # near the gateway's rate, never above it
    assert 0.5 * MAX_RPS <= rate <= 1.05 * MAX_RPS, rate
    # few 429s once the limit has adapted
    assert len(steady_429) <= 0.05 * len(steady), (len(steady_429), len(steady))
