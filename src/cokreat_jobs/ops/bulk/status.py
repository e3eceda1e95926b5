"""`cokreat-jobs import status PROCESS_ID`: where the contents of one import stand, found through search.

Search is asked for `filters: {processId, status: []}` page by page (`offset`, `limit`). The index holds a
Live content's pending image as a second hit with the same identifier: each identifier is counted once, by
the image's state (the hit that is not Live or Unlisted, when there are two).

A content is final for its stage when it is Live or Failed (whatever the stage), Review after `review`, or
Draft after `upload` (with an artifact) or `create`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Content",
    "SearchError",
    "aggregate",
    "counts",
    "fetch_hits",
    "is_final",
    "report",
    "status_table",
]

PAGE_SIZE = 100
FIELDS = ["identifier", "name", "status", "importError", "artifactUrl", "objectType", "processId"]
LIVE_LIKE = frozenset({"Live", "Unlisted"})
STAGES = ("create", "upload", "review", "publish")


class SearchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Content:
    identifier: str
    name: str | None
    status: str | None
    import_error: str | None
    artifact_url: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "name": self.name,
            "status": self.status,
            "importError": self.import_error,
        }


def _post(url: str, body: dict[str, Any], headers: Mapping[str, str], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            answer = json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise SearchError(
            f"{url} answered {exc.code}: {exc.read()[:300].decode('utf-8', 'replace')}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise SearchError(f"{url}: {exc}") from exc
    return answer if isinstance(answer, dict) else {}


def fetch_hits(
    search_base: str,
    process_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    page_size: int = PAGE_SIZE,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every search hit of the process, page after page."""
    url = search_base.rstrip("/") + "/v3/search"
    hits: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = {
            "request": {
                "filters": {"processId": process_id, "status": []},
                "fields": FIELDS,
                "offset": offset,
                "limit": page_size,
            }
        }
        result = _post(url, body, headers or {}, timeout).get("result") or {}
        page: list[dict[str, Any]] = []
        for key, value in result.items():
            if key != "count" and isinstance(value, list):
                page += [h for h in value if isinstance(h, dict)]
        hits += page
        offset += page_size
        total = result.get("count")
        if not page or not isinstance(total, int) or offset >= total:
            return hits


def aggregate(hits: Iterable[Mapping[str, Any]]) -> list[Content]:
    """One Content per identifier, in first-seen order; an image's hit wins over its Live original."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for hit in hits:
        identifier = str(hit.get("identifier") or "")
        if identifier.endswith(".img"):
            identifier = identifier[: -len(".img")]
        if not identifier:
            continue
        current = chosen.get(identifier)
        is_image = str(hit.get("objectType") or "").endswith("Image") or str(
            hit.get("identifier", "")
        ).endswith(".img")
        if (
            current is None
            or is_image
            or (current.get("status") in LIVE_LIKE and hit.get("status") not in LIVE_LIKE)
        ):
            chosen[identifier] = {**hit, "identifier": identifier}
    out = []
    for identifier, hit in chosen.items():
        error = hit.get("importError")
        out.append(
            Content(
                identifier=identifier,
                name=hit.get("name") if isinstance(hit.get("name"), str) else None,
                status=hit.get("status") if isinstance(hit.get("status"), str) else None,
                import_error=error if isinstance(error, str) and error else None,
                artifact_url=hit.get("artifactUrl") if isinstance(hit.get("artifactUrl"), str) else None,
            )
        )
    return out


def counts(contents: Iterable[Content]) -> dict[str, int]:
    return dict(sorted(Counter(c.status or "unknown" for c in contents).items()))


def is_final(content: Content, stage: str = "publish") -> bool:
    status = content.status
    if status in ("Live", "Failed"):
        return True
    stage = (stage or "publish").strip().lower()
    if stage == "review":
        return status == "Review"
    if stage == "upload":
        return status == "Draft" and bool(content.artifact_url)
    if stage == "create":
        return status == "Draft"
    return False


def report(process_id: str, contents: list[Content]) -> dict[str, Any]:
    """The `--json` document."""
    return {
        "processId": process_id,
        "contents": [c.as_json() for c in contents],
        "counts": counts(contents),
    }


def done(contents: list[Content], stage: str, expect: int | None) -> bool:
    if expect is not None and len(contents) < expect:
        return False
    return bool(contents) and all(is_final(c, stage) for c in contents)


def watch(
    search_base: str,
    process_id: str,
    *,
    stage: str = "publish",
    expect: int | None = None,
    timeout: float = 600.0,
    interval: float = 2.0,
    headers: Mapping[str, str] | None = None,
    on_update: Any = None,
) -> tuple[list[Content], bool]:
    """Poll until every content is final for its stage (and `expect` are found) or the timeout; returns the
    last state and whether it is done. A failed search call is retried until the timeout."""
    deadline = time.monotonic() + timeout
    contents: list[Content] = []
    while True:
        try:
            contents = aggregate(fetch_hits(search_base, process_id, headers=headers))
        except SearchError:
            if time.monotonic() >= deadline:
                raise
        else:
            if on_update is not None:
                on_update(contents)
            if done(contents, stage, expect):
                return contents, True
        if time.monotonic() >= deadline:
            return contents, False
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def status_table(process_id: str, contents: list[Content], expect: int | None) -> Any:
    """Where an import stands as a rich table: one row per content, the counts per status below."""
    from rich.table import Table

    table = Table(title=f"import {process_id}")
    for col in ("identifier", "name", "status", "importError"):
        table.add_column(col, overflow="fold")
    for c in contents:
        table.add_row(c.identifier, c.name or "", c.status or "", c.import_error or "")
    parts = [f"{k}: {v}" for k, v in counts(contents).items()]
    if expect is not None:
        parts.append(f"not found yet: {max(0, expect - len(contents))}")
    table.caption = ", ".join(parts) or "no content found"
    return table
