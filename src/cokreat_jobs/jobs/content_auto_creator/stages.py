"""The stage table: where a content stands in the target repository, and which steps remain to run.

    create -> update -> upload -> review -> publish          (na: nothing to create or publish; only link)

1. :func:`find_origin_match` picks, among the search results, the content created from this event's object
   (``originData.identifier == object.id``, case-insensitive, with a non-empty ``repository``).
2. :func:`stage_of` decides the stage from it: none -> ``create``; a non-final status (not Live / Unlisted /
   Processing) -> ``review`` when it has an artifact, else ``update``; a final one -> ``update`` when the
   event's ``pkgVersion`` is newer, else ``na``.
3. :func:`steps_to_run` runs from that stage to ``edata.stage`` (the last step to run; ``create`` means
   create + update); a requested stage already behind the found one is ignored (found ``review``, requested
   ``upload``: review and publish).
4. :func:`should_link`: link into collections when the upload step runs or the found stage is review,
   publish or na.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "FINAL_STATUSES",
    "STEP_ORDER",
    "ContentStage",
    "FoundContent",
    "find_origin_match",
    "parse_origin_data",
    "parse_pkg_version",
    "should_link",
    "stage_of",
    "steps_to_run",
]


class ContentStage(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPLOAD = "upload"
    REVIEW = "review"
    PUBLISH = "publish"
    NA = "na"


STEP_ORDER: tuple[ContentStage, ...] = (
    ContentStage.CREATE,
    ContentStage.UPDATE,
    ContentStage.UPLOAD,
    ContentStage.REVIEW,
    ContentStage.PUBLISH,
)

# A content in one of these has been published (or is being): it is only updated for a newer package.
FINAL_STATUSES = frozenset({"Live", "Unlisted", "Processing"})


@dataclass(frozen=True, slots=True)
class FoundContent:
    """The content in the target repository that was created from this event's object."""

    identifier: str
    status: str = ""
    artifact_url: str = ""
    pkg_version: float = 0.0
    origin_data: dict[str, Any] = field(default_factory=dict)


def parse_origin_data(value: Any) -> dict[str, Any]:
    """``originData`` as an object: search answers a JSON string, a read answers an object."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes) and value.strip():
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def parse_pkg_version(value: Any) -> float:
    """A ``pkgVersion`` as a number: the services answer an int, a float or a numeric string; else 0."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return 0.0
    return 0.0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def find_origin_match(results: Iterable[Mapping[str, Any]], object_id: str) -> FoundContent | None:
    """The first search result created from ``object_id``, or None (the reference crashed on none)."""
    wanted = object_id.lower()
    for item in results:
        if not isinstance(item, Mapping):
            continue
        origin = parse_origin_data(item.get("originData"))
        origin_id = _text(origin.get("identifier"))
        repository = origin.get("repository")
        if origin_id.lower() != wanted or not repository:
            continue
        identifier = _text(item.get("identifier"))
        if not identifier:
            continue
        return FoundContent(
            identifier=identifier,
            status=_text(item.get("status")),
            artifact_url=_text(item.get("artifactUrl")),
            pkg_version=parse_pkg_version(item.get("pkgVersion")),
            origin_data=origin,
        )
    return None


def stage_of(
    found: FoundContent | None, event_pkg_version: float, source_artifact_url: str = ""
) -> ContentStage:
    """The stage to start from.

    ``source_artifact_url``, when given, is the event's own ``artifactUrl``: an artifactUrl equal to it was
    written by the update step, not by an upload (which replaces it with our storage's URL), so it does not
    count as an artifact. Without this, an event that failed between update and upload would, on replay, go
    straight to review and publish the source's URL.
    """
    if found is None:
        return ContentStage.CREATE
    if found.status not in FINAL_STATUSES:
        artifact = found.artifact_url.strip()
        has_artifact = bool(artifact) and artifact != source_artifact_url.strip()
        return ContentStage.REVIEW if has_artifact else ContentStage.UPDATE
    if event_pkg_version > found.pkg_version:
        return ContentStage.UPDATE
    return ContentStage.NA


def _normalise_stage(requested: str) -> ContentStage | None:
    text = requested.strip().lower()
    if not text:
        return None
    try:
        return ContentStage(text)
    except ValueError:
        return None


def steps_to_run(found: ContentStage, requested: str = "") -> list[ContentStage]:
    """The steps to run, in order, from ``found`` up to the requested last step ``requested``."""
    if found is ContentStage.NA:
        return []
    start = STEP_ORDER.index(found)
    last = _normalise_stage(requested)
    if last is ContentStage.CREATE:
        last = ContentStage.UPDATE  # "create" carries only the create props: the update completes it
    if last is None or last is ContentStage.NA:
        end = len(STEP_ORDER) - 1
    else:
        end = STEP_ORDER.index(last)
        if end < start:  # already behind the found stage: ignored
            end = len(STEP_ORDER) - 1
    return list(STEP_ORDER[start : end + 1])


_LINK_WHEN_FOUND = frozenset({ContentStage.REVIEW, ContentStage.PUBLISH, ContentStage.NA})


def should_link(collections: Sequence[Any], steps: Sequence[ContentStage], found: ContentStage) -> bool:
    """Link into collection units when the upload step runs or the content was found under review or later."""
    if not collections:
        return False
    return ContentStage.UPLOAD in steps or found in _LINK_WHEN_FOUND
