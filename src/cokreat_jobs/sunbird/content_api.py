"""Typed calls to the search and content services, with the headers and bodies the reference sent.

============ ============================================ ===================================================
call         request                                      headers
============ ============================================ ===================================================
search       ``POST {search}/v3/search``                  Content-Type
read         ``GET {content}/content/v4/read/{id}?mode=edit`` X-Channel-Id, Content-Type
create       ``POST {content}/content/v4/create``         X-Channel-Id, Content-Type
update       ``PATCH {content}/content/v4/update/{id}``   X-Channel-Id, Content-Type
upload       ``POST {content}/content/v4/upload/{id}``    X-Channel-Id (multipart ``fileUrl``)
review       ``POST {content}/content/v4/review/{id}``    X-Channel-Id, Content-Type
publish      ``POST {content}/content/v4/publish/{id}``   X-Channel-Id, Content-Type
system/update ``PATCH {content}/content/v4/system/update/{id}`` X-Channel-Id, Content-Type
hierarchy    ``GET {content}/content/v3/hierarchy/{id}?mode=edit`` Content-Type
hierarchy add ``PATCH {content}/content/v3/hierarchy/add`` Content-Type
============ ============================================ ===================================================

No auth header. Answers are classified here, so the steps read results, never envelopes:

- 429 and every 5xx (and connection errors, timeouts) are transient: retried by the client with backoff, then
  :class:`TransientError`. content-service answers its own internal timeout as a 500, hence all 5xx.
- 200 with ``responseCode: OK`` is success.
- Anything else is a :class:`PermanentError` whose message quotes the service's ``err`` and ``errmsg`` (it
  becomes the content's ``importError``), except the answers a step handles: a read or hierarchy of an
  unknown id (None), "Object already exists with identifier" on create (continue with it), a unit missing
  from a collection, and :class:`ContentBusy` (``ERR_NODE_ACCESS_DENIED`` while the content is Processing),
  which the processor waits out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.core.response import HttpResponse, is_5xx_or_429

__all__ = [
    "ALREADY_EXISTS",
    "ContentApi",
    "ContentBusy",
    "CreateResult",
    "LinkResult",
    "describe",
    "is_transient",
]

ALREADY_EXISTS = "Object already exists with identifier"
JSON = "application/json"

is_transient = is_5xx_or_429


class ContentBusy(PermanentError):
    """The content is Processing (a publish in flight): review and publish are refused until it is done."""


@dataclass(frozen=True, slots=True)
class CreateResult:
    identifier: str
    existed: bool  # "Object already exists with identifier": created by an earlier attempt


class LinkResult:
    ADDED = "added"
    UNIT_MISSING = "unit-missing"
    COLLECTION_MISSING = "collection-missing"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _messages(resp: HttpResponse) -> str:
    messages = resp.result.get("messages")
    if isinstance(messages, list) and messages:
        return " | " + "; ".join(str(m) for m in messages[:10])
    return ""


def describe(resp: HttpResponse) -> str:
    """``HTTP <status> <err>: <errmsg> | <messages>``, or the start of a non-JSON body."""
    if resp.json is None:
        snippet = " ".join(resp.text.split())[:160]
        return f"HTTP {resp.status} (not JSON: {snippet})" if snippet else f"HTTP {resp.status}"
    err = resp.err or resp.response_code or ""
    errmsg = resp.errmsg or ""
    detail = ": ".join(p for p in (err, errmsg) if p)
    return f"HTTP {resp.status} {detail}{_messages(resp)}".strip()


def _says(resp: HttpResponse, text: str) -> bool:
    return text.lower() in (resp.errmsg or "").lower() or text.lower() in resp.text.lower()


class ContentApi:
    """The content-auto-creator's calls; ``on_retry(attempt, reason)`` is told of every retried attempt."""

    def __init__(
        self,
        search: ServiceClient,
        content: ServiceClient,
        on_retry: Callable[[int, str], None] | None = None,
    ) -> None:
        self._search = search
        self._content = content
        self.on_retry = on_retry

    async def close(self) -> None:
        await self._search.close()
        await self._content.close()

    async def _call(
        self, client: ServiceClient, method: str, path: str, label: str, **kw: Any
    ) -> HttpResponse:
        return await client.request(
            method, path, is_transient=is_transient, on_retry=self.on_retry, label=label, **kw
        )

    @staticmethod
    def _channel_json(channel: str) -> dict[str, str]:
        return {"X-Channel-Id": channel, "Content-Type": JSON}

    # -- search and read

    async def search_by_origin(
        self, object_id: str, exists: Sequence[str], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Contents of any status whose ``origin`` is ``object_id``."""
        body = {
            "request": {
                "filters": {"objectType": "Content", "status": [], "origin": object_id},
                "exists": list(exists),
                "fields": list(fields),
            }
        }
        resp = await self._call(
            self._search, "POST", "/v3/search", "POST /v3/search", json=body, headers={"Content-Type": JSON}
        )
        if not resp.ok:
            raise PermanentError(f"search for contents of origin {object_id} failed: {describe(resp)}")
        content = resp.result.get("content")
        return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []

    async def read(self, content_id: str, channel: str) -> dict[str, Any] | None:
        """The content (``mode=edit``: its draft image when there is one), or None when it does not exist."""
        resp = await self._call(
            self._content,
            "GET",
            f"/content/v4/read/{_segment(content_id)}",
            "GET /content/v4/read/{id}",
            params={"mode": "edit"},
            headers=self._channel_json(channel),
        )
        if resp.status == 404:
            return None
        if not resp.ok:
            raise PermanentError(f"reading content {content_id} failed: {describe(resp)}")
        content = resp.result.get("content")
        found = content.get("identifier") if isinstance(content, dict) else None
        if not isinstance(found, str) or found.removesuffix(".img").lower() != content_id.lower():
            raise PermanentError(f"reading content {content_id} answered another content ({found!r})")
        assert isinstance(content, dict)
        return content

    # -- writes

    async def create(self, content: Mapping[str, Any], channel: str) -> CreateResult:
        sent_id = str(content.get("identifier") or "")
        resp = await self._call(
            self._content,
            "POST",
            "/content/v4/create",
            "POST /content/v4/create",
            json={"request": {"content": dict(content)}},
            headers=self._channel_json(channel),
        )
        if resp.ok:
            identifier = resp.result.get("identifier")
            return CreateResult(identifier if isinstance(identifier, str) and identifier else sent_id, False)
        if _says(resp, ALREADY_EXISTS) and sent_id:
            # Created by an earlier attempt whose answer was lost, or by a replay the search index had not
            # seen yet: the same content, continue with it.
            return CreateResult(sent_id, True)
        raise PermanentError(f"creating content {sent_id} failed: {describe(resp)}")

    async def update(self, content_id: str, content: Mapping[str, Any], channel: str) -> HttpResponse:
        """The raw answer: the caller tells an outdated versionKey apart (and reads again)."""
        return await self._call(
            self._content,
            "PATCH",
            f"/content/v4/update/{_segment(content_id)}",
            "PATCH /content/v4/update/{id}",
            json={"request": {"content": dict(content)}},
            headers=self._channel_json(channel),
        )

    async def upload(
        self, content_id: str, file_url: str, channel: str, file_format: str | None = None
    ) -> str:
        """Points the content at ``file_url``; returns the artifactUrl the service answers ("" if none)."""
        params = {"validation": "false"}
        if file_format:
            params["fileFormat"] = file_format
        resp = await self._call(
            self._content,
            "POST",
            f"/content/v4/upload/{_segment(content_id)}",
            "POST /content/v4/upload/{id}",
            params=params,
            multipart={"fileUrl": file_url},
            headers={"X-Channel-Id": channel},
        )
        if not resp.ok:
            raise PermanentError(f"uploading the artifact of content {content_id} failed: {describe(resp)}")
        artifact = resp.result.get("artifactUrl") or resp.result.get("content_url")
        return artifact if isinstance(artifact, str) else ""

    def _busy_or_fail(self, resp: HttpResponse, what: str, content_id: str) -> None:
        if resp.err == "ERR_NODE_ACCESS_DENIED":
            raise ContentBusy(f"{what} content {content_id} refused while it is processed: {describe(resp)}")
        raise PermanentError(f"{what} content {content_id} failed: {describe(resp)}")

    async def review(self, content_id: str, channel: str) -> None:
        resp = await self._call(
            self._content,
            "POST",
            f"/content/v4/review/{_segment(content_id)}",
            "POST /content/v4/review/{id}",
            json={"request": {"content": {}}},
            headers=self._channel_json(channel),
        )
        if not resp.ok:
            self._busy_or_fail(resp, "sending for review", content_id)

    async def publish(self, content_id: str, last_published_by: str, channel: str) -> str:
        """Queues the publish; returns its ``publishStatus`` (required non-empty, as in the reference)."""
        resp = await self._call(
            self._content,
            "POST",
            f"/content/v4/publish/{_segment(content_id)}",
            "POST /content/v4/publish/{id}",
            json={"request": {"content": {"lastPublishedBy": last_published_by}}},
            headers=self._channel_json(channel),
        )
        if not resp.ok:
            self._busy_or_fail(resp, "publishing", content_id)
        status = resp.result.get("publishStatus")
        if not isinstance(status, str) or not status.strip():
            raise PermanentError(f"publishing content {content_id}: the answer has no publishStatus")
        return status

    async def system_update(self, content_id: str, fields: Mapping[str, Any], channel: str) -> None:
        resp = await self._call(
            self._content,
            "PATCH",
            f"/content/v4/system/update/{_segment(content_id)}",
            "PATCH /content/v4/system/update/{id}",
            json={"request": {"content": dict(fields)}},
            headers=self._channel_json(channel),
        )
        if not resp.ok:
            raise PermanentError(f"system update of content {content_id} failed: {describe(resp)}")

    # -- collections

    async def hierarchy_child_nodes(self, collection_id: str) -> list[str] | None:
        """The ids of every descendant of the collection (units and leaves); None when it is unknown."""
        resp = await self._call(
            self._content,
            "GET",
            f"/content/v3/hierarchy/{_segment(collection_id)}",
            "GET /content/v3/hierarchy/{id}",
            params={"mode": "edit"},
            headers={"Content-Type": JSON},
        )
        if resp.status == 404:
            return None
        if not resp.ok:
            raise PermanentError(
                f"reading the hierarchy of collection {collection_id} failed: {describe(resp)}"
            )
        content = resp.result.get("content")
        nodes = content.get("childNodes") if isinstance(content, dict) else None
        return [n for n in nodes if isinstance(n, str)] if isinstance(nodes, list) else []

    async def hierarchy_add(self, collection_id: str, unit_id: str, children: Sequence[str]) -> str:
        """Links ``children`` under the unit; a :class:`LinkResult` value."""
        body = {"request": {"rootId": collection_id, "unitId": unit_id, "children": list(children)}}
        resp = await self._call(
            self._content,
            "PATCH",
            "/content/v3/hierarchy/add",
            "PATCH /content/v3/hierarchy/add",
            json=body,
            headers={"Content-Type": JSON},
        )
        if resp.ok:
            return LinkResult.ADDED
        if resp.status == 404:
            # Our hierarchy read saw the unit; a 404 now means it (or the collection) went away meanwhile.
            if resp.err == "RESOURCE_NOT_FOUND" or _says(resp, "unitId"):
                return LinkResult.UNIT_MISSING
            return LinkResult.COLLECTION_MISSING
        raise PermanentError(
            f"linking into unit {unit_id} of collection {collection_id} failed: {describe(resp)}"
        )
