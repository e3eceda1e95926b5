"""Bulk upload end to end: CSV -> `import upload` -> the sandbox's import API -> Kafka -> content-auto-creator
on Flink's MiniCluster -> Live (or Failed, with its importError), and `import status --json` matching the
sandbox's final state. One more content goes to the import API directly, under the same processId, with no
`objectType` in its metadata: the API defaults it to `Content`, as knowledge-platform's does, so it ends Live
too."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cokreat_jobs.cli.main import main
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.dev.stack.jobrun import LocalJobRun

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

COLUMNS = "name,code,mimeType,contentType,primaryCategory,artifactUrl,framework,lastPublishedBy,stage"


@pytest.fixture()
def import_sandbox(kafka_broker: Any, tmp_path: Path) -> Iterator[tuple[ServerThread, str, Path]]:
    topic = f"bulk-{uuid.uuid4().hex[:8]}"
    storage = tmp_path / "storage"
    settings = {
        "storage_dir": str(storage),
        "publish_delay_ms": 200,
        "search_index_delay_ms": 300,
        "kafka": kafka_broker.bootstrap,
        "import.content.output_topic": topic,
    }
    with ServerThread(tmp_path / "sandbox", settings) as server:
        yield server, topic, storage


def create_topic(bootstrap: str, topic: str) -> None:
    """The job starts before anything is imported: Flink's Kafka source fails (and the job restarts until
    it gives up) on a topic that does not exist yet, so the test creates it first, as a deployment does."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    futures = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)
    for future in futures.values():
        future.result(30)
    del admin


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_bulk_upload_end_to_end(
    kafka_broker: Any, import_sandbox: tuple[ServerThread, str, Path], tmp_path: Path
) -> None:
    server, topic, storage = import_sandbox
    base = server.base_url
    source = storage / "source"
    source.mkdir(parents=True)
    good = 5
    for i in range(good + 1):
        (source / f"doc-{i}.pdf").write_bytes(b"%PDF-1.4 bulk " + str(i).encode() * 100)
    rows = [
        f"Bulk content {i},bulk-{i},application/pdf,Resource,Learning Resource,"
        f"{base}/_files/source/doc-{i}.pdf,NCF,uploader-1,publish"
        for i in range(good)
    ]
    # the artifact is missing: the job fails the content and says why in importError
    rows.append(
        "Bulk missing,bulk-missing,application/pdf,Resource,Learning Resource,"
        f"{base}/_files/source/missing.pdf,NCF,uploader-1,publish"
    )
    csv_file = tmp_path / "contents.csv"
    csv_file.write_text(COLUMNS + "\n" + "\n".join(rows) + "\n")

    create_topic(kafka_broker.bootstrap, topic)
    run = LocalJobRun(
        "content-auto-creator",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={topic}.failed",
            f"kafka.groupId=g-{topic}",
            f"service.search.basePath={base}",
            f"service.content_service.basePath={base}",
            f'http.allow_private_networks=["127.0.0.1:{server.port}"]',
            "cloud_storage_type=local",
            f"cloud_storage.local.path={storage}",
            f"cloud_storage.public_base_url={base}/_files",
            f"content_auto_creator.temp_file_location={tmp_path / 'tmp'}",
            "content_auto_creator.state_wait_backoff_ms=100",
            "http.retry.backoff_ms=20",
            "http.retry.max_attempts=3",
            "task.checkpointing.interval=2000",
        ],
        log_file=tmp_path / "job.log",
    )
    run.start()
    try:
        runner = CliRunner()
        up = runner.invoke(
            main,
            ["import", "upload", str(csv_file), "--to", base, "--channel", "ch-bulk", "--batch-size", "4"],
        )
        assert up.exit_code == 0, up.output
        pid = up.stdout.strip()
        assert "6 contents sent" in up.stderr and "in 2 batch(es)" in up.stderr
        # straight to the import API (the gateway path), without objectType
        untyped = {
            "name": "Untyped content",
            "code": "bulk-untyped",
            "mimeType": "application/pdf",
            "contentType": "Resource",
            "primaryCategory": "Learning Resource",
            "artifactUrl": f"{base}/_files/source/doc-{good}.pdf",
            "framework": "NCF",
            "lastPublishedBy": "uploader-1",
            "channel": "ch-bulk",
        }
        body = {"request": {"content": [{"metadata": untyped, "stage": "publish"}], "processId": pid}}
        request = urllib.request.Request(
            f"{base}/content/v1/import",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            assert json.loads(r.read())["result"]["processId"] == pid

        st = runner.invoke(
            main,
            [
                "import",
                "status",
                pid,
                "--search",
                base,
                "--expect",
                str(len(rows) + 1),
                "--watch",
                "--json",
                "--timeout",
                "300",
                "--interval",
                "1",
            ],
        )
    finally:
        code = run.stop()
    assert st.exit_code == 0, st.output + f"\njob log: {tmp_path / 'job.log'}"
    assert code == 0
    doc = json.loads(st.stdout)
    assert doc["processId"] == pid
    assert doc["counts"] == {"Failed": 1, "Live": good + 1}, doc
    assert len(doc["contents"]) == len(rows) + 1
    assert any(c["name"] == "Untyped content" and c["status"] == "Live" for c in doc["contents"]), doc

    # the status matches the sandbox's final state, content by content
    for c in doc["contents"]:
        node = _get(f"{base}/_sandbox/nodes/{c['identifier']}")
        assert node["processId"] == pid
        assert c["status"] == node["status"]
        assert c["name"] == node["name"]
        assert c["importError"] == node.get("importError")
        if node["status"] == "Live":
            assert node["channel"] == "ch-bulk" and node["pkgVersion"] == 1
            assert node["artifactUrl"].startswith(f"{base}/_files/content/")
        else:
            assert node["name"] == "Bulk missing" and node["importError"]
    # what the import API received: two batches under one processId
    log = _get(f"{base}/_sandbox/requests")["requests"]
    imports = [r for r in log if r["path"] == "/content/v4/import"]
    assert [len(r["body"]["request"]["content"]) for r in imports] == [4, 2]
    assert {r["body"]["request"]["processId"] for r in imports} == {pid}
