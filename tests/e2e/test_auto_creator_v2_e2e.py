"""auto-creator-v2 end to end: real Kafka, the job on Flink's MiniCluster, the sandbox (source repository,
content and hierarchy APIs, file server, the `questionset/v1/import` API) reading the same graph store the job
writes, injected faults.

One scenario, run twice: with the embedded `sqlite` stores (>= 50 question sets), and with the `neo4j` +
`cassandra` adapters against the real servers of the session (a smaller batch). Question sets with 1-10
questions each, some limited by acceptedContributions, some nested in sections, some with broken packages,
503s on the source, on packages and on hierarchy/add; half the approvals go through the sandbox's
`POST /questionset/v1/import` (which publishes to the job's input topic), the rest are hand-made events.
Checked: every object in the stores with the expected properties, every hierarchy enriched, every set linked
into its unit exactly once, every event accounted for (counters and failed topic).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync, read_record_sync
from cokreat_jobs.dev.samples.question_sets import import_event, job_overrides, question_set
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N_COLLECTIONS = 6
UNITS = 3
STORE_KEYS = ("graph.store", "graph.sqlite.url", "external.store", "external.sqlite.url")


@dataclass
class Env:
    """The stores of one run, the sandbox over them and the job's settings."""

    kind: str
    n_sets: int
    n_broken: int
    prefix: str  # question set ids: f"{prefix}{i}"
    topic: str
    root: Path
    url: str
    client: SandboxClient
    overrides: list[str]
    read_node: Any  # (identifier) -> graph properties or None
    read_record: Any  # (keyspace, table, primary key) -> external record or None
    closers: list[Any] = field(default_factory=list)


@pytest.fixture(params=["sqlite", "neo4j+cassandra"])
def acv2_env(
    request: pytest.FixtureRequest, kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    kind: str = request.param
    root = tmp_path_factory.mktemp("acv2-" + kind.replace("+", "-"))
    tag = uuid.uuid4().hex[:6]
    topic = f"acv2-{tag}"
    settings: dict[str, Any] = {
        "storage_dir": str(root / "storage"),
        "publish_delay_ms": 200,
        "kafka": kafka_broker.bootstrap,
        "import.questionset.output_topic": topic,
    }
    graph, external = root / "graph.db", root / "external.db"
    overrides = job_overrides("{url}", root / "storage", graph, external)
    closers: list[Any] = []
    if kind == "sqlite":
        settings["graph_store"] = f"sqlite:///{graph}"
        settings["external_store"] = f"sqlite:///{external}"
        n_sets, n_broken, prefix = 54, 4, "do_e2e_qs"

        def read_node(identifier: str) -> dict[str, Any] | None:
            return read_node_sync(str(graph), identifier)

        def read_record(ks: str, table: str, pk: dict[str, Any]) -> dict[str, Any] | None:
            return read_record_sync(str(external), ks, table, pk)

    else:
        # the real servers of the session, started only for this run; ids unique to the run
        from cokreat_jobs.adapters.stores.cassandra_store import CassandraExternalStore
        from cokreat_jobs.adapters.stores.neo4j_store import Neo4jGraphStore

        neo4j = request.getfixturevalue("neo4j_server")
        cassandra = request.getfixturevalue("cassandra_node")
        settings["graph_store"] = neo4j.uri
        overrides = [o for o in overrides if o.split("=", 1)[0] not in STORE_KEYS] + [
            "graph.store=neo4j",
            f"neo4j.routePath={neo4j.uri}",
            "external.store=cassandra",
            f"lms-cassandra.host={cassandra.host}",
            f"lms-cassandra.port={cassandra.port}",
        ]
        n_sets, n_broken, prefix = 24, 2, f"do_e2e_{tag}_qs"
        loop = asyncio.new_event_loop()
        gstore = Neo4jGraphStore(neo4j.uri)
        xstore = CassandraExternalStore(cassandra.host, cassandra.port)

        def read_node(identifier: str) -> dict[str, Any] | None:
            return loop.run_until_complete(gstore.read_node(identifier))

        def read_record(ks: str, table: str, pk: dict[str, Any]) -> dict[str, Any] | None:
            return loop.run_until_complete(xstore.read(ks, table, pk))

        def close() -> None:
            loop.run_until_complete(gstore.close())
            loop.run_until_complete(xstore.close())
            loop.close()

        closers.append(close)

    with ServerThread(root / "sandbox", settings) as server:
        url = server.base_url
        env = Env(
            kind=kind,
            n_sets=n_sets,
            n_broken=n_broken,
            prefix=prefix,
            topic=topic,
            root=root,
            url=url,
            client=SandboxClient(url),
            overrides=[o.replace("{url}", url) for o in overrides],
            read_node=read_node,
            read_record=read_record,
            closers=closers,
        )
        try:
            yield env
        finally:
            for close in closers:
                close()


def _import_questionsets(url: str, objects: list[dict[str, Any]], process_id: str) -> dict[str, Any]:
    body = json.dumps({"request": {"questionset": objects, "processId": process_id}}).encode()
    req = urllib.request.Request(
        f"{url}/questionset/v1/import", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return answer


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in node.get("children") or []:
        yield child
        yield from _walk(child)


def test_auto_creator_v2_end_to_end(kafka_broker: Any, acv2_env: Env, tmp_path: Path) -> None:
    env = acv2_env
    rng = random.Random(11)
    sb, url, prefix = env.client, env.url, env.prefix

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
    imports: list[dict[str, Any]] = []  # approvals that go through questionset/v1/import
    for i in range(env.n_sets):
        qs_id = f"{prefix}{i}"
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
        broken = i < env.n_broken
        via_api = i % 2 == 1
        sets[qs_id] = {
            "qids": qids,
            "expected": accepted if accepted is not None else qids,
            "units": units,
            "broken": broken,
            "via_api": via_api,
        }
        if via_api:
            imports.append(
                {
                    "source": f"{url}/api/questionset/v1/read/{qs_id}",
                    "metadata": {"framework": "NCF"},
                    "collection": units,
                }
            )
        else:
            events.append(json.dumps(import_event(url, qs_id, collection=units, n=i)).encode())
    sb.seed(source_objects=sources)

    # the approvals through the import API (before the faults: it reads every source), in two requests
    process_id = f"acv2-e2e-{uuid.uuid4().hex[:8]}"
    half = len(imports) // 2
    for part in (imports[:half], imports[half:]):
        answer = _import_questionsets(url, part, process_id)
        assert answer["responseCode"] == "OK" and answer["result"]["processId"] == process_id, answer
    sent = [r for r in sb.requests(limit=100000) if r["path"] == "/questionset/v1/import"]
    assert [r["status"] for r in sent] == [200, 200]

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
    total = len(records) + len(imports)

    # faults: broken packages, 503s on the source, the packages and hierarchy/add, some latency
    for i in range(env.n_broken):
        sb.add_fault(path=f"/source-ecar/{prefix}{i}/*", status=200, raw_body="<html>not a zip</html>")
    sb.add_fault(method="GET", path="*/questionset/v1/read/*", status=503, rate=0.15)
    sb.add_fault(method="GET", path="*/question/v1/read/*", status=503, rate=0.05)
    sb.add_fault(method="GET", path="/source-ecar/*", status=503, rate=0.05)
    sb.add_fault(method="PATCH", path="*/content/v3/hierarchy/add", status=503, times=6)
    sb.add_fault(method="GET", path="*/content/v3/hierarchy/*", latency_ms=10)
    # one stored set the content service refuses to read: the link stage fails it (the import succeeded)
    link_refused = f"{prefix}{env.n_sets - 1}"
    assert not sets[link_refused]["broken"]
    sb.add_fault(method="GET", path=f"*/content/v4/read/{link_refused}", status=400, body={"params": {}})

    topic = env.topic
    failed_topic = f"{topic}.failed"
    produce_records(kafka_broker.bootstrap, topic, records)
    run = LocalJobRun(
        "auto-creator-v2",
        [
            *env.overrides,
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
        counters = run.wait_for_total(total, timeout=240)
        vertices = [v["name"] for v in run.rest.get(f"/jobs/{run.jid}")["vertices"]]
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
    want_reasons = {"permanent": env.n_broken + 1, "malformed": len(malformed)}
    assert reasons == want_reasons, [f["failInfo"] for f in failed]
    broken_failed = {f["edata"]["metadata"]["identifier"] for f in failed if "edata" in f}
    assert broken_failed == {f"{prefix}{i}" for i in range(env.n_broken)} | {link_refused}
    for f in failed:
        assert f["jobName"] == "auto-creator-v2"
        if "edata" in f:
            assert f["edata"]["iteration"] == 2
            if f["edata"]["metadata"]["identifier"] == link_refused:
                # failed by the link stage, with the original import event (so a replay imports and links)
                assert "before linking" in f["failInfo"]["error"], f["failInfo"]
                assert f["edata"]["collection"] == sets[link_refused]["units"]
            else:
                assert "ECAR" in f["failInfo"]["error"]

    # linking is the job's second operator, after a key_by (so a vertex of its own)
    assert any(name.startswith("link-collection") for name in vertices), vertices
    assert counters["total"] == total
    assert counters["success"] == env.n_sets - env.n_broken - 1
    assert counters["skipped"] == len(skipped)
    assert counters["failed"] == env.n_broken + 1 + len(malformed)

    # every object in the stores, hierarchies enriched
    n_questions = 0
    for qs_id, info in sets.items():
        node = env.read_node(qs_id)
        if info["broken"]:
            assert node is None
            continue
        assert node is not None, qs_id
        assert node["IL_FUNC_OBJECT_TYPE"] == "QuestionSet" and node["IL_SYS_NODE_TYPE"] == "DATA_NODE"
        assert node["origin"] == qs_id and json.loads(node["originData"])["identifier"] == qs_id
        assert node["downloadUrl"].startswith(f"{url}/_files/questionset/{qs_id}/")
        variants = json.loads(node["variants"])
        assert set(variants) == {"full", "spine"} and all(v["size"] > 0 for v in variants.values())
        rec = env.read_record("dev_hierarchy_store", "questionset_hierarchy", {"identifier": qs_id})
        assert rec is not None and "instructions" in rec
        tree = json.loads(rec["hierarchy"])
        assert tree["downloadUrl"] == node["downloadUrl"]
        in_tree = {n["identifier"]: n for n in _walk(tree) if n.get("objectType") == "Question"}
        assert set(in_tree) == set(info["qids"])
        for qid in info["qids"]:
            q = env.read_node(qid)
            if qid in info["expected"]:
                n_questions += 1
                assert q is not None and q["IL_FUNC_OBJECT_TYPE"] == "Question", qid
                assert in_tree[qid]["downloadUrl"] == q["downloadUrl"]
                assert q["downloadUrl"].startswith(f"{url}/_files/question/{qid}/")
                qrec = env.read_record("dev_question_store", "question_data", {"identifier": qid})
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
        if not info["broken"] and qs_id != link_refused
        for u in info["units"]
    )
    assert linked == expected_links
    print(
        f"\nacv2 e2e ({env.kind}): {total} events ({env.n_sets} sets, {len(imports)} through the import API, "
        f"{n_questions} questions imported, {sum(expected_links.values())} links) in {elapsed:.1f} s; "
        f"counters {counters}"
    )
