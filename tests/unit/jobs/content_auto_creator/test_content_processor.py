"""content-auto-creator's processor with in-memory ports: every path, validation to linking and failure."""

from __future__ import annotations

import asyncio
import copy
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from cokreat_jobs.adapters.drive import DriveFile
from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.response import HttpResponse
from cokreat_jobs.jobs.content_auto_creator.artifacts import AllowedSources
from cokreat_jobs.jobs.content_auto_creator.processor import ContentAutoCreator
from cokreat_jobs.jobs.content_auto_creator.settings import Settings
from cokreat_jobs.sunbird.content_api import ContentBusy, CreateResult, LinkResult

H5P = "application/vnd.ekstep.h5p-archive"
FINAL = {"Live", "Unlisted", "Processing"}


def ok_response(result: dict[str, Any]) -> HttpResponse:
    return HttpResponse(200, {}, orjson.dumps({"responseCode": "OK", "params": {}, "result": result}))


def error_response(status: int, err: str, errmsg: str) -> HttpResponse:
    body = {"responseCode": "CLIENT_ERROR", "params": {"err": err, "errmsg": errmsg}, "result": {}}
    return HttpResponse(status, {}, orjson.dumps(body))


# which fakes were closed, in order (test_close_closes_the_ports)
CLOSED: list[str] = []


class FakeApi:
    """An in-memory content and search service with ContentApi's interface, recording every call."""

    def __init__(self) -> None:
        self.contents: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, list[str]] = {}
        self.links: list[tuple[str, str, str]] = []
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[BaseException]] = {}
        self.busy: dict[str, int] = {}
        self.stale_version_keys = 0
        self.upload_answers_artifact = True
        self.reads_until_artifact = 0
        self.hide_from_search = False
        self.on_retry: Any = None
        self._versions = itertools.count(1000)

    def _maybe_fail(self, name: str) -> None:
        errors = self.fail.get(name)
        if errors:
            raise errors.pop(0)

    def seed(self, identifier: str, **fields: Any) -> dict[str, Any]:
        content = {"identifier": identifier, "status": "Draft", "versionKey": str(next(self._versions))}
        content.update(fields)
        self.contents[identifier] = content
        return content

    async def search_by_origin(self, object_id: str, exists: Any, fields: Any) -> list[dict[str, Any]]:
        self.calls.append(("search", object_id))
        self._maybe_fail("search")
        if self.hide_from_search:
            return []
        found = []
        for c in self.contents.values():
            if c.get("origin") == object_id and c.get("originData"):
                item = {
                    k: v for k, v in c.items() if k in ("identifier", "status", "artifactUrl", "pkgVersion")
                }
                item["originData"] = orjson.dumps(c["originData"]).decode()
                found.append(item)
        return found

    async def read(self, content_id: str, channel: str) -> dict[str, Any] | None:
        self.calls.append(("read", content_id))
        self._maybe_fail("read")
        content = self.contents.get(content_id)
        if content is not None and "pendingArtifact" in content and self.reads_until_artifact:
            self.reads_until_artifact -= 1
            if not self.reads_until_artifact:
                content["artifactUrl"] = content.get("pendingArtifact", "")
        return copy.deepcopy(content)

    async def create(self, content: dict[str, Any], channel: str) -> CreateResult:
        self.calls.append(("create", copy.deepcopy(content)))
        self._maybe_fail("create")
        identifier = content["identifier"]
        if identifier in self.contents:
            return CreateResult(identifier, True)
        self.seed(identifier, channel=channel, **{k: v for k, v in content.items() if k != "identifier"})
        return CreateResult(identifier, False)

    async def update(self, content_id: str, content: dict[str, Any], channel: str) -> HttpResponse:
        self.calls.append(("update", copy.deepcopy(content)))
        self._maybe_fail("update")
        current = self.contents.get(content_id)
        if current is None:
            return error_response(404, "NOT_FOUND", "no such content")
        if self.stale_version_keys:
            self.stale_version_keys -= 1
            current["versionKey"] = str(next(self._versions))
            return error_response(400, "CLIENT_ERROR", "Invalid version Key")
        if content.get("versionKey") != current["versionKey"]:
            return error_response(400, "CLIENT_ERROR", "Invalid version Key")
        current.update({k: v for k, v in content.items() if k != "versionKey"})
        current["versionKey"] = str(next(self._versions))
        return ok_response({"identifier": content_id})

    async def upload(
        self, content_id: str, file_url: str, channel: str, file_format: str | None = None
    ) -> str:
        self.calls.append(("upload", (file_url, file_format)))
        self._maybe_fail("upload")
        if self.upload_answers_artifact:
            self.contents[content_id]["artifactUrl"] = file_url
            return file_url
        self.contents[content_id]["pendingArtifact"] = file_url
        return ""

    def _busy(self, name: str) -> None:
        if self.busy.get(name):
            self.busy[name] -= 1
            raise ContentBusy(f"{name}: ERR_NODE_ACCESS_DENIED")

    async def review(self, content_id: str, channel: str) -> None:
        self.calls.append(("review", content_id))
        self._maybe_fail("review")
        self._busy("review")
        self.contents[content_id]["status"] = "Review"

    async def publish(self, content_id: str, last_published_by: str, channel: str) -> str:
        self.calls.append(("publish", (content_id, last_published_by)))
        self._maybe_fail("publish")
        self._busy("publish")
        content = self.contents[content_id]
        content["status"] = "Live"
        content["pkgVersion"] = content.get("pkgVersion", 0) + 1
        return f"Publish Event for Content Id '{content_id}' is pushed Successfully!"

    async def system_update(self, content_id: str, fields: dict[str, Any], channel: str) -> None:
        self.calls.append(("system_update", (content_id, dict(fields))))
        self._maybe_fail("system_update")
        self.contents[content_id].update(fields)

    async def hierarchy_child_nodes(self, collection_id: str) -> list[str] | None:
        self.calls.append(("hierarchy", collection_id))
        self._maybe_fail("hierarchy")
        units = self.collections.get(collection_id)
        return None if units is None else list(units)

    async def hierarchy_add(self, collection_id: str, unit_id: str, children: list[str]) -> str:
        self.calls.append(("hierarchy_add", (collection_id, unit_id, list(children))))
        self._maybe_fail("hierarchy_add")
        for child in children:
            if (collection_id, unit_id, child) not in self.links:
                self.links.append((collection_id, unit_id, child))
        return LinkResult.ADDED

    async def close(self) -> None:
        CLOSED.append("api")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args(self, name: str) -> list[Any]:
        return [a for n, a in self.calls if n == name]


class FakeStorage:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def upload_file(self, local_path: Any, remote: str) -> str:
        self.files[remote] = Path(local_path).read_bytes()
        return f"https://cdn.test/{remote}"


class FakeDownloader:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files or {}
        self.calls: list[tuple[str, int | None]] = []

    async def download(self, url: str, dest: Any, *, max_bytes: int | None = None) -> Any:
        self.calls.append((url, max_bytes))
        if url not in self.files:
            raise PermanentError(f"download of {url} answered HTTP 404", status=404)
        data = self.files[url]
        if max_bytes is not None and len(data) > max_bytes:
            raise PermanentError(f"file at {url} is over the {max_bytes}-byte limit")
        Path(dest).write_bytes(data)
        return None

    async def close(self) -> None:
        CLOSED.append("downloader")


class FakeDrive:
    def __init__(self, files: dict[str, tuple[str, str, bytes]] | None = None) -> None:
        self.files = files or {}  # id -> (name, mimeType, bytes)
        self.calls: list[tuple[str, Any]] = []

    async def get_metadata(self, file_id: str) -> DriveFile:
        self.calls.append(("metadata", file_id))
        if file_id not in self.files:
            raise PermanentError(f"Google Drive file {file_id} not found", status=404)
        name, mime, data = self.files[file_id]
        return DriveFile(file_id, name, mime, len(data))

    async def download(self, file_id: str, dest: Any, max_bytes: int | None = None) -> int:
        self.calls.append(("download", (file_id, max_bytes)))
        data = self.files[file_id][2]
        Path(dest).write_bytes(data)
        return len(data)

    async def close(self) -> None:
        CLOSED.append("drive")


class Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


ARTIFACT = "https://files.test/docs/My%20Book.pdf"
ICON = "https://files.test/icons/icon.png"


class Harness:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        settings.setdefault("temp_dir", str(tmp_path / "tmp"))
        self.settings = Settings(**settings)
        self.api = FakeApi()
        self.api.collections = {"do_coll": ["do_unit", "do_unit2"]}
        self.storage = FakeStorage()
        self.downloader = FakeDownloader({ARTIFACT: b"%PDF-1.4 data", ICON: b"\x89PNG icon"})
        self.drive = FakeDrive()
        self.metrics = Counter()
        self.clock = Clock()
        self.processor = ContentAutoCreator(
            self.settings,
            self.api,  # type: ignore[arg-type]
            self.storage,  # type: ignore[arg-type]
            self.downloader,  # type: ignore[arg-type]
            self.drive,  # type: ignore[arg-type]
            self.metrics,
            sleep=self.clock.sleep,
            clock=self.clock,
        )
        self.temp_dir = Path(self.settings.temp_dir)

    def process(self, event: dict[str, Any]) -> Outcome:
        return asyncio.run(self.processor.process(event))


@pytest.fixture()
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def make_event(**edata: Any) -> dict[str, Any]:
    metadata = {
        "name": "A content",
        "code": "c1",
        "mimeType": "application/pdf",
        "contentType": "Resource",
        "primaryCategory": "Learning Resource",
        "artifactUrl": ARTIFACT,
        "lastPublishedBy": "user_1",
        "description": "about",
        "status": "Live",
        "identifier": "do_src_1",
        "pkgVersion": 1,
    }
    metadata.update(edata.pop("metadata", {}))
    event: dict[str, Any] = {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1.abc",
        "context": {"channel": "ch_1"},
        "object": {"id": "do_src_1", "ver": "1"},
        "edata": {
            "action": "auto-create",
            "iteration": 1,
            "objectType": "Content",
            "repository": "https://source.test/do_src_1",
            "metadata": metadata,
            "collection": [{"identifier": "do_coll", "unitId": "do_unit"}],
        },
    }
    event["edata"].update(edata)
    return event


def seed_found(h: Harness, **fields: Any) -> dict[str, Any]:
    fields.setdefault("origin", "do_src_1")
    fields.setdefault("originData", {"identifier": "do_src_1", "repository": "https://source.test/do_src_1"})
    return h.api.seed("do_src_1", **fields)


# ------------------------------------------------------------------------------------------- happy paths


def test_new_content_runs_every_step_and_links(h: Harness) -> None:
    event = make_event()
    original = copy.deepcopy(event)
    outcome = h.process(event)
    assert outcome.is_success, outcome
    assert outcome.detail["steps"] == ["create", "update", "upload", "review", "publish", "link"]
    assert outcome.detail["stage"] == "create"
    assert outcome.detail["linked"] == ["do_coll/do_unit"]
    assert event == original  # the event is never mutated

    assert h.api.names() == [
        "search", "create", "read", "update", "upload", "review", "publish", "hierarchy", "hierarchy_add",
    ]  # fmt: skip
    (created,) = h.api.args("create")
    assert created == {
        "name": "A content",
        "code": "c1",
        "mimeType": "application/pdf",
        "primaryCategory": "Learning Resource",
        "identifier": "do_src_1",
        "origin": "do_src_1",
        "originData": {"identifier": "do_src_1", "repository": "https://source.test/do_src_1"},
    }
    (updated,) = h.api.args("update")
    assert updated == {
        "artifactUrl": ARTIFACT,  # the source URL, as the reference sent it
        "description": "about",
        "versionKey": "1000",
        "appIcon": "",
    }
    remote = "content/do_src_1/artifact/my-book.pdf"
    assert h.storage.files == {remote: b"%PDF-1.4 data"}
    assert h.api.args("upload") == [(f"https://cdn.test/{remote}", None)]
    assert h.api.args("publish") == [("do_src_1", "user_1")]
    assert h.api.links == [("do_coll", "do_unit", "do_src_1")]
    assert h.api.contents["do_src_1"]["status"] == "Live"
    assert h.downloader.calls == [(ARTIFACT, 52_428_800)]
    assert h.clock.sleeps == []  # api_call_delay 0 and nothing to wait for
    assert list(h.temp_dir.iterdir()) == []


def test_replay_never_creates_twice(h: Harness) -> None:
    assert h.process(make_event()).is_success
    h.api.calls.clear()
    outcome = h.process(make_event())
    assert outcome.is_success
    assert outcome.detail["stage"] == "na"
    assert "create" not in h.api.names()
    assert h.api.names() == ["search", "hierarchy", "hierarchy_add"]
    assert h.api.links == [("do_coll", "do_unit", "do_src_1")]


def test_create_of_an_existing_content_continues_with_it(h: Harness) -> None:
    # created by an earlier attempt, not yet in the search index
    h.api.seed("do_src_1", status="Draft")
    h.api.hide_from_search = True
    outcome = h.process(make_event())
    assert outcome.is_success
    assert len(h.api.contents) == 1
    assert h.api.names()[:3] == ["search", "create", "read"]


def test_stage_create_stops_after_update_and_does_not_link(h: Harness) -> None:
    outcome = h.process(make_event(stage="create"))
    assert outcome.is_success
    assert outcome.detail["steps"] == ["create", "update"]
    assert h.api.links == []
    assert h.storage.files == {}


def test_stage_upload_links_without_review(h: Harness) -> None:
    outcome = h.process(make_event(stage="Upload"))
    assert outcome.detail["steps"] == ["create", "update", "upload", "link"]
    assert h.api.contents["do_src_1"]["status"] == "Draft"
    assert h.api.links


def test_stage_review_stops_before_publish(h: Harness) -> None:
    outcome = h.process(make_event(stage="review"))
    assert outcome.detail["steps"] == ["create", "update", "upload", "review", "link"]
    assert h.api.contents["do_src_1"]["status"] == "Review"


def test_found_draft_with_artifact_goes_to_review(h: Harness) -> None:
    seed_found(h, status="Draft", artifactUrl="https://cdn.test/content/do_src_1/artifact/a.pdf")
    outcome = h.process(make_event(stage="upload"))  # behind the found stage: ignored
    assert outcome.detail["stage"] == "review"
    assert outcome.detail["steps"] == ["review", "publish", "link"]
    assert "create" not in h.api.names()


def test_found_draft_with_only_the_source_artifact_is_uploaded_again(h: Harness) -> None:
    # a run that failed between update and upload left the source URL in artifactUrl
    seed_found(h, status="Failed", artifactUrl=ARTIFACT)
    outcome = h.process(make_event())
    assert outcome.detail["steps"] == ["update", "upload", "review", "publish", "link"]


def test_found_live_with_newer_package_is_updated(h: Harness) -> None:
    seed_found(h, status="Live", artifactUrl="https://cdn.test/a.pdf", pkgVersion=1)
    outcome = h.process(make_event(metadata={"pkgVersion": 2}))
    assert outcome.detail["stage"] == "update"
    assert outcome.detail["steps"] == ["update", "upload", "review", "publish", "link"]


def test_found_live_with_same_package_only_links(h: Harness) -> None:
    seed_found(h, status="Live", artifactUrl="https://cdn.test/a.pdf", pkgVersion=1)
    outcome = h.process(make_event(metadata={"pkgVersion": 1}))
    assert outcome.detail["stage"] == "na"
    assert outcome.detail["steps"] == ["link"]


def test_origin_data_of_an_existing_object_links_that_identifier(h: Harness) -> None:
    h.api.seed("do_src_1", status="Live")
    outcome = h.process(make_event(originData={"identifier": "do_target_9", "repository": "r"}))
    assert outcome.is_success
    assert outcome.detail["stage"] == "na"
    assert outcome.detail["content_id"] == "do_target_9"
    assert h.api.names() == ["read", "hierarchy", "hierarchy_add"]
    assert h.api.links == [("do_coll", "do_unit", "do_target_9")]


def test_origin_data_of_a_missing_object_searches_as_usual(h: Harness) -> None:
    outcome = h.process(make_event(originData={"identifier": "do_target_9"}))
    assert outcome.detail["stage"] == "create"
    assert h.api.names()[:3] == ["read", "search", "create"]


def test_edata_identifier_creates_that_id_without_origin(h: Harness) -> None:
    outcome = h.process(make_event(identifier="do_new_1"))
    assert outcome.is_success
    (created,) = h.api.args("create")
    assert created["identifier"] == "do_new_1"
    assert "origin" not in created and "originData" not in created
    assert h.api.links == [("do_coll", "do_unit", "do_new_1")]


def test_app_icon_is_rehosted(h: Harness) -> None:
    outcome = h.process(make_event(metadata={"appIcon": ICON}))
    assert outcome.is_success
    (updated,) = h.api.args("update")
    assert updated["appIcon"] == "https://cdn.test/content/do_src_1/artifact/icon.png"
    assert h.storage.files["content/do_src_1/artifact/icon.png"] == b"\x89PNG icon"


def test_outdated_version_key_is_read_again_once(h: Harness) -> None:
    h.api.stale_version_keys = 1
    outcome = h.process(make_event(stage="create"))
    assert outcome.is_success
    assert h.api.names() == ["search", "create", "read", "update", "read", "update"]


# ---------------------------------------------------------------------------------------------- linking


def test_missing_units_and_collections_are_noted(h: Harness) -> None:
    collection = [
        {"identifier": "do_coll", "unitId": "do_unit"},
        {"identifier": "do_coll", "unitId": "do_gone"},
        {"identifier": "do_coll", "unitId": "do_unit2"},
        {"identifier": "do_nocoll", "unitId": "do_u"},
        {"identifier": "do_coll", "unitId": ""},
    ]
    outcome = h.process(make_event(collection=collection))
    assert outcome.is_success
    assert outcome.reason == "collection-unit-missing"
    assert outcome.detail["linked"] == ["do_coll/do_unit", "do_coll/do_unit2"]
    assert outcome.detail["unit_missing"] == ["do_coll/do_gone", "do_nocoll/do_u"]
    assert outcome.detail["collection_missing"] == ["do_nocoll"]
    assert outcome.detail["invalid_collection_entries"] == 1
    assert h.api.args("hierarchy") == ["do_coll", "do_nocoll"]  # one read per collection


def test_no_collection_no_link(h: Harness) -> None:
    outcome = h.process(make_event(collection=[]))
    assert outcome.is_success
    assert "hierarchy" not in h.api.names()
    assert "linked" not in outcome.detail


# ------------------------------------------------------------------------------------------ artifacts


def test_h5p_zip_is_uploaded_as_composed_package_and_delays_apply(tmp_path: Path) -> None:
    h = Harness(tmp_path, api_call_delay_s=1.0)
    url = "https://files.test/pkg/Game.zip"
    h.downloader.files[url] = b"PK zip"
    outcome = h.process(make_event(metadata={"mimeType": H5P, "artifactUrl": url}))
    assert outcome.is_success
    assert h.api.args("upload") == [
        ("https://cdn.test/content/do_src_1/artifact/game.zip", "composed-h5p-zip")
    ]
    assert h.clock.sleeps == [6.0, 1.0]  # after upload (x6 for h5p) and after review, as the reference


def test_h5p_file_needs_no_file_format(h: Harness) -> None:
    url = "https://files.test/pkg/game.h5p"
    h.downloader.files[url] = b"PK h5p"
    h.process(make_event(metadata={"mimeType": H5P, "artifactUrl": url}))
    assert h.api.args("upload") == [("https://cdn.test/content/do_src_1/artifact/game.h5p", None)]


def test_api_call_delay_for_other_types(tmp_path: Path) -> None:
    h = Harness(tmp_path, api_call_delay_s=0.5)
    h.process(make_event())
    assert h.clock.sleeps == [0.5, 0.5]


def test_bulk_upload_mime_types_have_their_own_cap(tmp_path: Path) -> None:
    # over the artifact cap, under the bulk one: imported; the reference had no cap at all for mp4
    h = Harness(tmp_path, max_artifact_bytes=10, max_bulk_upload_bytes=150)
    url = "https://files.test/v/clip.mp4"
    h.downloader.files[url] = b"x" * 100
    outcome = h.process(make_event(metadata={"mimeType": "video/mp4", "artifactUrl": url}))
    assert outcome.is_success
    assert h.downloader.calls == [(url, 150)]


def test_an_mp4_over_the_bulk_cap_fails_with_the_reason(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_bulk_upload_bytes=50)
    url = "https://files.test/v/clip.mp4"
    h.downloader.files[url] = b"x" * 100
    outcome = h.process(make_event(metadata={"mimeType": "video/mp4", "artifactUrl": url}))
    assert outcome.is_failed and outcome.reason == "permanent"
    assert "over the 50-byte limit" in outcome.failed_record["failInfo"]["error"]
    assert h.api.contents["do_src_1"]["status"] == "Failed"


def test_too_many_collections_fail_before_any_call(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_collections=2)
    refs = [{"identifier": "do_coll", "unitId": f"do_unit{i}"} for i in range(3)]
    outcome = h.process(make_event(collection=refs))
    assert outcome.is_failed and outcome.reason == "permanent"
    error = outcome.failed_record["failInfo"]["error"]
    assert "edata.collection has 3 entries, more than the limit of 2" in error
    assert h.downloader.calls == [] and "do_src_1" not in h.api.contents


def test_caps_must_be_positive() -> None:
    for key in ("max_artifact_bytes", "max_bulk_upload_bytes", "max_collections"):
        with pytest.raises(ConfigError, match="must be at least 1"):
            Settings(**{key: 0})


def test_oversize_artifact_fails_and_marks_the_content(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_artifact_bytes=4)
    outcome = h.process(make_event())
    assert outcome.is_failed
    assert outcome.reason == "permanent"
    status = h.api.contents["do_src_1"]
    assert status["status"] == "Failed"
    assert "4-byte limit" in status["importError"]
    assert list(h.temp_dir.iterdir()) == []


def test_disallowed_source_fails_before_downloading(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_sources=AllowedSources.parse(["example.org"]))
    outcome = h.process(make_event())
    assert outcome.is_failed and outcome.reason == "permanent"
    assert h.downloader.calls == []
    assert "not an allowed one" in h.api.contents["do_src_1"]["importError"]
    assert "upload" not in h.api.names()


def test_allowed_source_passes(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_sources=AllowedSources.parse(["files.test"]))
    assert h.process(make_event()).is_success


def test_blank_artifact_url_with_repository_fails_at_upload(tmp_path: Path) -> None:
    h = Harness(tmp_path, mandatory_fields=())
    outcome = h.process(make_event(metadata={"artifactUrl": ""}))
    assert outcome.is_failed
    assert "artifact source is not available" in h.api.contents["do_src_1"]["importError"]


def test_drive_artifact(h: Harness) -> None:
    h.drive.files["1AbC"] = ("My Game.zip", "application/zip", b"PK drive")
    url = "https://drive.google.com/uc?export=download&id=1AbC"
    outcome = h.process(make_event(metadata={"mimeType": H5P, "artifactUrl": url}))
    assert outcome.is_success, outcome
    assert h.drive.calls == [("metadata", "1AbC"), ("download", ("1AbC", 52_428_800))]
    assert h.storage.files["content/do_src_1/artifact/my-game.zip"] == b"PK drive"
    assert h.api.args("upload") == [
        ("https://cdn.test/content/do_src_1/artifact/my-game.zip", "composed-h5p-zip")
    ]
    assert h.downloader.calls == []


def test_drive_mime_type_mismatch_fails(h: Harness) -> None:
    h.drive.files["1AbC"] = ("doc.pdf", "application/pdf", b"%PDF")
    url = "https://drive.google.com/file/d/1AbC/view"
    outcome = h.process(make_event(metadata={"mimeType": H5P, "artifactUrl": url}))
    assert outcome.is_failed
    assert "File MimeType Is Not Same As Object MimeType" in h.api.contents["do_src_1"]["importError"]
    assert [c for c, _ in h.drive.calls] == ["metadata"]


def test_drive_file_over_the_cap_is_refused_from_its_metadata(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_artifact_bytes=3)
    h.drive.files["1AbC"] = ("doc.pdf", "application/pdf", b"%PDF-long")
    url = "https://drive.google.com/open?id=1AbC"
    outcome = h.process(make_event(metadata={"artifactUrl": url}))
    assert outcome.is_failed
    assert [c for c, _ in h.drive.calls] == ["metadata"]


def test_drive_link_without_id_fails(h: Harness) -> None:
    url = "https://drive.google.com/drive/folders"
    outcome = h.process(make_event(metadata={"artifactUrl": url}))
    assert outcome.is_failed
    assert "invalid Google Drive link" in h.api.contents["do_src_1"]["importError"]


def test_drive_icon_skips_the_mime_check(h: Harness) -> None:
    h.drive.files["1Icon"] = ("Logo.PNG", "image/png", b"png")
    outcome = h.process(make_event(metadata={"appIcon": "https://drive.google.com/file/d/1Icon/view"}))
    assert outcome.is_success
    assert h.api.args("update")[0]["appIcon"] == "https://cdn.test/content/do_src_1/artifact/logo.png"


# ---------------------------------------------------------------------------------------------- waiting


def test_upload_without_artifact_in_answer_is_read_until_set(h: Harness) -> None:
    h.api.upload_answers_artifact = False
    h.api.reads_until_artifact = 3  # the third read after the upload sees it
    outcome = h.process(make_event())
    assert outcome.is_success
    names = h.api.names()
    assert names[names.index("upload") + 1 : names.index("review")] == ["read", "read", "read"]
    assert h.clock.sleeps == [0.2, 0.4]  # backoff between reads, no fixed sleep


def test_waiting_for_the_artifact_has_a_deadline(tmp_path: Path) -> None:
    h = Harness(tmp_path, state_wait_timeout_s=3.0)
    h.api.upload_answers_artifact = False
    outcome = h.process(make_event())
    assert outcome.is_failed
    assert outcome.reason == "retries-exhausted"
    assert sum(h.clock.sleeps) <= 3.0
    assert h.api.contents["do_src_1"]["status"] == "Failed"


def test_publish_while_processing_waits_with_backoff(h: Harness) -> None:
    h.api.busy["publish"] = 2
    outcome = h.process(make_event())
    assert outcome.is_success
    assert len(h.api.args("publish")) == 3
    assert h.clock.sleeps == [0.2, 0.4]


def test_review_busy_past_the_deadline_is_transient(tmp_path: Path) -> None:
    h = Harness(tmp_path, state_wait_timeout_s=2.0)
    h.api.busy["review"] = 100
    outcome = h.process(make_event())
    assert outcome.is_failed and outcome.reason == "retries-exhausted"
    assert "still processing" in outcome.failed_record["failInfo"]["error"]  # type: ignore[index]


# ---------------------------------------------------------------------------------------------- failures


def test_failure_after_create_marks_the_content_failed(h: Harness) -> None:
    h.api.fail["publish"] = [PermanentError("publishing content do_src_1 failed: HTTP 400 ERR_X: nope")]
    event = make_event()
    outcome = h.process(event)
    assert outcome.is_failed
    assert outcome.reason == "permanent"
    assert outcome.detail["content_id"] == "do_src_1"
    (update,) = h.api.args("system_update")
    assert update == (
        "do_src_1",
        {"status": "Failed", "importError": "publishing content do_src_1 failed: HTTP 400 ERR_X: nope"},
    )
    record = outcome.failed_record
    assert record is not None
    assert record["jobName"] == "content-auto-creator"
    assert record["edata"]["iteration"] == 2
    assert record["failInfo"]["reason"] == "permanent"
    assert record["failInfo"]["error"].startswith("publishing content do_src_1 failed")
    assert record["object"] == event["object"] and record["mid"] == event["mid"]
    assert event["edata"]["iteration"] == 1
    assert h.metrics.counts["error"] == 1


def test_transient_failure_before_the_content_exists_is_not_marked(h: Harness) -> None:
    h.api.fail["search"] = [
        TransientError("search-service: POST /v3/search failed after 5 attempts: HTTP 503")
    ]
    outcome = h.process(make_event(iteration=2))
    assert outcome.is_failed
    assert outcome.reason == "retries-exhausted"
    assert "system_update" not in h.api.names()
    assert outcome.failed_record is not None and outcome.failed_record["edata"]["iteration"] == 3


def test_a_failing_mark_is_noted_but_the_first_error_reported(h: Harness) -> None:
    h.api.fail["review"] = [PermanentError("review refused")]
    h.api.fail["system_update"] = [TransientError("content down")]
    outcome = h.process(make_event())
    assert outcome.is_failed
    assert outcome.detail["mark_failed_error"] == "content down"
    assert outcome.failed_record is not None
    assert outcome.failed_record["failInfo"]["error"].startswith("review refused")


def test_unexpected_errors_fail_the_event_not_the_job(h: Harness) -> None:
    h.api.fail["hierarchy_add"] = [RuntimeError("bug")]
    outcome = h.process(make_event())
    assert outcome.is_failed and outcome.reason == "permanent"
    assert h.api.contents["do_src_1"]["importError"] == "bug"


def test_empty_message_becomes_processing_error(h: Harness) -> None:
    h.api.fail["review"] = [PermanentError("")]
    h.process(make_event())
    assert h.api.contents["do_src_1"]["importError"] == "Processing Error"


def test_download_error_marks_failed_and_cleans_temp(h: Harness) -> None:
    outcome = h.process(make_event(metadata={"artifactUrl": "https://files.test/missing.pdf"}))
    assert outcome.is_failed
    assert "HTTP 404" in h.api.contents["do_src_1"]["importError"]
    assert list(h.temp_dir.iterdir()) == []


def test_wrong_field_type_fails_with_the_field_named(h: Harness) -> None:
    outcome = h.process(make_event(iteration="1"))
    assert outcome.is_failed
    assert outcome.reason == "invalid-field"
    assert outcome.failed_record is not None
    assert "edata.iteration" in outcome.failed_record["failInfo"]["error"]
    assert h.api.calls == []


def test_wrong_type_outside_validation_fields_fails_too(h: Harness) -> None:
    outcome = h.process(make_event(collection="do_coll"))
    assert outcome.is_failed and outcome.reason == "invalid-field"


# -------------------------------------------------------------------------------------------------- skips


@pytest.mark.parametrize(
    ("edata", "reason"),
    [
        ({"iteration": 4}, "iteration-exceeded"),
        ({"action": "other"}, "action-not-allowed"),
        ({"objectType": "QuestionSet"}, "object-type-not-allowed"),
        ({"stage": "approve"}, "stage-not-allowed"),
        ({"metadata": {"name": None}}, "mandatory-fields-missing"),
    ],
)
def test_skips_touch_nothing(h: Harness, edata: dict[str, Any], reason: str) -> None:
    outcome = h.process(make_event(**edata))
    assert outcome.is_skipped
    assert outcome.reason == reason
    assert h.api.calls == []


def test_retries_are_counted(h: Harness) -> None:
    assert h.processor.api.on_retry is not None  # type: ignore[attr-defined]
    h.processor.api.on_retry(1, "HTTP 503")  # type: ignore[attr-defined]
    assert h.metrics.counts == {"retry": 1, "error": 1}


def test_close_closes_the_ports(h: Harness) -> None:
    CLOSED.clear()
    asyncio.run(h.processor.close())
    assert CLOSED == ["api", "downloader", "drive"]


def test_failed_records_keep_the_jobs_name_for_replay_whatever_job_name_says(tmp_path: Path) -> None:
    """`job.name` renames the Flink job only (Settings reads it from the config): replay keeps the records
    whose jobName is content-auto-creator."""
    cfg = load_config("content-auto-creator", overrides=["job.name=cokreat-content-auto-creator"], env={})
    settings = Settings.from_config(cfg)
    h = Harness(tmp_path, **{**settings.__dict__, "temp_dir": str(tmp_path / "tmp")})
    h.api.fail["publish"] = [PermanentError("publishing content do_src_1 failed: HTTP 400 ERR_X: nope")]
    outcome = h.process(make_event())
    assert outcome.failed_record is not None
    assert outcome.failed_record["jobName"] == "content-auto-creator"
