"""One auto-create event, read and type-checked once into a value the steps use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cokreat_jobs.core.errors import InvalidField
from cokreat_jobs.core.event import Event
from cokreat_jobs.core.naming import identifier_problem
from cokreat_jobs.core.values import type_name
from cokreat_jobs.jobs.content_auto_creator.stages import parse_origin_data
from cokreat_jobs.sunbird.linking import CollectionRef

__all__ = ["AutoCreateRequest", "CollectionRef"]


def _pkg_version(event: Event) -> float:
    value = event.get("edata.metadata.pkgVersion")
    if value is None:
        return 0.0
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip() or 0)
        except ValueError:
            pass
    # "NaN", "inf" and "1e400" are strings float() takes: NaN is never newer than anything, infinity always is
    if number is not None and math.isfinite(number):
        return number
    raise InvalidField("edata.metadata.pkgVersion", "a finite number", type_name(value))


def _collections(event: Event) -> tuple[CollectionRef, ...]:
    refs = []
    for i, item in enumerate(event.get_list("edata.collection")):
        if item is None or item == {}:
            continue  # the reference's default was List(Map()): an empty entry is no entry
        if not isinstance(item, dict):
            raise InvalidField(f"edata.collection[{i}]", "an object", type_name(item))
        values = []
        for key in ("identifier", "unitId"):
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidField(f"edata.collection[{i}].{key}", "a string", type_name(value))
            value = (value or "").strip()
            values.append(value if identifier_problem(value) is None else "")
        refs.append(CollectionRef(values[0], values[1]))
    return tuple(refs)


def _origin_data(event: Event) -> dict[str, Any]:
    value = event.get("edata.originData")
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return parse_origin_data(value)  # some producers send it as the search API does: a JSON string
    raise InvalidField("edata.originData", "an object", type_name(value))


@dataclass(frozen=True, slots=True)
class AutoCreateRequest:
    """The fields of a validated event that the steps read."""

    raw: dict[str, Any]
    mid: str
    object_id: str
    channel: str
    repository: str | None
    metadata: dict[str, Any]
    mime_type: str
    artifact_url: str
    app_icon: str
    last_published_by: str
    pkg_version: float
    stage: str  # trimmed, lowercase; "" = run to publish
    identifier: str  # edata.identifier: create the content under this id, with no origin fields
    origin_data: dict[str, Any] = field(default_factory=dict)
    collections: tuple[CollectionRef, ...] = ()

    @classmethod
    def from_event(cls, event: Event) -> AutoCreateRequest:
        """Raises InvalidField for a field of the wrong type."""
        repository = event.get_str("edata.repository", "") if event.has("edata.repository") else None
        return cls(
            raw=event.raw,
            mid=str(event.get("mid", "")),
            object_id=event.get_str("object.id").strip(),
            channel=event.get_str("context.channel").strip(),
            repository=repository,
            metadata=event.get_dict("edata.metadata"),
            mime_type=event.get_str("edata.metadata.mimeType"),
            artifact_url=event.get_str("edata.metadata.artifactUrl").strip(),
            app_icon=event.get_str("edata.metadata.appIcon").strip(),
            last_published_by=event.get_str("edata.metadata.lastPublishedBy"),
            pkg_version=_pkg_version(event),
            stage=event.get_str("edata.stage").strip().lower(),
            identifier=event.get_str("edata.identifier").strip(),
            origin_data=_origin_data(event),
            collections=_collections(event),
        )

    @property
    def origin_identifier(self) -> str:
        value = self.origin_data.get("identifier")
        return value.strip() if isinstance(value, str) else ""
