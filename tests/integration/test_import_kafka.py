"""The import APIs of a real sandbox process (`--kafka`) publishing to a real broker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer

from cokreat_jobs.dev.stack.sandbox import SandboxServer

CONTENT_TOPIC = "sunbirddev.auto.creation.job.request"
QS_TOPIC = "sunbirddev.object.import.request"


@pytest.fixture(scope="module")
def import_sandbox(kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    state = tmp_path_factory.mktemp("import-sandbox")
    server = SandboxServer(state, storage_dir=state / "storage", kafka=kafka_broker.bootstrap)
    assert server.argv()[-2:] == ["--kafka", kafka_broker.bootstrap]
    server.start()
    yield server
    server.stop()


def call(url: str, body: Any, method: str = "POST") -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def records(
    bootstrap: str, topic: str, until: Any, timeout: float = 30.0
) -> list[tuple[str, dict[str, Any]]]:
    """(key, event) of the topic's records, from the start until `until(records)` or the timeout."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    c.subscribe([topic])
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(out):
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(((msg.key() or b"").decode(), json.loads(msg.value())))
    finally:
        c.close()
    return out


def md(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Content {code}",
        "code": code,
        "mimeType": "application/pdf",
        "contentType": "Resource",
        "primaryCategory": "Learning Resource",
        "artifactUrl": f"https://example.org/{code}.pdf",
        "framework": "NCF",
        "channel": "ch1",
        "objectType": "Content",
        **extra,
    }


def of_process(recs: list[tuple[str, dict[str, Any]]], pid: str) -> list[tuple[str, dict[str, Any]]]:
    return [(k, e) for k, e in recs if e.get("edata", {}).get("metadata", {}).get("processId") == pid]


def test_content_import_publishes_the_event_shape(kafka_broker: Any, import_sandbox: SandboxServer) -> None:
    base = import_sandbox.url
    status, _ = call(
        base + "/_sandbox/seed",
        {"contents": [{**md("src"), "identifier": "do_src_k1", "status": "Live", "versionKey": "42"}]},
    )
    assert status == 200
    source = f"{base}/content/v4/read/do_src_k1"
    pid = f"pid-{uuid.uuid4()}"
    objects = [
        {"metadata": md("k1"), "stage": "publish", "collection": [{"identifier": "col", "unitId": "u"}]},
        {
            "source": source,
            "metadata": {"name": "From source"},
            "originData": {"identifier": "o", "repository": "r"},
        },
    ]
    status, body = call(base + "/content/v1/import", {"request": {"content": objects, "processId": pid}})
    assert status == 200, body
    assert body["result"] == {"processId": pid}

    # acknowledged means on the topic already
    recs = of_process(
        records(kafka_broker.bootstrap, CONTENT_TOPIC, lambda r: len(of_process(r, pid)) >= 2), pid
    )
    assert len(recs) == 2
    (k1, e1), (k2, e2) = sorted(recs, key=lambda r: r[0] == "do_src_k1")  # partitions: any order
    assert k1 == e1["object"]["id"] and k1.startswith("do_")
    assert set(e1) == {"eid", "ets", "mid", "actor", "context", "object", "edata"}
    assert e1["eid"] == "BE_JOB_REQUEST"
    assert e1["actor"] == {"id": "Auto Creator", "type": "System"}
    assert e1["context"] == {
        "pdata": {"id": "org.sunbird.platform", "ver": "1.0", "env": "dev"},
        "channel": "ch1",
    }
    assert e1["object"] == {"id": k1, "ver": None}
    assert e1["edata"] == {
        "action": "auto-create",
        "iteration": 1,
        "objectType": "Content",
        "identifier": k1,
        "metadata": {**md("k1"), "processId": pid},
        "collection": [{"identifier": "col", "unitId": "u"}],
        "stage": "publish",
        "originData": {},
    }
    assert k2 == "do_src_k1" and e2["object"] == {"id": "do_src_k1", "ver": "42"}
    ed2 = e2["edata"]
    assert ed2["repository"] == source and "identifier" not in ed2
    assert ed2["metadata"]["name"] == "From source" and ed2["metadata"]["code"] == "src"
    assert ed2["metadata"]["source"] == source and ed2["metadata"]["processId"] == pid
    assert ed2["originData"] == {}, "the object-level originData is ignored (the source's has none)"
    assert ed2["collection"] == [] and ed2["stage"] == ""


def test_all_or_nothing(kafka_broker: Any, import_sandbox: SandboxServer) -> None:
    base = import_sandbox.url
    bad_pid = f"bad-{uuid.uuid4()}"
    objects = [{"metadata": md("ok1")}, {"metadata": md("ok2")}, {"metadata": md("bad", framework=None)}]
    status, body = call(base + "/content/v4/import", {"request": {"content": objects, "processId": bad_pid}})
    assert status == 400 and body["params"]["err"] == "ERR_REQUIRED_PROPS_VALIDATION"
    status, body = call(
        base + "/content/v4/import",
        {"request": {"content": [{"metadata": md("s"), "stage": "ship"}], "processId": bad_pid}},
    )
    assert status == 400 and body["params"]["err"] == "ERR_OBJECT_STAGE_VALIDATION"
    # a later good import lands: the refused ones never did
    good_pid = f"good-{uuid.uuid4()}"
    status, _ = call(
        base + "/content/v4/import", {"request": {"content": objects[:2], "processId": good_pid}}
    )
    assert status == 200
    recs = records(kafka_broker.bootstrap, CONTENT_TOPIC, lambda r: len(of_process(r, good_pid)) >= 2)
    assert len(of_process(recs, good_pid)) == 2
    assert of_process(recs, bad_pid) == []


def test_questionset_import_goes_to_auto_creator_v2s_topic(
    kafka_broker: Any, import_sandbox: SandboxServer
) -> None:
    base = import_sandbox.url
    # the sandbox's content read stands in for the source repository's questionset read
    qs = {
        "identifier": "do_qs_k1",
        "name": "QS one",
        "code": "qs1",
        "mimeType": "application/vnd.sunbird.questionset",
        "framework": "NCF",
        "status": "Live",
        "channel": "ch1",
        "objectType": "Content",
    }
    assert call(base + "/_sandbox/seed", {"contents": [qs]})[0] == 200
    # read under result.content, not result.questionset: no metadata, so no status check; nothing from the
    # request either -> the required props refuse it
    source = f"{base}/content/v4/read/do_qs_k1"
    status, body = call(base + "/questionset/v1/import", {"request": {"questionset": [{"source": source}]}})
    assert status == 400 and body["params"]["err"] == "ERR_REQUIRED_PROPS_VALIDATION"
    # without a source the real API accepts it too: the event names a new identifier
    pid = f"pid-{uuid.uuid4()}"
    meta = {k: v for k, v in qs.items() if k not in ("identifier", "objectType")}
    status, body = call(
        base + "/questionset/v1/import", {"request": {"questionset": [{"metadata": meta}], "processId": pid}}
    )
    assert status == 200 and body["ver"] == "3.0", body
    (key, event), *_ = of_process(
        records(kafka_broker.bootstrap, QS_TOPIC, lambda r: len(of_process(r, pid)) >= 1), pid
    )
    assert key == event["object"]["id"] == event["edata"]["identifier"] and key.startswith("do_")
    assert event["edata"]["objectType"] == "QuestionSet" and "repository" not in event["edata"]
