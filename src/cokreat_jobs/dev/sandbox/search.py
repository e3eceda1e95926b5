"""search-service: `POST /v3/search` over the content nodes, with the index's quirks.

- `status` absent means Live; `status: []` (any empty list) does not filter; with `status: []`,
  `objectType: Content` also matches Collection, Asset and the image types.
- `visibility: Default` is added unless the request filters on visibility; `visibility: private` is refused.
- Images are indexed, so a Live content with a pending image appears twice with one identifier; results show
  identifiers without `.img` and objectTypes without `Image`.
- `originData` comes back as a JSON string (the index stores it so), `variants` as an object.
- A node becomes visible only at its `indexed_ms` (creation + `search_index_delay_ms`).
- `count` is the number of hits; the hits list (`content` for the Content family) is absent when it is 0.

String comparisons are case-insensitive, as the index's normalised keyword fields are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api, ok
from cokreat_jobs.dev.sandbox.nodes import INDEXED_FIELDS, NodeStore, base_id, base_object_type
from cokreat_jobs.dev.sandbox.router import ApiError, Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox

API_SEARCH = Api("api.search-service.search", "3.0")

DEFAULT_LIMIT = 100
MAX_WINDOW = 10_000
CONTENT_FAMILY = frozenset({"Content", "Collection", "Asset"})
CONTENT_EXPANSION = ("Collection", "Asset", "ContentImage", "CollectionImage", "AssetImage")

Predicate = Callable[[dict[str, Any]], bool]


class UnsupportedQuery(Exception):
    pass


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _values(node_value: Any) -> list[Any]:
    if node_value is None:
        return []
    if isinstance(node_value, list):
        return [_norm(v) for v in node_value]
    return [_norm(node_value)]


def _compare(node_value: Any, op: Callable[[Any, Any], bool], operand: Any) -> bool:
    for value in _values(node_value):
        try:
            if op(value, _norm(operand)):
                return True
        except TypeError:
            continue
    return False


def _in(field: str, wanted: list[Any]) -> Predicate:
    wanted_set = {_norm(w) for w in wanted if not isinstance(w, dict | list)}
    return lambda node: any(
        v in wanted_set for v in _values(node.get(field)) if not isinstance(v, dict | list)
    )


_OPERATORS: dict[str, Callable[[str, Any], Predicate]] = {}


def _operator(*names: str) -> Callable[[Callable[[str, Any], Predicate]], Callable[[str, Any], Predicate]]:
    def register(fn: Callable[[str, Any], Predicate]) -> Callable[[str, Any], Predicate]:
        for name in names:
            _OPERATORS[name] = fn
        return fn

    return register


@_operator("eq", "=", "value", "in")
def _op_eq(field: str, operand: Any) -> Predicate:
    return _in(field, operand if isinstance(operand, list) else [operand])


@_operator("ne", "!=", "notIn", "nin", "not_in")
def _op_ne(field: str, operand: Any) -> Predicate:
    positive = _in(field, operand if isinstance(operand, list) else [operand])
    return lambda node: not positive(node)


@_operator("min", ">=")
def _op_min(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a >= b, operand)


@_operator("max", "<=")
def _op_max(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a <= b, operand)


@_operator(">")
def _op_gt(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a > b, operand)


@_operator("<")
def _op_lt(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a < b, operand)


@_operator("startsWith")
def _op_starts(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a.startswith(b), operand)


@_operator("endsWith")
def _op_ends(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: a.endswith(b), operand)


@_operator("contains", "like")
def _op_contains(field: str, operand: Any) -> Predicate:
    return lambda node: _compare(node.get(field), lambda a, b: b in a, operand)


def compile_filter(field: str, spec: Any) -> Predicate | None:
    """A predicate for one filter entry; None when it does not filter (an empty list)."""
    if isinstance(spec, list):
        return _in(field, spec) if spec else None
    if isinstance(spec, dict):
        predicates = []
        for op, operand in spec.items():
            factory = _OPERATORS.get(op)
            if factory is None:
                raise UnsupportedQuery(f"Unsupported operation: {op}")
            predicates.append(factory(field, operand))
        return lambda node: all(p(node) for p in predicates)
    if spec is None:
        return None
    return _in(field, [spec])


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    raise UnsupportedQuery("exists / not_exists / fields must be a string or a list of strings")


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, "ERR_INVALID_REQUEST", f"Invalid {name}: {value}")
    try:
        number = int(value)
    except ValueError as exc:
        raise ApiError(400, "ERR_INVALID_REQUEST", f"Invalid {name}: {value}") from exc
    if number < 0 or number > MAX_WINDOW:
        raise ApiError(400, "ERR_INVALID_REQUEST", f"Invalid {name}: {value}")
    return number


def present_hit(metadata: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields:
        hit = {k: metadata[k] for k in fields if k in metadata}
        hit["identifier"] = metadata["identifier"]
        if "objectType" in metadata:
            hit["objectType"] = metadata["objectType"]
    else:
        hit = dict(metadata)
    hit["identifier"] = base_id(str(hit["identifier"]))
    if isinstance(hit.get("objectType"), str):
        hit["objectType"] = base_object_type(hit["objectType"])
    origin_data = hit.get("originData")
    if origin_data is not None and not isinstance(origin_data, str):
        hit["originData"] = orjson.dumps(origin_data).decode()
    variants = hit.get("variants")
    if isinstance(variants, str):
        try:
            hit["variants"] = orjson.loads(variants)
        except orjson.JSONDecodeError:
            pass
    return hit


class SearchService:
    def __init__(self, sandbox: Sandbox, nodes: NodeStore) -> None:
        self.sandbox = sandbox
        self.nodes = nodes

    def search(self, request: dict[str, Any]) -> dict[str, Any]:
        filters = request.get("filters") or {}
        if not isinstance(filters, dict):
            raise UnsupportedQuery("filters must be an object")
        filters = dict(filters)
        limit = _int_param(request.get("limit"), "limit", DEFAULT_LIMIT)
        offset = _int_param(request.get("offset"), "offset", 0)

        visibility = filters.get("visibility")
        if visibility is None:
            filters["visibility"] = ["Default"]
        elif any(isinstance(v, str) and v.lower() == "private" for v in _as_list(visibility)):
            raise ApiError(400, "ERR_ACCESS_DENIED", "Private visibility content can not be searched.")
        status = filters.get("status", ...)
        any_status = status == [] or status == ""
        if status is ... or status is None:
            filters["status"] = ["Live"]
        object_type = filters.get("objectType")
        if any_status and object_type:
            wanted = _as_list(object_type)
            if "Content" in wanted:
                filters["objectType"] = wanted + [t for t in CONTENT_EXPANSION if t not in wanted]

        candidates = self._candidates(filters)
        predicates: list[Predicate] = []
        for field, spec in filters.items():
            if field == "visibility":
                predicates.append(_visibility(spec))
                continue
            if field == "identifier":
                predicates.append(_identifier(spec))
                continue
            predicate = compile_filter(field, spec)
            if predicate is not None:
                predicates.append(predicate)
        exists = _as_list(request.get("exists"))
        not_exists = _as_list(request.get("not_exists"))
        fields = _as_list(request.get("fields")) or None

        now_ms = time.time_ns() // 1_000_000
        hits: list[dict[str, Any]] = []
        for _, stored in candidates:
            if stored.indexed_ms > now_ms:
                continue
            metadata = stored.metadata
            if exists and any(metadata.get(f) in (None, "", []) for f in exists):
                continue
            if not_exists and any(metadata.get(f) not in (None, "", []) for f in not_exists):
                continue
            if all(p(metadata) for p in predicates):
                hits.append(metadata)
        hits = _sorted(hits, request.get("sort_by"))
        result: dict[str, Any] = {"count": len(hits)}
        for metadata in hits[offset : offset + limit]:
            hit = present_hit(metadata, fields)
            key = "content" if hit.get("objectType") in CONTENT_FAMILY else str(hit.get("objectType"))
            result.setdefault(key, []).append(hit)
        return result

    def _candidates(self, filters: dict[str, Any]) -> list[Any]:
        identifiers = filters.get("identifier")
        if isinstance(identifiers, str | list) and identifiers:
            ids = (
                [identifiers]
                if isinstance(identifiers, str)
                else [i for i in identifiers if isinstance(i, str)]
            )
            wanted = {base_id(i) for i in ids}
            return self.nodes.ordered(wanted | {i + ".img" for i in wanted})
        for field in INDEXED_FIELDS:
            spec = filters.get(field)
            if isinstance(spec, str) or (isinstance(spec, list) and spec):
                values = [spec] if isinstance(spec, str) else spec
                return self.nodes.ordered(self.nodes.ids_with(field, values))
        return sorted(self.nodes.all(), key=lambda pair: pair[1].order)


def _visibility(spec: Any) -> Predicate:
    predicate = compile_filter("visibility", spec)
    if predicate is None:
        return lambda node: True
    # A node without a visibility has the schema's default.
    return lambda node: predicate(node if "visibility" in node else {**node, "visibility": "Default"})


def _identifier(spec: Any) -> Predicate:
    predicate = compile_filter("identifier", spec)
    if predicate is None:
        return lambda node: True
    return lambda node: predicate({"identifier": base_id(str(node.get("identifier", "")))})


def _sorted(hits: list[dict[str, Any]], sort_by: Any) -> list[dict[str, Any]]:
    if not isinstance(sort_by, dict) or not sort_by:
        return hits
    for field, direction in reversed(list(sort_by.items())):
        present = [h for h in hits if h.get(field) is not None]
        missing = [h for h in hits if h.get(field) is None]
        try:
            present.sort(key=lambda h: _norm(h[field]), reverse=str(direction).lower() == "desc")
        except TypeError:
            continue
        hits = present + missing
    return hits


def register(sandbox: Sandbox) -> None:
    service = SearchService(sandbox, sandbox.services["nodes"])
    sandbox.services["search"] = service

    async def search(call: Call) -> Response:
        body = call.json()
        request = body.get("request") if isinstance(body, dict) else None
        if not isinstance(request, dict):
            raise ApiError(400, "ERR_INVALID_REQUEST", "Invalid Request: request is missing")
        try:
            return ok(API_SEARCH, service.search(request))
        except UnsupportedQuery as exc:
            raise ApiError(500, "ERR_SYSTEM_EXCEPTION", str(exc)) from exc

    sandbox.router.add("POST", "/v3/search", search, API_SEARCH)
