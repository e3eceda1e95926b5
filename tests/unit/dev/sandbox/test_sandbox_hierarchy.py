"""Collection hierarchies: GET /content/v3/hierarchy/{id} and PATCH /content/v3/hierarchy/add."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        seed(
            c,
            collections=[{"identifier": "do_col", "name": "Book", "channel": "ch", "units": ["u1", "u2"]}],
            contents=[
                {"identifier": "do_a", "name": "Leaf A", "mimeType": "application/pdf", "status": "Live"},
                {"identifier": "do_b", "name": "Leaf B", "mimeType": "video/mp4"},
                {"identifier": "do_q", "objectType": "Question", "name": "A question"},
            ],
        )
        yield c


def hierarchy(client: TestClient, identifier: str, mode: str | None = "edit") -> Any:
    return client.get(f"/content/v3/hierarchy/{identifier}", params={"mode": mode} if mode else None)


def add(client: TestClient, request: dict[str, Any]) -> Any:
    return client.patch("/content/v3/hierarchy/add", json={"request": request})


def error_of(response: Any) -> tuple[int, str, str, str]:
    body = response.json()
    return response.status_code, body["responseCode"], body["params"]["err"], body["params"]["errmsg"]


def test_seeded_collection_reads_with_units(client: TestClient) -> None:
    response = hierarchy(client, "do_col")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "api.content.hierarchy.get" and body["ver"] == "3.0"
    root = body["result"]["content"]
    assert root["identifier"] == "do_col" and root["objectType"] == "Collection"
    assert root["childNodes"] == ["u1", "u2"]
    units = root["children"]
    assert [u["identifier"] for u in units] == ["u1", "u2"]
    assert all(u["visibility"] == "Parent" and u["depth"] == 1 and u["children"] == [] for u in units)


def test_unknown_root_and_non_edit_read_of_a_draft(client: TestClient) -> None:
    assert error_of(hierarchy(client, "do_none")) == (
        404,
        "RESOURCE_NOT_FOUND",
        "RESOURCE_NOT_FOUND",
        "rootId do_none does not exist",
    )
    assert hierarchy(client, "do_col", mode=None).status_code == 404


def test_add_links_children_under_the_unit_idempotently(client: TestClient) -> None:
    response = add(client, {"rootId": "do_col", "unitId": "u2", "children": ["do_a", "do_b"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "api.content.hierarchy.add"
    assert body["result"] == {"rootId": "do_col", "u2": ["do_a", "do_b"]}
    assert add(client, {"rootId": "do_col", "unitId": "u2", "children": ["do_b"]}).status_code == 200
    root = hierarchy(client, "do_col").json()["result"]["content"]
    assert root["childNodes"] == ["u1", "u2", "do_a", "do_b"]
    leaves = root["children"][1]["children"]
    assert [(leaf["identifier"], leaf["index"], leaf["depth"], leaf["parent"]) for leaf in leaves] == [
        ("do_a", 1, 2, "u2"),
        ("do_b", 2, 2, "u2"),
    ]
    assert leaves[0]["name"] == "Leaf A" and leaves[0]["mimeType"] == "application/pdf"


def test_add_request_errors(client: TestClient) -> None:
    for request, message in [
        ({"unitId": "u1", "children": ["do_a"]}, "rootId"),
        ({"rootId": "do_col", "children": ["do_a"]}, "unitId"),
        ({"rootId": "do_col", "unitId": "u1"}, "children"),
        ({"rootId": "do_col", "unitId": "u1", "children": []}, "children"),
    ]:
        status, code, err, errmsg = error_of(add(client, request))
        assert (status, code, err) == (400, "CLIENT_ERROR", "ERR_BAD_REQUEST") and message in errmsg
    assert error_of(add(client, {"rootId": "do_x", "unitId": "u1", "children": ["do_a"]})) == (
        404,
        "RESOURCE_NOT_FOUND",
        "NOT_FOUND",
        "Error! Node(s) doesn't Exists. | [Invalid Node Id.]: do_x",
    )
    response = add(client, {"rootId": "do_col", "unitId": "u9", "children": ["do_a"]})
    assert error_of(response) == (404, "RESOURCE_NOT_FOUND", "RESOURCE_NOT_FOUND", "unitId u9 does not exist")
    assert response.json()["result"] == {}
    response = add(client, {"rootId": "do_col", "unitId": "u1", "children": ["do_a", "do_missing"]})
    assert error_of(response) == (
        400,
        "CLIENT_ERROR",
        "ERR_BAD_REQUEST",
        "Children which are not available are: [do_a, do_missing]",
    )
    response = add(client, {"rootId": "do_col", "unitId": "u1", "children": ["do_q"]})
    assert error_of(response)[:3] == (400, "CLIENT_ERROR", "ERR_INVALID_CHILDREN")


def test_empty_hierarchy(client: TestClient) -> None:
    seed(client, contents=[{"identifier": "do_empty", "objectType": "Collection", "childNodes": ["u1"]}])
    response = add(client, {"rootId": "do_empty", "unitId": "u1", "children": ["do_a"]})
    assert error_of(response) == (500, "SERVER_ERROR", "SERVER_ERROR", "hierarchy is empty")


def test_live_collection_gets_a_draft_image(client: TestClient) -> None:
    seed(
        client,
        collections=[
            {
                "identifier": "do_live",
                "name": "Live book",
                "channel": "ch",
                "units": ["lu"],
                "status": "Live",
                "pkgVersion": 1,
            }
        ],
    )
    assert add(client, {"rootId": "do_live", "unitId": "lu", "children": ["do_a"]}).status_code == 200
    live = hierarchy(client, "do_live", mode=None).json()["result"]["content"]
    assert live["childNodes"] == ["lu"] and live["children"][0]["children"] == []
    draft = hierarchy(client, "do_live").json()["result"]["content"]
    assert draft["identifier"] == "do_live" and draft["status"] == "Draft"
    assert draft["childNodes"] == ["lu", "do_a"]
    assert [leaf["identifier"] for leaf in draft["children"][0]["children"]] == ["do_a"]
    assert client.get("/_sandbox/nodes/do_live.img").json()["objectType"] == "CollectionImage"


def test_edit_mode_refreshes_leaves_and_drops_retired_or_missing(client: TestClient) -> None:
    add(client, {"rootId": "do_col", "unitId": "u1", "children": ["do_a", "do_b"]})
    seed(
        client,
        contents=[
            {"identifier": "do_a", "name": "Renamed A", "status": "Live"},
            {"identifier": "do_b", "name": "Leaf B", "status": "Retired"},
        ],
    )
    leaves = hierarchy(client, "do_col").json()["result"]["content"]["children"][0]["children"]
    assert [(leaf["identifier"], leaf["name"]) for leaf in leaves] == [("do_a", "Renamed A")]


def test_published_collection_takes_its_draft_tree(tmp_path: Path) -> None:
    with sandbox_client(tmp_path, {"publish_delay_ms": 20}) as c:
        seed(
            c,
            collections=[
                {
                    "identifier": "do_book",
                    "name": "Book to publish",
                    "channel": "ch",
                    "units": ["u"],
                    "status": "Live",
                    "pkgVersion": 1,
                }
            ],
            contents=[{"identifier": "do_leaf", "name": "Leaf", "status": "Live"}],
        )
        add(c, {"rootId": "do_book", "unitId": "u", "children": ["do_leaf"]})
        response = c.post(
            "/content/v4/publish/do_book", json={"request": {"content": {"lastPublishedBy": "me"}}}
        )
        assert response.json()["result"]["node_id"] == "do_book.img"
        deadline = time.monotonic() + 5
        while True:
            root = hierarchy(c, "do_book", mode=None).json()["result"]["content"]
            if root["pkgVersion"] == 2 and root["childNodes"] == ["u", "do_leaf"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert [leaf["identifier"] for leaf in root["children"][0]["children"]] == ["do_leaf"]
        assert set(root["variants"]) >= {"online", "spine"}
