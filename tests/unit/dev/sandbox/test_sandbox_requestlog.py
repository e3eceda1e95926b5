"""The sandbox's request log and inspection API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        yield c


def entries(client: TestClient, query: str = "") -> list[dict]:
    response = client.get("/_sandbox/requests" + query)
    assert response.status_code == 200
    return response.json()["requests"]


def test_health_is_not_logged(client: TestClient) -> None:
    assert client.get("/_sandbox/health").json() == {"status": "ok"}
    seed(client, users=["u"])
    client.get("/_sandbox/users")
    assert entries(client) == []


def test_entry_shape(client: TestClient) -> None:
    seed(client, users=["u1"])
    client.request(
        "DELETE",
        "/program/program/v1/user/u1?x=1&y=a%20b",
        json={"request": {"why": "test"}},
        headers={"Authorization": "Bearer secret-token", "X-Channel-Id": "ch"},
    )
    [entry] = entries(client)
    assert set(entry) >= {"seq", "ts_ms", "duration_ms", "method", "path", "query", "status", "body"}
    assert isinstance(entry["seq"], int)
    assert entry["ts_ms"] > 1_700_000_000_000
    assert entry["duration_ms"] >= 0
    assert entry["method"] == "DELETE"
    assert entry["path"] == "/program/program/v1/user/u1"
    assert entry["query"] == {"x": "1", "y": "a b"}
    assert entry["status"] == 200
    assert entry["body"] == {"request": {"why": "test"}}
    assert entry["headers"]["x-channel-id"] == "ch"
    assert "secret-token" not in str(entry)


def test_bodies_are_parsed_json_or_form_or_null(client: TestClient) -> None:
    client.post("/any/v1/thing", content=b'{"a": [1, 2]}', headers={"content-type": "application/json"})
    client.post("/any/v1/thing", data={"fileUrl": "http://x.org/f.pdf"})
    client.post("/any/v1/thing", files={"file": ("f.txt", b"hello", "text/plain")}, data={"k": "v"})
    client.post("/any/v1/thing", content=b"not json at all")
    client.get("/any/v1/thing")
    bodies = [e["body"] for e in entries(client)]
    assert bodies[0] == {"a": [1, 2]}
    assert bodies[1] == {"fileUrl": "http://x.org/f.pdf"}
    assert bodies[2] == {"k": "v", "file": {"filename": "f.txt", "content_type": "text/plain", "size": 5}}
    assert bodies[3] is None
    assert bodies[4] is None


def test_since_and_limit(client: TestClient) -> None:
    for i in range(5):
        client.delete(f"/program/v1/user/n{i}")
    all_entries = entries(client)
    seqs = [e["seq"] for e in all_entries]
    assert seqs == sorted(seqs) and len(seqs) == 5
    assert [e["path"][-2:] for e in all_entries] == ["n0", "n1", "n2", "n3", "n4"]
    assert [e["seq"] for e in entries(client, f"?since={seqs[1]}")] == seqs[2:]
    assert [e["seq"] for e in entries(client, f"?since={seqs[1]}&limit=2")] == seqs[2:4]
    assert [e["seq"] for e in entries(client, "?limit=1")] == seqs[:1]
    assert entries(client, f"?since={seqs[-1]}") == []
    assert client.get("/_sandbox/requests?since=abc").status_code == 400


def test_clear_keeps_sequence_growing(client: TestClient) -> None:
    client.delete("/program/v1/user/a")
    [first] = entries(client)
    assert client.delete("/_sandbox/requests").status_code == 200
    assert entries(client) == []
    client.delete("/program/v1/user/b")
    [second] = entries(client)
    assert second["seq"] > first["seq"]


def test_log_sees_every_answered_request_beyond_a_batch(client: TestClient) -> None:
    for i in range(300):
        client.delete(f"/program/v1/user/bulk{i}")
    assert len(entries(client)) == 300


def test_log_and_sequence_survive_restart(tmp_path: Path) -> None:
    with sandbox_client(tmp_path) as c:
        c.delete("/program/v1/user/a")
        c.delete("/program/v1/user/b")
        before = entries(c)
    with sandbox_client(tmp_path) as c:
        assert entries(c) == before
        c.delete("/program/v1/user/c")
        after = entries(c)
        assert after[-1]["seq"] > before[-1]["seq"]


def test_reset_drops_state(client: TestClient) -> None:
    seed(client, users=["u"])
    client.post("/_sandbox/faults", json={"status": 500})
    client.delete("/program/v1/user/u")
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/users").json() == {"users": []}
    assert client.get("/_sandbox/faults").json() == {"faults": []}
    assert entries(client) == []


def test_routes_listing(client: TestClient) -> None:
    listing = client.get("/_sandbox/routes").json()
    patterns = {r["pattern"] for r in listing["routes"]}
    assert "/program/v1/user/{userId}" in patterns
    assert "users" in listing["seed_kinds"]


def test_unknown_sandbox_path_is_404_and_not_logged(client: TestClient) -> None:
    assert client.get("/_sandbox/nothing").status_code == 404
    assert entries(client) == []
