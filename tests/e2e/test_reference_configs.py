"""Each job started as Sunbird's `datapipeline_jobs` chart starts it: with the config the chart renders from
its `values.j2` (tests/data/reference-configs/, rendered by cokreat_jobs.dev.samples.chart_configs with the
placeholders filled for the local stack) as `--config.file.path`, and nothing else but the two local-run
settings of RUN_OVERRIDES. Real Kafka, the job on Flink's MiniCluster, the sandbox; Azurite for the
reference's default storage (azure); Neo4j 3.3 (the line Sunbird ships, Bolt 1, written over HTTP) and
Cassandra for auto-creator-v2.

- user-delete, release-7.0.0's config (`kafka.input.topic`): the users are deleted;
- user-delete, release-8.0.0's config (`kafka.input.user_delete_topic`, `ownership_transfer_topic`): the
  users are deleted and the ownership transfer reaches program-service;
- content-auto-creator, Knowlg release-5.6.0's config (its `maxIteration = 1`, `api_call_delay = 1` as
  deployed): the content ends Live, its artifact on Azure storage (Azurite);
- auto-creator-v2, Knowlg release-5.6.0's config: the question set and its questions in Neo4j 3.3 and
  Cassandra, its files on Azurite, the set linked into its unit.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.samples.chart_configs import RUN_OVERRIDES, placeholders, render
from cokreat_jobs.dev.samples.question_sets import import_event, question_set
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DATA = Path(__file__).resolve().parents[1] / "data" / "reference-configs"
SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "cokreat_jobs" / "schemas"
# the sandbox and the storage emulator are on loopback, which the download guard refuses unless allowed
ALLOW_LOOPBACK = 'http.allow_private_networks=["127.0.0.1"]'


def start(job: str, conf: Path, tmp_path: Path, *, loopback: bool = False) -> LocalJobRun:
    run = LocalJobRun(
        job, [ALLOW_LOOPBACK] if loopback else [], log_file=tmp_path / "job.log", config_file=conf
    )
    # the rendered file is the whole configuration: the run adds only the settings RUN_OVERRIDES names
    assert {o.split("=", 1)[0] for o in run.overrides} <= set(RUN_OVERRIDES)
    run.start()
    return run


def finish(run: LocalJobRun, total: int, timeout: float = 120) -> dict[str, int]:
    try:
        counters = run.wait_for_total(total, timeout=timeout)
    finally:
        code = run.stop()
    assert code == 0, "SIGTERM stops the job cleanly"
    return counters


def failed_records(kafka: Any, topic: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
    return [
        json.loads(v)
        for v in consume_records(kafka.bootstrap, topic, from_beginning=True, max_records=n, timeout=timeout)
    ]


def delete_event(uid: str) -> bytes:
    return json.dumps(
        {
            "eid": "BE_JOB_REQUEST",
            "ets": int(time.time() * 1000),
            "mid": f"LP.{uuid.uuid4()}",
            "actor": {"id": "delete-user", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.lern", "ver": "1.0"}, "channel": "ch1"},
            "object": {"id": uid, "type": "User"},
            "edata": {"action": "delete-user", "userId": uid},
        }
    ).encode()


def transfer_event(tag: str) -> dict[str, Any]:
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": f"OT.{tag}",
        "actor": {"id": "ownership-transfer", "type": "System"},
        "object": {"id": f"from-{tag}", "type": "User"},
        "edata": {
            "action": "ownership-transfer",
            "fromUserProfile": {
                "userId": f"from-{tag}",
                "firstName": "Ravi",
                "lastName": "Iyer",
                "roles": ["x"],
            },
            "toUserProfile": {
                "userId": f"to-{tag}",
                "firstName": "Asha",
                "lastName": "Rao",
                "roles": ["CONTENT_CREATOR"],
            },
        },
    }


@pytest.mark.parametrize("release", ["7.0.0", "8.0.0"])
def test_user_delete_with_the_cokreat_chart_config(
    release: str, kafka_broker: Any, sandbox: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    env_name = f"ref{release[0]}{tag}"
    topic, transfer_topic = f"{env_name}.delete.user", f"{env_name}.user.ownership.transfer"
    values = placeholders(
        env_name=env_name,
        kafka=kafka_broker.bootstrap,
        sandbox=sandbox.base_url,
        user_delete_topic=topic,
        ownership_transfer_topic=transfer_topic,
        user_delete_group=f"{env_name}-cokreat-user-delete-group",
    )
    conf = render(DATA, f"cokreat-{release}", "user-delete", tmp_path / "conf", values).job_conf

    targets, keep, admin = [f"{tag}-u{i}" for i in range(3)], f"{tag}-keep", f"{tag}-admin"
    sandbox.seed(users=[*targets, keep, {"id": admin, "roles": ["admin"]}])
    records = [delete_event(u) for u in [*targets, f"{tag}-ghost", admin]] + [b"not json"]
    produce_records(kafka_broker.bootstrap, topic, records)
    total = len(records)
    transfer = transfer_event(tag)
    if release == "8.0.0":
        produce_records(kafka_broker.bootstrap, transfer_topic, [json.dumps(transfer).encode()])
        total += 1

    counters = finish(start("user-delete", conf, tmp_path), total)
    assert counters["success"] == len(targets) + 1 + (release == "8.0.0")
    assert counters["failed"] == 2 and counters["skipped"] == 0

    remaining = set(sandbox.users()) & {*targets, keep, admin}
    assert remaining == {keep, admin}
    # no failed.topic in the deployed config: ours, from job.env (the chart's env_name)
    failed = failed_records(kafka_broker, f"{env_name}.delete.user.failed", 2)
    assert sorted(f["failInfo"]["reason"] for f in failed) == ["malformed", "permanent"]
    sent = [t for t in sandbox.transfers() if t.get("mid") == transfer["mid"]]
    # release-7's config has no transfer stream; release-8's posts the whole event to program-service
    assert sent == ([transfer] if release == "8.0.0" else [])


@pytest.fixture()
def azure_container(azurite: Any) -> Iterator[tuple[str, str, Any]]:
    """A public container on Azurite, as Sunbird's content container is: (endpoint, name, service)."""
    from azure.storage.blob import BlobServiceClient

    endpoint = f"{azurite.url}/{azurite.account}"
    service = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={azurite.account};AccountKey={azurite.key};"
        f"BlobEndpoint={endpoint};"
    )
    name = f"contents-{uuid.uuid4().hex[:8]}"
    service.create_container(name, public_access="blob")
    yield endpoint, name, service
    service.delete_container(name)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback test servers)
        return bytes(resp.read())


def node(base: str, oid: str) -> Any:
    try:
        return json.loads(http_get(f"{base}/_sandbox/nodes/{oid}"))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def test_content_auto_creator_with_the_knowlg_chart_config(
    kafka_broker: Any, azurite: Any, azure_container: tuple[str, str, Any], tmp_path: Path
) -> None:
    endpoint, container, _ = azure_container
    tag = uuid.uuid4().hex[:8]
    env_name = f"refcac{tag}"
    storage = tmp_path / "sandbox-storage"
    (storage / "source").mkdir(parents=True)
    pdf = b"%PDF-1.4 reference config\n" + b"x" * 2000
    (storage / "source" / "lesson.pdf").write_bytes(pdf)
    with ServerThread(tmp_path / "sandbox", {"storage_dir": str(storage), "publish_delay_ms": 200}) as server:
        base = server.base_url
        values = placeholders(
            env_name=env_name,
            kafka=kafka_broker.bootstrap,
            sandbox=base,
            storage_type="azure",
            storage_account=azurite.account,
            storage_secret=azurite.key,
            storage_container=container,
            storage_endpoint=endpoint,
        )
        conf = render(DATA, "knowlg-5.6.0", "content-auto-creator", tmp_path / "conf", values).job_conf
        oid = f"do_ref_{tag}"
        event = {
            "eid": "BE_JOB_REQUEST",
            "ets": int(time.time() * 1000),
            "mid": f"LP.{uuid.uuid4()}",
            "actor": {"id": "Auto Creator", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": "ch-ref"},
            "object": {"id": oid, "ver": "1"},
            "edata": {
                "action": "auto-create",
                "objectType": "Content",
                "repository": f"https://dock.sunbirded.org/api/content/v1/read/{oid}",
                "metadata": {
                    "name": f"Reference {oid}",
                    "code": f"code-{oid}",
                    "mimeType": "application/pdf",
                    "primaryCategory": "Learning Resource",
                    "contentType": "Resource",
                    "framework": "NCF",
                    "artifactUrl": f"{base}/_files/source/lesson.pdf",
                    "lastPublishedBy": "reference-publisher",
                },
                "iteration": 1,
            },
        }
        produce_records(
            kafka_broker.bootstrap, f"{env_name}.auto.creation.job.request", [json.dumps(event).encode()]
        )
        counters = finish(start("content-auto-creator", conf, tmp_path, loopback=True), 1)
        assert counters["success"] == 1, counters

        final = node(base, oid)
        assert final is not None and final["status"] == "Live", final
        # re-hosted on the reference's default storage, at the configured endpoint and container
        assert final["artifactUrl"].startswith(f"{endpoint}/{container}/"), final["artifactUrl"]
        assert http_get(final["artifactUrl"]) == pdf
        origin_data = final["originData"]  # content-service answers it as an object
        origin_data = json.loads(origin_data) if isinstance(origin_data, str) else origin_data
        assert final["origin"] == oid and origin_data["identifier"] == oid


def test_auto_creator_v2_with_the_knowlg_chart_config_into_neo4j_3(
    kafka_broker: Any,
    neo4j3_server: Any,
    cassandra_node: Any,
    azurite: Any,
    azure_container: tuple[str, str, Any],
    tmp_path: Path,
) -> None:
    from cokreat_jobs.adapters.stores.cassandra_store import CassandraExternalStore
    from cokreat_jobs.adapters.stores.neo4j_store import Neo4jGraphStore
    from cokreat_jobs.dev.stack.cassandra import apply_schema

    endpoint, container, service = azure_container
    # Sunbird keeps the object definitions on the blob store (kp_schema_base_path): so does this stack
    for path in SCHEMAS.rglob("*.json"):
        blob = f"schemas/local/{path.relative_to(SCHEMAS)}"
        service.get_blob_client(container, blob).upload_blob(path.read_bytes())
    tag = uuid.uuid4().hex[:8]
    env_name = f"refacv2{tag}"
    neo4j_http = neo4j3_server.http_url  # Neo4j 3.3 speaks Bolt 1: the deployed route is its HTTP one
    settings = {"storage_dir": str(tmp_path / "sandbox-storage"), "publish_delay_ms": 200}
    settings["graph_store"] = neo4j_http  # the sandbox's content reads see what the job writes
    with ServerThread(tmp_path / "sandbox", settings) as server:
        base = server.base_url
        values = placeholders(
            env_name=env_name,
            kafka=kafka_broker.bootstrap,
            sandbox=base,
            storage_type="azure",
            storage_account=azurite.account,
            storage_secret=azurite.key,
            storage_container=container,
            storage_endpoint=endpoint,
            neo4j_route=neo4j_http,
            cassandra_host=cassandra_node.host,
        )
        values["kp_schema_base_path"] = f"{endpoint}/{container}/schemas/local"
        # keyspaces of the deployment's own names (not our packaged defaults), so the test sees them read
        hierarchy_ks, question_ks = f"ref_{tag}_hierarchy_store", f"ref_{tag}_question_store"
        values["hierarchy_keyspace_name"], values["assessment_keyspace_name"] = hierarchy_ks, question_ks
        apply_schema(cassandra_node.host, cassandra_node.port, hierarchy_ks, question_ks)
        conf = render(
            DATA,
            "knowlg-5.6.0",
            "auto-creator-v2",
            tmp_path / "conf",
            values,
            cassandra_port=cassandra_node.port,
        ).job_conf

        sb = SandboxClient(base)
        qs_id = f"do_ref_{tag}_qs"
        unit = {"identifier": f"do_ref_{tag}_col", "unitId": f"do_ref_{tag}_u1"}
        sb.seed(
            collections=[
                {
                    "identifier": unit["identifier"],
                    "name": "Course",
                    "channel": "ch1",
                    "units": [unit["unitId"]],
                }
            ]
        )
        obj, qids = question_set(qs_id, 3)
        sb.seed(source_objects=[obj])
        event = import_event(base, qs_id, collection=[unit])
        produce_records(
            kafka_broker.bootstrap, f"{env_name}.object.import.request", [json.dumps(event).encode()]
        )
        counters = finish(start("auto-creator-v2", conf, tmp_path, loopback=True), 1, timeout=180)
        assert counters["success"] == 1 and counters["failed"] == 0, counters

        async def read() -> tuple[Any, list[Any], Any, list[Any]]:
            graph = Neo4jGraphStore(neo4j_http)
            external = CassandraExternalStore(cassandra_node.host, cassandra_node.port)
            try:
                qs = await graph.read_node(qs_id)
                questions = [await graph.read_node(q) for q in qids]
                hierarchy = await external.read(hierarchy_ks, "questionset_hierarchy", {"identifier": qs_id})
                bodies = [await external.read(question_ks, "question_data", {"identifier": q}) for q in qids]
                return qs, questions, hierarchy, bodies
            finally:
                await graph.close()
                await external.close()

        qs, questions, hierarchy, bodies = asyncio.run(read())
        assert qs is not None and qs["IL_FUNC_OBJECT_TYPE"] == "QuestionSet" and qs["status"] == "Live"
        assert qs["downloadUrl"].startswith(f"{endpoint}/{container}/"), qs["downloadUrl"]
        assert http_get(qs["downloadUrl"])[:2] == b"PK"  # the ECAR, re-hosted on Azure storage
        assert all(q is not None and q["IL_FUNC_OBJECT_TYPE"] == "Question" for q in questions)
        assert hierarchy is not None and json.loads(hierarchy["hierarchy"])["identifier"] == qs_id
        assert all(b is not None and b["body"].startswith("<p>What is") for b in bodies)
        tree = sb._call("GET", f"/_sandbox/hierarchies/{unit['identifier']}")
        linked = [c["identifier"] for u in tree["children"] for c in u.get("children") or []]
        assert linked == [qs_id]
        # nothing on the failed topic the deployed config names (the shared, packaged default)
        failed = failed_records(kafka_broker, f"{env_name}.auto.creation.job.request.failed", 1, 5)
        assert failed == []
