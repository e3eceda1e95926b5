"""content-service v4 stand-in: create, read, update, review, publish, system update."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed

CHANNEL = {"X-Channel-Id": "channel-1"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path, {"publish_delay_ms": 60}) as c:
        yield c


def pdf(identifier: str = "do_1", **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": "A content name",
        "code": "code-1",
        "mimeType": "application/pdf",
        "primaryCategory": "Learning Resource",
        **extra,
    }


def create(client: TestClient, content: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/content/v4/create",
        headers=CHANNEL if headers is None else headers,
        json={"request": {"content": content}},
    )


def read(client: TestClient, identifier: str, mode: str | None = "edit") -> dict[str, Any]:
    response = client.get(f"/content/v4/read/{identifier}", params={"mode": mode} if mode else None)
    assert response.status_code == 200, response.text
    return response.json()["result"]["content"]


def update(client: TestClient, identifier: str, content: dict[str, Any]) -> Any:
    return client.patch(
        f"/content/v4/update/{identifier}", headers=CHANNEL, json={"request": {"content": content}}
    )


def publish(client: TestClient, identifier: str, by: str | None = "publisher-1") -> Any:
    content = {"lastPublishedBy": by} if by is not None else {}
    return client.post(
        f"/content/v4/publish/{identifier}", headers=CHANNEL, json={"request": {"content": content}}
    )


def error_of(response: Any) -> tuple[int, str, str, str]:
    body = response.json()
    return response.status_code, body["responseCode"], body["params"]["err"], body["params"]["errmsg"]


def wait_for_status(client: TestClient, identifier: str, status: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        content = read(client, identifier, mode=None)
        if content["status"] == status:
            return content
        assert time.monotonic() < deadline, f"{identifier} stayed {content['status']}"
        time.sleep(0.02)


def test_create_answers_identifier_and_version_key(client: TestClient) -> None:
    response = create(client, pdf(originData={"identifier": "src", "repository": "http://r"}))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "api.content.create" and body["ver"] == "4.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZZ", body["ts"])
    result = body["result"]
    assert result["identifier"] == result["node_id"] == "do_1"
    assert result["versionKey"].isdigit()
    content = read(client, "do_1")
    assert content["status"] == "Draft"
    assert content["channel"] == "channel-1"
    assert content["objectType"] == "Content"
    assert content["contentType"] == "Resource"
    assert content["versionKey"] == result["versionKey"]
    assert content["originData"] == {"identifier": "src", "repository": "http://r"}
    assert "pkgVersion" not in content


def test_create_without_identifier_generates_one(client: TestClient) -> None:
    content = pdf()
    del content["identifier"]
    identifier = create(client, content).json()["result"]["identifier"]
    assert identifier.startswith("do_")
    assert read(client, identifier)["name"] == "A content name"


def test_create_twice_is_a_constraint_violation(client: TestClient) -> None:
    assert create(client, pdf()).status_code == 200
    assert error_of(create(client, pdf())) == (
        400,
        "CLIENT_ERROR",
        "CONSTRAINT_VALIDATION_FAILED",
        "Object already exists with identifier: do_1",
    )


@pytest.mark.parametrize(
    ("change", "err", "errmsg"),
    [
        ({"contentType": "Resource"}, "VALIDATION_ERROR", "contentType cannot be set from request."),
        ({"primaryCategory": None}, "VALIDATION_ERROR", "primaryCategory is a mandatory parameter"),
        (
            {"status": "Live"},
            "ERROR_RESTRICTED_PROP",
            "Properties in list [status] are not allowed in request",
        ),
        (
            {"dialcodes": ["X"]},
            "ERROR_RESTRICTED_PROP",
            "Properties in list [dialcodes] are not allowed in request",
        ),
    ],
)
def test_create_request_checks(client: TestClient, change: dict[str, Any], err: str, errmsg: str) -> None:
    content = {k: v for k, v in {**pdf(), **change}.items() if v is not None}
    assert error_of(create(client, content)) == (400, "CLIENT_ERROR", err, errmsg)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "abc"}, "name"),
        ({"code": None}, "code"),
        ({"mimeType": "application/x-unknown"}, "mimeType"),
        ({"mimeType": None}, "mimeType"),
    ],
)
def test_create_schema_validation(client: TestClient, change: dict[str, Any], message: str) -> None:
    content = {k: v for k, v in {**pdf(), **change}.items() if v is not None}
    response = create(client, content)
    assert error_of(response)[:3] == (400, "CLIENT_ERROR", "CLIENT_ERROR")
    assert response.json()["params"]["errmsg"] == "Validation Errors"
    assert any(message in m for m in response.json()["result"]["messages"])


def test_create_needs_channel_header(client: TestClient) -> None:
    response = create(client, pdf(), headers={})
    assert response.status_code == 400
    assert any("channel" in m for m in response.json()["result"]["messages"])


@pytest.mark.parametrize(
    "mime",
    [
        "application/pdf",
        "video/mp4",
        "video/webm",
        "video/x-youtube",
        "application/vnd.ekstep.ecml-archive",
        "application/vnd.ekstep.html-archive",
        "application/vnd.ekstep.h5p-archive",
        "application/epub",
        "audio/mp3",
        "audio/mpeg",
        "image/jpeg",
        "image/png",
        "text/x-url",
        "application/msword",
    ],
)
def test_schema_mime_types_are_accepted(client: TestClient, mime: str) -> None:
    assert create(client, pdf(mimeType=mime)).status_code == 200


def test_read_unknown_is_not_found(client: TestClient) -> None:
    response = client.get("/content/v4/read/do_missing", params={"mode": "edit"})
    assert error_of(response) == (
        404,
        "RESOURCE_NOT_FOUND",
        "NOT_FOUND",
        "Error! Node(s) doesn't Exists. | [Invalid Node Id.]: do_missing",
    )


def test_read_private_is_denied_and_fields_select(client: TestClient) -> None:
    seed(client, contents=[pdf("do_p", visibility="Private"), pdf("do_f", originData='{"identifier": "s"}')])
    response = client.get("/content/v4/read/do_p")
    assert error_of(response)[:3] == (400, "CLIENT_ERROR", "ERR_ACCESS_DENIED")
    content = client.get("/content/v4/read/do_f", params={"fields": "name,originData"}).json()["result"][
        "content"
    ]
    assert content == {"identifier": "do_f", "name": "A content name", "originData": {"identifier": "s"}}


def test_update_needs_and_checks_the_version_key(client: TestClient) -> None:
    version_key = create(client, pdf()).json()["result"]["versionKey"]
    assert error_of(update(client, "do_1", {"name": "Another name"})) == (
        400,
        "CLIENT_ERROR",
        "ERR_INVALID_REQUEST",
        "Please Provide Version Key!",
    )
    assert error_of(update(client, "do_1", {"versionKey": "123", "name": "Another name"}))[2:] == (
        "CLIENT_ERROR",
        "Invalid version Key",
    )
    response = update(client, "do_1", {"versionKey": version_key, "name": "Another name", "code": "c2"})
    assert response.status_code == 200
    new_key = response.json()["result"]["versionKey"]
    assert new_key != version_key
    content = read(client, "do_1")
    assert content["name"] == "Another name" and content["versionKey"] == new_key
    assert content["code"] == "c2"
    # A property set to null is removed; a required one cannot be.
    response = update(client, "do_1", {"versionKey": new_key, "code": None})
    assert response.json()["params"]["errmsg"] == "Validation Errors"
    response = update(client, "do_1", {"versionKey": new_key, "name": "Short"})
    assert response.status_code == 200
    response = update(client, "do_1", {"versionKey": response.json()["result"]["versionKey"], "name": "abc"})
    assert response.json()["params"]["errmsg"] == "Validation Errors"
    assert error_of(update(client, "do_nope", {"versionKey": "1"}))[0] == 404


def test_update_of_live_content_edits_an_image(client: TestClient) -> None:
    seed(
        client,
        contents=[pdf(status="Live", pkgVersion=2, versionKey="111", artifactUrl="http://a.org/x.pdf")],
    )
    # No version key check on the update that creates the image.
    response = update(client, "do_1", {"versionKey": "stale", "description": "new"})
    assert response.status_code == 200
    image_key = response.json()["result"]["versionKey"]
    live = read(client, "do_1", mode=None)
    assert live["status"] == "Live" and "description" not in live
    draft = read(client, "do_1")
    assert draft["identifier"] == "do_1"
    assert draft["objectType"] == "ContentImage"
    assert draft["status"] == "Draft"
    assert draft["description"] == "new" and draft["versionKey"] == image_key
    stored = client.get("/_sandbox/nodes/do_1.img").json()
    assert stored["identifier"] == "do_1.img"
    # The next update is checked against the image's key.
    assert update(client, "do_1", {"versionKey": "111", "name": "Name two"}).status_code == 400
    assert update(client, "do_1", {"versionKey": image_key, "name": "Name two"}).status_code == 200


def test_review_sets_review_and_needs_an_artifact(client: TestClient) -> None:
    create(client, pdf())
    response = client.post("/content/v4/review/do_1", headers=CHANNEL, json={"request": {"content": {}}})
    assert error_of(response)[:3] == (400, "CLIENT_ERROR", "VALIDATOR_ERROR")
    seed(client, contents=[pdf("do_2", artifactUrl="http://a.org/x.pdf")])
    response = client.post("/content/v4/review/do_2", headers=CHANNEL, json={"request": {"content": {}}})
    assert response.status_code == 200
    assert set(response.json()["result"]) >= {"identifier", "versionKey"}
    assert read(client, "do_2")["status"] == "Review"
    assert error_of(client.post("/content/v4/review/do_x", json={"request": {"content": {}}}))[0] == 404


def test_publish_checks_the_publisher_first(client: TestClient) -> None:
    for by in (None, "", "  "):
        assert error_of(publish(client, "do_unknown", by))[:3] == (
            400,
            "CLIENT_ERROR",
            "ERR_CONTENT_BLANK_PUBLISHER",
        )
    assert error_of(publish(client, "do_unknown"))[0] == 404
    create(client, pdf())
    assert error_of(publish(client, "do_1"))[2] == "VALIDATOR_ERROR"


def test_publish_is_asynchronous(tmp_path: Path) -> None:
    with sandbox_client(tmp_path, {"publish_delay_ms": 600}) as client:
        check_publish_is_asynchronous(client)


def check_publish_is_asynchronous(client: TestClient) -> None:
    seed(client, contents=[pdf(status="Review", artifactUrl="http://a.org/x.pdf")])
    response = publish(client, "do_1")
    assert response.status_code == 200
    assert response.json()["result"] == {
        "publishStatus": "Publish Event for Content Id 'do_1' is pushed Successfully!",
        "node_id": "do_1",
    }
    assert read(client, "do_1")["status"] == "Review"  # not at once
    wait_for_status(client, "do_1", "Processing")
    assert error_of(publish(client, "do_1"))[2] == "ERR_NODE_ACCESS_DENIED"
    live = wait_for_status(client, "do_1", "Live")
    assert live["pkgVersion"] == 1
    assert live["prevStatus"] == "Review"
    assert live["lastPublishedBy"] == "publisher-1"
    assert live["lastPublishedOn"]
    assert live["downloadUrl"].endswith(".ecar")
    assert set(live["variants"]) >= {"spine", "full"}
    assert live["variants"]["spine"]["size"] > 0
    assert client.head(urlsplit(live["downloadUrl"]).path).status_code == 200


def test_republish_of_live_content_with_image(client: TestClient) -> None:
    seed(client, contents=[pdf(status="Live", pkgVersion=3, artifactUrl="http://a.org/x.pdf")])
    update(client, "do_1", {"versionKey": "any", "description": "edited"})
    response = publish(client, "do_1")
    assert response.json()["result"]["node_id"] == "do_1.img"
    assert "'do_1.img'" in response.json()["result"]["publishStatus"]
    live = wait_for_status(client, "do_1", "Live")
    deadline = time.monotonic() + 5
    while client.get("/_sandbox/nodes/do_1.img").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    live = read(client, "do_1", mode=None)
    assert live["pkgVersion"] == 4
    assert live["description"] == "edited"
    assert live["objectType"] == "Content"
    assert read(client, "do_1")["objectType"] == "Content"  # no image any more


def test_seeded_publish_failure(client: TestClient) -> None:
    seed(
        client,
        contents=[pdf(status="Review", artifactUrl="http://a.org/x.pdf")],
        publish_failures=[{"identifier": "do_1", "error": "boom"}],
    )
    publish(client, "do_1")
    failed = wait_for_status(client, "do_1", "Failed")
    assert failed["publishError"] == "boom"
    assert "pkgVersion" not in failed


def test_publish_resumes_after_restart(tmp_path: Path) -> None:
    with sandbox_client(tmp_path, {"publish_delay_ms": 400}) as c:
        seed(c, contents=[pdf(status="Review", artifactUrl="http://a.org/x.pdf")])
        publish(c, "do_1")
    with sandbox_client(tmp_path, {"publish_delay_ms": 400}) as c:
        assert wait_for_status(c, "do_1", "Live")["pkgVersion"] == 1


def test_system_update(client: TestClient) -> None:
    seed(client, contents=[pdf(status="Live", pkgVersion=1)])
    update(client, "do_1", {"versionKey": "x", "description": "draft"})
    url = "/content/v4/system/update/do_1"
    response = client.patch(
        url, headers=CHANNEL, json={"request": {"content": {"status": "Failed", "importError": "bad"}}}
    )
    assert response.status_code == 200
    assert response.json()["result"] == {"identifier": "do_1", "status": "success"}
    assert read(client, "do_1", mode=None)["status"] == "Failed"  # the Live node itself
    assert read(client, "do_1")["importError"] == "bad"  # and its image
    for content in ({"status": "Live"}, {"status": "Unlisted"}, {"screenshots": "x"}):
        response = client.patch(url, headers=CHANNEL, json={"request": {"content": content}})
        assert error_of(response)[:3] == (400, "CLIENT_ERROR", "ERR_BAD_REQUEST")
    # An empty request fails only when no identifying header is sent.
    assert error_of(client.patch(url, json={"request": {"content": {}}}))[2] == "ERR_BAD_REQUEST"
    assert client.patch(url, headers={"X-App-Id": "a"}, json={"request": {"content": {}}}).status_code == 200
    response = client.patch(
        "/content/v4/system/update/do_x", headers=CHANNEL, json={"request": {"content": {"status": "Failed"}}}
    )
    assert error_of(response) == (
        400,
        "CLIENT_ERROR",
        "RESOURCE_NOT_FOUND",
        "Error! Node(s) doesn't Exists with identifier : do_x.",
    )


def test_content_paths_under_a_prefix_and_malformed_json(client: TestClient) -> None:
    assert create(client, pdf()).status_code == 200
    assert client.get("/content/content/v4/read/do_1").status_code == 200
    response = client.post(
        "/content/v4/create", headers={**CHANNEL, "content-type": "application/json"}, content=b'{"request": '
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")


def test_contents_persist_across_restart(tmp_path: Path) -> None:
    with sandbox_client(tmp_path) as c:
        create(c, pdf())
    with sandbox_client(tmp_path) as c:
        assert read(c, "do_1")["name"] == "A content name"
        assert create(c, pdf()).status_code == 400
