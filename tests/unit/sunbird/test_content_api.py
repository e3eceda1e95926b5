"""content-auto-creator's service calls against a small aiohttp server: paths, headers, bodies, answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.core.errors import PermanentError, TransientError
from cokreat_jobs.sunbird.content_api import (
    ContentApi,
    ContentBusy,
    LinkResult,
    describe,
)

FAST = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=2)


def envelope(result: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "id": "api.test",
        "ver": "4.0",
        "params": {"status": "successful", "err": None, "errmsg": None, **params},
        "responseCode": "OK",
        "result": result or {},
    }


def error(status: int, err: str, errmsg: str, code: str = "CLIENT_ERROR", **result: Any) -> web.Response:
    body = {
        "id": "api.test",
        "ver": "4.0",
        "params": {"status": "failed", "err": err, "errmsg": errmsg},
        "responseCode": code,
        "result": result,
    }
    return web.json_response(body, status=status)


def ok(result: dict[str, Any] | None = None) -> web.Response:
    return web.json_response(envelope(result))


Answer = web.StreamResponse | Callable[[web.Request], Awaitable[web.StreamResponse]]


class Service:
    """Answers a script of responses in order (the last repeats) and records each request."""

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = None
        body = b""
        if request.content_type.startswith("multipart/"):
            form = {k: str(v) for k, v in (await request.post()).items()}
        else:
            body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": orjson.loads(body) if body and request.content_type == "application/json" else None,
                "form": form,
                "content_type": request.content_type,
            }
        )
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, web.StreamResponse):
            assert isinstance(step, web.Response)
            return web.Response(status=step.status, body=step.body, headers=step.headers)
        return await step(request)


async def serve(service: Service) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def make_api(server: TestServer) -> ContentApi:
    base = str(server.make_url(""))
    search = ServiceClient("search", base + "/search", retry=FAST, connect_timeout_s=2, read_timeout_s=5)
    content = ServiceClient("content", base + "/content", retry=FAST, connect_timeout_s=2, read_timeout_s=5)
    return ContentApi(search, content)


def run(service: Service, call: Callable[[ContentApi], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = await serve(service)
        api = make_api(server)
        try:
            return await call(api)
        finally:
            await api.close()
            await server.close()

    return asyncio.run(main())


def headers_of(request: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in request["headers"].items()}


# ------------------------------------------------------------------------------------------------ search


def test_search_by_origin_request_and_answer() -> None:
    svc = Service(ok({"count": 2, "content": [{"identifier": "do_a"}, {"identifier": "do_b"}]}))
    found = run(svc, lambda api: api.search_by_origin("do_src", ["originData"], ["identifier", "status"]))
    assert [c["identifier"] for c in found] == ["do_a", "do_b"]
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("POST", "/search/v3/search")
    assert req["json"] == {
        "request": {
            "filters": {"objectType": "Content", "status": [], "origin": "do_src"},
            "exists": ["originData"],
            "fields": ["identifier", "status"],
        }
    }
    headers = headers_of(req)
    assert headers["content-type"] == "application/json"
    assert "x-channel-id" not in headers
    assert "authorization" not in headers


def test_search_with_no_hits_has_no_content_key() -> None:
    assert run(Service(ok({"count": 0})), lambda api: api.search_by_origin("do_src", [], [])) == []


def test_search_503_is_retried_then_answers() -> None:
    svc = Service(error(503, "ERR", "busy", "SERVER_ERROR"), ok({"count": 0}))
    assert run(svc, lambda api: api.search_by_origin("do_src", [], [])) == []
    assert len(svc.requests) == 2


def test_search_500_every_time_is_transient() -> None:
    svc = Service(error(500, "ERR_SYSTEM_EXCEPTION", "boom", "SERVER_ERROR"))
    with pytest.raises(TransientError):
        run(svc, lambda api: api.search_by_origin("do_src", [], []))
    assert len(svc.requests) == 3


def test_search_400_is_permanent() -> None:
    with pytest.raises(PermanentError, match="ERR_BAD_REQUEST: bad limit"):
        run(
            Service(error(400, "ERR_BAD_REQUEST", "bad limit")), lambda api: api.search_by_origin("x", [], [])
        )


# -------------------------------------------------------------------------------------------------- read


def test_read_request_and_image_identifier() -> None:
    svc = Service(ok({"content": {"identifier": "do_a.img", "versionKey": "123", "status": "Draft"}}))
    content = run(svc, lambda api: api.read("do_a", "ch_1"))
    assert content["versionKey"] == "123"
    (req,) = svc.requests
    assert (req["method"], req["path"], req["query"]) == (
        "GET",
        "/content/content/v4/read/do_a",
        {"mode": "edit"},
    )
    headers = headers_of(req)
    assert headers["x-channel-id"] == "ch_1"
    assert headers["content-type"] == "application/json"


def test_read_of_unknown_content_is_none() -> None:
    svc = Service(error(404, "NOT_FOUND", "Error! Node(s) doesn't Exists.", "RESOURCE_NOT_FOUND"))
    assert run(svc, lambda api: api.read("do_x", "ch")) is None


def test_read_answering_another_content_fails() -> None:
    with pytest.raises(PermanentError, match="another content"):
        run(Service(ok({"content": {"identifier": "do_b"}})), lambda api: api.read("do_a", "ch"))


def test_read_of_html_gateway_page_is_retried_then_transient() -> None:
    page = web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")
    with pytest.raises(TransientError, match="HTTP 502"):
        run(Service(page), lambda api: api.read("do_a", "ch"))


# ------------------------------------------------------------------------------------------------ create


def test_create_request_and_answer() -> None:
    svc = Service(ok({"identifier": "do_a", "node_id": "do_a", "versionKey": "1"}))
    content = {"name": "n", "identifier": "do_a", "originData": {"identifier": "do_a", "repository": "r"}}
    result = run(svc, lambda api: api.create(content, "ch_1"))
    assert (result.identifier, result.existed) == ("do_a", False)
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("POST", "/content/content/v4/create")
    assert req["json"] == {"request": {"content": content}}
    assert headers_of(req)["x-channel-id"] == "ch_1"
    assert headers_of(req)["content-type"] == "application/json"


def test_create_of_existing_content_continues_with_it() -> None:
    svc = Service(error(400, "CONSTRAINT_VALIDATION_FAILED", "Object already exists with identifier: do_a"))
    result = run(svc, lambda api: api.create({"identifier": "do_a"}, "ch"))
    assert (result.identifier, result.existed) == ("do_a", True)


def test_create_validation_error_quotes_the_messages() -> None:
    svc = Service(error(400, "CLIENT_ERROR", "Validation Errors", messages=["name should be at least 5"]))
    with pytest.raises(PermanentError) as info:
        run(svc, lambda api: api.create({"identifier": "do_a"}, "ch"))
    assert "Validation Errors | name should be at least 5" in str(info.value)


# ---------------------------------------------------------------------------------------- update, upload


def test_update_returns_the_raw_answer() -> None:
    svc = Service(error(400, "CLIENT_ERROR", "Invalid version Key"))
    resp = run(svc, lambda api: api.update("do_a", {"versionKey": "1", "x": 2}, "ch"))
    assert resp.status == 400 and resp.errmsg == "Invalid version Key"
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("PATCH", "/content/content/v4/update/do_a")
    assert req["json"] == {"request": {"content": {"versionKey": "1", "x": 2}}}


def test_upload_is_multipart_with_channel_only() -> None:
    svc = Service(ok({"identifier": "do_a", "artifactUrl": "https://cdn/a.zip"}))
    artifact = run(svc, lambda api: api.upload("do_a", "https://cdn/a.zip", "ch_1", "composed-h5p-zip"))
    assert artifact == "https://cdn/a.zip"
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("POST", "/content/content/v4/upload/do_a")
    assert req["query"] == {"validation": "false", "fileFormat": "composed-h5p-zip"}
    assert req["content_type"] == "multipart/form-data"
    assert req["form"] == {"fileUrl": "https://cdn/a.zip"}
    headers = headers_of(req)
    assert headers["x-channel-id"] == "ch_1"
    assert headers["content-type"].startswith("multipart/form-data")


def test_upload_without_file_format() -> None:
    svc = Service(ok({"identifier": "do_a"}))
    assert run(svc, lambda api: api.upload("do_a", "https://cdn/a.pdf", "ch")) == ""
    assert svc.requests[0]["query"] == {"validation": "false"}


def test_upload_refused() -> None:
    svc = Service(error(400, "ERR_INVALID_FILE_URL", "Please Provide Valid File Url!"))
    with pytest.raises(PermanentError, match="Please Provide Valid File Url!"):
        run(svc, lambda api: api.upload("do_a", "http://localhost/a.pdf", "ch"))


def test_html_error_page_is_described() -> None:
    page = web.Response(status=500, text="<html><body>Internal error</body></html>", content_type="text/html")
    with pytest.raises(TransientError):
        run(Service(page), lambda api: api.upload("do_a", "x", "ch"))


# -------------------------------------------------------------------------------------- review, publish


def test_review_request() -> None:
    svc = Service(ok({"identifier": "do_a"}))
    run(svc, lambda api: api.review("do_a", "ch_1"))
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("POST", "/content/content/v4/review/do_a")
    assert req["json"] == {"request": {"content": {}}}
    assert headers_of(req)["x-channel-id"] == "ch_1"
    assert headers_of(req)["content-type"] == "application/json"


def test_review_while_processing_is_busy() -> None:
    svc = Service(error(400, "ERR_NODE_ACCESS_DENIED", "Content is being processed"))
    with pytest.raises(ContentBusy):
        run(svc, lambda api: api.review("do_a", "ch"))


def test_review_without_artifact_is_permanent() -> None:
    svc = Service(error(400, "VALIDATOR_ERROR", "Please upload the artifact"))
    with pytest.raises(PermanentError) as info:
        run(svc, lambda api: api.review("do_a", "ch"))
    assert not isinstance(info.value, ContentBusy)


def test_publish_request_and_status() -> None:
    svc = Service(ok({"publishStatus": "Publish Event for Content Id 'do_a' is pushed Successfully!"}))
    assert run(svc, lambda api: api.publish("do_a", "user_1", "ch_1")).startswith("Publish Event")
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("POST", "/content/content/v4/publish/do_a")
    assert req["json"] == {"request": {"content": {"lastPublishedBy": "user_1"}}}
    assert headers_of(req)["x-channel-id"] == "ch_1"


def test_publish_without_publish_status_fails() -> None:
    with pytest.raises(PermanentError, match="no publishStatus"):
        run(Service(ok({"node_id": "do_a"})), lambda api: api.publish("do_a", "u", "ch"))


def test_publish_blank_publisher() -> None:
    svc = Service(error(400, "ERR_CONTENT_BLANK_PUBLISHER", "Publisher User Id is blank"))
    with pytest.raises(PermanentError, match="ERR_CONTENT_BLANK_PUBLISHER"):
        run(svc, lambda api: api.publish("do_a", "", "ch"))


def test_system_update_request() -> None:
    svc = Service(ok({"identifier": "do_a", "status": "success"}))
    run(svc, lambda api: api.system_update("do_a", {"status": "Failed", "importError": "boom"}, "ch_1"))
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("PATCH", "/content/content/v4/system/update/do_a")
    assert req["json"] == {"request": {"content": {"status": "Failed", "importError": "boom"}}}
    assert headers_of(req)["x-channel-id"] == "ch_1"
    assert headers_of(req)["content-type"] == "application/json"


# ------------------------------------------------------------------------------------------- hierarchy


def test_hierarchy_child_nodes() -> None:
    svc = Service(ok({"content": {"identifier": "do_c", "childNodes": ["do_u1", "do_u2", 3]}}))
    assert run(svc, lambda api: api.hierarchy_child_nodes("do_c")) == ["do_u1", "do_u2"]
    (req,) = svc.requests
    assert (req["method"], req["path"], req["query"]) == (
        "GET",
        "/content/content/v3/hierarchy/do_c",
        {"mode": "edit"},
    )
    headers = headers_of(req)
    assert headers["content-type"] == "application/json"
    assert "x-channel-id" not in headers


def test_hierarchy_of_unknown_collection_is_none() -> None:
    svc = Service(error(404, "RESOURCE_NOT_FOUND", "rootId do_c does not exist", "RESOURCE_NOT_FOUND"))
    assert run(svc, lambda api: api.hierarchy_child_nodes("do_c")) is None


def test_hierarchy_add_request() -> None:
    svc = Service(ok({"rootId": "do_c", "do_u": ["do_a"]}))
    assert run(svc, lambda api: api.hierarchy_add("do_c", "do_u", ["do_a"])) == LinkResult.ADDED
    (req,) = svc.requests
    assert (req["method"], req["path"]) == ("PATCH", "/content/content/v3/hierarchy/add")
    assert req["json"] == {"request": {"rootId": "do_c", "unitId": "do_u", "children": ["do_a"]}}
    headers = headers_of(req)
    assert headers["content-type"] == "application/json"
    assert "x-channel-id" not in headers


def test_hierarchy_add_missing_unit_and_collection() -> None:
    unit = Service(error(404, "RESOURCE_NOT_FOUND", "unitId do_u does not exist", "RESOURCE_NOT_FOUND"))
    assert run(unit, lambda api: api.hierarchy_add("do_c", "do_u", ["do_a"])) == LinkResult.UNIT_MISSING
    root = Service(error(404, "NOT_FOUND", "Error! Node(s) doesn't Exists.", "RESOURCE_NOT_FOUND"))
    assert run(root, lambda api: api.hierarchy_add("do_c", "do_u", ["do_a"])) == LinkResult.COLLECTION_MISSING


def test_hierarchy_add_invalid_children_is_permanent() -> None:
    svc = Service(error(400, "ERR_INVALID_CHILDREN", "Invalid Children objectType"))
    with pytest.raises(PermanentError, match="ERR_INVALID_CHILDREN"):
        run(svc, lambda api: api.hierarchy_add("do_c", "do_u", ["do_q"]))


def test_ids_are_one_path_segment() -> None:
    svc = Service(error(404, "NOT_FOUND", "x", "RESOURCE_NOT_FOUND"))
    run(svc, lambda api: api.read("do_a/../x?y", "ch"))
    assert svc.requests[0]["path"] == "/content/content/v4/read/do_a/../x?y"
    assert svc.requests[0]["query"] == {"mode": "edit"}


def test_on_retry_is_told_of_each_retry() -> None:
    seen: list[tuple[int, str]] = []
    svc = Service(error(503, "E", "busy", "SERVER_ERROR"), ok({"count": 0}))

    async def call(api: ContentApi) -> Any:
        api.on_retry = lambda attempt, reason: seen.append((attempt, reason))
        return await api.search_by_origin("x", [], [])

    run(svc, call)
    assert len(seen) == 1 and seen[0][0] == 1 and "503" in seen[0][1]


def test_describe() -> None:
    from cokreat_jobs.core.response import HttpResponse

    resp = HttpResponse(400, {}, orjson.dumps({"params": {"err": "E1", "errmsg": "bad"}, "result": {}}))
    assert describe(resp) == "HTTP 400 E1: bad"
    assert (
        describe(HttpResponse(502, {}, b"<html> gateway </html>"))
        == "HTTP 502 (not JSON: <html> gateway </html>)"
    )
    assert describe(HttpResponse(500, {}, b"")) == "HTTP 500"
