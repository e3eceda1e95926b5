"""content-service v4: create, read, update, upload, review, publish and system update of Content.

State follows the real service: a content is created Draft without `pkgVersion`; `versionKey` (epoch ms of
the last write) changes on every write and guards updates; editing a Live, Unlisted or Flagged content
creates and edits a Draft image `<id>.img`, which `read?mode=edit` returns under the content's identifier;
publish is asynchronous (publisher.py). Checks run in the service's order, so the first error a request meets
is the one the real service answers (e.g. publish checks the publisher before the id).
"""

from __future__ import annotations

import io
import ipaddress
import re
import time
import zipfile
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox import content_schema as schema
from cokreat_jobs.dev.sandbox.admin import inspect_route
from cokreat_jobs.dev.sandbox.envelope import Api, json_response, kp_timestamp, ok
from cokreat_jobs.dev.sandbox.files import Storage
from cokreat_jobs.dev.sandbox.multipart import parse_multipart
from cokreat_jobs.dev.sandbox.nodes import NodeStore, base_id, base_object_type, image_id
from cokreat_jobs.dev.sandbox.publisher import Publisher
from cokreat_jobs.dev.sandbox.router import ApiError, Call, HtmlFailure
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError

API_CREATE = Api("api.content.create", "4.0")
API_READ = Api("api.content.read", "4.0")
API_UPDATE = Api("api.content.update", "4.0")
API_UPLOAD = Api("api.content.upload", "4.0")
API_REVIEW = Api("api.content.review", "4.0")
API_PUBLISH = Api("api.content.publish", "4.0")
API_SYSTEM_UPDATE = Api("api.content.system.update", "4.0")

MAX_PACKAGE_BYTES = 200 * 1024 * 1024
SYSTEM_PROPS_IGNORED_ON_UPDATE = ("identifier", "objectType", "versionKey")


def not_found(identifier: str) -> ApiError:
    return ApiError(
        404,
        "NOT_FOUND",
        f"Error! Node(s) doesn't Exists. | [Invalid Node Id.]: {identifier}",
        response_code="RESOURCE_NOT_FOUND",
    )


def normalise_origin_data(metadata: dict[str, Any]) -> None:
    """originData is stored as an object; a JSON string (as auto-creator-v2 and seeds may send) is parsed."""
    value = metadata.get("originData")
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if isinstance(parsed, dict):
            metadata["originData"] = parsed


def present(metadata: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
    """A node as the read API returns it: identifier without `.img`, originData as an object."""
    out = dict(metadata)
    out["identifier"] = base_id(str(metadata["identifier"]))
    normalise_origin_data(out)
    if fields:
        keep = set(fields) | {"identifier"}
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _valid_file_url(url: str, mime: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # Not an IP: the service's URL validator wants a domain with a top-level part.
        if host == "localhost" or "." not in host.strip("."):
            return False
    extensions = schema.URL_EXTENSIONS.get(mime)
    return extensions is None or url.lower().endswith(extensions)


def _file_name(url: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "artifact"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


class ContentService:
    def __init__(self, sandbox: Sandbox, nodes: NodeStore, storage: Storage, publisher: Publisher) -> None:
        self.sandbox = sandbox
        self.nodes = nodes
        self.storage = storage
        self.publisher = publisher

    # -- node helpers -------------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def index_time(self) -> int:
        return self.now_ms() + self.sandbox.settings.search_index_delay_ms

    def require(self, identifier: str) -> dict[str, Any]:
        node = self.nodes.lookup(identifier)
        if node is None:
            raise not_found(identifier)
        return node

    def edit_target(self, identifier: str) -> tuple[dict[str, Any], bool]:
        """The node an edit applies to (a copy) and whether it is a new image to be created."""
        node = self.require(identifier)
        image = self.nodes.get(image_id(identifier))
        if image is not None:
            return dict(image), False
        if node.get("status") in schema.IMAGE_ON_EDIT:
            image = dict(node)
            image.update(
                identifier=image_id(identifier),
                objectType=base_object_type(str(node.get("objectType", "Content"))) + "Image",
                status="Draft",
                prevStatus=node.get("status"),
            )
            return image, True
        return dict(node), False

    def write(self, metadata: dict[str, Any], new: bool) -> str:
        """Store an edited node with a fresh versionKey; answers the key."""
        version_key = self.nodes.next_version_key()
        metadata["versionKey"] = version_key
        metadata["lastUpdatedOn"] = kp_timestamp()
        self.nodes.put(metadata, self.index_time() if new else None)
        return version_key

    # -- create -------------------------------------------------------------------------------------------

    def create(self, call: Call) -> Response:
        content = call.request_object().get("content")
        if not isinstance(content, dict):
            raise ApiError(400, "ERR_INVALID_REQUEST", "Invalid Request! request.content is missing.")
        if "contentType" in content:
            raise ApiError(400, "VALIDATION_ERROR", "contentType cannot be set from request.")
        if not content.get("primaryCategory"):
            raise ApiError(400, "VALIDATION_ERROR", "primaryCategory is a mandatory parameter")
        restricted = [p for p in schema.RESTRICTED_ON_CREATE if p in content]
        if restricted:
            raise ApiError(
                400,
                "ERROR_RESTRICTED_PROP",
                f"Properties in list [{', '.join(restricted)}] are not allowed in request",
            )
        identifier = content.get("identifier")
        if not isinstance(identifier, str) or not identifier.strip():
            identifier = f"do_{self.now_ms()}{time.perf_counter_ns() % 100_000_000:08d}"
        identifier = base_id(identifier.strip())
        now = kp_timestamp()
        metadata: dict[str, Any] = {**schema.DEFAULTS, **content}
        metadata.pop("versionKey", None)
        channel = call.header("x-channel-id")
        if channel:
            metadata["channel"] = channel
        metadata.update(
            identifier=identifier,
            objectType=schema.object_type_for(metadata),
            contentType=schema.content_type_for(metadata.get("primaryCategory")),
            createdOn=now,
            lastStatusChangedOn=now,
        )
        normalise_origin_data(metadata)
        messages = schema.validate(metadata)
        if messages:
            raise ApiError(400, "CLIENT_ERROR", "Validation Errors", result={"messages": messages})
        if self.nodes.lookup(identifier) is not None or self.nodes.get(image_id(identifier)) is not None:
            raise ApiError(
                400, "CONSTRAINT_VALIDATION_FAILED", f"Object already exists with identifier: {identifier}"
            )
        version_key = self.write(metadata, new=True)
        return ok(API_CREATE, {"identifier": identifier, "node_id": identifier, "versionKey": version_key})

    # -- read ---------------------------------------------------------------------------------------------

    def read(self, call: Call) -> Response:
        identifier = base_id(call.params["id"])
        node = self.require(identifier)
        if call.query.get("mode") == "edit":
            node = self.nodes.get(image_id(identifier)) or node
        if node.get("visibility") == "Private":
            raise ApiError(400, "ERR_ACCESS_DENIED", "content visibility is private, hence access denied")
        fields = [f.strip() for f in call.query.get("fields", "").split(",") if f.strip()]
        return ok(API_READ, {"content": present(node, fields or None)})

    # -- update -------------------------------------------------------------------------------------------

    def update(self, call: Call) -> Response:
        identifier = base_id(call.params["id"])
        content = call.request_object().get("content")
        if not isinstance(content, dict):
            raise ApiError(400, "ERR_INVALID_REQUEST", "Invalid Request! request.content is missing.")
        version_key = content.get("versionKey")
        if not isinstance(version_key, str) or not version_key.strip():
            raise ApiError(400, "ERR_INVALID_REQUEST", "Please Provide Version Key!")
        target, new_image = self.edit_target(identifier)
        if not new_image and version_key != target.get("versionKey"):
            raise ApiError(400, "CLIENT_ERROR", "Invalid version Key")
        for key, value in content.items():
            if key in SYSTEM_PROPS_IGNORED_ON_UPDATE:
                continue
            if value is None:
                target.pop(key, None)  # the service removes a property set to null
            else:
                target[key] = value
        normalise_origin_data(target)
        messages = schema.validate(target, keys=set(content))
        if messages:
            raise ApiError(400, "CLIENT_ERROR", "Validation Errors", result={"messages": messages})
        new_key = self.write(target, new=new_image)
        return ok(API_UPDATE, {"identifier": identifier, "node_id": identifier, "versionKey": new_key})

    # -- upload -------------------------------------------------------------------------------------------

    async def upload(self, call: Call) -> Response:
        # Play rejects these before the controller runs: its HTML error page, for any id.
        if not call.content_type.lower().startswith("multipart/form-data"):
            raise HtmlFailure(500, "Unexpected exception: the upload request is not multipart/form-data")
        form = parse_multipart(call.content_type, call.body)
        if form is None:
            raise HtmlFailure(500, "Unexpected exception: malformed multipart body")
        upload = form.files.get("file")
        file_url = (form.fields.get("fileUrl") or "").strip()
        if upload is None and not file_url:
            raise HtmlFailure(500, "Unexpected exception: Please Provide Valid File Or File Url!")
        identifier = base_id(call.params["id"])
        target, _ = self.edit_target(identifier)
        mime = str(target.get("mimeType", ""))
        composed = call.query.get("fileFormat") == "composed-h5p-zip"

        changes: dict[str, Any]
        if upload is not None:
            self._check_package(mime, upload.data, composed)
            relative = f"content/{identifier}/artifact/{self.now_ms()}_{_file_name(upload.filename)}"
            self.storage.write(relative, upload.data)
            url = self.storage.url(call.base_url, relative)
            changes = {"artifactUrl": url, "size": len(upload.data)}
            if mime not in schema.PACKAGE_ENTRY:
                changes["downloadUrl"] = url
        elif not _valid_file_url(file_url, mime):
            raise ApiError(400, "ERR_INVALID_FILE_URL", "Please Provide Valid File Url!")
        elif mime in schema.PACKAGE_ENTRY:
            data = await self._download(call, file_url)
            self._check_package(mime, data, composed)
            relative = f"content/{identifier}/artifact/{self.now_ms()}_{_file_name(file_url)}"
            self.storage.write(relative, data)
            url = self.storage.url(call.base_url, relative)
            changes = {"artifactUrl": url, "size": len(data)}
        elif mime in schema.NO_HEAD_MIMES:
            url = file_url
            changes = {"artifactUrl": url}
        else:
            size = await self._head(call, file_url)
            url = file_url
            changes = {"artifactUrl": url, "downloadUrl": url}
            if size is not None:
                changes["size"] = size

        # Re-read after the network calls: another request may have written the node meanwhile.
        target, new_image = self.edit_target(identifier)
        target.update(changes)
        version_key = self.write(target, new=new_image)
        return ok(
            API_UPLOAD,
            {
                "identifier": identifier,
                "node_id": identifier,
                "artifactUrl": url,
                "content_url": url,
                "versionKey": version_key,
            },
        )

    async def _head(self, call: Call, url: str) -> int | None:
        try:
            async with self.sandbox.http().head(url, allow_redirects=True) as response:
                if response.status >= 400:
                    raise ApiError(
                        400,
                        "ERR_API_CALL",
                        f"Invalid Response Received While Making HEAD Call For Url: {url}",
                    )
                return response.content_length
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                500, "ERR_API_CALL", f"Error While Making HEAD Call For Url: {url} ({exc})"
            ) from exc

    async def _download(self, call: Call, url: str) -> bytes:
        try:
            async with self.sandbox.http().get(url, allow_redirects=True) as response:
                if response.status >= 400:
                    raise ApiError(
                        400, "ERR_API_CALL", f"Invalid Response Received While Downloading Url: {url}"
                    )
                data = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > MAX_PACKAGE_BYTES:
                        raise ApiError(400, "ERR_INVALID_FILE", "Please Provide Valid File!")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(500, "ERR_API_CALL", f"Error While Downloading Url: {url} ({exc})") from exc

    @staticmethod
    def _check_package(mime: str, data: bytes, composed: bool) -> None:
        entry = schema.PACKAGE_ENTRY.get(mime)
        if entry is None:
            return
        if mime == schema.H5P_MIME and composed:
            entry = "content/h5p.json"
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError) as exc:
            raise ApiError(400, "ERR_INVALID_FILE", "Please Provide Valid File!") from exc
        if entry not in names:
            raise ApiError(400, "ERR_INVALID_FILE", "Please Provide Valid File!")

    # -- review / publish ---------------------------------------------------------------------------------

    @staticmethod
    def _check_publishable(target: dict[str, Any], operation: str) -> None:
        if target.get("status") == "Processing":
            raise ApiError(
                400,
                "ERR_NODE_ACCESS_DENIED",
                f"{operation} Operation Can't Be Applied On Node Under Processing State",
            )
        if target.get("mimeType") != schema.COLLECTION_MIME and not target.get("artifactUrl"):
            raise ApiError(400, "VALIDATOR_ERROR", "Either artifactUrl is missing or invalid!")

    def review(self, call: Call) -> Response:
        identifier = base_id(call.params["id"])
        target, new_image = self.edit_target(identifier)
        self._check_publishable(target, "Review")
        target["status"] = "Review"
        target["lastStatusChangedOn"] = kp_timestamp()
        version_key = self.write(target, new=new_image)
        return ok(API_REVIEW, {"identifier": identifier, "node_id": identifier, "versionKey": version_key})

    def publish(self, call: Call) -> Response:
        content = call.request_object().get("content")
        published_by = content.get("lastPublishedBy") if isinstance(content, dict) else None
        if not isinstance(published_by, str) or not published_by.strip():
            raise ApiError(400, "ERR_CONTENT_BLANK_PUBLISHER", "Publisher User Id is blank")
        identifier = base_id(call.params["id"])
        node = self.require(identifier)
        image = self.nodes.get(image_id(identifier))
        self._check_publishable(image or node, "Publish")
        node_id = image_id(identifier) if image is not None else identifier
        self.publisher.enqueue(identifier, published_by, call.base_url)
        return ok(
            API_PUBLISH,
            {
                "publishStatus": f"Publish Event for Content Id '{node_id}' is pushed Successfully!",
                "node_id": node_id,
            },
        )

    # -- system update ------------------------------------------------------------------------------------

    def system_update(self, call: Call) -> Response:
        identifier = base_id(call.params["id"])
        content = call.request_object().get("content")
        content = content if isinstance(content, dict) else {}
        # Play merges these headers into the request map, so they count as content for the empty check.
        has_headers = any(call.header(h) for h in ("x-channel-id", "x-consumer-id", "x-app-id"))
        if not content and not has_headers:
            raise ApiError(400, "ERR_BAD_REQUEST", "Request cannot be empty")
        if content.get("status") in ("Live", "Unlisted"):
            raise ApiError(400, "ERR_BAD_REQUEST", f"Cannot update content status to : {content['status']}.")
        if "screenshots" in content:
            raise ApiError(
                400, "ERR_BAD_REQUEST", "Properties in list [screenshots] are not allowed in request"
            )
        node = self.nodes.lookup(identifier)
        if node is None:
            raise ApiError(
                400, "RESOURCE_NOT_FOUND", f"Error! Node(s) doesn't Exists with identifier : {identifier}."
            )
        changes = {k: v for k, v in content.items() if k not in ("identifier", "objectType", "versionKey")}
        for target_id in (identifier, image_id(identifier)):
            target = self.nodes.get(target_id) if target_id != identifier else node
            if target is None:
                continue
            updated = {**target, **changes}
            normalise_origin_data(updated)
            if "status" in changes:
                updated["lastStatusChangedOn"] = kp_timestamp()
            self.write(updated, new=False)
        return ok(API_SYSTEM_UPDATE, {"identifier": identifier, "status": "success"})

    # -- seeding ------------------------------------------------------------------------------------------

    def seed_contents(self, items: list[Any]) -> int:
        prepared = []
        for item in items:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("identifier"), str)
                or not item["identifier"]
            ):
                raise SeedError(f"a content is an object with an identifier: {item!r}")
            metadata = dict(item)
            metadata.setdefault("objectType", "Content")
            metadata.setdefault("status", "Draft")
            metadata.setdefault("versionKey", self.nodes.next_version_key())
            metadata.setdefault("createdOn", kp_timestamp())
            normalise_origin_data(metadata)
            prepared.append(metadata)
        now = self.now_ms()
        for metadata in prepared:
            # Seeded contents existed before the test: already visible to search.
            self.nodes.put(metadata, now)
        return len(prepared)

    def seed_publish_failures(self, items: list[Any]) -> int:
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("identifier"), str):
                raise SeedError(f"a publish failure is {{identifier, error}}: {item!r}")
        for item in items:
            self.publisher.fail_next(item["identifier"], str(item.get("error") or "Publish failed"))
        return len(items)


def register(sandbox: Sandbox) -> None:
    nodes = NodeStore(sandbox.db)
    storage: Storage = sandbox.services["storage"]
    publisher = Publisher(sandbox.db, nodes, storage, sandbox.settings.publish_delay_ms)
    service = ContentService(sandbox, nodes, storage, publisher)
    sandbox.services.update(nodes=nodes, publisher=publisher, content=service)
    sandbox.on_startup(publisher.resume)
    sandbox.on_shutdown(publisher.cancel_all)
    sandbox.on_reset(publisher.clear)
    sandbox.on_reset(nodes.clear)
    sandbox.add_seed_kind("contents", service.seed_contents)
    sandbox.add_seed_kind("publish_failures", service.seed_publish_failures)

    def sync(handler: Any) -> Any:
        async def run(call: Call) -> Response:
            result: Response = handler(call)
            return result

        return run

    add = sandbox.router.add
    add("POST", "/content/v4/create", sync(service.create), API_CREATE)
    add("GET", "/content/v4/read/{id}", sync(service.read), API_READ)
    add("PATCH", "/content/v4/update/{id}", sync(service.update), API_UPDATE)
    add("POST", "/content/v4/upload/{id}", service.upload, API_UPLOAD)
    add("POST", "/content/v4/review/{id}", sync(service.review), API_REVIEW)
    add("POST", "/content/v4/publish/{id}", sync(service.publish), API_PUBLISH)
    add("PATCH", "/content/v4/system/update/{id}", sync(service.system_update), API_SYSTEM_UPDATE)

    async def inspect_node(call: Call) -> Response:
        node = nodes.get(call.params["id"])
        if node is None:
            return json_response({"error": "no such node"}, 404)
        return json_response(node)

    inspect_route(sandbox, "GET", "/_sandbox/nodes/{id}", inspect_node)
