"""content-auto-creator's processor: one auto-create event in, one Outcome out (JOBS.md).

    validate -> find the current state -> create -> update -> upload -> review -> publish -> link

Every event ends as success (a unit missing from its collection is noted in the detail), skipped (with the
reason from :mod:`.validation`), or failed: the failed-topic record (``edata.iteration`` + 1) and, when the
content exists by then, the content marked ``Failed`` with ``importError`` so the portal's bulk-upload screen
shows why.

Idempotent: the content is found by origin before anything is created, and "Object already exists with
identifier" on create (a retried create, a search index lagging behind) continues with that content, so a
replayed event never creates a second one.

No fixed sleeps: where the reference slept ``api_call_delay`` (after upload, six times over for h5p, and after
review) this waits for the state the next step needs, with backoff and a deadline (an upload that answered no
artifactUrl is read until it has one; review and publish refused while the content is Processing are retried
until it is not). ``api_call_delay`` (seconds, default 0) is still slept where the reference slept it, when
above 0, so the reference's pacing can be reproduced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cokreat_jobs.adapters.download import Downloader, event_temp_dir
from cokreat_jobs.adapters.drive import DriveClient
from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.adapters.storage import CloudStorage, storage_path
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import CountingProcessor
from cokreat_jobs.core.errors import (
    InvalidField,
    JobError,
    PermanentError,
    TransientError,
    exception_message,
    public_text,
)
from cokreat_jobs.core.event import Event
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.logs import get_logger, log_event
from cokreat_jobs.core.naming import file_name_from_url, identifier_segment, safe_file_name, slug
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.redaction import redact
from cokreat_jobs.core.wait import DeadlinePassed, poll_until
from cokreat_jobs.jobs.content_auto_creator.artifacts import (
    H5P_MIME_TYPE,
    drive_file_id,
    drive_mime_compatible,
    is_drive_url,
    size_cap,
    upload_file_format,
)
from cokreat_jobs.jobs.content_auto_creator.metadata import MetadataSplit, split_metadata
from cokreat_jobs.jobs.content_auto_creator.request import AutoCreateRequest
from cokreat_jobs.jobs.content_auto_creator.settings import Settings
from cokreat_jobs.jobs.content_auto_creator.stages import (
    ContentStage,
    find_origin_match,
    should_link,
    stage_of,
    steps_to_run,
)
from cokreat_jobs.jobs.content_auto_creator.validation import check_event, check_identifiers
from cokreat_jobs.sunbird.content_api import ContentApi, ContentBusy, describe
from cokreat_jobs.sunbird.linking import link_into_collections

if TYPE_CHECKING:
    from cokreat_jobs.core.counting import Metrics

__all__ = ["ContentAutoCreator"]

log = get_logger("cokreat_jobs.content_auto_creator")

T = TypeVar("T")

IMPORT_ERROR_MAX = 1000
DEFAULT_IMPORT_ERROR = "Processing Error"
INVALID_VERSION_KEY = "invalid version key"


class _Run:
    """What one event has done so far: the failure path needs to know whether the content exists."""

    def __init__(self, req: AutoCreateRequest) -> None:
        self.req = req
        self.content_id = ""
        self.found = ContentStage.CREATE
        self.steps: list[ContentStage] = []
        self.done: list[str] = []
        self.detail: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._tmp: Path | None = None

    async def temp_dir(self, base: str) -> Path:
        # Made on first use: most steps need no files.
        if self._tmp is None:
            self._tmp = await self._stack.enter_async_context(event_temp_dir(base, self.req.object_id))
        return self._tmp

    async def cleanup(self) -> None:
        await self._stack.aclose()


class ContentAutoCreator(CountingProcessor):
    """The job's processor (see the module docstring). Ports are injected; :meth:`from_config` builds them."""

    def __init__(
        self,
        settings: Settings,
        api: ContentApi,
        storage: CloudStorage,
        downloader: Downloader,
        drive: DriveClient,
        metrics: Metrics | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.api = api
        self.storage = storage
        self.downloader = downloader
        self.drive = drive
        self.metrics = metrics
        self._sleep = sleep
        self._clock = clock
        if api.on_retry is None:
            api.on_retry = self.on_retry

    @classmethod
    def from_config(cls, cfg: JobConfig, metrics: Metrics | None = None) -> ContentAutoCreator:
        settings = Settings.from_config(cfg)
        api = ContentApi(
            ServiceClient.from_config("search-service", settings.search_base_url, cfg),
            ServiceClient.from_config("content-service", settings.content_base_url, cfg),
        )
        downloader, drive = Downloader.from_config(cfg), DriveClient.from_config(cfg)
        return cls(settings, api, CloudStorage.from_config(cfg), downloader, drive, metrics)

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        return [self.api.close, self.downloader.close, self.drive.close]

    # ------------------------------------------------------------------------------------------ the event

    async def process(self, data: dict[str, Any]) -> Outcome:
        started = self._clock()
        try:
            event = Event(data)
            skip = check_event(event, self.settings)
            if skip is not None:
                self._log("skipped", data, started, reason=skip.reason, **skip.detail)
                return Outcome.skipped(skip.reason, skip.detail)
            req = AutoCreateRequest.from_event(event)
            skip = check_identifiers(req)
            if skip is not None:
                self._log("skipped", data, started, reason=skip.reason, **skip.detail)
                return Outcome.skipped(skip.reason, skip.detail)
        except InvalidField as e:
            return await self._failed(data, None, e, started)
        run = _Run(req)
        try:
            await self._run(run)
        except JobError as e:
            self.count("error")
            return await self._failed(data, run, e, started)
        except Exception as e:  # a bug or an unforeseen library error: the event fails, the job goes on
            self.count("error")
            return await self._failed(data, run, e, started, reason="permanent")
        finally:
            await run.cleanup()
        detail = {"content_id": run.content_id, "stage": str(run.found), "steps": run.done, **run.detail}
        note = "collection-unit-missing" if run.detail.get("unit_missing") else ""
        self._log(
            "success",
            data,
            started,
            content_id=run.content_id,
            stage=str(run.found),
            steps=run.done,
            note=note or None,
        )
        return Outcome.success(note, detail)

    async def _run(self, run: _Run) -> None:
        req, s = run.req, self.settings
        if len(req.collections) > s.max_collections:  # before any call: each entry costs several
            raise PermanentError(
                f"edata.collection has {len(req.collections)} entries, more than the limit of "
                f"{s.max_collections} (content_auto_creator.max_collections)"
            )
        split = split_metadata(req.metadata, s.props_to_remove, s.create_props)
        run.found, run.content_id = await self._current_state(req)
        run.steps = steps_to_run(run.found, req.stage)
        for step in run.steps:
            if step is ContentStage.CREATE:
                run.content_id = await self._create(req, split)
            elif step is ContentStage.UPDATE:
                await self._update(run, split)
            elif step is ContentStage.UPLOAD:
                await self._upload(run)
            elif step is ContentStage.REVIEW:
                await self._review(run)
            elif step is ContentStage.PUBLISH:
                await self._publish(run)
            run.done.append(str(step))
        if should_link(req.collections, run.steps, run.found):
            await self._link(run)

    # ------------------------------------------------------------------------------------- current state

    async def _current_state(self, req: AutoCreateRequest) -> tuple[ContentStage, str]:
        if req.origin_identifier:
            # The reference asked Neo4j whether the object is in the target already; the content API says
            # the same without a graph database.
            if await self.api.read(req.object_id, req.channel) is not None:
                return ContentStage.NA, req.origin_identifier
        results = await self.api.search_by_origin(
            req.object_id, self.settings.search_exists_fields, self.settings.search_fields
        )
        found = find_origin_match(results, req.object_id)
        stage = stage_of(found, req.pkg_version, req.artifact_url)
        return stage, found.identifier if found is not None else ""

    # ------------------------------------------------------------------------------------------- steps

    async def _create(self, req: AutoCreateRequest, split: MetadataSplit) -> str:
        content = {k: v for k, v in split.create.items() if k != "contentType"}
        if req.identifier:
            content["identifier"] = req.identifier
        else:
            content["identifier"] = req.object_id
            content["origin"] = req.object_id
            content["originData"] = {"identifier": req.object_id, "repository": req.repository or ""}
        result = await self.api.create(content, req.channel)
        return result.identifier

    async def _update(self, run: _Run, split: MetadataSplit) -> None:
        req = run.req
        current = await self._read_existing(run.content_id, req.channel)
        app_icon = ""
        if req.app_icon:
            app_icon, _ = await self._rehost(run, req.app_icon, content_mime_type=None)
        fields = dict(split.update)
        fields["versionKey"] = current.get("versionKey") or ""
        fields["appIcon"] = app_icon
        resp = await self.api.update(run.content_id, fields, req.channel)
        if not resp.ok and INVALID_VERSION_KEY in (resp.errmsg or "").lower():
            # Written meanwhile (a publish finishing, a portal edit): once more with the current key.
            current = await self._read_existing(run.content_id, req.channel)
            fields["versionKey"] = current.get("versionKey") or ""
            resp = await self.api.update(run.content_id, fields, req.channel)
        if not resp.ok:
            raise PermanentError(f"updating content {run.content_id} failed: {describe(resp)}")

    async def _read_existing(self, content_id: str, channel: str) -> dict[str, Any]:
        content = await self.api.read(content_id, channel)
        if content is None:
            raise PermanentError(f"content {content_id} does not exist")
        return content

    async def _upload(self, run: _Run) -> None:
        req, s = run.req, self.settings
        if not req.artifact_url:
            raise PermanentError(f"artifact source is not available for content {run.content_id}")
        if s.allowed_sources.restricted and not s.allowed_sources.allows(req.artifact_url):
            raise PermanentError(
                f"artifact source is not an allowed one for content {run.content_id}: "
                f"{_shown(req.artifact_url)} (allowed: {', '.join(r.entry for r in s.allowed_sources.rules)})"
            )
        cloud_url, file_name = await self._rehost(run, req.artifact_url, content_mime_type=req.mime_type)
        file_format = upload_file_format(req.mime_type, file_name)
        artifact_url = await self.api.upload(run.content_id, cloud_url, req.channel, file_format)
        h5p = req.mime_type.strip().lower() == H5P_MIME_TYPE
        await self._api_call_delay(6 if h5p else 1)
        if not artifact_url:
            await self._wait_for(
                f"the artifact of content {run.content_id}",
                lambda: self._artifact_set(run.content_id, req.channel, req.artifact_url),
            )

    async def _artifact_set(self, content_id: str, channel: str, source_url: str) -> bool:
        # The update step wrote the source's URL into artifactUrl: only another URL is the uploaded artifact.
        content = await self._read_existing(content_id, channel)
        artifact = content.get("artifactUrl")
        if not isinstance(artifact, str) or not artifact.strip() or artifact.strip() == source_url:
            return False
        return content.get("status") != "Processing"

    async def _review(self, run: _Run) -> None:
        req = run.req
        await self._while_busy(
            f"review of content {run.content_id}", lambda: self.api.review(run.content_id, req.channel)
        )
        await self._api_call_delay(1)

    async def _publish(self, run: _Run) -> None:
        req = run.req
        await self._while_busy(
            f"publish of content {run.content_id}",
            lambda: self.api.publish(run.content_id, req.last_published_by, req.channel),
        )

    # ------------------------------------------------------------------------------------------ files

    async def _rehost(self, run: _Run, url: str, content_mime_type: str | None) -> tuple[str, str]:
        """Download ``url`` (a Drive link through the Drive API) and upload it to our storage under
        ``content/<id>/artifact/``; returns (its public URL, its file name). The id is the folder as it is,
        refused when it is not a valid Sunbird identifier (``core/naming.py``): ids that differ never share
        a folder.

        ``content_mime_type`` is the content's mime type for an artifact (size cap, Drive type check); None
        for an icon (capped, never exempt, any Drive type: the reference passed "image" and skipped the
        check).
        """
        s = self.settings
        folder_id = identifier_segment(run.content_id, "content id")  # before anything is downloaded
        cap = size_cap(
            content_mime_type or "", s.max_artifact_bytes, s.bulk_upload_mime_types, s.max_bulk_upload_bytes
        )
        folder = await run.temp_dir(s.temp_dir)
        if is_drive_url(url):
            file_id = drive_file_id(url)
            if not file_id:
                raise PermanentError(f"invalid Google Drive link for content {run.content_id}: {_shown(url)}")
            meta = await self.drive.get_metadata(file_id)
            if content_mime_type is not None and not drive_mime_compatible(content_mime_type, meta.mime_type):
                raise PermanentError(
                    "Invalid File Url! File MimeType Is Not Same As Object MimeType for File Id : "
                    f"{file_id} | File MimeType is : {meta.mime_type} | "
                    f"Node MimeType is : {content_mime_type}"
                )
            if meta.size is not None and meta.size > cap:
                raise PermanentError(
                    f"Google Drive file {file_id} is {meta.size} bytes, over the {cap}-byte limit "
                    f"for mimeType {content_mime_type or 'image'}"
                )
            name = safe_file_name(slug(meta.name, fallback=slug(file_id)))
            await self.drive.download(file_id, folder / name, max_bytes=cap)
        else:
            name = file_name_from_url(url)
            await self.downloader.download(url, folder / name, max_bytes=cap)
        remote = storage_path(s.content_folder, folder_id, s.artifact_folder, name)
        return await self.storage.upload_file(folder / name, remote), name

    # ------------------------------------------------------------------------------------------ waiting

    async def _api_call_delay(self, times: int) -> None:
        delay = self.settings.api_call_delay_s * times
        if delay > 0:
            await self._sleep(delay)

    async def _wait_for(self, what: str, ready: Callable[[], Awaitable[bool]]) -> None:
        """Poll ``ready`` with backoff until it answers True or the deadline passes (then TransientError)."""
        s = self.settings
        try:
            await self._poll(ready, until=bool)
        except DeadlinePassed:
            raise TransientError(f"gave up waiting for {what} after {s.state_wait_timeout_s:g} s") from None

    async def _while_busy(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``, again with backoff while the content is Processing, until the deadline."""
        s = self.settings
        try:
            return await self._poll(call, until=lambda _: True, pending=(ContentBusy,))
        except DeadlinePassed as late:
            message = f"{what}: still processing after {s.state_wait_timeout_s:g} s ({late.last})"
            raise TransientError(message) from late.last

    async def _poll(
        self,
        probe: Callable[[], Awaitable[T]],
        until: Callable[[T], object],
        pending: tuple[type[BaseException], ...] = (),
    ) -> T:
        s = self.settings
        return await poll_until(
            probe,
            until=until,
            pending=pending,
            timeout_s=s.state_wait_timeout_s,
            backoff_s=s.state_wait_backoff_s,
            max_backoff_s=s.state_wait_max_backoff_s,
            clock=self._clock,
            sleep=self._sleep,
        )

    # ------------------------------------------------------------------------------------------ linking

    async def _link(self, run: _Run) -> None:
        report = await link_into_collections(self.api, run.content_id, run.req.collections)
        run.done.append("link")
        report.into(run.detail)

    # ------------------------------------------------------------------------------------------ failure

    async def _failed(
        self,
        data: dict[str, Any],
        run: _Run | None,
        error: BaseException,
        started: float,
        reason: str | None = None,
    ) -> Outcome:
        code = reason or (error.reason if isinstance(error, JobError) else "permanent")
        detail: dict[str, Any] = {}
        if run is not None and run.content_id:
            detail["content_id"] = run.content_id
            detail["steps"] = run.done
            marked = await self._mark_failed(run, error)
            if marked:
                detail["mark_failed_error"] = marked
        record = failed_event(data, self.settings.job_name, error, code)
        self._log("failed", data, started, reason=code, error=exception_message(error), **detail)
        return Outcome.failed(record, code, detail)

    async def _mark_failed(self, run: _Run, error: BaseException) -> str:
        """Mark the content Failed with ``importError``; returns "" or why that failed too."""
        # uploaders read importError: the error's public text (no internal addresses, HARDENING 11; the log
        # and the failed record keep the details), redacted as every text that leaves the job
        message = redact(public_text(error) if str(error) else DEFAULT_IMPORT_ERROR)[:IMPORT_ERROR_MAX]
        fields = {"status": "Failed", "importError": message}
        try:
            await self.api.system_update(run.content_id, fields, run.req.channel)
        except Exception as e:  # the event fails anyway; its first error is the one to report
            return exception_message(e)
        return ""

    def _log(self, outcome: str, data: dict[str, Any], started: float, **fields: Any) -> None:
        obj = data.get("object")
        log_event(
            log,
            "INFO",
            f"content-auto-creator {outcome}",
            job=self.settings.job_name,
            mid=data.get("mid") if isinstance(data.get("mid"), str) else None,
            object_id=obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None,
            outcome=outcome,
            duration_ms=int((self._clock() - started) * 1000),
            **fields,
        )


def _shown(url: str) -> str:
    # Without the query: signed URLs carry credentials there.
    return url.split("?", 1)[0].split("#", 1)[0]
