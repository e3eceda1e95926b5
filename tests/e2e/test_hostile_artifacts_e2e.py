"""Hostile artifacts (issue 8 §2) through Flink: each content job run once, both at the same time (each on its
own MiniCluster: half the wall time of one after the other), real Kafka, the sandbox, and the hostile servers
of ``tests/unit/test_hostile_artifacts.py`` (cases and checks shared).

auto-creator-v2 gets a batch of good question sets mixed with every hostile ECAR (zip-slip, absolute paths,
zip bombs, a symlink), every hostile URL as the ECAR's ``downloadUrl`` and as a re-hosted ``appIcon``, and
every hostile ``edata.repository`` (a name resolving to loopback, loopback and private addresses, redirects to
127.0.0.1, origins outside ``repository_allowed_sources``: HARDENING 2), whose refusals must say "not an
allowed address" and whose internal service's answer must reach no store;
content-auto-creator gets good contents mixed with every hostile URL as ``artifactUrl`` and as ``appIcon``.
Asserted: the counters (good ones succeed, every hostile one fails), one failed-topic record per hostile event
with reason ``permanent`` and a ``failInfo.error`` naming the cause, the same cause in each content's
``importError``, the temp directory empty and alone in its parent, no escaped file, and no request ever
reaching the forbidden loopback server.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync
from cokreat_jobs.dev.samples.question_sets import import_event
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_hostile_artifacts import (  # noqa: E402 - the unit module's cases and servers, shared
    ECAR_CASES,
    ICON_CASES,
    REPOSITORY_CASES,
    URL_CASES,
    HostileServers,
    acv2_settings,
    assert_contained,
    assert_nothing_internal_published,
    content_event,
    content_settings,
    oid_of,
    sandbox_node,
    seed_source,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

N_GOOD = 3


def kafka_settings(bootstrap: str, topic: str) -> list[str]:
    return [
        f"kafka.broker-servers={bootstrap}",
        f"kafka.input.topic={topic}",
        f"kafka.failed.topic={topic}.failed",
        f"kafka.groupId=g-{topic}",
        "task.checkpointing.interval=2000",
    ]


def run_job(
    job: str, bootstrap: str, topic: str, settings: list[str], records: list[bytes], log: Path, n_failed: int
) -> tuple[dict[str, int], list[dict[str, Any]], float]:
    """Produce ``records``, run ``job`` until each has an outcome, stop it: (counters, the ``n_failed``
    failed-topic records, wall time). Reading stops at ``n_failed`` records (or after 20 s)."""
    produce_records(bootstrap, topic, records)
    run = LocalJobRun(job, [*settings, *kafka_settings(bootstrap, topic)], log_file=log)
    started = time.monotonic()
    run.start()
    try:
        counters = run.wait_for_total(len(records), timeout=150)
    finally:
        code = run.stop()
    wall = time.monotonic() - started
    assert code == 0, f"{job} did not stop cleanly; see {log}"
    failed = [
        json.loads(v)
        for v in consume_records(
            bootstrap, f"{topic}.failed", from_beginning=True, max_records=n_failed, timeout=20
        )
    ]
    return counters, failed, wall


def check_failed(
    failed: list[dict[str, Any]], want: dict[str, list[str]], job: str
) -> dict[str, dict[str, Any]]:
    """One failed record per hostile event, reason permanent, every fragment of its cause in the error."""
    by_id = {f["object"]["id"]: f for f in failed}
    assert len(by_id) == len(failed), Counter(f["object"]["id"] for f in failed).most_common(3)
    assert set(by_id) == set(want), set(by_id) ^ set(want)
    problems = []
    for oid, fragments in want.items():
        f = by_id[oid]
        info = f["failInfo"]
        if f["jobName"] != job or info["reason"] != "permanent" or f["edata"]["iteration"] != 2:
            problems.append(f"{oid}: {f['jobName']} {info['reason']} {f['edata'].get('iteration')}")
        problems += [
            f"{oid}: {frag!r} not in {info['error'][:300]!r}"
            for frag in fragments
            if frag not in info["error"]
        ]
    assert not problems, "\n".join(problems)
    return by_id


@pytest.fixture()
def stage(tmp_path: Path) -> Iterator[tuple[str, Path, HostileServers]]:
    root = tmp_path / "sandbox-root"
    settings = {"storage_dir": str(root / "storage"), "graph_store": f"sqlite:///{root / 'graph.db'}"}
    with ServerThread(root / "sandbox", settings) as server, HostileServers() as servers:
        yield server.base_url, root, servers
        assert servers.forbidden_requests == [], "the forbidden server was reached"
        assert servers.forbidden_is_reachable()


def test_hostile_artifacts_through_flink(
    kafka_broker: Any, stage: tuple[str, Path, HostileServers], tmp_path: Path
) -> None:
    sandbox, root, servers = stage
    tag = uuid.uuid4().hex[:6]
    bootstrap = kafka_broker.bootstrap

    # ---------------------------------------------------------------------- auto-creator-v2's batch
    acv2_work = tmp_path / "acv2-work"
    acv2_temp = acv2_work / "job-tmp"
    acv2_temp.mkdir(parents=True)
    acv2_records: list[bytes] = []
    acv2_good = [f"do_e2ehx_{tag}_good{i}" for i in range(N_GOOD)]
    for oid in acv2_good:
        seed_source(sandbox, oid, appIcon=f"{servers.evil}/file/lesson.pdf")
        acv2_records.append(json.dumps(import_event(sandbox, oid)).encode())
    acv2_want: dict[str, list[str]] = {}
    for case in ECAR_CASES:
        oid = oid_of(f"e2ehx_{tag}_ecar", case.name)
        servers.ecars[case.name] = case.build(oid, tmp_path)
        url = f"{servers.evil}/ecar/{case.name}.ecar"
        acv2_records.append(
            json.dumps(import_event(sandbox, oid, extra_metadata={"downloadUrl": url})).encode()
        )
        acv2_want[oid] = case.error.split("|")
    for case in URL_CASES:
        oid = oid_of(f"e2ehx_{tag}_url", case.name)
        url, acv2_want[oid] = case.fill(servers, ".ecar")
        acv2_records.append(
            json.dumps(import_event(sandbox, oid, extra_metadata={"downloadUrl": url})).encode()
        )
    for case in ICON_CASES:
        oid = oid_of(f"e2ehx_{tag}_icon", case.name)
        url, acv2_want[oid] = case.fill(servers, ".png")
        seed_source(sandbox, oid, appIcon=url)
        acv2_records.append(json.dumps(import_event(sandbox, oid)).encode())
    for case in REPOSITORY_CASES:
        oid = oid_of(f"e2ehx_{tag}_repo", case.name)
        url, acv2_want[oid] = case.fill(servers, "")
        seed_source(sandbox, oid)  # the package is the sandbox's, fine: only the repository is hostile
        event = import_event(sandbox, oid)
        event["edata"]["repository"] = url
        acv2_records.append(json.dumps(event).encode())

    # ----------------------------------------------------------------- content-auto-creator's batch
    content_work = tmp_path / "content-work"
    content_temp = content_work / "job-tmp"
    content_temp.mkdir(parents=True)
    lesson = f"{servers.evil}/file/lesson.pdf"
    content_good = [f"do_e2ehc_{tag}_good{i}" for i in range(N_GOOD)]
    content_records = [json.dumps(content_event(oid, lesson, icon=lesson)).encode() for oid in content_good]
    content_want: dict[str, list[str]] = {}
    content_shown: dict[str, str | None] = {}  # what importError says instead, for address refusals
    for case in URL_CASES:
        oid = oid_of(f"e2ehc_{tag}_art", case.name)
        url, content_want[oid] = case.fill(servers, ".pdf")
        content_shown[oid] = case.shown
        content_records.append(json.dumps(content_event(oid, url)).encode())
    for case in ICON_CASES:
        oid = oid_of(f"e2ehc_{tag}_icon", case.name)
        url, content_want[oid] = case.fill(servers, ".png")
        content_shown[oid] = case.shown
        content_records.append(json.dumps(content_event(oid, lesson, icon=url)).encode())

    # ------------------------------------------------ both jobs at once (each on its own MiniCluster)
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        acv2_run = pool.submit(
            run_job,
            "auto-creator-v2",
            bootstrap,
            f"hostile-acv2-{tag}",
            acv2_settings(sandbox, root, acv2_temp, servers),
            acv2_records,
            tmp_path / "acv2.log",
            len(acv2_want),
        )
        content_run = pool.submit(
            run_job,
            "content-auto-creator",
            bootstrap,
            f"hostile-content-{tag}",
            content_settings(sandbox, root, content_temp, servers),
            content_records,
            tmp_path / "content.log",
            len(content_want),
        )
        acv2_counters, acv2_failed, acv2_wall = acv2_run.result()
        content_counters, content_failed, content_wall = content_run.result()
    print(
        f"\nhostile artifacts e2e: both jobs in {time.monotonic() - started:.0f} s "
        f"(auto-creator-v2 {acv2_wall:.0f} s, content-auto-creator {content_wall:.0f} s, start to stop)"
    )

    # ------------------------------------------------------------------------ auto-creator-v2's results
    counters = acv2_counters
    assert counters["total"] == len(acv2_records) and counters["success"] == N_GOOD, counters
    assert counters["failed"] == len(acv2_want) and counters["skipped"] == 0, counters
    check_failed(acv2_failed, acv2_want, "auto-creator-v2")
    graph = str(root / "graph.db")
    assert all(read_node_sync(graph, oid) is not None for oid in acv2_good)
    assert all(read_node_sync(graph, oid) is None for oid in acv2_want)
    assert_nothing_internal_published(root)
    assert_contained(tmp_path, acv2_work, acv2_temp)

    # ------------------------------------------------------------------- content-auto-creator's results
    counters = content_counters
    assert counters["total"] == len(content_records) and counters["success"] == N_GOOD, counters
    assert counters["failed"] == len(content_want) and counters["skipped"] == 0, counters
    check_failed(content_failed, content_want, "content-auto-creator")
    problems = []
    for oid in content_good:
        node = sandbox_node(sandbox, oid) or {}
        if node.get("status") not in ("Review", "Live") or node.get("importError"):
            problems.append(f"{oid}: {node.get('status')} {node.get('importError')}")
    for oid, fragments in content_want.items():
        node = sandbox_node(sandbox, oid) or {}
        error = node.get("importError") or ""
        shown = content_shown[oid]
        seen = error == shown if shown is not None else all(frag in error for frag in fragments)
        if node.get("status") != "Failed" or not seen:
            problems.append(
                f"{oid}: {node.get('status')} importError {error[:300]!r}, want {shown or fragments}"
            )
    assert not problems, "\n".join(problems)
    assert_contained(tmp_path, content_work, content_temp)
