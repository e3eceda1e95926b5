"""search-service stand-in: POST /v3/search."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        yield c


def node(identifier: str, **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": f"Name {identifier}",
        "mimeType": "application/pdf",
        "channel": "ch",
        **extra,
    }


def search(client: TestClient, **request: Any) -> dict[str, Any]:
    response = client.post("/v3/search", json={"request": request})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "api.search-service.search" and body["ver"] == "3.0"
    return body["result"]


def ids(result: dict[str, Any]) -> list[str]:
    return [hit["identifier"] for hit in result.get("content", [])]


def test_status_absent_means_live_and_empty_list_means_any(client: TestClient) -> None:
    seed(
        client,
        contents=[node("do_live", status="Live"), node("do_draft"), node("do_review", status="Review")],
    )
    assert ids(search(client, filters={"objectType": "Content"})) == ["do_live"]
    assert ids(search(client, filters={"objectType": "Content", "status": []})) == [
        "do_live",
        "do_draft",
        "do_review",
    ]
    assert ids(search(client, filters={"status": ["Draft", "Review"]})) == ["do_draft", "do_review"]
    assert ids(search(client, filters={"status": "review"})) == ["do_review"]


def test_count_zero_has_no_content(client: TestClient) -> None:
    result = search(client, filters={"origin": "nothing"})
    assert result == {"count": 0}


def test_job_lookup_by_origin(client: TestClient) -> None:
    origin_data = {"identifier": "src_1", "repository": "http://source"}
    seed(
        client,
        contents=[
            node(
                "do_1", origin="src_1", originData=origin_data, status="Draft", artifactUrl="http://a/x.pdf"
            ),
            node("do_2", origin="src_2", originData=json.dumps({"identifier": "src_2"})),
            node("do_3", origin="src_1", status="Live"),
        ],
    )
    result = search(
        client,
        filters={"objectType": "Content", "status": [], "origin": "src_1"},
        exists=["originData"],
        fields=[
            "identifier",
            "mimeType",
            "pkgVersion",
            "channel",
            "status",
            "origin",
            "originData",
            "artifactUrl",
        ],
    )
    assert result["count"] == 1
    [hit] = result["content"]
    assert hit["identifier"] == "do_1" and hit["objectType"] == "Content"
    assert isinstance(hit["originData"], str) and json.loads(hit["originData"]) == origin_data
    assert set(hit) == {
        "identifier",
        "objectType",
        "mimeType",
        "channel",
        "status",
        "origin",
        "originData",
        "artifactUrl",
    }


def test_content_family_and_images_with_any_status(client: TestClient) -> None:
    seed(
        client,
        contents=[
            node("do_c", status="Live", pkgVersion=1, variants={"spine": {"ecarUrl": "u", "size": 1}}),
            node("do_c.img", objectType="ContentImage", status="Draft"),
            node("do_col", objectType="Collection", status="Draft"),
            node("do_asset", objectType="Asset", status="Draft"),
            node("do_q", objectType="Question", status="Draft"),
        ],
    )
    result = search(client, filters={"objectType": "Content", "status": []})
    assert result["count"] == 4
    assert ids(result) == ["do_c", "do_c", "do_col", "do_asset"]
    assert [h["objectType"] for h in result["content"]] == ["Content", "Content", "Collection", "Asset"]
    assert [h["status"] for h in result["content"][:2]] == ["Live", "Draft"]
    assert result["content"][0]["variants"] == {"spine": {"ecarUrl": "u", "size": 1}}
    # Without status: [], Content means Content only (and Live).
    assert ids(search(client, filters={"objectType": ["Content"]})) == ["do_c"]
    assert ids(search(client, filters={"identifier": "do_c", "status": []})) == ["do_c", "do_c"]
    assert (
        search(client, filters={"objectType": "Question", "status": []})["Question"][0]["identifier"]
        == "do_q"
    )


def test_visibility(client: TestClient) -> None:
    seed(
        client,
        contents=[
            node("do_d", status="Live"),
            node("do_p", status="Live", visibility="Parent"),
            node("do_v", status="Live", visibility="Default"),
        ],
    )
    assert ids(search(client, filters={})) == ["do_d", "do_v"]
    assert ids(search(client, filters={"visibility": ["Parent"]})) == ["do_p"]
    response = client.post("/v3/search", json={"request": {"filters": {"visibility": "private"}}})
    assert response.status_code == 400 and response.json()["responseCode"] == "CLIENT_ERROR"


def test_limit_offset_and_bad_limit(client: TestClient) -> None:
    seed(client, contents=[node(f"do_{i:03d}", status="Live") for i in range(120)])
    result = search(client, filters={})
    assert result["count"] == 120 and len(result["content"]) == 100
    page = search(client, filters={}, limit=5, offset=110)
    assert ids(page) == [f"do_{i:03d}" for i in range(110, 115)]
    assert "content" not in search(client, filters={}, limit=0)
    for bad in (-1, "ten", 10_001):
        response = client.post("/v3/search", json={"request": {"filters": {}, "limit": bad}})
        assert response.status_code == 400


def test_operators_exists_and_sort(client: TestClient) -> None:
    seed(
        client,
        contents=[
            node("do_a", status="Live", pkgVersion=1, language=["English", "Hindi"], processId="p1"),
            node("do_b", status="Live", pkgVersion=3, processId="p1"),
            node("do_c", status="Live", pkgVersion=5, processId="p2"),
        ],
    )
    assert ids(search(client, filters={"pkgVersion": {">=": 3}})) == ["do_b", "do_c"]
    assert ids(search(client, filters={"pkgVersion": {"min": 2, "max": 4}})) == ["do_b"]
    assert ids(search(client, filters={"identifier": {"ne": ["do_a", "do_b"]}})) == ["do_c"]
    assert ids(search(client, filters={"language": "hindi"})) == ["do_a"]
    assert ids(search(client, filters={"processId": "p1"})) == ["do_a", "do_b"]
    assert ids(search(client, filters={"name": {"startsWith": "Name do_c"}})) == ["do_c"]
    assert ids(search(client, filters={}, exists=["language"])) == ["do_a"]
    assert ids(search(client, filters={}, not_exists=["language"])) == ["do_b", "do_c"]
    assert ids(search(client, filters={}, sort_by={"pkgVersion": "desc"})) == ["do_c", "do_b", "do_a"]


def test_unsupported_operator_and_bad_requests(client: TestClient) -> None:
    response = client.post("/v3/search", json={"request": {"filters": {"name": {"regex": "x"}}}})
    assert response.status_code == 500 and response.json()["responseCode"] == "SERVER_ERROR"
    assert client.post("/v3/search", json={"filters": {}}).status_code == 400
    response = client.post("/v3/search", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")


def test_search_under_a_prefix(client: TestClient) -> None:
    seed(client, contents=[node("do_1", status="Live")])
    response = client.post("/search/v3/search", json={"request": {"filters": {}}})
    assert response.json()["result"]["count"] == 1


def test_index_delay_hides_new_content(tmp_path: Path) -> None:
    with sandbox_client(tmp_path, {"search_index_delay_ms": 300}) as client:
        response = client.post(
            "/content/v4/create",
            headers={"X-Channel-Id": "ch"},
            json={
                "request": {
                    "content": {
                        "identifier": "do_new",
                        "name": "Fresh content",
                        "code": "x",
                        "mimeType": "application/pdf",
                        "primaryCategory": "Learning Resource",
                        "origin": "src_new",
                    }
                }
            },
        )
        assert response.status_code == 200
        assert search(client, filters={"origin": "src_new", "status": []})["count"] == 0
        # ... so a retried create meets "Object already exists".
        again = client.post(
            "/content/v4/create",
            headers={"X-Channel-Id": "ch"},
            json={
                "request": {
                    "content": {
                        "identifier": "do_new",
                        "name": "Fresh content",
                        "code": "x",
                        "mimeType": "application/pdf",
                        "primaryCategory": "Learning Resource",
                    }
                }
            },
        )
        assert "Object already exists" in again.json()["params"]["errmsg"]
        time.sleep(0.35)
        assert ids(search(client, filters={"origin": "src_new", "status": []})) == ["do_new"]
