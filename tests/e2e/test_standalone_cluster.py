"""user-delete on a real standalone Flink cluster (1 job manager, 2 task managers), submitted with
`cokreat-jobs submit`, parallelism 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.stack.flink_cluster import FlinkCluster
from cokreat_jobs.ops.flink_rest import FlinkRest
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def test_user_delete_on_standalone_cluster(kafka_broker: Any, sandbox: Any, tmp_path: Path) -> None:
    cluster = FlinkCluster(tmp_path / "flink", taskmanagers=2, slots_per_taskmanager=1)
    cluster.start()
    try:
        assert cluster.registered_taskmanagers() == 2
        users = [f"cluster-user-{i}" for i in range(300)]
        sandbox.seed(users=users + ["cluster-keep"])
        topic = f"cluster-delete-{uuid.uuid4().hex[:8]}"
        # two partitions, so both parallel source readers get records
        records = [
            (
                u.encode(),
                json.dumps({"object": {"id": u}, "edata": {"action": "delete-user", "userId": u}}).encode(),
            )
            for u in users
        ] + [(b"x", b"{broken")]
        produce_records(kafka_broker.bootstrap, topic, records)

        argv = [
            sys.executable,
            "-m",
            "cokreat_jobs.cli.main",
            "submit",
            "user-delete",
            "--jobmanager",
            cluster.address,
            "--set",
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            "--set",
            f"kafka.input.topic={topic}",
            "--set",
            f"kafka.failed.topic={topic}.failed",
            "--set",
            f"kafka.groupId=g-{topic}",
            "--set",
            f"program-service-baseUrl={sandbox.base_url}",
            "--set",
            "task.parallelism=2",
            "--set",
            "task.checkpointing.interval=2000",
        ]
        env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        jid = out.stdout.strip().splitlines()[-1]
        assert len(jid) == 32

        rest = FlinkRest(cluster.rest_url)
        deadline = time.monotonic() + 300
        counters: dict[str, int] = {}
        while time.monotonic() < deadline:
            counters = rest.counters(jid, "user-delete")
            if counters["success"] + counters["failed"] >= len(records):
                break
            time.sleep(1)
        assert counters["total"] == len(records), counters
        assert counters["success"] == len(users) and counters["failed"] == 1

        # parallelism 2 on two task managers: both subtasks of the processing operator did work
        job = rest.get(f"/jobs/{jid}")
        assert job["state"] == "RUNNING"
        # the processing operator's vertex, named as the reference's ("user-delete -> ..." after a key_by,
        # "... -> user-delete -> ..." chained to the source under pyflink-async)
        process = next(v for v in job["vertices"] if re.search(r"(^|-> )user-delete( ->|$)", v["name"]))
        assert process["parallelism"] == 2
        per_subtask = [
            rest.get(
                f"/jobs/{jid}/vertices/{process['id']}/subtasks/{i}/metrics"
                f"?get=user-delete.user-delete.total-message-count"
            )
            for i in range(2)
        ]
        assert all(int(float(m[0]["value"])) > 0 for m in per_subtask), per_subtask
        hosts = {
            t["taskmanager-id"]
            for t in rest.get(f"/jobs/{jid}/vertices/{process['id']}/taskmanagers")["taskmanagers"]
        }
        assert len(hosts) == 2, "the two subtasks ran on the two task managers"

        assert set(sandbox.users()) >= {"cluster-keep"} and not set(users) & set(sandbox.users())
        failed = list(
            consume_records(
                kafka_broker.bootstrap, f"{topic}.failed", from_beginning=True, max_records=1, timeout=20
            )
        )
        assert len(failed) == 1 and json.loads(failed[0])["failInfo"]["reason"] == "malformed"

        req = urllib.request.Request(f"{cluster.rest_url}/jobs/{jid}?mode=cancel", method="PATCH")
        urllib.request.urlopen(req, timeout=10).close()
    finally:
        cluster.stop()
