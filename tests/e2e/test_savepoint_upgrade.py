"""Upgrade without loss on a real standalone cluster: `cokreat-jobs stop --savepoint` mid-batch, then
`cokreat-jobs submit --from-savepoint`; every user is deleted, none twice (the sandbox's request log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.stack.flink_cluster import FlinkCluster
from cokreat_jobs.ops.flink_rest import FlinkRest
from cokreat_jobs.ops.kafka_io import produce_records

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

USERS = 2000


def cli(*args: str, timeout: float = 300) -> str:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    out = subprocess.run(
        [sys.executable, "-m", "cokreat_jobs.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_stop_with_savepoint_and_resume(kafka_broker: Any, sandbox: Any, tmp_path: Path) -> None:
    # A savepoint waits for every event already handed to the Python worker (PyFlink flushes its bundle before
    # the barrier), so small network buffers and bundles keep most of the batch in Kafka, where a stop can
    # actually leave it for the next version.
    cluster = FlinkCluster(
        tmp_path / "flink",
        taskmanagers=1,
        slots_per_taskmanager=2,
        extra_conf={"taskmanager.memory.segment-size": "4kb"},
    )
    cluster.start()
    try:
        run_id = uuid.uuid4().hex[:8]
        users = [f"upgrade-{run_id}-{i:04d}" for i in range(USERS)]
        sandbox.seed(users=users)
        before = max((r["seq"] for r in sandbox.requests()), default=0)
        # slow enough (~80 deletions/s) to stop the job in the middle of the batch
        sandbox.add_fault(method="DELETE", path="/program/v1/user/*", latency_ms=50)
        topic = f"upgrade-{run_id}"
        produce_records(
            kafka_broker.bootstrap,
            topic,
            [
                (
                    u.encode(),
                    json.dumps(
                        {"object": {"id": u}, "edata": {"action": "delete-user", "userId": u}}
                    ).encode(),
                )
                for u in users
            ],
        )
        sets: list[str] = []
        for kv in (
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={topic}.failed",
            f"kafka.groupId=g-{topic}",
            f"program-service-baseUrl={sandbox.base_url}",
            "task.async.capacity=4",
            "flink.python.fn-execution.bundle.size=20",
            "task.checkpointing.interval=2000",
        ):
            sets += ["--set", kv]

        jid1 = cli("submit", "user-delete", "--jobmanager", cluster.address, *sets)
        rest = FlinkRest(cluster.rest_url)

        def deleted_200() -> Counter[str]:
            log = sandbox.requests(since=before)
            return Counter(
                r["path"].rsplit("/user/", 1)[1]
                for r in log
                if r["method"] == "DELETE" and r["status"] == 200
            )

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and sum(deleted_200().values()) < 100:
            time.sleep(0.5)
        savepoint = cli(
            "stop",
            "user-delete",
            "--jobmanager",
            cluster.address,
            "--savepoint",
            (tmp_path / "savepoints").as_uri(),
            *sets,
        )
        at_stop = sum(deleted_200().values())
        assert 0 < at_stop < USERS, f"stopped mid-batch ({at_stop} of {USERS} deleted)"
        state = next(j["state"] for j in rest.jobs() if j["jid"] == jid1)
        assert state == "FINISHED", state
        assert savepoint, "the stop command printed the savepoint path"

        jid2 = cli(
            "submit", "user-delete", "--jobmanager", cluster.address, "--from-savepoint", savepoint, *sets
        )
        assert jid2 != jid1
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and set(users) & set(sandbox.users()):
            time.sleep(1)
        time.sleep(3)  # anything left in flight would show in the log now
        # Flink's REST API fetches metrics lazily (its first answers can be empty): read until the second job
        # has counted at least what it alone could have deleted, every event with its outcome
        counters = rest.counters(jid2, "user-delete")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            counters["total"] >= USERS - at_stop
            and counters["success"] + counters["skipped"] + counters["failed"] == counters["total"]
        ):
            time.sleep(1)
            counters = rest.counters(jid2, "user-delete")
        log = [r for r in sandbox.requests(since=before) if r["method"] == "DELETE"]
        ok = deleted_200()
        statuses = Counter(r["status"] for r in log)
        requests_per_user = Counter(r["path"].rsplit("/user/", 1)[1] for r in log)
        repeated = sum(1 for n in requests_per_user.values() if n > 1)
        print(
            f"\nsavepoint upgrade: {at_stop} users deleted before the stop, {USERS - at_stop} after; "
            f"savepoint {savepoint}; second job counters {counters}; DELETE statuses {dict(statuses)}; "
            f"users sent more than one DELETE: {repeated}"
        )
        # every event processed; a user whose event ran again answers 404 and is done (reported above)
        assert set(ok) == set(users), f"{len(set(users) - set(ok))} users never deleted"
        assert max(ok.values()) == 1, "a user deleted twice"
        assert not set(users) & set(sandbox.users())
        assert counters["failed"] == 0
        # The second job counted every event the first had not deleted, and resumed from the savepoint's
        # offsets, not from the start of the topic (at least 100 events back): what runs again is only what
        # the savepoint held in flight, the events running (task.async.capacity, 4) and those done since the
        # last emit (task.async.poll_ms, 200 ms, at ~80/s); 40 leaves room for both.
        assert USERS - at_stop <= counters["total"] <= USERS - at_stop + 40, counters
        assert repeated <= 40, repeated
        req = __import__("urllib.request").request
        req.urlopen(
            req.Request(f"{cluster.rest_url}/jobs/{jid2}?mode=cancel", method="PATCH"), timeout=10
        ).close()
    finally:
        cluster.stop()
