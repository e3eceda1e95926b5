"""Fault rules: times, rate, latency, custom bodies, throttling, hangs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cokreat_jobs.dev.sandbox import ServerThread
from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        yield c


def add_fault(client: TestClient | httpx.Client, **rule: object) -> str:
    response = client.post("/_sandbox/faults", json=rule)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def delete_user(client: TestClient, user: str = "u") -> httpx.Response:
    return client.delete(f"/program/v1/user/{user}")


def test_times_fails_the_next_n_then_serves(client: TestClient) -> None:
    seed(client, users=["u"])
    add_fault(client, method="DELETE", path="/program/v1/user/*", status=503, times=2)
    first, second = delete_user(client), delete_user(client)
    for response in (first, second):
        assert response.status_code == 503
        body = response.json()
        assert body["responseCode"] == "SERVER_ERROR"
        assert body["params"]["err"] == "ERR_SANDBOX_FAULT"
        assert body["params"]["status"] == "failed"
    assert delete_user(client).status_code == 200
    statuses = [e["status"] for e in client.get("/_sandbox/requests").json()["requests"]]
    assert statuses == [503, 503, 200]


@pytest.mark.parametrize(
    ("status", "code"), [(404, "RESOURCE_NOT_FOUND"), (400, "CLIENT_ERROR"), (429, "CLIENT_ERROR")]
)
def test_default_envelope_response_codes(client: TestClient, status: int, code: str) -> None:
    add_fault(client, status=status, times=1)
    response = delete_user(client)
    assert response.status_code == status
    assert response.json()["responseCode"] == code


def test_rate_fails_a_fraction(client: TestClient) -> None:
    add_fault(client, path="*/user/never", status=500, rate=0.0)
    add_fault(client, path="*/user/always", status=502, rate=1.0)
    add_fault(client, path="*/user/half", status=500, rate=0.5)
    assert all(delete_user(client, "never").status_code == 404 for _ in range(20))
    assert all(delete_user(client, "always").status_code == 502 for _ in range(20))
    failed = sum(delete_user(client, "half").status_code == 500 for _ in range(300))
    assert 90 < failed < 210


def test_latency_only_delays_without_failing(client: TestClient) -> None:
    seed(client, users=["slow"])
    add_fault(client, path="*/user/slow", latency_ms=150)
    started = time.perf_counter()
    response = delete_user(client, "slow")
    assert time.perf_counter() - started >= 0.15
    assert response.status_code == 200
    [entry] = client.get("/_sandbox/requests").json()["requests"]
    assert entry["duration_ms"] >= 150


def test_custom_json_body_and_raw_body(client: TestClient) -> None:
    add_fault(client, path="*/user/json", status=404, body={"custom": True})
    add_fault(client, path="*/user/html", status=502, raw_body="<html>Bad Gateway</html>")
    add_fault(client, path="*/user/text", status=503, raw_body="down", content_type="text/plain")
    response = delete_user(client, "json")
    assert (response.status_code, response.json()) == (404, {"custom": True})
    response = delete_user(client, "html")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == "<html>Bad Gateway</html>"
    response = delete_user(client, "text")
    assert response.headers["content-type"].startswith("text/plain")


def test_matching_by_method_and_decoded_path_glob(client: TestClient) -> None:
    add_fault(client, method="get", path="/program/v1/user/*", status=500)
    add_fault(client, method="DELETE", path="/program/v1/user/a b", status=504)
    assert delete_user(client, "x").status_code == 404
    assert delete_user(client, "a%20b").status_code == 504


def test_rule_without_method_or_path_matches_everything_but_sandbox_paths(client: TestClient) -> None:
    add_fault(client, status=418)
    assert delete_user(client).status_code == 418
    assert client.get("/whatever").status_code == 418
    assert client.get("/_sandbox/health").status_code == 200
    assert client.post("/_sandbox/seed", json={"users": ["u"]}).status_code == 200


def test_max_rps_throttles_with_retry_after(client: TestClient) -> None:
    seed(client, users=[f"u{i}" for i in range(12)])
    add_fault(client, path="/program/*", max_rps=3)
    responses = [delete_user(client, f"u{i}") for i in range(12)]
    throttled = [r for r in responses if r.status_code == 429]
    # The 12 calls may straddle a second boundary: at most two windows of 3 get through.
    assert 6 <= len(throttled) <= 9
    assert all(r.headers["retry-after"] == "1" for r in throttled)
    assert all(r.status_code == 200 for r in responses if r.status_code != 429)


def test_clear_and_remove_rules(client: TestClient) -> None:
    rule_id = add_fault(client, status=500)
    add_fault(client, path="/other", status=500)
    assert len(client.get("/_sandbox/faults").json()["faults"]) == 2
    assert client.delete(f"/_sandbox/faults/{rule_id}").status_code == 200
    assert delete_user(client).status_code == 404
    assert client.delete("/_sandbox/faults").status_code == 200
    assert client.get("/other").status_code == 500  # unknown route page, not the fault
    assert client.get("/_sandbox/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"status": "500"},
        {"status": 500, "times": 1, "rate": 0.5},
        {"status": 500, "rate": 2},
        {"path": 5, "status": 500},
        {"status": 500, "surprise": 1},
        [1, 2],
    ],
)
def test_invalid_rules_are_refused(client: TestClient, rule: object) -> None:
    assert client.post("/_sandbox/faults", json=rule).status_code == 400


def test_rules_and_remaining_times_survive_restart(tmp_path: Path) -> None:
    with sandbox_client(tmp_path) as c:
        add_fault(c, status=503, times=3)
        assert delete_user(c).status_code == 503
    with sandbox_client(tmp_path) as c:
        assert [delete_user(c).status_code for _ in range(3)] == [503, 503, 404]


def test_hang_holds_the_connection_until_the_client_gives_up(tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server, httpx.Client(base_url=server.base_url) as http:
        seed(http, users=["u"])
        add_fault(http, path="*/user/u", hang=True, times=1)
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            http.delete("/program/v1/user/u", timeout=0.5)
        assert time.perf_counter() - started >= 0.5
        # The server noticed the disconnect and logged the unanswered request.
        deadline = time.monotonic() + 5
        logged: list[dict] = []
        while time.monotonic() < deadline and not logged:
            logged = http.get("/_sandbox/requests").json()["requests"]
            time.sleep(0.05)
        assert [e["status"] for e in logged] == [499]
        assert http.delete("/program/v1/user/u").status_code == 200


def test_a_times_rule_counts_only_the_requests_it_answers(client: TestClient) -> None:
    # the first rule answers the first request; the second keeps both of its failures for later ones
    add_fault(client, method="DELETE", path="/program/v1/user/*", status=503, times=1)
    add_fault(client, method="DELETE", path="/program/v1/user/*", status=502, times=2)
    statuses = [delete_user(client).status_code for _ in range(4)]
    assert statuses == [503, 502, 502, 404]
