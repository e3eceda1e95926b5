"""The source repository (the instance question sets are imported from) and its packages.

- `GET /questionset/v1/read/{id}`, `GET /question/v1/read/{id}` (the API gateway's paths) and the service's
  own `/questionset/v4/read/{id}`, `/question/v4/read/{id}`: `result.questionset` / `result.question`; with
  `?fields=a,b` only those fields plus `identifier` (external props only when named, never by default);
  404 `NOT_FOUND` for an unknown id (or one of another type), 400 `ERR_ACCESS_DENIED` for
  `visibility: Private`.
- `GET|HEAD /source-ecar/{id}/{file}`: the object's ECAR (`<id>.ecar`, the full package with its files, and
  `<id>-spine.ecar`, the same without files), built with `cokreat_jobs.sunbird.ecar.build_ecar` when
  first asked for and cached. Logged and faultable like a service path, so a test can break a package
  (`{"path": "/source-ecar/do_1/*", "status": 200, "raw_body": "not a zip"}`).
- Seed kind `source_objects`: `{"identifier", "objectType", "metadata": {...}, "hierarchy": {...} (sets),
  "files": {"<path in the ECAR>": "<base64>"}}`. `downloadUrl` is set to the full ECAR and `variants` to
  `{"full": {...}, "spine": {...}}` (`ecarUrl` + `size`). Each leaf of a set's hierarchy (a node that is not a
  `visibility: Parent` unit) is seeded as its own source object too (its metadata from the node), unless
  seeded explicitly; its hierarchy node and manifest item carry its own ECAR's URL.
- Objects the jobs write into the graph store named by the `graph_store` setting (`sqlite:///...`, or Neo4j's
  `bolt://host:port`, read with the driver's sync API, or its `http://host:port` for a Neo4j 3.3 / 3.4, which
  the driver cannot reach, read over the HTTP endpoint) are known to the content reads and `hierarchy/add` (a
  fallback reader on the node store), as content-service reads the graph auto-creator-v2 writes.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api, html_page, ok
from cokreat_jobs.dev.sandbox.router import ApiError, Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError
from cokreat_jobs.sunbird.ecar import build_ecar

API_QS_READ = Api("api.questionset.read", "1.0")
API_Q_READ = Api("api.question.read", "1.0")
API_ECAR = Api("api.files", "1.0")

SCHEMA = ("CREATE TABLE IF NOT EXISTS source_objects (identifier TEXT PRIMARY KEY, data BLOB NOT NULL)",)

EXTERNAL_PROPS = {
    "Question": (
        "body editorState answer solutions instructions hints media responseDeclaration interactions".split()
    ),
    "QuestionSet": ["hierarchy", "instructions", "outcomeDeclaration"],
}
EXPANDABLE = ("QuestionSet",)
ECAR_PATH = "/source-ecar"


class SourceRepository:
    def __init__(self, sandbox: Sandbox) -> None:
        self.db = sandbox.db
        self.db.ensure_schema(SCHEMA)
        self.objects: dict[str, dict[str, Any]] = {}
        self._ecars: dict[tuple[str, str, str], bytes] = {}
        for identifier, blob in self.db.query("SELECT identifier, data FROM source_objects"):
            self.objects[identifier] = orjson.loads(blob)

    # -- seeding ------------------------------------------------------------------------------------------

    def seed(self, items: list[Any]) -> int:
        prepared: list[dict[str, Any]] = []
        explicit: set[str] = set()
        for item in items:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("identifier"), str)
                or not item["identifier"]
            ):
                raise SeedError(f"a source object is an object with an identifier: {str(item)[:200]}")
            obj = {
                "identifier": item["identifier"],
                "objectType": str(
                    item.get("objectType") or (item.get("metadata") or {}).get("objectType") or ""
                ),
                "metadata": dict(item.get("metadata") or {}),
                "hierarchy": item.get("hierarchy"),
                "files": dict(item.get("files") or {}),
            }
            if not obj["objectType"]:
                raise SeedError(f"source object {obj['identifier']}: objectType is required")
            for path, data in obj["files"].items():
                try:
                    base64.b64decode(str(data), validate=True)
                except (binascii.Error, ValueError):
                    raise SeedError(f"source object {obj['identifier']}: file {path} is not base64") from None
            if obj["hierarchy"] is not None and not isinstance(obj["hierarchy"], dict):
                raise SeedError(f"source object {obj['identifier']}: hierarchy must be an object")
            prepared.append(obj)
            explicit.add(obj["identifier"])
        derived: list[dict[str, Any]] = []
        for obj in prepared:
            for node in _leaves(obj.get("hierarchy") or {}):
                ident = node.get("identifier")
                if isinstance(ident, str) and ident and ident not in explicit:
                    meta = {k: v for k, v in node.items() if k not in ("children", "downloadUrl", "variants")}
                    derived.append(
                        {
                            "identifier": ident,
                            "objectType": str(node.get("objectType") or "Question"),
                            "metadata": meta,
                            "hierarchy": None,
                            "files": {},
                        }
                    )
                    explicit.add(ident)
        all_objs = prepared + derived
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO source_objects (identifier, data) VALUES (?, ?) "
                "ON CONFLICT(identifier) DO UPDATE SET data = excluded.data",
                [(o["identifier"], orjson.dumps(o)) for o in all_objs],
            )
        for o in all_objs:
            self.objects[o["identifier"]] = o
        self._ecars.clear()
        return len(prepared)

    def clear(self) -> None:
        self.objects.clear()
        self._ecars.clear()
        self.db.execute("DELETE FROM source_objects")

    # -- presenting ---------------------------------------------------------------------------------------

    @staticmethod
    def ecar_url(base_url: str, identifier: str, spine: bool = False) -> str:
        name = f"{identifier}-spine.ecar" if spine else f"{identifier}.ecar"
        return f"{base_url.rstrip('/')}{ECAR_PATH}/{quote(identifier, safe='')}/{quote(name, safe='')}"

    def present(self, obj: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The object's metadata as the source holds it: with its identifier, type, status, package URLs."""
        meta = dict(obj["metadata"])
        meta["identifier"] = obj["identifier"]
        meta["objectType"] = obj["objectType"]
        meta.setdefault("status", "Live")
        meta.setdefault("visibility", "Default")
        full = self.ecar_url(base_url, obj["identifier"])
        spine = self.ecar_url(base_url, obj["identifier"], spine=True)
        meta["downloadUrl"] = full
        meta["variants"] = {
            "full": {"ecarUrl": full, "size": len(self.ecar(obj["identifier"], base_url, "full"))},
            "spine": {"ecarUrl": spine, "size": len(self.ecar(obj["identifier"], base_url, "spine"))},
        }
        return meta

    def _present_tree(self, node: dict[str, Any], base_url: str) -> dict[str, Any]:
        out = {k: v for k, v in node.items() if k != "children"}
        children = node.get("children")
        if not _is_container(node):
            ident = out.get("identifier")
            if isinstance(ident, str) and ident in self.objects:
                leaf = self.objects[ident]
                url = self.ecar_url(base_url, ident)
                out["downloadUrl"] = url
                out["variants"] = {"full": {"ecarUrl": url, "size": len(self.ecar(ident, base_url, "full"))}}
                out.setdefault("objectType", leaf["objectType"])
            return out
        out["children"] = [self._present_tree(c, base_url) for c in children or [] if isinstance(c, dict)]
        return out

    def ecar(self, identifier: str, base_url: str, kind: str) -> bytes:
        key = (identifier, base_url, kind)
        cached = self._ecars.get(key)
        if cached is not None:
            return cached
        obj = self.objects[identifier]
        # The manifest item carries no package URLs of its own package (it is inside it): sizes would recurse.
        item = dict(obj["metadata"])
        item.update(identifier=identifier, objectType=obj["objectType"])
        item.setdefault("status", "Live")
        description: dict[str, Any] = {"items": [item]}
        if obj.get("hierarchy") is not None:
            tree = {**copy.deepcopy(obj["hierarchy"]), **item}
            tree["children"] = obj["hierarchy"].get("children") or []
            presented = self._present_tree(tree, base_url)
            description["hierarchy"] = presented
            description["hierarchy_key"] = obj["objectType"].lower()
            description["items"] += [_strip(n) for n in _descendants(presented)]
        if kind == "full":
            description["files"] = {p: base64.b64decode(str(d)) for p, d in obj["files"].items()}
        data = build_ecar(description)
        self._ecars[key] = data
        return data


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "children"}


def _descendants(node: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in node.get("children") or []:
        if isinstance(child, dict):
            out.append(child)
            out.extend(_descendants(child))
    return out


def _is_container(node: dict[str, Any]) -> bool:
    """A set or a section of one (nodes with children); a question in a set is `visibility: Parent` too."""
    return isinstance(node.get("children"), list) or node.get("objectType") in EXPANDABLE


def _leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in node.get("children") or []:
        if not isinstance(child, dict):
            continue
        if _is_container(child):
            out.extend(_leaves(child))
        else:
            out.append(child)
    return out


def _only_fields(meta: dict[str, Any], object_type: str, fields: list[str] | None) -> dict[str, Any]:
    if fields:
        wanted = set(fields) | {"identifier"}
        return {k: v for k, v in meta.items() if k in wanted}
    external = set(EXTERNAL_PROPS.get(object_type, ()))
    return {k: v for k, v in meta.items() if k not in external}


# -- the graph store the jobs write ------------------------------------------------------------------------


def graph_reader(url: str) -> Any:
    """A node-store fallback reader over the graph store the jobs write: sqlite (``sqlite:///...``) or Neo4j
    (``bolt://[user:password@]host:port``, also ``neo4j://``; or ``http://host:port``, its HTTP endpoint);
    None for other URLs."""
    scheme = url.strip().lower().split(":", 1)[0]
    if scheme in ("bolt", "neo4j", "bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc"):
        return neo4j_graph_reader(url.strip())
    if scheme in ("http", "https"):
        # the job's neo4j.routePath for a Neo4j 3.3 / 3.4, which the driver cannot reach (Bolt 1 / 2)
        return neo4j_http_graph_reader(url.strip())
    if scheme != "sqlite":
        return None
    from cokreat_jobs.adapters.stores import sqlite_path
    from cokreat_jobs.adapters.stores.sqlite_store import NodeReader

    read_node = NodeReader(sqlite_path(url))

    def read(identifier: str) -> dict[str, Any] | None:
        props = read_node(identifier)
        if props is None:
            return None
        return node_from_graph(props, identifier)

    return read


def neo4j_graph_reader(url: str) -> Any:
    """A fallback reader over a Neo4j graph (label ``domain``, key ``IL_UNIQUE_ID``) with the driver's sync
    API: the node store's readers are synchronous. The driver is created on the first read."""
    from urllib.parse import urlsplit, urlunsplit

    from cokreat_jobs.adapters.stores.neo4j_store import READ_QUERY

    parts = urlsplit(url)
    auth = (parts.username, parts.password or "") if parts.username else None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    uri = urlunsplit((parts.scheme, netloc, "", "", ""))
    driver: list[Any] = []

    def read(identifier: str) -> dict[str, Any] | None:
        if not driver:
            from neo4j import GraphDatabase

            driver.append(GraphDatabase.driver(uri, auth=auth, connection_timeout=5.0))
        records, _, _ = driver[0].execute_query(READ_QUERY, {"id": identifier}, routing_="r")
        if not records:
            return None
        return node_from_graph(dict(records[0]["props"]), identifier)

    def close() -> None:
        while driver:
            driver.pop().close()

    read.close = close  # type: ignore[attr-defined]
    return read


def neo4j_http_graph_reader(url: str) -> Any:
    """The same reader over Neo4j's HTTP transactional endpoint (``http://[user:password@]host:port``), which
    every Neo4j from 3.0 answers: 3.x at ``/db/data/transaction/commit``, 4.x and later at the path its
    ``GET /`` names. The path is found on the first read."""
    import urllib.request
    from urllib.parse import urlsplit, urlunsplit

    from cokreat_jobs.adapters.stores.neo4j_store import READ_QUERY, transaction_commit_path

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if parts.username:
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    commit: list[str] = []

    def call(path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (the sandbox's own settings)
            return json.loads(resp.read())

    def read(identifier: str) -> dict[str, Any] | None:
        if not commit:
            commit.append(transaction_commit_path(call("/"), None) or "/db/data/transaction/commit")
        statement = {"statement": READ_QUERY, "parameters": {"id": identifier}}
        answer = call(commit[0], {"statements": [statement]})
        if answer.get("errors"):
            raise RuntimeError(f"Neo4j over HTTP: {answer['errors'][0].get('message')}")
        rows = answer["results"][0]["data"]
        if not rows:
            return None
        return node_from_graph(dict(rows[0]["row"][0]), identifier)

    return read


def node_from_graph(props: dict[str, Any], identifier: str) -> dict[str, Any]:
    """Graph properties as content-service presents them: ``identifier`` and ``objectType`` back, no IL_*."""
    node = {k: v for k, v in props.items() if not k.startswith("IL_")}
    node["identifier"] = str(props.get("IL_UNIQUE_ID") or identifier)
    node["objectType"] = str(props.get("IL_FUNC_OBJECT_TYPE") or node.get("objectType") or "Content")
    for key in ("variants",):
        value = node.get(key)
        if isinstance(value, str) and value.startswith("{"):
            try:
                node[key] = json.loads(value)
            except ValueError:
                pass
    return node


def register(sandbox: Sandbox) -> None:
    repo = SourceRepository(sandbox)
    sandbox.services["source"] = repo
    sandbox.add_seed_kind("source_objects", repo.seed)
    sandbox.on_reset(repo.clear)

    nodes = sandbox.services.get("nodes")
    if nodes is not None and sandbox.settings.graph_store:
        reader = graph_reader(sandbox.settings.graph_store)
        if reader is not None:
            nodes.add_fallback_reader(reader)
            close = getattr(reader, "close", None)
            if close is not None:
                sandbox.on_shutdown(close)

    def reader_for(object_type: str, api: Api) -> Any:
        async def read(call: Call) -> Response:
            identifier = call.params["id"]
            obj = repo.objects.get(identifier)
            if obj is None or obj["objectType"] != object_type:
                raise ApiError(
                    404, "NOT_FOUND", f"Error! Node(s) doesn't Exists. | [Invalid Node Id.]: {identifier}"
                )
            meta = repo.present(obj, call.base_url)
            if meta.get("visibility") == "Private":
                raise ApiError(
                    400, "ERR_ACCESS_DENIED", f"{object_type} visibility is private, hence access denied"
                )
            fields = [f.strip() for f in call.query.get("fields", "").split(",") if f.strip()]
            return ok(api, {object_type.lower(): _only_fields(meta, object_type, fields or None)})

        return read

    add = sandbox.router.add
    for version in ("v1", "v4"):
        add("GET", f"/questionset/{version}/read/{{id}}", reader_for("QuestionSet", API_QS_READ), API_QS_READ)
        add("GET", f"/question/{version}/read/{{id}}", reader_for("Question", API_Q_READ), API_Q_READ)

    async def serve_ecar(call: Call) -> Response:
        identifier, name = call.params["id"], call.params["file"]
        if identifier not in repo.objects or name not in (f"{identifier}.ecar", f"{identifier}-spine.ecar"):
            return html_page(404, "The specified blob does not exist.")
        data = repo.ecar(identifier, call.base_url, "spine" if name.endswith("-spine.ecar") else "full")
        headers = {"Content-Length": str(len(data))}
        if call.method == "HEAD":
            return Response(b"", media_type="application/zip", headers=headers)
        return Response(data, media_type="application/zip")

    add("GET", ECAR_PATH + "/{id}/{file}", serve_ecar, API_ECAR, anchor="root")
