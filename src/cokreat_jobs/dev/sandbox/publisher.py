"""Asynchronous publishing, as the content service's publish pipeline does it.

`POST /content/v4/publish` only queues a publish (the real service pushes a Kafka event for its publish job).
After half of `publish_delay_ms` the image (or, without one, the node) turns Processing; after the full delay
the content goes Live: the image's metadata replaces the node's, `pkgVersion` + 1, `prevStatus`,
`lastPublishedOn`, `downloadUrl` and `variants` (ECAR files written to the storage and served by it), and the
image is deleted. A failure seeded through `publish_failures` turns the target Failed with `publishError`.

Queued publishes are stored, so a restart of the sandbox resumes them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import orjson

from cokreat_jobs.dev.sandbox.content_schema import COLLECTION_MIME
from cokreat_jobs.dev.sandbox.envelope import kp_timestamp, sunbird_ts
from cokreat_jobs.dev.sandbox.files import Storage
from cokreat_jobs.dev.sandbox.nodes import NodeStore, base_object_type, image_id
from cokreat_jobs.dev.sandbox.state import Database

log = logging.getLogger("cokreat_jobs.dev.sandbox.publisher")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS publish_queue (identifier TEXT PRIMARY KEY, job BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS publish_failures (identifier TEXT PRIMARY KEY, error TEXT NOT NULL)",
)

STREAMABLE_PREFIXES = ("video/", "audio/", "application/pdf", "application/epub")

PublishedHook = Callable[[str, dict[str, Any]], None]
"""Called with (identifier, live metadata) once a content is Live (hierarchy.py moves the draft tree)."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:50] or "content"


def _next_pkg_version(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 1
    bumped = value + 1
    return int(bumped) if float(bumped).is_integer() else bumped


class Publisher:
    def __init__(self, db: Database, nodes: NodeStore, storage: Storage, delay_ms: int) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)
        self._nodes = nodes
        self._storage = storage
        self._delay_s = max(delay_ms, 0) / 1000
        self._jobs: dict[str, dict[str, Any]] = {
            identifier: orjson.loads(blob)
            for identifier, blob in db.query("SELECT identifier, job FROM publish_queue")
        }
        self._handles: dict[str, list[asyncio.TimerHandle]] = {}
        self.on_published: list[PublishedHook] = []

    # -- queueing -----------------------------------------------------------------------------------------

    def enqueue(self, identifier: str, published_by: str, base_url: str) -> None:
        job = {
            "identifier": identifier,
            "token": uuid.uuid4().hex,
            "published_by": published_by,
            "base_url": base_url,
            "queued_s": time.time(),
            "stage": "queued",
            "prev_status": None,
        }
        self._save(job)
        self._schedule(job)

    def pending(self) -> list[str]:
        return list(self._jobs)

    def fail_next(self, identifier: str, error: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO publish_failures (identifier, error) VALUES (?, ?)", (identifier, error)
        )

    def resume(self) -> None:
        """Reschedule stored publishes on the running loop (startup, or after a restart)."""
        for job in list(self._jobs.values()):
            self._schedule(job)

    def cancel_all(self) -> None:
        for handles in self._handles.values():
            for handle in handles:
                handle.cancel()
        self._handles.clear()

    def clear(self) -> None:
        self.cancel_all()
        self._jobs.clear()
        self._db.execute("DELETE FROM publish_queue")
        self._db.execute("DELETE FROM publish_failures")

    def _save(self, job: dict[str, Any]) -> None:
        self._jobs[job["identifier"]] = job
        self._db.execute(
            "INSERT OR REPLACE INTO publish_queue (identifier, job) VALUES (?, ?)",
            (job["identifier"], orjson.dumps(job)),
        )

    def _drop(self, identifier: str) -> None:
        self._jobs.pop(identifier, None)
        self._handles.pop(identifier, None)
        self._db.execute("DELETE FROM publish_queue WHERE identifier = ?", (identifier,))

    def _schedule(self, job: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        identifier, token = job["identifier"], job["token"]
        for handle in self._handles.pop(identifier, []):
            handle.cancel()
        elapsed = time.time() - job["queued_s"]
        handles = []
        if job["stage"] == "queued":
            when = max(self._delay_s / 2 - elapsed, 0)
            handles.append(loop.call_later(when, self._guarded, self._processing, identifier, token))
        when = max(self._delay_s - elapsed, 0)
        handles.append(loop.call_later(when, self._guarded, self._complete, identifier, token))
        self._handles[identifier] = handles

    def _guarded(self, step: Callable[[dict[str, Any]], None], identifier: str, token: str) -> None:
        job = self._jobs.get(identifier)
        if job is None or job["token"] != token:
            return  # superseded by a later publish of the same content
        try:
            step(job)
        except Exception:
            log.exception("publishing %s failed in the sandbox", identifier)
            self._drop(identifier)

    # -- the publish pipeline -----------------------------------------------------------------------------

    def _processing(self, job: dict[str, Any]) -> None:
        identifier = job["identifier"]
        target = self._nodes.get(image_id(identifier)) or self._nodes.get(identifier)
        if target is None:
            self._drop(identifier)
            return
        job["prev_status"] = target.get("status")
        job["stage"] = "processing"
        self._save(job)
        self._nodes.put({**target, "status": "Processing", "versionKey": self._nodes.next_version_key()})

    def _complete(self, job: dict[str, Any]) -> None:
        identifier = job["identifier"]
        if job["stage"] == "queued":
            self._processing(job)
        node = self._nodes.get(identifier)
        image = self._nodes.get(image_id(identifier))
        if node is None:
            self._drop(identifier)
            return
        failure = self._db.query_one("SELECT error FROM publish_failures WHERE identifier = ?", (identifier,))
        if failure is not None:
            self._db.execute("DELETE FROM publish_failures WHERE identifier = ?", (identifier,))
            target = image or node
            self._nodes.put(
                {
                    **target,
                    "status": "Failed",
                    "publishError": failure[0],
                    "versionKey": self._nodes.next_version_key(),
                    "lastUpdatedOn": kp_timestamp(),
                }
            )
            self._drop(identifier)
            return
        source = image or node
        now = kp_timestamp()
        live = dict(source)
        live.update(
            identifier=identifier,
            objectType=base_object_type(str(source.get("objectType", "Content"))),
            status="Live",
            prevStatus=job.get("prev_status") or source.get("status"),
            pkgVersion=_next_pkg_version(node.get("pkgVersion", source.get("pkgVersion", 0))),
            lastPublishedOn=now,
            lastPublishedBy=job["published_by"],
            lastStatusChangedOn=now,
            lastUpdatedOn=now,
            versionKey=self._nodes.next_version_key(),
        )
        live.pop("publishError", None)
        self._write_ecars(live, job["base_url"])
        mime = str(live.get("mimeType", ""))
        if live.get("artifactUrl") and mime.startswith(STREAMABLE_PREFIXES):
            live["streamingUrl"] = live["artifactUrl"]
            live.setdefault("previewUrl", live["artifactUrl"])
        self._nodes.put(live)
        if image is not None:
            self._nodes.delete(image_id(identifier))
        for hook in self.on_published:
            hook(identifier, live)
        self._drop(identifier)

    def _write_ecars(self, live: dict[str, Any], base_url: str) -> None:
        identifier = live["identifier"]
        name = _slug(str(live.get("name", "")))
        stem = f"ecar_files/{identifier}/{name}_{int(time.time() * 1000)}_{identifier}_{live['pkgVersion']}"
        manifest = {
            "id": "ekstep.content.archive",
            "ver": "1.0",
            "ts": sunbird_ts(),
            "params": {"resmsgid": str(uuid.uuid4())},
            "archive": {"count": 1, "ttl": 24, "items": [{k: v for k, v in live.items() if k != "variants"}]},
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", orjson.dumps(manifest))
        data = buffer.getvalue()
        variants: dict[str, Any] = {}
        for name, suffix in (("full", ".ecar"), ("spine", "_SPINE.ecar")):
            relative = stem + suffix
            self._storage.write(relative, data)
            variants[name] = {"ecarUrl": self._storage.url(base_url, relative), "size": len(data)}
        if live.get("mimeType") == COLLECTION_MIME:
            variants["online"] = dict(variants["spine"])
        live["downloadUrl"] = variants["full"]["ecarUrl"]
        live["variants"] = variants
