"""`make demo`, content-auto-creator's part: a sample bulk upload through the job, then each outcome.

The batch (about twenty events) holds pdf, mp4, html and h5p contents, a Drive-hosted file, a source that is
not allowed, a file over the size cap (and a video above it, which is exempt), a collection with units (one
entry naming a unit that does not exist), a content that exists already, an invalid and a malformed event.
The source files are written into the storage folder the sandbox serves, so the job downloads them over
HTTP like real ones; the Drive file is seeded into the sandbox's Drive stand-in.
"""

from __future__ import annotations

import base64
import io
import json
import random
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from rich.console import Console
from rich.table import Table

from cokreat_jobs.dev.demo.main import Expected, drain, failed_topic_table, summary_table
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import consume_records, produce_records

__all__ = ["content_auto_creator_demo"]

TOPIC = "sunbirddev.auto.creation.job.request"
FAILED_TOPIC = "sunbirddev.auto.creation.job.request.failed"
CHANNEL = "demo-channel"
MAX_SIZE = 100_000  # bytes: small, so that the oversize file is quick to make
PDF, MP4 = "application/pdf", "video/mp4"
HTML, H5P = "application/vnd.ekstep.html-archive", "application/vnd.ekstep.h5p-archive"


@dataclass
class Item:
    """One content of the batch and what it must come to."""

    oid: str
    name: str
    mime: str
    status: str  # the final status wanted
    artifact: str = "ours"  # "ours": re-hosted in our storage; "kept": the seeded one; "none"
    links: tuple[tuple[str, str], ...] = ()
    import_error: str = ""  # a fragment of importError
    note: str = ""


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _service_account(token_uri: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "cokreat-demo",
        "private_key_id": "demo",
        "private_key": pem,
        "client_email": "drive-reader@cokreat-demo.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def storage_dir(endpoints: dict[str, Any]) -> Path:
    parsed = urlparse(str(endpoints["storage"]))
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(str(endpoints["storage"]))


class _Batch:
    def __init__(self, sandbox_url: str, storage: Path, tag: str) -> None:
        self.sandbox_url = sandbox_url
        self.tag = tag
        self.src = f"{sandbox_url}/_files/source/demo-{tag}"
        folder = storage / "source" / f"demo-{tag}"
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "fractions.pdf": b"%PDF-1.4 fractions\n" + b"f" * 4000,
            "photosynthesis.pdf": b"%PDF-1.4 photosynthesis\n" + b"p" * 6000,
            "atlas-scan.pdf": b"%PDF-1.4 a big scan\n" + b"s" * (MAX_SIZE + 50_000),
            "water-cycle.mp4": b"\x00\x00\x00\x18ftypmp42" + b"w" * 20_000,
            "lecture-full.mp4": b"\x00\x00\x00\x18ftypmp42" + b"l" * (MAX_SIZE + 80_000),
            "solar-system.zip": zip_bytes({"index.html": b"<html><body>Solar system</body></html>"}),
            "quiz.h5p": zip_bytes({"h5p.json": b'{"title": "Quiz"}', "content/content.json": b"{}"}),
            "icon.png": b"\x89PNG\r\n\x1a\n" + b"i" * 800,
        }
        for name, data in files.items():
            (folder / name).write_bytes(data)
        self.drive_id = f"1DemoDriveFile{tag}"
        self.drive_file = {
            "id": self.drive_id,
            "name": "Shared Lesson Plan.pdf",
            "mimeType": PDF,
            "content_base64": base64.b64encode(b"%PDF-1.4 from drive\n" + b"d" * 3000).decode(),
        }
        self.collection = f"do_demo_{tag}_textbook"
        self.units = [f"{self.collection}_chapter1", f"{self.collection}_chapter2"]
        self.records: list[bytes] = []
        self.items: list[Item] = []
        self.seed_contents: list[dict[str, Any]] = []
        self.n = 0

    def oid(self) -> str:
        self.n += 1
        return f"do_demo_{self.tag}_{self.n:02d}"

    def event(self, oid: str, name: str, mime: str, artifact: str, **edata: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "code": f"code-{oid}",
            "mimeType": mime,
            "primaryCategory": "Learning Resource",
            "contentType": "Resource",
            "artifactUrl": artifact,
            "lastPublishedBy": "demo-publisher",
            "description": f"{name} (sample bulk upload)",
        }
        metadata.update(edata.pop("metadata", {}))
        body: dict[str, Any] = {
            "action": "auto-create",
            "objectType": "Content",
            "repository": f"https://dock.sunbirded.org/api/content/v1/read/{oid}",
            "metadata": metadata,
            "iteration": 1,
            **edata,
        }
        return {
            "eid": "BE_JOB_REQUEST",
            "ets": int(time.time() * 1000),
            "mid": f"LP.{uuid.uuid4()}",
            "actor": {"id": "Auto Creator", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": CHANNEL},
            "object": {"id": oid, "ver": "1"},
            "edata": body,
        }

    def add(self, item: Item, event: dict[str, Any], links: list[tuple[str, str]] | None = None) -> None:
        if links:
            event["edata"]["collection"] = [{"identifier": c, "unitId": u} for c, u in links]
        self.items.append(item)
        self.records.append(json.dumps(event).encode())


def content_batch(sandbox_url: str, storage: Path, rng: random.Random) -> tuple[_Batch, Expected]:
    tag = uuid.uuid4().hex[:4]
    b = _Batch(sandbox_url, storage, tag)
    ch1, ch2 = ((b.collection, u) for u in b.units)
    src = b.src

    def new(name: str, mime: str, url: str, links: list[tuple[str, str]] | None = None, **kw: Any) -> None:
        oid = b.oid()
        want = kw.pop("want", None) or Item(oid, name, mime, "Live", links=tuple(links or ()))
        want.oid = oid
        b.add(want, b.event(oid, name, mime, url, **kw), links)

    new("Fractions", PDF, f"{src}/fractions.pdf", [ch1], metadata={"appIcon": f"{src}/icon.png"})
    new("Photosynthesis", PDF, f"{src}/photosynthesis.pdf", [ch1, ch2])
    new("Decimals", PDF, f"{src}/fractions.pdf", [ch2])
    new("Leaf worksheet", PDF, f"{src}/photosynthesis.pdf", [ch2], metadata={"appIcon": f"{src}/icon.png"})
    new("Rain and clouds", MP4, f"{src}/water-cycle.mp4", [ch2])
    new("The water cycle", MP4, f"{src}/water-cycle.mp4", [ch1])
    new("Water cycle (recap)", MP4, f"{src}/water-cycle.mp4")
    new("Solar system explorer", HTML, f"{src}/solar-system.zip", [ch2])
    new("Quiz: plants", H5P, f"{src}/quiz.h5p", [ch1])
    new(
        "Shared lesson plan (Drive)",
        PDF,
        f"https://drive.google.com/uc?export=download&id={b.drive_id}",
        [ch2],
    )
    new("Full lecture (large video, exempt)", MP4, f"{src}/lecture-full.mp4")
    new(
        "Linked to a missing unit",
        PDF,
        f"{src}/photosynthesis.pdf",
        [ch1, (b.collection, "no-such-chapter")],
        want=Item("", "Linked to a missing unit", PDF, "Live", links=(ch1,), note="unit missing"),
    )
    new(
        "Sent for review only",
        PDF,
        f"{src}/fractions.pdf",
        stage="review",
        want=Item("", "Sent for review only", PDF, "Review"),
    )
    new(
        "Draft only (stage create)",
        PDF,
        f"{src}/fractions.pdf",
        stage="create",
        want=Item("", "Draft only (stage create)", PDF, "Draft", artifact="source"),
    )
    new(
        "From an unknown site",
        PDF,
        "https://files.example.net/lesson.pdf",
        want=Item("", "From an unknown site", PDF, "Failed", artifact="none", import_error="not an allowed"),
    )
    new(
        "Atlas scan (too big)",
        PDF,
        f"{src}/atlas-scan.pdf",
        want=Item("", "Atlas scan (too big)", PDF, "Failed", artifact="none", import_error="limit"),
    )
    # a content imported earlier (Live, same pkgVersion): nothing to do but link it
    oid = b.oid()
    seeded_art = f"{sandbox_url}/_files/source/demo-{tag}/fractions.pdf"
    b.seed_contents.append(
        {
            "identifier": oid,
            "status": "Live",
            "name": "Imported last week",
            "mimeType": PDF,
            "channel": CHANNEL,
            "pkgVersion": 1,
            "artifactUrl": seeded_art,
            "origin": oid,
            "originData": {
                "identifier": oid,
                "repository": f"https://dock.sunbirded.org/api/content/v1/read/{oid}",
            },
        }
    )
    b.add(
        Item(
            oid, "Imported last week", PDF, "Live", artifact="kept", links=(ch2,), note="found Live: linked"
        ),
        b.event(oid, "Imported last week", PDF, f"{src}/fractions.pdf", metadata={"pkgVersion": 1}),
        [ch2],
    )
    # invalid: a stage the job does not know; malformed: not JSON
    skipped = b.event(b.oid(), "Retire me", PDF, f"{src}/fractions.pdf", stage="retire")
    b.records.append(json.dumps(skipped).encode())
    b.records.append(f"demo {tag}: this line is not JSON".encode())
    for item in b.items:
        if item.status == "Draft" and item.artifact == "source":
            item.artifact = f"{src}/fractions.pdf"
    rng.shuffle(b.records)
    failed_items = sum(1 for i in b.items if i.status == "Failed")
    expected = Expected(
        total=len(b.records),
        success=len(b.items) - failed_items,
        skipped=1,
        failed=failed_items + 1,
    )
    return b, expected


def _node(sandbox_url: str, oid: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{sandbox_url}/_sandbox/nodes/{oid}", timeout=10) as r:
            node: dict[str, Any] = json.loads(r.read())
            return node
    except urllib.error.HTTPError:
        return None


def _members(sandbox_url: str, collection: str) -> dict[str, set[str]]:
    try:
        with urllib.request.urlopen(f"{sandbox_url}/_sandbox/hierarchies/{collection}", timeout=10) as r:
            tree = json.loads(r.read())
    except urllib.error.HTTPError:
        return {}
    return {
        u["identifier"]: {c["identifier"] for c in u.get("children") or []} for u in tree.get("children", [])
    }


def _short(url: str, base: str) -> str:
    if not url:
        return "-"
    if url.startswith(base + "/_files/content/"):
        # <storage>/content/<id>/artifact/<file>: the id is in the row already
        return "storage: …/" + url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1]
    if url.startswith(base + "/_files/source/"):
        return "source: " + url.rsplit("/", 1)[-1]
    host = urlparse(url).hostname or ""
    return f"{host}/…{urlparse(url).path.rsplit('/', 1)[-1]}"


def _wait_for_checkpoint(run: LocalJobRun, timeout: float) -> bool:
    def completed() -> int:
        try:
            return int(run.rest.get(f"/jobs/{run.jid}/checkpoints")["counts"]["completed"])
        except (OSError, KeyError, TypeError, ValueError):
            return -1

    first = completed()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if completed() > first >= 0:
            return True
        time.sleep(0.5)
    return False


def content_auto_creator_demo(console: Console, endpoints: dict[str, Any], workdir: Path) -> bool:
    console.rule("[bold]content-auto-creator")
    base = str(endpoints["sandbox"]).rstrip("/")
    sandbox = SandboxClient(base)
    batch, expected = content_batch(base, storage_dir(endpoints), random.Random(2))
    sandbox.seed(
        contents=batch.seed_contents,
        drive_files=[batch.drive_file],
        collections=[
            {
                "identifier": batch.collection,
                "name": "Demo Textbook",
                "channel": CHANNEL,
                "units": batch.units,
            }
        ],
    )
    # content-service has bad moments too: a few 503s that the job retries
    sandbox.add_fault(path="/content/v4/*", status=503, rate=0.05)
    console.print(
        f"seeded a textbook with {len(batch.units)} chapters, one Drive file and one earlier import; "
        f"producing {expected.total} auto-create events to {TOPIC} (pdf, mp4, html, h5p, Drive, "
        f"disallowed source, oversize file, invalid and malformed events)"
    )
    produce_records(endpoints["kafka"], TOPIC, batch.records)
    temp = Path(tempfile.mkdtemp(prefix="content-demo-", dir=workdir))
    cred = _service_account(f"{base}/oauth2/token")
    run = LocalJobRun(
        "content-auto-creator",
        [
            f'content_auto_creator.artifact_upload_allowed_source=["{base}/_files/source/","drive.google.com"]',
            f"content_auto_creator.artifact_upload_max_size={MAX_SIZE}",
            "content_auto_creator.g_service_acct_cred=" + json.dumps(json.dumps(cred)),
            f"content_auto_creator.drive_api_base={base}",
            f"content_auto_creator.temp_file_location={temp}",
            "task.checkpointing.interval=2000",
        ],
        log_file=workdir / "content-auto-creator.log",
    )
    run.start()
    console.print(
        f"job running; Flink REST API: http://127.0.0.1:{run.rest_port}  sandbox: {base}  "
        f"job log: {run.log_file}"
    )
    try:
        counters = drain(console, run, expected)
        # offsets are committed with checkpoints: one more before stopping, so a rerun starts after this batch
        _wait_for_checkpoint(run, timeout=30)
    finally:
        run.stop()
        sandbox.clear_faults()

    members = _members(base, batch.collection)
    table = Table(title="content-auto-creator: per-content outcomes")
    for col in (
        "identifier",
        "name",
        "mimeType",
        "status",
        "artifactUrl",
        "linked",
        "importError / note",
        "",
    ):
        table.add_column(col, overflow="fold")
    all_ok = True
    for item in batch.items:
        node = _node(base, item.oid) or {}
        status = str(node.get("status", "absent"))
        art = str(node.get("artifactUrl") or "")
        linked = tuple(sorted((batch.collection, u) for u, kids in members.items() if item.oid in kids))
        ok = status == item.status and linked == tuple(sorted(item.links))
        if item.artifact == "ours":
            ok &= art.startswith(f"{base}/_files/content/{item.oid}/artifact/")
        elif item.artifact == "kept":
            ok &= bool(art) and not art.startswith(f"{base}/_files/content/")
        elif item.artifact == "none":
            ok &= not art.startswith(f"{base}/_files/content/")
        else:
            ok &= art == item.artifact
        error = str(node.get("importError") or "")
        ok &= (item.import_error in error) if item.import_error else not error
        all_ok &= ok
        table.add_row(
            item.oid,
            item.name,
            item.mime.rsplit("/", 1)[-1].replace("vnd.ekstep.", ""),
            status,
            _short(art, base),
            ", ".join(u.rsplit("_", 1)[-1] for _, u in linked) or "-",
            (error[:60] + ("…" if len(error) > 60 else "")) or item.note or "",
            "[green]✓[/]" if ok else "[red]✗[/]",
        )
    console.print(table)
    summary, counted_ok = summary_table("content-auto-creator: outcomes", counters, expected)
    console.print(summary)
    mine = []
    for value in consume_records(endpoints["kafka"], FAILED_TOPIC, from_beginning=True, timeout=10):
        record = json.loads(value)
        obj = record.get("object") if isinstance(record.get("object"), dict) else {}
        if batch.tag in str(obj.get("id", "")) or batch.tag in str(record.get("raw", "")):
            mine.append(record)
    console.print(failed_topic_table(mine))
    leftovers = list(temp.rglob("*"))
    console.print(
        f"failed-topic records of this batch: {len(mine)} (expected {expected.failed}); "
        f"temp files left: {len(leftovers)} (expected 0)"
    )
    return all_ok and counted_ok and len(mine) == expected.failed and not leftovers
