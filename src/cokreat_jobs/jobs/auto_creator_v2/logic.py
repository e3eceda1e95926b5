"""auto-creator-v2's pure logic (JOBS.md points 1-7): validation, metadata merge and split, enrichment,
variants, children selection and hierarchy enrichment, store values. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cokreat_jobs.core.event import Event
from cokreat_jobs.core.naming import identifier_problem
from cokreat_jobs.core.values import compact_json
from cokreat_jobs.jobs.auto_creator_v2.settings import Settings
from cokreat_jobs.sunbird.definitions import Definition
from cokreat_jobs.sunbird.linking import CollectionRef

__all__ = [
    "VARIANT_KEYS",
    "ImportRequest",
    "Skip",
    "Split",
    "check_event",
    "dedupe",
    "enrich",
    "enrich_hierarchy",
    "external_values",
    "graph_properties",
    "merge_metadata",
    "origin_data",
    "parse_variants",
    "relativise",
    "select_children",
    "split_metadata",
]

ACTION = "auto-create"
VARIANT_KEYS = ("full", "online", "spine")


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportRequest:
    identifier: str
    object_type: str
    repository: str
    download_url: str
    metadata: dict[str, Any]
    collections: tuple[CollectionRef, ...]
    process_id: str | None
    channel: str

    @classmethod
    def from_event(cls, event: Event) -> ImportRequest:
        meta = event.get_dict("edata.metadata")
        refs = []
        for i, entry in enumerate(event.get_list("edata.collection")):
            if isinstance(entry, dict):
                ident, unit = entry.get("identifier"), entry.get("unitId")
                refs.append(CollectionRef(str(ident or "").strip(), str(unit or "").strip()))
            elif entry is not None:
                from cokreat_jobs.core.errors import InvalidField

                raise InvalidField(f"edata.collection.{i}", "an object", type(entry).__name__)
        process_id = meta.get("processId")
        return cls(
            identifier=event.get_str("edata.metadata.identifier").strip(),
            object_type=event.get_str("edata.objectType").strip(),
            repository=event.get_str("edata.repository").strip(),
            download_url=event.get_str("edata.metadata.downloadUrl").strip(),
            metadata=meta,
            collections=tuple(refs),
            process_id=process_id if isinstance(process_id, str) and process_id.strip() else None,
            channel=event.get_str("context.channel"),
        )


def check_event(event: Event, settings: Settings) -> Skip | None:
    """JOBS.md auto-creator-v2 point 1; None when the event is to be processed.

    Wrong types raise InvalidField."""
    action = event.get_str("edata.action")
    if action != ACTION:
        return Skip("invalid-action", {"action": action})
    identifier = event.get_str("edata.metadata.identifier")
    if not identifier.strip():
        return Skip("missing-identifier")
    problem = identifier_problem(identifier.strip())
    if problem is not None:  # it names storage keys and request paths (core/naming.py)
        return Skip("invalid-identifier", {"problem": problem})
    object_type = event.get_str("edata.objectType")
    if object_type not in settings.object_types:
        return Skip("invalid-object-type", {"objectType": object_type})
    if not event.has("edata.repository"):
        return Skip("missing-repository")
    event.get_str("edata.repository")  # type check
    if not event.get_dict("edata.metadata"):
        return Skip("empty-metadata")
    download_url = event.get_str("edata.metadata.downloadUrl").strip()
    if not download_url.lower().endswith(".ecar"):
        return Skip("not-an-ecar", {"downloadUrl": download_url[:200]})
    return None


def origin_data(identifier: str, repository: str) -> str:
    """The string the reference stored, byte for byte: ``{"identifier": "<id>","repository":"<url>"}`` (its
    spacing kept; the reference interpolated the values unescaped, here they are JSON-escaped, so a quote in
    a URL cannot break the JSON)."""
    ident = json.dumps(identifier, ensure_ascii=False)
    repo = json.dumps(repository, ensure_ascii=False)
    return f'{{"identifier": {ident},"repository":{repo}}}'


def merge_metadata(
    item: Mapping[str, Any], source: Mapping[str, Any], identifier: str, repository: str
) -> dict[str, Any]:
    """Manifest item, then source metadata (later wins), then ``origin`` and ``originData``."""
    merged = {**item, **source}
    merged["identifier"] = identifier
    merged["origin"] = identifier
    merged["originData"] = origin_data(identifier, repository)
    return merged


@dataclass(frozen=True, slots=True)
class Split:
    graph: dict[str, Any]
    external: dict[str, Any]


def split_metadata(
    metadata: Mapping[str, Any], definition: Definition, hierarchy: Mapping[str, Any] | None = None
) -> Split:
    """Graph metadata (not relations, not external props) and external data (+ ``hierarchy`` when given)."""
    relations = set(definition.relations)
    external_props = set(definition.external_props)
    graph = {k: v for k, v in metadata.items() if k not in relations and k not in external_props}
    external = {k: v for k, v in metadata.items() if k in external_props}
    if hierarchy is not None:
        external["hierarchy"] = dict(hierarchy)
    return Split(graph, external)


def enrich(
    graph: dict[str, Any], identifier: str, object_type: str, process_id: str | None
) -> dict[str, Any]:
    out = dict(graph)
    out["IL_UNIQUE_ID"] = identifier
    out["IL_FUNC_OBJECT_TYPE"] = object_type
    out["IL_SYS_NODE_TYPE"] = "DATA_NODE"
    if process_id:
        out["processId"] = process_id
    return out


# ------------------------------------------------------------------------------------------------ variants


def parse_variants(value: Any) -> dict[str, str]:
    """``{name: url}`` from any of the three forms: ``{name: {ecarUrl, size}}``, ``{name: url}``, or either as
    a JSON string. Unknown or empty entries are dropped."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    for name, entry in value.items():
        url = entry.get("ecarUrl") if isinstance(entry, dict) else entry
        if isinstance(url, str) and url.strip():
            out[str(name)] = url.strip()
    return out


# ------------------------------------------------------------------------------------------------ children


def select_children(
    root: Mapping[str, Any], settings: Settings, accepted: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The hierarchy nodes to import: every non-expandable, graph-enabled node at any depth under expandable
    ``visibility: Parent`` nodes, limited to ``accepted`` when not empty; in hierarchy order, once each."""
    allowed = {a.strip().lower() for a in accepted or () if isinstance(a, str) and a.strip()}
    expandable = set(settings.expandable_objects)
    leaf_types = set(settings.non_expandable_objects) & set(settings.graph_enabled_objecttypes)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    stack: list[Any] = list(reversed(_children(root)))
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        object_type = str(node.get("objectType") or "")
        if object_type in expandable:
            if node.get("visibility") == "Parent":
                stack.extend(reversed(_children(node)))
            continue
        ident = node.get("identifier")
        if object_type not in leaf_types or not isinstance(ident, str) or not ident.strip():
            continue
        if allowed and ident.strip().lower() not in allowed:
            continue
        if ident in seen:
            continue
        seen.add(ident)
        out.append(node)
    return out


def _children(node: Mapping[str, Any]) -> list[Any]:
    children = node.get("children")
    return children if isinstance(children, list) else []


def enrich_hierarchy(
    root: Mapping[str, Any],
    root_props: Mapping[str, Any],
    child_props: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A copy of the hierarchy: the root gets ``root_props``, each node whose identifier is in ``child_props``
    gets those (the imported child's new cloud props plus objectType)."""
    tree = json.loads(json.dumps(root))
    tree.update(root_props)
    stack = list(_children(tree))
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        props = child_props.get(str(node.get("identifier")))
        if props:
            node.update(props)
        stack.extend(_children(node))
    return tree


# ------------------------------------------------------------------------------------------- store values


def dedupe(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    seen: set[str] = set()
    for v in values:
        key = compact_json(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def graph_properties(metadata: Mapping[str, Any], definition: Definition) -> dict[str, Any]:
    """The node's properties: all but ``identifier`` and ``objectType``, lists de-duplicated, ``object``-typed
    props (and any dict or list of dicts) as JSON strings. A null stays null: the reference wrote
    ``n.<prop>=null``, which removes a property a previous import stored (the graph stores do the same)."""
    object_props = definition.object_props
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ("identifier", "objectType"):
            continue
        if value is None:
            out[key] = None
            continue
        if key in object_props and not isinstance(value, str):
            out[key] = compact_json(value)
        elif isinstance(value, dict):
            out[key] = compact_json(value)
        elif isinstance(value, list):
            items = dedupe(value)
            out[key] = compact_json(items) if any(isinstance(i, dict | list) for i in items) else items
        else:
            out[key] = value
    return out


def external_values(external: Mapping[str, Any]) -> dict[str, str | None]:
    """Column (lowercased) -> text: strings as they are, anything else as JSON. A null stays null, so the
    store clears a column nulled at the source: the reference overwrote it too (CQL null for a blob column,
    the text ``null`` for a string one, Jackson's serialisation of null, which is no value either)."""
    return {
        key.lower(): None if value is None else value if isinstance(value, str) else compact_json(value)
        for key, value in external.items()
    }


def relativise(value: Any, base_paths: Sequence[str], container: str, prefix: str) -> Any:
    """``cloudstorage.metadata.replace_absolute_path``: each ``<base>/<container>`` in strings becomes
    ``prefix`` (inside JSON strings too, which are strings)."""
    targets = [f"{b.rstrip('/')}/{container}" if container else b.rstrip("/") for b in base_paths if b]
    if not targets:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for t in targets:
                v = v.replace(t, prefix)
            return v
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)
