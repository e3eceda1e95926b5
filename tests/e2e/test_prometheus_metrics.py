"""Flink's Prometheus reporter, enabled by `metrics.prometheus.port`: scraped during a user-delete run.

The job's counters match the batch, the per-service figures (adaptive limit, latency histogram) and the Kafka
source's lag are on the scrape endpoint.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.process import free_port
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PREFIX = "flink_taskmanager_job_task_operator_"
LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def operator_names(text: str, metric: str) -> set[str]:
    """The `operator_name` labels of one metric's series."""
    names = set()
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m.group(1) == metric and m.group(2):
            found = re.search(r'operator_name="([^"]*)"', m.group(2))
            if found:
                names.add(found.group(1))
    return names


def scrape(port: int) -> dict[str, float]:
    """Sum of each metric over its label sets (subtasks, operators)."""
    text = scrape_text(port)
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or line.startswith("#"):
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if value != value:  # NaN
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def test_prometheus_endpoint_during_a_run(kafka_broker: Any, sandbox: Any, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    users = [f"prom-{run_id}-{i:03d}" for i in range(300)]
    sandbox.seed(users=users)
    # slow enough that the run is still going when it is first scraped
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", latency_ms=100)
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", status=503, times=5)
    topic = f"prom-{run_id}"
    records = [
        json.dumps({"object": {"id": u}, "edata": {"action": "delete-user", "userId": u}}).encode()
        for u in users
    ]
    records += [json.dumps({"edata": {"action": "block-user", "userId": "x"}}).encode()] * 3
    records += [b"not json", b"[1]"]
    produce_records(kafka_broker.bootstrap, topic, [(None, r) for r in records])

    port = free_port()
    run = LocalJobRun(
        "user-delete",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={topic}.failed",
            f"kafka.groupId=g-{topic}",
            f"program-service-baseUrl={sandbox.base_url}",
            f"metrics.prometheus.port={port}",
            "http.retry.backoff_ms=20",
            "http.retry.max_attempts=10",
            "http.adaptive.initial=4",
            # counters reach Flink when a bundle of the Python worker finishes: small bundles, fresh figures
            "flink.python.fn-execution.bundle.size=20",
            "task.checkpointing.interval=2000",
        ],
        log_file=tmp_path / "job.log",
    )
    run.start()
    during: dict[str, float] = {}
    final: dict[str, float] = {}
    seen: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                metrics = scrape(port)
            except OSError:
                time.sleep(0.5)
                continue
            total = metrics.get(PREFIX + "user_delete_total_message_count", 0)
            done = sum(
                metrics.get(PREFIX + f"user_delete_{k}_message_count", 0)
                for k in ("success", "skipped", "failed")
            )
            seen.append((total, done))
            if total > 0 and done < len(records) and not during:
                during = metrics
            if done >= len(records):
                final = metrics
                break
            time.sleep(0.5)
        # the gauges are refreshed on the worker's next bundle: one more scrape after everything is done
        time.sleep(3)
        final = scrape(port)
        final_text = scrape_text(port)
    finally:
        run.stop()
        sandbox.clear_faults()

    names = sorted(final)
    print(
        "\nscraped:",
        len(names),
        "series;",
        [n for n in names if "user_delete" in n or "ending" in n or "lag" in n],
    )
    assert during, f"the endpoint answered while the batch was being processed: (total, done) seen {seen}"
    m = {k[len(PREFIX) :]: v for k, v in final.items() if k.startswith(PREFIX)}
    # the job's counters match the batch, on the operator named as the reference's (`user-delete`; the
    # reporter exports label values with `-` as `_`, as it did the Scala job's)
    assert operator_names(final_text, PREFIX + "user_delete_total_message_count") == {"user_delete"}
    assert m["user_delete_total_message_count"] == len(records)
    if m["user_delete_success_message_count"] != len(users):  # say which events went elsewhere, and why
        failed = list(
            consume_records(kafka_broker.bootstrap, f"{topic}.failed", from_beginning=True, timeout=10)
        )
        raise AssertionError(
            f"success {m['user_delete_success_message_count']} of {len(users)}; failed: {failed}"
        )
    assert m["user_delete_skipped_message_count"] == 3
    assert m["user_delete_failed_message_count"] == 2
    assert m["user_delete_error_message_count"] >= 5, "the 503s were retried"
    # per service: adaptive limit, retries, request count and latency histogram
    svc = "user_delete_http_program_service_"
    assert 1 <= m[svc + "adaptive_limit"] <= 64
    assert m[svc + "retries"] >= 5 and m[svc + "overloads"] >= 5
    assert m[svc + "requests"] >= len(users) + 5
    assert m[svc + "latency_ms_le_inf"] == m[svc + "requests"]
    assert m[svc + "latency_ms_le_50"] <= m[svc + "latency_ms_le_250"] <= m[svc + "latency_ms_le_inf"]
    assert m[svc + "latency_ms_le_50"] < m[svc + "requests"], "100 ms of injected latency"
    # Kafka consumer lag of the source
    lag = [k for k in final if k.endswith("pendingRecords") or "records_lag_max" in k]
    assert lag, "the Kafka source's lag is exported"
    print("lag series:", lag, "values during the run:", {k: during.get(k) for k in lag})
    # (a batch this small is fetched whole into the pipeline's buffers at once, so its lag reads 0 here; a
    # backlog larger than the buffers shows in pendingRecords)
    assert all(final[k] >= 0 for k in lag)
