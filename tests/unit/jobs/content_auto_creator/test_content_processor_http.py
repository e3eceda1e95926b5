"""The processor built from configuration, over real HTTP: a small stand-in for search and content-service
that also serves the artifact, and local cloud storage. Checks the wiring (clients, headers, storage paths,
temp files) end to end in one process.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.jobs.content_auto_creator.job import DEFINITION, content_key
from cokreat_jobs.jobs.content_auto_creator.processor import ContentAutoCreator


def ok(result: dict[str, Any]) -> web.Response:
    return web.json_response({"responseCode": "OK", "params": {"status": "successful"}, "result": result})


def fail(status: int, err: str, errmsg: str) -> web.Response:
    body = {"responseCode": "CLIENT_ERROR", "params": {"status": "failed", "err": err, "errmsg": errmsg}}
    return web.json_response(body | {"result": {}}, status=status)


class StandIn:
    """Just enough of search and content-service for the steps, with the headers each call must carry."""

    def __init__(self) -> None:
        self.contents: dict[str, dict[str, Any]] = {}
        self.units = {"do_coll": ["do_unit"]}
        self.links: list[tuple[str, str, list[str]]] = []
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.files: dict[str, bytes] = {"/src/lesson.pdf": b"%PDF-1.4 lesson"}

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/search/v3/search", self.search)
        r.add_post("/content/content/v4/create", self.create)
        r.add_get("/content/content/v4/read/{id}", self.read)
        r.add_patch("/content/content/v4/update/{id}", self.update)
        r.add_post("/content/content/v4/upload/{id}", self.upload)
        r.add_post("/content/content/v4/review/{id}", self.review)
        r.add_post("/content/content/v4/publish/{id}", self.publish)
        r.add_patch("/content/content/v4/system/update/{id}", self.system_update)
        r.add_get("/content/content/v3/hierarchy/{id}", self.hierarchy)
        r.add_patch("/content/content/v3/hierarchy/add", self.hierarchy_add)
        r.add_get("/src/{name}", self.file)
        return app

    def _record(self, request: web.Request) -> None:
        headers = {
            k.lower(): v for k, v in request.headers.items() if k.lower() in ("x-channel-id", "content-type")
        }
        self.log.append((request.method, request.path, headers))

    async def search(self, request: web.Request) -> web.Response:
        self._record(request)
        filters = (await request.json())["request"]["filters"]
        hits = [
            {**c, "originData": orjson.dumps(c["originData"]).decode()}
            for c in self.contents.values()
            if c.get("origin") == filters["origin"]
        ]
        return ok({"count": len(hits), **({"content": hits} if hits else {})})

    async def create(self, request: web.Request) -> web.Response:
        self._record(request)
        content = (await request.json())["request"]["content"]
        if content["identifier"] in self.contents:
            return fail(
                400,
                "CONSTRAINT_VALIDATION_FAILED",
                f"Object already exists with identifier: {content['identifier']}",
            )
        self.contents[content["identifier"]] = {**content, "status": "Draft", "versionKey": "1"}
        return ok({"identifier": content["identifier"], "versionKey": "1"})

    async def read(self, request: web.Request) -> web.Response:
        self._record(request)
        content = self.contents.get(request.match_info["id"])
        if content is None:
            return fail(404, "NOT_FOUND", "Error! Node(s) doesn't Exists.")
        return ok({"content": content})

    async def update(self, request: web.Request) -> web.Response:
        self._record(request)
        content = self.contents[request.match_info["id"]]
        fields = (await request.json())["request"]["content"]
        if fields.pop("versionKey") != content["versionKey"]:
            return fail(400, "CLIENT_ERROR", "Invalid version Key")
        content.update(fields, versionKey=str(int(content["versionKey"]) + 1))
        return ok({"identifier": content["identifier"]})

    async def upload(self, request: web.Request) -> web.Response:
        self._record(request)
        form = await request.post()
        content = self.contents[request.match_info["id"]]
        content["artifactUrl"] = str(form["fileUrl"])
        return ok({"identifier": content["identifier"], "artifactUrl": content["artifactUrl"]})

    async def review(self, request: web.Request) -> web.Response:
        self._record(request)
        self.contents[request.match_info["id"]]["status"] = "Review"
        return ok({"identifier": request.match_info["id"]})

    async def publish(self, request: web.Request) -> web.Response:
        self._record(request)
        body = await request.json()
        content = self.contents[request.match_info["id"]]
        content.update(
            status="Live", pkgVersion=1, lastPublishedBy=body["request"]["content"]["lastPublishedBy"]
        )
        status = f"Publish Event for Content Id '{content['identifier']}' is pushed Successfully!"
        return ok({"publishStatus": status})

    async def system_update(self, request: web.Request) -> web.Response:
        self._record(request)
        self.contents[request.match_info["id"]].update((await request.json())["request"]["content"])
        return ok({"identifier": request.match_info["id"], "status": "success"})

    async def hierarchy(self, request: web.Request) -> web.Response:
        self._record(request)
        units = self.units.get(request.match_info["id"])
        if units is None:
            return fail(404, "RESOURCE_NOT_FOUND", "rootId does not exist")
        return ok({"content": {"identifier": request.match_info["id"], "childNodes": units}})

    async def hierarchy_add(self, request: web.Request) -> web.Response:
        self._record(request)
        body = (await request.json())["request"]
        self.links.append((body["rootId"], body["unitId"], body["children"]))
        return ok({"rootId": body["rootId"], body["unitId"]: body["children"]})

    async def file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.path)
        return web.Response(body=data) if data is not None else web.Response(status=404)


def event(artifact: str, **edata: Any) -> dict[str, Any]:
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1",
        "context": {"channel": "ch_1"},
        "object": {"id": "do_src_9"},
        "edata": {
            "action": "auto-create",
            "objectType": "Content",
            "repository": "https://source.test/do_src_9",
            "metadata": {
                "name": "Lesson one",
                "code": "l1",
                "mimeType": "application/pdf",
                "primaryCategory": "Learning Resource",
                "artifactUrl": artifact,
                "lastPublishedBy": "user_7",
            },
            "collection": [{"identifier": "do_coll", "unitId": "do_unit"}],
            **edata,
        },
    }


def run_job(tmp_path: Path, artifact: str, times: int = 1, **extra: Any) -> tuple[StandIn, list[Any]]:
    """Runs ``times`` events whose artifact URL is ``artifact`` with ``{base}`` the stand-in's URL."""

    async def main() -> tuple[StandIn, list[Any]]:
        stand_in = StandIn()
        server = TestServer(stand_in.app(), host="127.0.0.1")
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}"
        cfg = JobConfig(
            {
                "service": {
                    "search": {"basePath": f"{base}/search"},
                    "content_service": {"basePath": f"{base}/content"},
                },
                "content_auto_creator": {"temp_file_location": str(tmp_path / "tmp"), **extra},
                "cloud_storage_type": "local",
                "cloud_storage": {
                    "local": {"path": str(tmp_path / "storage")},
                    "public_base_url": "https://cdn.test/files",
                    "folder": {"content": "content", "artifact": "artifact"},
                },
                "http": {
                    "allow_private_networks": [f"127.0.0.1:{server.port}"],
                    "retry": {"max_attempts": 2, "backoff_ms": 1},
                },
            },
            job="content-auto-creator",
        )
        processor = DEFINITION.processor_factory(cfg, _Metrics())
        assert isinstance(processor, ContentAutoCreator)
        try:
            outcomes = [await processor.process(event(artifact.format(base=base))) for _ in range(times)]
        finally:
            await processor.close()
            await server.close()
        return stand_in, outcomes

    return asyncio.run(main())


class _Metrics:
    def inc(self, name: str, n: int = 1) -> None:
        pass


def test_the_whole_job_over_http(tmp_path: Path) -> None:
    stand_in, outcomes = run_job(tmp_path, "{base}/src/lesson.pdf")
    (outcome,) = outcomes
    assert outcome.is_success, outcome
    content = stand_in.contents["do_src_9"]
    assert content["status"] == "Live"
    assert content["artifactUrl"] == "https://cdn.test/files/content/do_src_9/artifact/lesson.pdf"
    assert content["origin"] == "do_src_9"
    assert content["originData"] == {"identifier": "do_src_9", "repository": "https://source.test/do_src_9"}
    assert (tmp_path / "storage/content/do_src_9/artifact/lesson.pdf").read_bytes() == b"%PDF-1.4 lesson"
    assert stand_in.links == [("do_coll", "do_unit", ["do_src_9"])]
    assert list((tmp_path / "tmp").iterdir()) == []

    channel_json = {"x-channel-id": "ch_1", "content-type": "application/json"}
    json_only = {"content-type": "application/json"}
    calls = [(m, p.split("/")[-1] if "/v4/" in p else p, h) for m, p, h in stand_in.log]
    assert calls[0] == ("POST", "/search/v3/search", json_only)
    assert calls[1] == ("POST", "create", channel_json)
    assert calls[2] == ("GET", "do_src_9", channel_json)
    assert calls[3] == ("PATCH", "do_src_9", channel_json)
    method, _, headers = calls[4]
    assert method == "POST" and headers["x-channel-id"] == "ch_1"
    assert headers["content-type"].startswith("multipart/form-data")
    assert calls[5] == ("POST", "do_src_9", channel_json)
    assert calls[6] == ("POST", "do_src_9", channel_json)
    assert calls[7] == ("GET", "/content/content/v3/hierarchy/do_coll", json_only)
    assert calls[8] == ("PATCH", "/content/content/v3/hierarchy/add", json_only)


def test_a_replay_creates_nothing_new(tmp_path: Path) -> None:
    stand_in, outcomes = run_job(tmp_path, "{base}/src/lesson.pdf", times=2)
    assert [o.kind for o in outcomes] == ["success", "success"]
    assert outcomes[1].detail["stage"] == "na"
    assert [p for m, p, _ in stand_in.log].count("/content/content/v4/create") == 1


def test_a_refused_download_marks_the_content_failed(tmp_path: Path) -> None:
    # 127.0.0.1 on another port than the allowed one: refused before any connection
    stand_in, outcomes = run_job(tmp_path, "http://127.0.0.1:1/src/lesson.pdf")
    (outcome,) = outcomes
    assert outcome.is_failed and outcome.reason == "permanent"
    content = stand_in.contents["do_src_9"]
    assert content["status"] == "Failed"
    # uploaders read importError: no internal address there; operators get it in the failed record
    assert content["importError"] == "refused: not an allowed address"
    assert "refused address 127.0.0.1 (port 1)" in outcome.failed_record["failInfo"]["error"]
    assert outcome.failed_record["edata"]["iteration"] == 2
    assert list((tmp_path / "tmp").iterdir()) == []


def test_import_error_is_no_internal_network_oracle(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """HARDENING 11: "<name> resolves to <address>" stays in the log and the failed record."""
    caplog.set_level(logging.INFO)
    stand_in, outcomes = run_job(tmp_path, "http://localhost:1/src/lesson.pdf")
    (outcome,) = outcomes
    assert outcome.is_failed and outcome.reason == "permanent"
    error = stand_in.contents["do_src_9"]["importError"]
    assert error == "refused: not an allowed address"
    assert "resolves to" not in error and "127.0.0.1" not in error
    assert "localhost resolves to" in outcome.failed_record["failInfo"]["error"]
    logged = [getattr(r, "cokreat_fields", {}).get("error", "") for r in caplog.records]
    assert any("localhost resolves to" in e for e in logged), logged


def test_key_is_the_object_id() -> None:
    assert content_key({"object": {"id": "do_1"}}) == "do_1"
    assert content_key({"object": {"id": 5}}) == ""
    assert content_key({}) == ""
    assert DEFINITION.name == "content-auto-creator"
