"""auto-creator-v2 end to end: real Kafka, the job on Flink's MiniCluster, the sandbox (source repository,
content and hierarchy APIs, file server) reading the same sqlite graph store the job writes, injected faults.

>= 50 question sets with 1-10 questions each, some limited by acceptedContributions, some nested in
sections, some with broken packages, 503s on the source, on packages and on hierarchy/add. Checked: every
object in the stores with the expected properties, every hierarchy enriched, every set linked into its unit
exactly once, every event accounted for (counters and failed topic).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.core.stores.sqlite_store import read_node_sync, read_record_sync
from cokreat_jobs.jobs.auto_creator_v2.samples import import_event, job_overrides, question_set
from cokreat_jobs.kafka_io import consume_records, produce_records
from cokreat_jobs.stack.jobrun import LocalJobRun
from cokreat_jobs.stack.sandbox import SandboxServer
from cokreat_jobs.stack.sandbox_client import SandboxClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N_SETS = 54
N_BROKEN = 4
N_COLLECTIONS = 6
UNITS = 3


@pytest.fixture(scope="module")
def store_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("acv2")
    graph, external = root / "graph.db", root / "external.db"
    server = SandboxServer(
        root / "sandbox",
        storage_dir=root / "storage",
        publish_delay_ms=200,
        graph_store=f"sqlite:///{graph}",
        external_store=f"sqlite:///{external}",
    )
    server.start()
    try:
        yield {
            "server": server,
            "client": SandboxClient(server.url),
            "root": root,
            "graph": graph,
            "external": external,
        }
    finally:
        server.stop()


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in node.get("children") or []:
        yield child
        yield from _walk(child)


def test_auto_creator_v2_end_to_end(kafka_broker: Any, store_sandbox: dict[str, Any], tmp_path: Path) -> None:
    rng = random.Random(11)
    sb: SandboxClient = store_sandbox["client"]
    url: str = store_sandbox["server"].url
    root: Path = store_sandbox["root"]
    graph, external = str(store_sandbox["graph"]), str(store_sandbox["external"])

    collections = [
        {
            "identifier": f"do_col{c}",
            "name": f"Course {c}",
            "channel": "ch1",
            "units": [f"do_col{c}_u{u}" for u in range(UNITS)],
        }
        for c in range(N_COLLECTIONS)
    ]
    sb.seed(collections=collections)

    sets: dict[str, dict[str, Any]] = {}
    sources = []
    events: list[bytes] = []
    for i in range(N_SETS):
        qs_id = f"do_e2e_qs{i}"
        n = rng.randint(1, 10)
        accepted = None
        if i % 5 == 0 and n > 1:
            accepted_n = rng.randint(1, n - 1)
            accepted = [f"{qs_id}_q{j}" for j in sorted(rng.sample(range(n), accepted_n))]
        obj, qids = question_set(qs_id, n, accepted=accepted, nested=(i % 3 == 0))
        sources.append(obj)
        col = collections[i % N_COLLECTIONS]
        units = [{"identifier": col["identifier"], "unitId": col["units"][i % UNITS]}]
        if i % 7 == 0:  # a second unit (of another collection)
            other = collections[(i + 1) % N_COLLECTIONS]
            units.append({"identifier": other["identifier"], "unitId": other["units"][0]})
        broken = i < N_BROKEN
        sets[qs_id] = {
            "qids": qids,
            "expected": accepted if accepted is not None else qids,
            "units": units,
            "broken": broken,
        }
        events.append(json.dumps(import_event(url, qs_id, collection=units, n=i)).encode())
    sb.seed(source_objects=sources)

    # out of scope: skipped; not JSON: failed as malformed
    skipped = [
        json.dumps(import_event(url, "do_skip1", extra_metadata={"downloadUrl": f"{url}/x.zip"})).encode(),
        json.dumps(
            {
                **import_event(url, "do_skip2"),
                "edata": {**import_event(url, "do_skip2")["edata"], "action": "publish"},
            }
        ).encode(),
        json.dumps(import_event(url, "do_skip3", object_type="Content")).encode(),
    ]
    malformed = [b"not json", b"[1,2]"]
    records = events + skipped + malformed
    rng.shuffle(records)

    # faults: broken packages, 503s on the source, the packages and hierarchy/add, some latency
    for i in range(N_BROKEN):
        sb.add_fault(path=f"/source-ecar/do_e2e_qs{i}/*", status=200, raw_body="<html>not a zip</html>")
    sb.add_fault(method="GET", path="*/questionset/v1/read/*", status=503, rate=0.15)
    sb.add_fault(method="GET", path="*/question/v1/read/*", status=503, rate=0.05)
    sb.add_fault(method="GET", path="/source-ecar/*", status=503, rate=0.05)
    sb.add_fault(method="PATCH", path="*/content/v3/hierarchy/add", status=503, times=6)
    sb.add_fault(method="GET", path="*/content/v3/hierarchy/*", latency_ms=10)

    topic = f"acv2-{uuid.uuid4().hex[:8]}"
    failed_topic = f"{topic}.failed"
    produce_records(kafka_broker.bootstrap, topic, records)
    overrides = job_overrides(url, root / "storage", store_sandbox["graph"], store_sandbox["external"])
    run = LocalJobRun(
        "auto-creator-v2",
        [
            *overrides,
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={failed_topic}",
            f"kafka.groupId=g-{topic}",
            "http.retry.max_attempts=10",
            "task.checkpointing.interval=2000",
        ],
        log_file=tmp_path / "job.log",
    )
    started = time.monotonic()
    run.start()
    try:
        counters = run.wait_for_total(len(records), timeout=240)
    finally:
        code = run.stop()
    elapsed = time.monotonic() - started
    assert code == 0

    failed = [
        json.loads(v)
        for v in consume_records(
            kafka_broker.bootstrap, failed_topic, from_beginning=True, max_records=50, timeout=20
        )
    ]
    reasons = Counter(f["failInfo"]["reason"] for f in failed)
    assert reasons == {"permanent": N_BROKEN, "malformed": len(malformed)}, [f["failInfo"] for f in failed]
    broken_failed = {f["edata"]["metadata"]["identifier"] for f in failed if "edata" in f}
    assert broken_failed == {f"do_e2e_qs{i}" for i in range(N_BROKEN)}
    for f in failed:
        assert f["jobName"] == "auto-creator-v2"
        if "edata" in f:
            assert f["edata"]["iteration"] == 2 and "ECAR" in f["failInfo"]["error"]

    assert counters["total"] == len(records)
    assert counters["success"] == N_SETS - N_BROKEN
    assert counters["skipped"] == len(skipped)
    assert counters["failed"] == N_BROKEN + len(malformed)

    # every object in the stores, hierarchies enriched
    n_questions = 0
    for qs_id, info in sets.items():
        node = read_node_sync(graph, qs_id)
        if info["broken"]:
            assert node is None
            continue
        assert node is not None, qs_id
        assert node["IL_FUNC_OBJECT_TYPE"] == "QuestionSet" and node["IL_SYS_NODE_TYPE"] == "DATA_NODE"
        assert node["origin"] == qs_id and json.loads(node["originData"])["identifier"] == qs_id
        assert node["downloadUrl"].startswith(f"{url}/_files/questionset/{qs_id}/")
        variants = json.loads(node["variants"])
        assert set(variants) == {"full", "spine"} and all(v["size"] > 0 for v in variants.values())
        rec = read_record_sync(
            external, "dev_hierarchy_store", "questionset_hierarchy", {"identifier": qs_id}
        )
        assert rec is not None and "instructions" in rec
        tree = json.loads(rec["hierarchy"])
        assert tree["downloadUrl"] == node["downloadUrl"]
        in_tree = {n["identifier"]: n for n in _walk(tree) if n.get("objectType") == "Question"}
        assert set(in_tree) == set(info["qids"])
        for qid in info["qids"]:
            q = read_node_sync(graph, qid)
            if qid in info["expected"]:
                n_questions += 1
                assert q is not None and q["IL_FUNC_OBJECT_TYPE"] == "Question", qid
                assert in_tree[qid]["downloadUrl"] == q["downloadUrl"]
                assert q["downloadUrl"].startswith(f"{url}/_files/question/{qid}/")
                qrec = read_record_sync(external, "dev_question_store", "question_data", {"identifier": qid})
                assert qrec is not None and qrec["body"].startswith("<p>What is")
            else:
                assert q is None, f"{qid} is not an accepted contribution"
                assert in_tree[qid]["downloadUrl"].startswith(f"{url}/source-ecar/")

    # every good set linked into each of its units exactly once; broken ones nowhere
    linked: Counter[tuple[str, str, str]] = Counter()
    for col in collections:
        tree = sb._call("GET", f"/_sandbox/hierarchies/{col['identifier']}")
        for unit in tree.get("children") or []:
            for child in unit.get("children") or []:
                linked[(col["identifier"], unit["identifier"], child["identifier"])] += 1
    expected_links = Counter(
        (u["identifier"], u["unitId"], qs_id)
        for qs_id, info in sets.items()
        if not info["broken"]
        for u in info["units"]
    )
    assert linked == expected_links
    print(
        f"\nacv2 e2e: {len(records)} events ({N_SETS} sets, {n_questions} questions imported, "
        f"{sum(expected_links.values())} links) in {elapsed:.1f} s; counters {counters}"
    )
