"""content-auto-creator end to end: real Kafka, the job on Flink's MiniCluster, the sandbox's content, search,
hierarchy, Drive and file services, injected 503s and latency, the search index lagging behind.

A batch of a few hundred events covering every path (new contents of each kind, h5p, Drive-hosted files, every
stage, a disallowed source, oversize files with the video exemption, contents that exist already, collection
linking with missing units, skipped, malformed and wrongly typed events). A third of the plain new contents
start at the front door: `POST /content/v4/import` on the sandbox (their `source` on a second sandbox standing
in for the source repository) publishes their events to the job's input topic. Asserts the final sandbox state
of every content, that nothing was created twice, and that every event is accounted for.
"""

from __future__ import annotations

import base64
import io
import json
import random
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CHANNEL = "ch-e2e"
MAX_SIZE = 20_000
PDF = "application/pdf"
MP4 = "video/mp4"
HTML = "application/vnd.ekstep.html-archive"
H5P = "application/vnd.ekstep.h5p-archive"


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def service_account(token_uri: str) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "cokreat-e2e",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "drive-reader@cokreat-e2e.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


@dataclass
class Want:
    """The final state one content must reach."""

    status: str
    artifact: str = "ours"  # "ours" (<sandbox>/_files/content/...), "none", or an exact URL
    origin: bool = True  # origin/originData set to the event's object
    app_icon: bool = False
    import_error: str = ""  # a fragment of importError (status Failed)
    pkg_version: float | None = None
    links: list[tuple[str, str]] = field(default_factory=list)  # (collection, unit) it must be under


@dataclass
class Batch:
    records: list[bytes] = field(default_factory=list)
    contents: dict[str, Want] = field(default_factory=dict)
    success: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    seed_contents: list[dict[str, Any]] = field(default_factory=list)
    drive_files: list[dict[str, Any]] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)
    units: list[tuple[str, str]] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)  # objects for POST /content/v4/import
    source_contents: list[dict[str, Any]] = field(default_factory=list)  # the source repository's seed


class Builder:
    def __init__(self, base: str, storage: Path, tag: str, source_repo: str = "") -> None:
        self.base = base
        self.source_repo = source_repo
        self.storage = storage
        self.tag = tag
        self.b = Batch()
        self.src = f"{base}/_files/source/{tag}"
        folder = storage / "source" / tag
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "lesson.pdf": b"%PDF-1.4 e2e lesson\n" + b"x" * 2000,
            "big.pdf": b"%PDF-1.4 big\n" + b"x" * (MAX_SIZE * 2),
            "clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"v" * 3000,
            "long-clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"v" * (MAX_SIZE * 2),
            "site.zip": zip_bytes({"index.html": b"<html>hi</html>", "a.css": b"body{}"}),
            "game.h5p": zip_bytes({"h5p.json": b'{"title": "g"}', "content/content.json": b"{}"}),
            "game-composed.zip": zip_bytes({"content/h5p.json": b'{"title": "g"}'}),
            "icon.png": b"\x89PNG\r\n\x1a\n" + b"i" * 500,
        }
        for name, data in files.items():
            (folder / name).write_bytes(data)
        self.files = files
        self.n = 0

    def oid(self, kind: str) -> str:
        self.n += 1
        return f"do_e2e_{self.tag}_{kind}_{self.n:04d}"

    def repo(self, oid: str) -> str:
        return f"https://dock.sunbirded.org/api/content/v1/read/{oid}"

    def event(
        self,
        oid: str,
        mime: str,
        artifact: str,
        *,
        stage: str | None = None,
        icon: bool = False,
        collection: list[dict[str, str]] | None = None,
        pkg: float | None = None,
        edata: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": f"E2E {oid}",
            "code": f"code-{oid}",
            "mimeType": mime,
            "primaryCategory": "Learning Resource",
            "contentType": "Resource",
            "framework": "NCF",
            "artifactUrl": artifact,
            "lastPublishedBy": "e2e-publisher",
            "description": "made by the e2e test",
            # system fields the job must not copy
            "status": "Live",
            "identifier": "do_not_this_one",
            "channel": "other-channel",
        }
        if icon:
            metadata["appIcon"] = f"{self.src}/icon.png"
        if pkg is not None:
            metadata["pkgVersion"] = pkg
        metadata.update(meta or {})
        for k in drop:
            metadata.pop(k, None)
        ed: dict[str, Any] = {
            "action": "auto-create",
            "objectType": "Content",
            "repository": self.repo(oid),
            "metadata": metadata,
            "iteration": 1,
        }
        if stage is not None:
            ed["stage"] = stage
        if collection:
            ed["collection"] = collection
        ed.update(edata or {})
        return {
            "eid": "BE_JOB_REQUEST",
            "ets": int(time.time() * 1000),
            "mid": f"LP.{uuid.uuid4()}",
            "actor": {"id": "Auto Creator", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": CHANNEL},
            "object": {"id": oid, "ver": "1"},
            "edata": ed,
        }

    def add_import(self, event: dict[str, Any], want: Want) -> None:
        """The same content through the import API instead of a hand-made event: its source is read from the
        source repository, the request's metadata overlays it; its event is published by the API."""
        oid, ed = event["object"]["id"], event["edata"]
        meta = ed["metadata"]
        # the API takes the event's channel and objectType from the metadata
        metadata = {**meta, "channel": CHANNEL, "objectType": "Content"}
        self.b.source_contents.append(
            {
                "identifier": oid,
                "status": "Live",
                "name": meta["name"],
                "code": meta["code"],
                "mimeType": meta["mimeType"],
                "channel": CHANNEL,
                "primaryCategory": meta["primaryCategory"],
            }
        )
        obj: dict[str, Any] = {"source": f"{self.source_repo}/content/v4/read/{oid}", "metadata": metadata}
        if ed.get("collection"):
            obj["collection"] = ed["collection"]
        self.b.imports.append(obj)
        self.b.contents[oid] = want
        self.b.success += 1

    def add(
        self, event: dict[str, Any], want: Want | None, outcome: str = "success", reason: str = ""
    ) -> None:
        self.b.records.append(json.dumps(event).encode())
        if want is not None:
            self.b.contents[event["object"]["id"]] = want
        if outcome == "success":
            self.b.success += 1
        elif outcome == "skipped":
            self.b.skipped[reason] += 1
        else:
            self.b.failed[reason] += 1


def build_batch(base: str, storage: Path, tag: str, rng: random.Random, source_repo: str = "") -> Batch:
    B = Builder(base, storage, tag, source_repo)
    b = B.b
    coll1, coll2 = f"do_e2e_{tag}_book1", f"do_e2e_{tag}_book2"
    units1 = [f"{coll1}_u{i}" for i in range(1, 4)]
    units2 = [f"{coll2}_u{i}" for i in range(1, 3)]
    collections = [
        {"identifier": coll1, "name": "E2E Book 1", "channel": CHANNEL, "units": units1},
        {"identifier": coll2, "name": "E2E Book 2", "channel": CHANNEL, "units": units2},
    ]
    all_units = [(coll1, u) for u in units1] + [(coll2, u) for u in units2]

    def link(i: int) -> list[tuple[str, str]]:
        return [all_units[i % len(all_units)]] + ([all_units[(i + 2) % len(all_units)]] if i % 3 == 0 else [])

    def coll(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"identifier": c, "unitId": u} for c, u in pairs]

    # plain new contents, some with an icon, some linked into collections
    dup_events: list[dict[str, Any]] = []
    for i in range(150):
        oid = B.oid("pdf")
        pairs = link(i) if i % 2 == 0 else []
        ev = B.event(oid, PDF, f"{B.src}/lesson.pdf", icon=i % 5 == 0, collection=coll(pairs))
        if source_repo and i % 3 == 2:  # a third of them through the import API
            B.add_import(ev, Want("Live", app_icon=i % 5 == 0, links=pairs))
            continue
        B.add(ev, Want("Live", app_icon=i % 5 == 0, links=pairs))
        if i % 15 == 1:
            dup_events.append(ev)
    for i in range(40):
        oid = B.oid("mp4")
        pairs = link(i) if i % 4 == 0 else []
        B.add(B.event(oid, MP4, f"{B.src}/clip.mp4", collection=coll(pairs)), Want("Live", links=pairs))
    for _ in range(15):
        oid = B.oid("html")
        B.add(B.event(oid, HTML, f"{B.src}/site.zip"), Want("Live"))
    for i in range(6):
        oid = B.oid("h5p")
        B.add(B.event(oid, H5P, f"{B.src}/game.h5p", icon=i == 0), Want("Live", app_icon=i == 0))
    for _ in range(4):
        oid = B.oid("h5pzip")
        B.add(B.event(oid, H5P, f"{B.src}/game-composed.zip"), Want("Live"))

    # Drive-hosted files (pdf, an h5p zip), a type mismatch, an oversize one
    pdf_bytes = B.files["lesson.pdf"]
    drive_pdf, drive_zip, drive_big = f"drv{tag}pdf", f"drv{tag}zip", f"drv{tag}big"
    b.drive_files = [
        {
            "id": drive_pdf,
            "name": "Drive Lesson.pdf",
            "mimeType": PDF,
            "content_base64": base64.b64encode(pdf_bytes).decode(),
        },
        {
            "id": drive_zip,
            "name": "drive game.zip",
            "mimeType": "application/zip",
            "content_base64": base64.b64encode(B.files["game-composed.zip"]).decode(),
        },
        {
            "id": drive_big,
            "name": "huge.pdf",
            "mimeType": PDF,
            "content_base64": base64.b64encode(B.files["big.pdf"]).decode(),
        },
    ]
    for i in range(8):
        oid = B.oid("drvpdf")
        url = (
            f"https://drive.google.com/uc?export=download&id={drive_pdf}"
            if i % 2
            else f"https://drive.google.com/file/d/{drive_pdf}/view?usp=sharing"
        )
        pairs = link(i) if i < 3 else []
        B.add(B.event(oid, PDF, url, collection=coll(pairs)), Want("Live", links=pairs))
    for _ in range(2):
        oid = B.oid("drvh5p")
        B.add(B.event(oid, H5P, f"https://drive.google.com/uc?export=download&id={drive_zip}"), Want("Live"))
    for _ in range(2):
        oid = B.oid("drvmismatch")  # a zip where a pdf is expected
        B.add(
            B.event(oid, PDF, f"https://drive.google.com/uc?export=download&id={drive_zip}"),
            Want("Failed", artifact="none", import_error="MimeType Is Not Same"),
            "failed",
            "permanent",
        )
    oid = B.oid("drvbig")
    B.add(
        B.event(oid, PDF, f"https://drive.google.com/uc?export=download&id={drive_big}"),
        Want("Failed", artifact="none", import_error="over the"),
        "failed",
        "permanent",
    )

    # stages: the last step to run
    for stage, status, artifact in (
        ("create", "Draft", "source"),
        ("upload", "Draft", "ours"),
        ("review", "Review", "ours"),
        ("publish", "Live", "ours"),
        ("  Upload ", "Draft", "ours"),
    ):
        for i in range(8 if stage != "  Upload " else 2):
            oid = B.oid("stage")
            src = f"{B.src}/lesson.pdf"
            # a create-stage content is not linked (nothing uploaded), the others are
            pairs = [all_units[i % len(all_units)]] if i < 2 else []
            B.add(
                B.event(oid, PDF, src, stage=stage, collection=coll(pairs)),
                Want(
                    status,
                    artifact=src if artifact == "source" else artifact,
                    links=[] if stage == "create" else pairs,
                ),
            )

    # a source that is not allowed; files over the cap; the video exemption
    for _ in range(4):
        oid = B.oid("disallowed")
        B.add(
            B.event(oid, PDF, "https://evil.test/files/lesson.pdf?x=127.0.0.1"),
            Want("Failed", artifact="none", import_error="not an allowed"),
            "failed",
            "permanent",
        )
    for _ in range(4):
        oid = B.oid("oversize")
        B.add(
            B.event(oid, PDF, f"{B.src}/big.pdf"),
            Want("Failed", artifact="none", import_error="limit"),
            "failed",
            "permanent",
        )
    for _ in range(3):
        oid = B.oid("bigvideo")
        B.add(B.event(oid, MP4, f"{B.src}/long-clip.mp4"), Want("Live"))

    # contents that exist already (seeded with origin / originData)
    def seed(oid: str, status: str, pkg: float | None, artifact: str | None, origin: bool = True) -> None:
        item: dict[str, Any] = {
            "identifier": oid,
            "status": status,
            "name": f"Seeded {oid}",
            "mimeType": PDF,
            "channel": CHANNEL,
            "primaryCategory": "Learning Resource",
            "code": f"code-{oid}",
        }
        if origin:
            item["origin"] = oid
            item["originData"] = {"identifier": oid, "repository": B.repo(oid)}
        if pkg is not None:
            item["pkgVersion"] = pkg
        if artifact:
            item["artifactUrl"] = artifact
        b.seed_contents.append(item)

    seeded_art = f"{base}/_files/content/seeded/artifact/seeded.pdf"
    for i in range(5):  # Live, same pkgVersion: na, only link
        oid = B.oid("livesame")
        seed(oid, "Live", 2, seeded_art)
        pairs = [all_units[i % len(all_units)]]
        B.add(
            B.event(oid, PDF, f"{B.src}/lesson.pdf", pkg=2, collection=coll(pairs)),
            Want("Live", artifact=seeded_art, pkg_version=2, links=pairs),
        )
    for _ in range(3):  # Live, lower pkgVersion in the event: na
        oid = B.oid("livelower")
        seed(oid, "Live", 3, seeded_art)
        B.add(
            B.event(oid, PDF, f"{B.src}/lesson.pdf", pkg=1), Want("Live", artifact=seeded_art, pkg_version=3)
        )
    for _ in range(4):  # Live, higher pkgVersion in the event: update, upload, review, publish
        oid = B.oid("livehigher")
        seed(oid, "Live", 1, seeded_art)
        B.add(B.event(oid, PDF, f"{B.src}/lesson.pdf", pkg=2), Want("Live", pkg_version=2))
    for _ in range(4):  # Draft without an artifact: the update path
        oid = B.oid("draft")
        seed(oid, "Draft", None, None)
        B.add(B.event(oid, PDF, f"{B.src}/lesson.pdf", icon=True), Want("Live", app_icon=True))
    for i in range(4):  # Draft with an artifact: review and publish (an earlier stage asked is ignored)
        oid = B.oid("draftart")
        seed(oid, "Draft", None, seeded_art)
        B.add(
            B.event(oid, PDF, f"{B.src}/lesson.pdf", stage="upload" if i % 2 else None),
            Want("Live", artifact=seeded_art),
        )
    for i in range(3):  # edata.originData names a content that exists: na, only link
        oid = B.oid("origindata")
        seed(oid, "Live", 1, seeded_art, origin=False)
        pairs = [all_units[(i + 1) % len(all_units)]]
        B.add(
            B.event(
                oid,
                PDF,
                f"{B.src}/lesson.pdf",
                collection=coll(pairs),
                edata={"originData": {"identifier": oid, "repository": B.repo(oid)}},
            ),
            Want("Live", artifact=seeded_art, origin=False, links=pairs),
        )

    # a unit (or collection) that does not exist: success, noted; the other entries still linked
    for i in range(4):
        oid = B.oid("nounit")
        pairs = [all_units[i]]
        entries = coll(pairs) + [{"identifier": coll1, "unitId": "no-such-unit"}]
        if i == 3:
            entries.append({"identifier": f"do_e2e_{tag}_nobook", "unitId": "u1"})
        B.add(B.event(oid, PDF, f"{B.src}/lesson.pdf", collection=entries), Want("Live", links=pairs))

    # the same event again (a replay): found by origin or "already exists", never created twice
    for ev in dup_events:
        ev = json.loads(json.dumps(ev))
        ev["mid"] = f"LP.{uuid.uuid4()}"
        B.add(ev, None)

    # skipped, one reason at a time
    def skip(reason: str, ev: dict[str, Any]) -> None:
        B.add(ev, None, "skipped", reason)

    lesson = f"{B.src}/lesson.pdf"
    for _ in range(2):
        skip("iteration-exceeded", B.event(B.oid("skip"), PDF, lesson, edata={"iteration": 4}))
        skip("action-not-allowed", B.event(B.oid("skip"), PDF, lesson, edata={"action": "auto-delete"}))
        ev = B.event(B.oid("skip"), PDF, lesson)
        ev["object"]["id"] = "  "
        skip("object-id-blank", ev)
        ev = B.event(B.oid("skip"), PDF, lesson)
        ev["context"]["channel"] = ""
        skip("channel-blank", ev)
        skip("object-type-not-allowed", B.event(B.oid("skip"), PDF, lesson, edata={"objectType": "Question"}))
        skip("metadata-empty", B.event(B.oid("skip"), PDF, lesson, edata={"metadata": {}}))
        ev = B.event(B.oid("skip"), PDF, "  ")
        del ev["edata"]["repository"]
        skip("no-source", ev)
        skip("stage-not-allowed", B.event(B.oid("skip"), PDF, lesson, stage="retire"))
        skip("mandatory-fields-missing", B.event(B.oid("skip"), PDF, lesson, drop=("lastPublishedBy",)))

    # malformed records and wrongly typed fields: failed topic
    malformed = [b"not json", b"[1, 2]", b"\xff\xfe\x00 bad", b'{"edata": ', b"null"]
    for raw in malformed:
        b.records.append(raw)
        b.failed["malformed"] += 1
    B.add(
        B.event(B.oid("badtype"), PDF, lesson, pkg=None, meta={"pkgVersion": [1]}),
        None,
        "failed",
        "invalid-field",
    )
    bad_collection = B.event(B.oid("badtype"), PDF, lesson)
    bad_collection["edata"]["collection"] = ["not-an-object"]
    B.add(bad_collection, None, "failed", "invalid-field")
    B.add(B.event(B.oid("badtype"), PDF, lesson, edata={"repository": 42}), None, "failed", "invalid-field")

    # shuffled: a replayed event may come before its original, the outcome is the same
    first = list(b.records)
    rng.shuffle(first)
    b.records = first
    b.collections, b.units = collections, all_units
    return b


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def _origin_data(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else (value or {})


@pytest.fixture()
def import_sandboxes(kafka_broker: Any, tmp_path: Path) -> Iterator[tuple[SandboxClient, Path, str, str]]:
    """The target sandbox, with the import API publishing to this test's input topic, and a second sandbox
    as the source repository the import API reads; (target client, storage dir, topic, source base URL)."""
    topic = f"auto-create-{uuid.uuid4().hex[:6]}"
    storage = tmp_path / "sandbox-storage"
    settings = {
        "storage_dir": str(storage),
        "publish_delay_ms": 200,
        "search_index_delay_ms": 300,
        "kafka": kafka_broker.bootstrap,
        "import.content.output_topic": topic,
    }
    with (
        ServerThread(tmp_path / "sandbox", settings) as target,
        ServerThread(tmp_path / "source-repo", {"storage_dir": str(tmp_path / "source-storage")}) as source,
    ):
        yield SandboxClient(target.base_url), storage, topic, source.base_url


def _import(base: str, objects: list[dict[str, Any]]) -> str:
    body = json.dumps({"request": {"content": objects}}).encode()
    req = urllib.request.Request(
        f"{base}/content/v4/import", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    assert answer["responseCode"] == "OK", answer
    return str(answer["result"]["processId"])


def test_content_auto_creator_end_to_end(
    kafka_broker: Any, import_sandboxes: tuple[SandboxClient, Path, str, str], tmp_path: Path
) -> None:
    sandbox, storage, topic, source_repo = import_sandboxes
    base = sandbox.base_url
    tag = topic.rsplit("-", 1)[1]
    batch = build_batch(base, storage, tag, random.Random(11), source_repo)
    total = len(batch.records) + len(batch.imports)
    assert total >= 300 and len(batch.imports) >= 40

    sandbox.seed(contents=batch.seed_contents, collections=batch.collections, drive_files=batch.drive_files)
    SandboxClient(source_repo).seed(contents=batch.source_contents)
    (storage / "content" / "seeded" / "artifact").mkdir(parents=True, exist_ok=True)
    (storage / "content" / "seeded" / "artifact" / "seeded.pdf").write_bytes(b"%PDF-1.4 seeded")
    before = max((r["seq"] for r in sandbox.requests(limit=1000000)), default=0)

    # part of the batch through the front door (before the faults below), in requests of 25
    pids = {_import(base, batch.imports[i : i + 25]) for i in range(0, len(batch.imports), 25)}
    assert len(pids) == len(range(0, len(batch.imports), 25))

    # content-service and search trouble: 503s that are retried, and slow answers
    for path in ("/content/v4/*", "/v3/search", "/content/v3/hierarchy*"):
        sandbox.add_fault(path=path, status=503, rate=0.05)
        sandbox.add_fault(path=path, latency_ms=15)
    sandbox.add_fault(path="/drive/v3/files/*", status=429, times=3)

    temp = tmp_path / "content-tmp"
    temp.mkdir()
    cred = service_account(f"{base}/oauth2/token")
    port = base.rsplit(":", 1)[1]
    failed_topic = f"{topic}.failed"
    produce_records(kafka_broker.bootstrap, topic, batch.records)

    run = LocalJobRun(
        "content-auto-creator",
        [
            f"kafka.broker-servers={kafka_broker.bootstrap}",
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={failed_topic}",
            f"kafka.groupId=g-{topic}",
            f"service.search.basePath={base}",
            f"service.content_service.basePath={base}",
            f'http.allow_private_networks=["127.0.0.1:{port}"]',
            "cloud_storage_type=local",
            f"cloud_storage.local.path={storage}",
            f"cloud_storage.public_base_url={base}/_files",
            f'content_auto_creator.artifact_upload_allowed_source=["{base}/_files/source/","drive.google.com"]',
            f"content_auto_creator.artifact_upload_max_size={MAX_SIZE}",
            "content_auto_creator.g_service_acct_cred=" + json.dumps(json.dumps(cred)),
            f"content_auto_creator.drive_api_base={base}",
            f"content_auto_creator.temp_file_location={temp}",
            "content_auto_creator.state_wait_backoff_ms=100",
            "http.retry.backoff_ms=20",
            "http.retry.max_attempts=8",
            "task.checkpointing.interval=2000",
            "task.async.capacity=50",
        ],
        log_file=tmp_path / "job.log",
    )
    started = time.monotonic()
    run.start()
    try:
        counters = run.wait_for_total(total, timeout=420)
    finally:
        code = run.stop()
    wall = time.monotonic() - started
    sandbox.clear_faults()
    print(f"\ncontent-auto-creator e2e: {total} events, counters {counters}, {wall:.0f} s with job start-up")
    assert code == 0, "SIGTERM stops the job cleanly"

    # every event accounted for, by the job's own counters
    assert counters["total"] == total
    assert counters["success"] == batch.success, counters
    assert counters["skipped"] == sum(batch.skipped.values()), counters
    assert counters["failed"] == sum(batch.failed.values()), counters
    assert counters["error"] > 0, "the injected faults were retried"

    failed = [
        json.loads(v)
        for v in consume_records(
            kafka_broker.bootstrap, failed_topic, from_beginning=True, max_records=200, timeout=20
        )
    ]
    reasons = Counter(f["failInfo"]["reason"] for f in failed)
    assert reasons == batch.failed, [f["failInfo"] for f in failed]
    failed_ids = set()
    for f in failed:
        assert f["jobName"] == "content-auto-creator" and f["failInfo"]["error"]
        if f["failInfo"]["reason"] == "malformed":
            assert f["source"]["topic"] == topic and f["source"]["offset"] >= 0
        else:
            assert f["edata"]["iteration"] == 2
            failed_ids.add(f["object"]["id"])
    assert failed_ids >= {oid for oid, w in batch.contents.items() if w.status == "Failed"}

    # the final state of every content
    ours = f"{base}/_files/content/"
    problems: list[str] = []
    for oid, want in sorted(batch.contents.items()):
        node = _get(f"{base}/_sandbox/nodes/{oid}")
        if node is None:
            problems.append(f"{oid}: absent")
            continue
        got = {k: node.get(k) for k in ("status", "artifactUrl", "appIcon", "importError", "pkgVersion")}
        if node.get("status") != want.status:
            problems.append(f"{oid}: status {got}, want {want.status}")
            continue
        if node.get("identifier") != oid or node.get("channel") != CHANNEL:
            problems.append(f"{oid}: identifier/channel {node.get('identifier')} {node.get('channel')}")
        if want.origin:
            od = _origin_data(node.get("originData"))
            if node.get("origin") != oid or od.get("identifier") != oid or not od.get("repository"):
                problems.append(f"{oid}: origin {node.get('origin')} {od}")
        art = node.get("artifactUrl") or ""
        if want.artifact == "ours":
            if not art.startswith(ours + oid + "/artifact/"):
                problems.append(f"{oid}: artifactUrl {art}")
            elif not (storage / art[len(base + "/_files/") :]).is_file():
                problems.append(f"{oid}: artifact file missing {art}")
        elif want.artifact == "none":
            if art.startswith(ours):
                problems.append(f"{oid}: artifactUrl {art} should not be ours")
        elif art != want.artifact:
            problems.append(f"{oid}: artifactUrl {art}, want {want.artifact}")
        if want.app_icon and node.get("appIcon") != f"{ours}{oid}/artifact/icon.png":
            problems.append(f"{oid}: appIcon {node.get('appIcon')}")
        if want.import_error and want.import_error not in (node.get("importError") or ""):
            problems.append(f"{oid}: importError {node.get('importError')!r}, want ~{want.import_error!r}")
        if not want.import_error and node.get("importError"):
            problems.append(f"{oid}: unexpected importError {node.get('importError')!r}")
        if want.pkg_version is not None and float(node.get("pkgVersion") or 0) != want.pkg_version:
            problems.append(f"{oid}: pkgVersion {node.get('pkgVersion')}, want {want.pkg_version}")
        if node.get("name") in ("do_not_this_one",) or node.get("identifier") == "do_not_this_one":
            problems.append(f"{oid}: system field copied")
    assert not problems, "\n".join(problems[:40])
    assert _get(f"{base}/_sandbox/nodes/do_not_this_one") is None

    # collection membership, via the stored trees
    want_members: dict[tuple[str, str], set[str]] = defaultdict(set)
    for oid, want in batch.contents.items():
        for pair in want.links:
            want_members[pair].add(oid)
    for c, u in batch.units:
        tree = _get(f"{base}/_sandbox/hierarchies/{c}")
        assert tree is not None, c
        unit = next(x for x in tree["children"] if x["identifier"] == u)
        members = {x["identifier"] for x in unit.get("children") or []}
        assert members == want_members[(c, u)], (c, u, members ^ want_members[(c, u)])

    # nothing created twice: at most one successful create per identifier
    log = sandbox.requests(since=before, limit=1000000)
    creates = Counter(
        (r.get("body") or {}).get("request", {}).get("content", {}).get("identifier")
        for r in log
        if r["method"] == "POST" and r["path"] == "/content/v4/create" and r["status"] == 200
    )
    assert creates and max(creates.values()) == 1, creates.most_common(3)
    fresh = {
        oid
        for oid, w in batch.contents.items()
        if w.origin and oid not in {s["identifier"] for s in batch.seed_contents}
    }
    assert set(creates) == fresh
    statuses = Counter(r["status"] for r in log if r["path"].startswith("/content/v4/"))
    assert statuses[503] > 0
    # Drive files came through the Drive API (after its rate limit), never over plain HTTP
    drive = Counter(
        (r["status"], "media" if (r.get("query") or {}).get("alt") == "media" else "meta")
        for r in log
        if r["path"].startswith("/drive/v3/files/")
    )
    assert drive[(429, "meta")] + drive[(429, "media")] == 3, drive
    assert drive[(200, "media")] >= 10, drive

    # temp files always removed
    assert not any(temp.rglob("*")), list(temp.rglob("*"))[:5]
