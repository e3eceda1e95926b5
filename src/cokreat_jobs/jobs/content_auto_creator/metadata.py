"""Splitting the source metadata into what the create call carries and what the update call carries."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MetadataSplit", "split_metadata"]


@dataclass(frozen=True, slots=True)
class MetadataSplit:
    create: dict[str, Any]
    update: dict[str, Any]


def split_metadata(
    metadata: Mapping[str, Any], removed: Collection[str], create_props: Collection[str]
) -> MetadataSplit:
    """Drop the system fields (``content_props_to_removed``); ``content_create_props`` go to create, the
    rest to update. Key order is kept, so requests read like the event."""
    removed_set = set(removed)
    create_set = set(create_props)
    create: dict[str, Any] = {}
    update: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in removed_set:
            continue
        (create if key in create_set else update)[key] = value
    return MetadataSplit(create, update)
