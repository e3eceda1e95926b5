"""Collection hierarchies: `GET /content/v3/hierarchy/{id}` and `PATCH /content/v3/hierarchy/add`.

A collection's tree is stored apart from its node (as the service keeps it in its hierarchy store), keyed by
the root id, or `<id>.img` for the draft of a Live collection. Units are `visibility: Parent` entries with a
`depth`; leaves hold the child's metadata with `index`, `depth` and `parent`. The root node's `childNodes`
lists every descendant. `hierarchy/add` runs its checks in the service's order: request fields, root (read in
edit mode), unit among the root's childNodes, a non-empty hierarchy, then the children.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox import content_schema as schema
from cokreat_jobs.dev.sandbox.admin import inspect_route
from cokreat_jobs.dev.sandbox.content import ContentService, normalise_origin_data, not_found
from cokreat_jobs.dev.sandbox.envelope import Api, json_response, kp_timestamp, ok
from cokreat_jobs.dev.sandbox.nodes import NodeStore, base_id, base_object_type, image_id
from cokreat_jobs.dev.sandbox.router import ApiError, Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError
from cokreat_jobs.dev.sandbox.state import Database

API_HIERARCHY_GET = Api("api.content.hierarchy.get", "3.0")
API_HIERARCHY_ADD = Api("api.content.hierarchy.add", "3.0")

SCHEMA = ("CREATE TABLE IF NOT EXISTS hierarchies (identifier TEXT PRIMARY KEY, tree BLOB NOT NULL)",)

LINKABLE_TYPES = ("Content", "Collection", "QuestionSet")
LIVE_STATES = ("Live", "Unlisted")


class Hierarchies:
    """Trees by root id (`{"children": [...]}`), cached in memory and written through."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)
        self._trees: dict[str, dict[str, Any]] = {
            identifier: orjson.loads(blob)
            for identifier, blob in db.query("SELECT identifier, tree FROM hierarchies")
        }

    def get(self, identifier: str) -> dict[str, Any] | None:
        return self._trees.get(identifier)

    def put(self, identifier: str, tree: dict[str, Any]) -> None:
        self._trees[identifier] = tree
        self._db.execute(
            "INSERT OR REPLACE INTO hierarchies (identifier, tree) VALUES (?, ?)",
            (identifier, orjson.dumps(tree)),
        )

    def delete(self, identifier: str) -> None:
        if self._trees.pop(identifier, None) is not None:
            self._db.execute("DELETE FROM hierarchies WHERE identifier = ?", (identifier,))

    def clear(self) -> None:
        self._trees.clear()
        self._db.execute("DELETE FROM hierarchies")


def find_unit(children: list[dict[str, Any]], unit_id: str) -> dict[str, Any] | None:
    for child in children:
        if child.get("visibility") == "Parent":
            if child.get("identifier") == unit_id:
                return child
            found = find_unit(child.get("children") or [], unit_id)
            if found is not None:
                return found
    return None


class HierarchyService:
    def __init__(self, nodes: NodeStore, trees: Hierarchies, content: ContentService) -> None:
        self.nodes = nodes
        self.trees = trees
        self.content = content

    # -- read ---------------------------------------------------------------------------------------------

    def read(self, identifier: str, edit: bool) -> dict[str, Any]:
        node = self.nodes.lookup(identifier)
        tree_id = identifier
        if node is not None and edit:
            image = self.nodes.get(image_id(identifier))
            if image is not None:
                node, tree_id = image, image_id(identifier)
        if node is None or (not edit and node.get("status") not in LIVE_STATES):
            raise ApiError(
                404,
                "RESOURCE_NOT_FOUND",
                f"rootId {identifier} does not exist",
                response_code="RESOURCE_NOT_FOUND",
            )
        tree = self.trees.get(tree_id) or self.trees.get(identifier) or {"children": []}
        root = dict(node)
        root["identifier"] = identifier
        root["objectType"] = base_object_type(str(root.get("objectType", "Collection")))
        normalise_origin_data(root)
        root["childNodes"] = list(root.get("childNodes") or [])
        root["children"] = self._present(tree.get("children") or [], refresh=edit)
        return root

    def _present(self, children: list[dict[str, Any]], refresh: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for child in children:
            if child.get("visibility") == "Parent":
                unit = dict(child)
                unit["children"] = self._present(child.get("children") or [], refresh)
                out.append(unit)
                continue
            entry = dict(child)
            if refresh:
                # Edit mode re-reads leaves from the store; gone or retired ones drop out.
                current = self.nodes.lookup(str(child.get("identifier")))
                if current is None or current.get("status") == "Retired":
                    continue
                entry = {**current, **{k: child[k] for k in ("index", "depth", "parent") if k in child}}
                entry["identifier"] = base_id(str(current["identifier"]))
                entry["objectType"] = base_object_type(str(current.get("objectType", "Content")))
            normalise_origin_data(entry)
            out.append(entry)
        return out

    # -- add ----------------------------------------------------------------------------------------------

    def add(self, request: dict[str, Any]) -> dict[str, Any]:
        root_id, unit_id, children = request.get("rootId"), request.get("unitId"), request.get("children")
        if not isinstance(root_id, str) or not root_id.strip():
            raise ApiError(400, "ERR_BAD_REQUEST", "rootId is mandatory")
        if not isinstance(unit_id, str) or not unit_id.strip():
            raise ApiError(400, "ERR_BAD_REQUEST", "unitId is mandatory")
        if not isinstance(children, list) or not children or not all(isinstance(c, str) for c in children):
            raise ApiError(400, "ERR_BAD_REQUEST", "children are mandatory")
        root_id = base_id(root_id)
        node = self.nodes.lookup(root_id)
        if node is None:
            raise not_found(root_id)
        image = self.nodes.get(image_id(root_id))
        root = image or node
        if unit_id not in (root.get("childNodes") or []):
            raise ApiError(
                404,
                "RESOURCE_NOT_FOUND",
                f"unitId {unit_id} does not exist",
                response_code="RESOURCE_NOT_FOUND",
                result={},
            )
        tree_id = image_id(root_id) if image is not None else root_id
        tree = self.trees.get(tree_id) or (self.trees.get(root_id) if image is not None else None)
        if not tree or not tree.get("children"):
            raise ApiError(500, "SERVER_ERROR", "hierarchy is empty", response_code="SERVER_ERROR", result={})
        leaves = self._leaves(children)

        # A Live collection is not touched: the service writes a Draft image of it (node and tree).
        if image is None and node.get("status") in schema.IMAGE_ON_EDIT:
            target, new_node = self.content.edit_target(root_id)
            tree_id = image_id(root_id)
        else:
            target, new_node = dict(root), False
        tree = orjson.loads(orjson.dumps(tree))  # private copy to edit
        unit = find_unit(tree["children"], unit_id)
        if unit is None:  # in childNodes but not a unit of the tree: the service fails the same way
            raise ApiError(
                404,
                "RESOURCE_NOT_FOUND",
                f"unitId {unit_id} does not exist",
                response_code="RESOURCE_NOT_FOUND",
                result={},
            )
        unit_children: list[dict[str, Any]] = unit.setdefault("children", [])
        present = {c.get("identifier") for c in unit_children}
        next_index = max((int(c.get("index") or 0) for c in unit_children), default=0) + 1
        depth = int(unit.get("depth") or 1) + 1
        for leaf in leaves:
            if leaf["identifier"] in present:
                continue
            unit_children.append({**leaf, "index": next_index, "depth": depth, "parent": unit_id})
            present.add(leaf["identifier"])
            next_index += 1
        child_nodes = list(target.get("childNodes") or [])
        known = set(child_nodes)
        child_nodes += [leaf["identifier"] for leaf in leaves if leaf["identifier"] not in known]
        target["childNodes"] = child_nodes
        self.trees.put(tree_id, tree)
        self.content.write(target, new=new_node)
        return {"rootId": root_id, unit_id: children}

    def _leaves(self, children: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        missing = False
        for child_id in children:
            node = self.nodes.lookup(base_id(child_id))
            if node is None:
                missing = True
                continue
            found.append(node)
        if missing:
            # The service's message lists every requested child, not only the missing ones.
            raise ApiError(
                400, "ERR_BAD_REQUEST", f"Children which are not available are: [{', '.join(children)}]"
            )
        leaves = []
        for node in found:
            object_type = base_object_type(str(node.get("objectType", "")))
            if object_type not in LINKABLE_TYPES:
                raise ApiError(
                    400,
                    "ERR_INVALID_CHILDREN",
                    f"Invalid Children objectType {node.get('objectType')} found for : "
                    f"{node.get('identifier')}| Please provide children having one of the objectType from "
                    f"{list(LINKABLE_TYPES)}",
                )
            leaf = dict(node)
            leaf["identifier"] = base_id(str(node["identifier"]))
            leaf["objectType"] = object_type
            leaf.pop("childNodes", None)
            leaves.append(leaf)
        return leaves

    # -- publish and seeding ------------------------------------------------------------------------------

    def on_published(self, identifier: str, live: dict[str, Any]) -> None:
        """A published collection's draft tree becomes its tree."""
        draft = self.trees.get(image_id(identifier))
        if draft is not None:
            self.trees.put(identifier, draft)
            self.trees.delete(image_id(identifier))

    def seed_collections(self, items: list[Any]) -> int:
        prepared = []
        for item in items:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("identifier"), str)
                or not item["identifier"]
            ):
                raise SeedError(f"a collection is an object with an identifier: {item!r}")
            units = item.get("units") or []
            if not isinstance(units, list):
                raise SeedError("units must be a list")
            prepared.append((item, units))
        for item, units in prepared:
            root_id = item["identifier"]
            unit_entries = []
            for index, unit in enumerate(units, start=1):
                if isinstance(unit, str):
                    unit = {"identifier": unit}
                if not isinstance(unit, dict) or not isinstance(unit.get("identifier"), str):
                    raise SeedError(f"a unit is an id or an object with an identifier: {unit!r}")
                unit_entries.append(
                    {
                        "identifier": unit["identifier"],
                        "name": unit.get("name", unit["identifier"]),
                        "objectType": "Collection",
                        "mimeType": schema.COLLECTION_MIME,
                        "contentType": "TextBookUnit",
                        "primaryCategory": "Textbook Unit",
                        "visibility": "Parent",
                        "status": item.get("status", "Draft"),
                        "depth": 1,
                        "index": index,
                        "parent": root_id,
                        "children": [],
                    }
                )
            metadata: dict[str, Any] = {
                "objectType": "Collection",
                "mimeType": schema.COLLECTION_MIME,
                "primaryCategory": "Digital Textbook",
                "contentType": "TextBook",
                "visibility": "Default",
                "status": "Draft",
                "createdOn": kp_timestamp(),
                "versionKey": self.nodes.next_version_key(),
            }
            metadata.update({k: v for k, v in item.items() if k != "units"})
            metadata["childNodes"] = [u["identifier"] for u in unit_entries]
            self.nodes.put(metadata, 0)
            self.trees.put(root_id, {"children": unit_entries})
        return len(prepared)


def register(sandbox: Sandbox) -> None:
    trees = Hierarchies(sandbox.db)
    service = HierarchyService(sandbox.services["nodes"], trees, sandbox.services["content"])
    sandbox.services.update(hierarchies=trees, hierarchy=service)
    sandbox.services["publisher"].on_published.append(service.on_published)
    sandbox.on_reset(trees.clear)
    sandbox.add_seed_kind("collections", service.seed_collections)

    async def get_hierarchy(call: Call) -> Response:
        identifier = base_id(call.params["id"])
        return ok(API_HIERARCHY_GET, {"content": service.read(identifier, call.query.get("mode") == "edit")})

    async def add(call: Call) -> Response:
        return ok(API_HIERARCHY_ADD, service.add(call.request_object()))

    async def inspect_tree(call: Call) -> Response:
        tree = trees.get(call.params["id"])
        return json_response(tree) if tree is not None else json_response({"error": "no such hierarchy"}, 404)

    # Methods keep these apart (`GET .../hierarchy/add` reads a collection called "add", as Play would).
    sandbox.router.add("PATCH", "/content/v3/hierarchy/add", add, API_HIERARCHY_ADD)
    sandbox.router.add("GET", "/content/v3/hierarchy/{id}", get_hierarchy, API_HIERARCHY_GET)
    inspect_route(sandbox, "GET", "/_sandbox/hierarchies/{id}", inspect_tree)
