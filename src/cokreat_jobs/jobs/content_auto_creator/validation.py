"""Which events content-auto-creator takes, and why it skips the others (JOBS.md step 1).

The checks run in the reference's order and the first that fails names the skip reason:

====================== ============================================================================
reason                 when
====================== ============================================================================
iteration-exceeded     ``edata.iteration`` (default 1) > ``maxIteration``
action-not-allowed     ``edata.action`` not in ``actions`` [auto-create]
object-id-blank        ``object.id`` blank
object-id-invalid      ``object.id`` not a valid Sunbird identifier (``core/naming.py``; e.g. ``..``)
channel-blank          ``context.channel`` blank
object-type-not-allowed ``edata.objectType`` not in ``allowed_object_types`` [Content]
metadata-empty         ``edata.metadata`` absent or ``{}``
no-source              neither ``edata.repository`` nor a non-blank ``edata.metadata.artifactUrl``
stage-not-allowed      ``edata.stage`` (trimmed, case-insensitive) not empty and not an allowed stage
mandatory-fields-missing a ``content_mandatory_fields`` key absent (or null) in the metadata
====================== ============================================================================

Then, on the request (:func:`check_identifiers`): ``identifier-invalid`` when ``edata.identifier``, and
``origin-identifier-invalid`` when ``edata.originData.identifier``, is given and is not a valid identifier.
Such ids would name the content's storage folder and request paths (``..`` reads ``GET /content/v4/``).

A field of the wrong type is not a skip: :class:`InvalidField` is raised, naming it, and the event fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cokreat_jobs.core.event import Event
from cokreat_jobs.core.naming import identifier_problem
from cokreat_jobs.jobs.content_auto_creator.request import AutoCreateRequest
from cokreat_jobs.jobs.content_auto_creator.settings import Settings

__all__ = ["Skip", "check_event", "check_identifiers"]


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def check_event(event: Event, settings: Settings) -> Skip | None:
    """None when the event is to be processed, else why it is skipped. Raises InvalidField."""
    iteration = event.get_int("edata.iteration", 1)
    if iteration > settings.max_iteration:
        return Skip("iteration-exceeded", {"iteration": iteration, "maxIteration": settings.max_iteration})
    action = event.get_str("edata.action")
    if action not in settings.actions:
        return Skip("action-not-allowed", {"action": action})
    object_id = event.get_str("object.id").strip()
    if not object_id:
        return Skip("object-id-blank")
    problem = identifier_problem(object_id)
    if problem is not None:
        return Skip("object-id-invalid", {"problem": problem})
    if not event.get_str("context.channel").strip():
        return Skip("channel-blank")
    object_type = event.get_str("edata.objectType")
    if object_type not in settings.allowed_object_types:
        return Skip("object-type-not-allowed", {"objectType": object_type})
    metadata = event.get_dict("edata.metadata")
    if not metadata:
        return Skip("metadata-empty")
    event.get_str("edata.repository")  # read for its type: a repository that is not a string fails the event
    artifact_url = event.get_str("edata.metadata.artifactUrl")
    if not event.has("edata.repository") and not artifact_url.strip():
        return Skip("no-source")
    stage = event.get_str("edata.stage").strip().lower()
    if stage and stage not in settings.allowed_stages:
        return Skip("stage-not-allowed", {"stage": stage, "allowed": list(settings.allowed_stages)})
    missing = [f for f in settings.mandatory_fields if metadata.get(f) is None]
    if missing:
        return Skip("mandatory-fields-missing", {"missing": missing})
    return None


def check_identifiers(req: AutoCreateRequest) -> Skip | None:
    """None when the request's other ids (``edata.identifier``, ``edata.originData.identifier``) are absent
    or valid Sunbird identifiers, else why the event is skipped."""
    for reason, value in (
        ("identifier-invalid", req.identifier),
        ("origin-identifier-invalid", req.origin_identifier),
    ):
        problem = identifier_problem(value) if value else None
        if problem is not None:
            return Skip(reason, {"problem": problem})
    return None
