"""auto-creator-v2's second operator (JOBS.md auto-creator-v2, point 8): link an imported object into each
collection unit its event names.

The import stage hands on `{identifier, parents: edata.collection, event, detail}` for an object it
stored; this stage, keyed by identifier, links it as content-auto-creator does (`hierarchy/add`,
`Content-Type` the only header). Instead of the reference's fixed 5 s sleep it waits until
`GET {content}/content/v4/read/{id}` answers, with backoff and a deadline; `auto_creator_v2.link_delay_ms`
(default 0) is slept first if above 0 (the reference's pacing, as the benchmark's reference runs it).

A failure here sends the *original import event* to the failed topic: replaying it imports again (both store
writes are idempotent) and links again (`hierarchy/add` of a child already there changes nothing).

The linking loop and its report (`linked`, `unit_missing`, `collection_missing`, `invalid_collection_entries`)
are both jobs' one routine, :func:`cokreat_jobs.sunbird.linking.link_into_collections`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import CountingProcessor, Metrics
from cokreat_jobs.core.errors import JobError, PermanentError, TransientError
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.logs import get_logger, log_event
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.response import is_5xx_or_429
from cokreat_jobs.core.wait import DeadlinePassed, poll_until
from cokreat_jobs.jobs.auto_creator_v2.settings import Settings
from cokreat_jobs.sunbird.content_api import ContentApi, describe
from cokreat_jobs.sunbird.linking import CollectionRef, link_into_collections

__all__ = ["CollectionLinker", "link_request"]

log = get_logger("cokreat_jobs.auto_creator_v2")
JSON = "application/json"


def link_request(
    identifier: str, parents: tuple[CollectionRef, ...], event: dict[str, Any], detail: dict[str, Any]
) -> dict[str, Any]:
    """What the import stage hands on to this one."""
    return {
        "identifier": identifier,
        "parents": [{"identifier": p.identifier, "unitId": p.unit_id} for p in parents],
        "event": event,
        "detail": detail,
    }


class CollectionLinker(CountingProcessor):
    def __init__(
        self,
        settings: Settings,
        content: ServiceClient,
        metrics: Metrics | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.content = content
        self.api = ContentApi(content, content, on_retry=self.on_retry)
        self.metrics = metrics
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_config(cls, cfg: JobConfig, metrics: Metrics | None = None) -> CollectionLinker:
        s = Settings.from_config(cfg)
        return cls(s, ServiceClient.from_config("content-service", s.content_base_url, cfg), metrics)

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        return [self.content.close]

    async def process(self, request: dict[str, Any]) -> Outcome:
        started = self._clock()
        identifier = str(request.get("identifier") or "")
        event: dict[str, Any] = request["event"] if isinstance(request.get("event"), dict) else {}
        detail: dict[str, Any] = dict(request.get("detail") or {})
        parents = tuple(
            CollectionRef(str(p.get("identifier") or ""), str(p.get("unitId") or ""))
            for p in request.get("parents") or []
            if isinstance(p, dict)
        )
        try:
            await self.link(identifier, parents, detail)
        except Exception as e:
            self.count("error")
            reason = e.reason if isinstance(e, JobError) else "permanent"
            if not isinstance(e, JobError):
                log_event(log, "ERROR", "unexpected error", identifier=identifier, exc_info=e)
            self._log("failed", identifier, started, reason=reason, error=str(e)[:500])
            record = failed_event(event, self.settings.job_name, e, reason)
            return Outcome.failed(record, reason, {**detail, "error": str(e)[:500]})
        note = "collection-unit-missing" if detail.get("unit_missing") else ""
        self._log("success", identifier, started, children=detail.get("children"), note=note or None)
        return Outcome.success(note, detail)

    def _log(self, outcome: str, identifier: str, started: float, **fields: Any) -> None:
        log_event(
            log,
            "INFO" if outcome != "failed" else "WARNING",
            f"event {outcome}",
            job=self.settings.job_name,
            stage="link-collection",
            object_id=identifier or None,
            outcome=outcome,
            duration_ms=int((self._clock() - started) * 1000),
            **fields,
        )

    async def link(self, identifier: str, parents: tuple[CollectionRef, ...], detail: dict[str, Any]) -> None:
        s = self.settings
        if s.link_delay_ms > 0:
            await self._sleep(s.link_delay_ms / 1000.0)
        await self._wait_readable(identifier)
        report = await link_into_collections(self.api, identifier, parents)
        report.into(detail)

    async def _readable(self, identifier: str) -> bool:
        resp = await self.content.request(
            "GET",
            f"/content/v4/read/{quote(identifier, safe='')}",
            headers={"Content-Type": JSON},
            is_transient=is_5xx_or_429,
            on_retry=self.on_retry,
            label="GET /content/v4/read/{id}",
        )
        if resp.ok:
            return True
        if resp.status == 404:
            return False
        raise PermanentError(f"reading {identifier} before linking failed: {describe(resp)}")

    async def _wait_readable(self, identifier: str) -> None:
        s = self.settings
        try:
            await poll_until(
                lambda: self._readable(identifier),
                timeout_s=s.link_wait_timeout_s,
                backoff_s=s.link_wait_backoff_s,
                max_backoff_s=s.link_wait_max_backoff_s,
                clock=self._clock,
                sleep=self._sleep,
            )
        except DeadlinePassed:
            raise TransientError(
                f"{identifier} was not readable through the content service after {s.link_wait_timeout_s:g} s"
            ) from None
