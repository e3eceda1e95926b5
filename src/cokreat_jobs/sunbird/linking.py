"""Linking one object into collection units: the one loop both content jobs run (JOBS.md content-auto-creator
point 5, auto-creator-v2 point 8).

For each ``{identifier, unitId}`` entry, in order:

1. an entry without a collection id or a unit id is counted as invalid and passed over;
2. the collection's hierarchy is read (``GET {content}/content/v3/hierarchy/{id}?mode=edit``), once per
   collection however many of its units are named;
3. a collection that does not exist: its unit is missing, and the collection is named as missing;
4. a unit not in the collection's ``childNodes``: the unit is missing (no ``hierarchy/add``);
5. otherwise ``PATCH {content}/content/v3/hierarchy/add`` puts the object under the unit; should the service
   answer that the unit (or the collection) went away between the read and the add, the unit is missing (and
   the collection too, when the service says so).

A missing unit or collection is not a failure: the event succeeds and the outcome says so. Any other refusal
raises :class:`~cokreat_jobs.core.errors.PermanentError`; transient errors are retried by the client, then
raise :class:`~cokreat_jobs.core.errors.TransientError`. Re-linking an object already under the unit changes
nothing (``hierarchy/add`` is idempotent), so a replayed event converges.

The report, :class:`LinkReport`, goes into the outcome's detail (:meth:`LinkReport.into`):

================================ =============================================================================
key                              value
================================ =============================================================================
``linked``                       ``<collection>/<unit>`` of every link made, in request order (always written)
``unit_missing``                 ``<collection>/<unit>`` of every valid entry not linked, in request order,
                                 including the units of a missing collection (only when there is one)
``collection_missing``           the ids of the collections that do not exist, sorted, each once (only when
                                 there is one)
``invalid_collection_entries``   how many entries lacked a collection id or a unit id (only when there is one)
================================ =============================================================================

A missing collection is reported twice on purpose, the way content-auto-creator always did: its units stay
in ``unit_missing`` (so "not linked" is one list, and the ``collection-unit-missing`` note still follows from
it), and the collection itself is named in ``collection_missing``, so whoever reads the outcome can tell a
wrong or deleted collection (fix the event's collection id) from a unit removed from a collection (fix the
unit id). auto-creator-v2 used to fold a missing collection into ``unit_missing`` alone, which hid that
difference; both jobs now report it this way.

Headers are the content API's (:class:`~cokreat_jobs.sunbird.content_api.ContentApi`): the hierarchy read
and ``hierarchy/add`` send ``Content-Type`` only, no ``X-Channel-Id``, for both jobs (as the reference did).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cokreat_jobs.sunbird.content_api import ContentApi, LinkResult

__all__ = ["CollectionRef", "LinkReport", "link_into_collections"]


@dataclass(frozen=True, slots=True)
class CollectionRef:
    """One ``edata.collection`` entry: link the object under unit ``unit_id`` of collection ``identifier``."""

    identifier: str
    unit_id: str


@dataclass(slots=True)
class LinkReport:
    """What :func:`link_into_collections` did (the keys of the module docstring's table)."""

    linked: list[str] = field(default_factory=list)
    unit_missing: list[str] = field(default_factory=list)
    collection_missing: list[str] = field(default_factory=list)
    """Each missing collection once, in the order met."""
    invalid: int = 0

    def missing_collection(self, collection_id: str) -> None:
        if collection_id not in self.collection_missing:
            self.collection_missing.append(collection_id)

    def into(self, detail: dict[str, Any]) -> None:
        """Write the report into an outcome's ``detail`` (``linked`` always, the others only when set)."""
        detail["linked"] = list(self.linked)
        if self.unit_missing:
            detail["unit_missing"] = list(self.unit_missing)
        if self.collection_missing:
            detail["collection_missing"] = sorted(self.collection_missing)
        if self.invalid:
            detail["invalid_collection_entries"] = self.invalid


async def link_into_collections(api: ContentApi, child_id: str, refs: Iterable[CollectionRef]) -> LinkReport:
    """Link ``child_id`` under each unit ``refs`` names (the module docstring's steps); returns the report."""
    report = LinkReport()
    nodes_of: dict[str, list[str] | None] = {}
    for ref in refs:
        if not ref.identifier or not ref.unit_id:
            report.invalid += 1
            continue
        label = f"{ref.identifier}/{ref.unit_id}"
        if ref.identifier not in nodes_of:
            nodes_of[ref.identifier] = await api.hierarchy_child_nodes(ref.identifier)
        nodes = nodes_of[ref.identifier]
        if nodes is None:
            report.missing_collection(ref.identifier)
            report.unit_missing.append(label)
            continue
        if ref.unit_id not in nodes:
            report.unit_missing.append(label)
            continue
        result = await api.hierarchy_add(ref.identifier, ref.unit_id, [child_id])
        if result == LinkResult.ADDED:
            report.linked.append(label)
        else:
            report.unit_missing.append(label)
            if result == LinkResult.COLLECTION_MISSING:
                report.missing_collection(ref.identifier)
    return report
