"""program-service stand-in: DELETE /program/v1/user/{userId}."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed

DELETED = "User deleted Successfully ${req.params.userId}"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        yield c


def test_delete_known_user_answers_the_literal_template(client: TestClient) -> None:
    assert seed(client, users=["u-1", "u-2"]) == {"users": 2}
    response = client.delete("/program/v1/user/u-1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == "api.delete.user"
    assert body["ver"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["ts"])
    assert body["responseCode"] == "OK"
    assert body["params"]["status"] == "successful"
    assert body["params"]["err"] is None
    assert body["result"] == {"response": DELETED}
    assert client.get("/_sandbox/users").json() == {"users": ["u-2"]}


def test_unknown_user_is_404_with_server_error_envelope(client: TestClient) -> None:
    response = client.delete("/program/v1/user/nobody")
    assert response.status_code == 404
    body = response.json()
    assert body["responseCode"] == "SERVER_ERROR"
    assert body["params"]["status"] == "failed"
    assert body["params"]["err"] == "ERR_DELETING_USER_FAILED"
    assert body["params"]["errmsg"] == "Unable to delete given user"
    assert body["result"] == {"response": "User not found in Sunbird"}


def test_second_delete_of_same_user_is_not_found(client: TestClient) -> None:
    seed(client, users=["once"])
    assert client.delete("/program/v1/user/once").status_code == 200
    assert client.delete("/program/v1/user/once").status_code == 404


@pytest.mark.parametrize("role", ["admin", "sourcing_admin", "sourcing_reviewer"])
def test_admin_and_sourcing_roles_are_refused_permanently(client: TestClient, role: str) -> None:
    seed(client, users=[{"id": "boss", "roles": ["user", role]}])
    for _ in range(2):
        response = client.delete("/program/v1/user/boss")
        assert response.status_code == 400
        body = response.json()
        assert body["responseCode"] == "SERVER_ERROR"
        assert body["params"]["err"] == "ERR_DELETING_USER_FAILED"
        assert body["result"] == {"response": "Can only delete Individual or contributing org user"}
    assert client.get("/_sandbox/users").json() == {"users": ["boss"]}


def test_contributing_org_user_gets_a_bare_string(client: TestClient) -> None:
    seed(client, users=[{"id": "member", "roles": ["user"]}])
    response = client.delete("/program/v1/user/member")
    assert response.status_code == 200
    assert response.json()["result"] == DELETED


def test_user_id_is_one_percent_decoded_segment(client: TestClient) -> None:
    seed(client, users=["a/b", "c d", "ü@x"])
    assert client.delete("/program/v1/user/a%2Fb").status_code == 200
    assert client.delete("/program/v1/user/c%20d").status_code == 200
    assert client.delete("/program/v1/user/%C3%BC%40x").status_code == 200
    assert client.get("/_sandbox/users").json() == {"users": []}
    # An unencoded slash is two segments: no such route.
    seed(client, users=["a/b"])
    assert client.delete("/program/v1/user/a/b").status_code == 500
    paths = [r["path"] for r in client.get("/_sandbox/requests").json()["requests"]]
    assert paths[3] == "/program/v1/user/a/b"
    assert paths[2] == "/program/v1/user/ü@x"


@pytest.mark.parametrize("prefix", ["", "/program", "/api/gateway/program"])
def test_served_under_any_prefix(client: TestClient, prefix: str) -> None:
    seed(client, users=["p1"])
    assert client.delete(f"{prefix}/program/v1/user/p1").status_code == 200


def test_unknown_route_is_an_html_page(client: TestClient) -> None:
    for method, path in [("GET", "/program/v1/user/x"), ("DELETE", "/nothing/here"), ("POST", "/")]:
        response = client.request(method, path)
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
        assert "<html" in response.text


def test_seed_validation(client: TestClient) -> None:
    assert client.post("/_sandbox/seed", json={"nonsense": []}).status_code == 400
    assert client.post("/_sandbox/seed", json={"users": [{"roles": []}]}).status_code == 400
    assert client.post("/_sandbox/seed", json={"users": "u"}).status_code == 400
    assert client.post("/_sandbox/seed", content=b"{not json").status_code == 400
    # Seeding is an upsert: roles are replaced.
    seed(client, users=[{"id": "x", "roles": ["admin"]}])
    seed(client, users=["x"])
    assert client.delete("/program/v1/user/x").status_code == 200


def test_users_persist_across_restarts(tmp_path: Path) -> None:
    with sandbox_client(tmp_path) as c:
        seed(c, users=["keep", "gone"])
        assert c.delete("/program/v1/user/gone").status_code == 200
    assert (tmp_path / "sandbox.db").exists()
    with sandbox_client(tmp_path) as c:
        assert c.get("/_sandbox/users").json() == {"users": ["keep"]}
        logged = c.get("/_sandbox/requests").json()["requests"]
        assert [r["path"] for r in logged] == ["/program/v1/user/gone"]


# POST /program/v1/user/transfer, as program-service release-8.0.0 answers it


def transfer_event(**edata: object) -> dict[str, object]:
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1",
        "object": {"id": "from-1", "type": "User"},
        "edata": {
            "action": "ownership-transfer",
            "fromUserProfile": {"userId": "from-1", "firstName": "Ann", "lastName": "Lee", "roles": ["x"]},
            "toUserProfile": {
                "userId": "to-1",
                "firstName": "Bo",
                "lastName": "Ng",
                "roles": ["CONTENT_CREATOR"],
            },
            **edata,
        },
    }


def test_transfer_accepts_the_request_and_records_it(client: TestClient) -> None:
    event = transfer_event()
    response = client.post("/program/v1/user/transfer", json={"request": event})
    assert response.status_code == 200
    body = response.json()
    # successResponse(the Kafka producer's result): no id, no ver, null message ids, empty result
    assert set(body) == {"ts", "params", "responseCode", "result"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["ts"])
    assert body["responseCode"] == "OK"
    assert body["result"] == {}
    assert body["params"] == {
        "resmsgid": None,
        "msgid": None,
        "status": "successful",
        "err": None,
        "errmsg": None,
    }
    assert client.get("/_sandbox/transfers").json() == {"transfers": [event]}


def test_transfer_validates_nothing_but_a_non_empty_request(client: TestClient) -> None:
    # program-service publishes whatever it is given: an event the job would have skipped is accepted too
    assert client.post("/program/v1/user/transfer", json={"request": {"anything": 1}}).status_code == 200
    assert client.get("/_sandbox/transfers").json() == {"transfers": [{"anything": 1}]}


@pytest.mark.parametrize(
    "body", [{}, {"request": None}, {"request": {}}, {"request": []}, {"request": ""}, {"request": 5}, []]
)
def test_transfer_of_an_empty_request_is_400_without_response_code(client: TestClient, body: object) -> None:
    response = client.post(
        "/program/v1/user/transfer", json=body, headers={"x-msgid": "m-1", "x-request-id": "r-1"}
    )
    assert response.status_code == 400
    answer = response.json()
    assert "responseCode" not in answer  # the service reads responseCode.SERVER_err, an undefined constant
    assert answer["id"] == "api.user.transfer" and answer["ver"] == "1.0"
    assert answer["params"] == {
        "resmsgid": "r-1",
        "msgid": "m-1",
        "status": "failed",
        "err": "ERR_DELETING_USER_FAILED",
        "errmsg": "Unable to delete given user",
    }
    assert answer["result"] == {}
    assert client.get("/_sandbox/transfers").json() == {"transfers": []}


def test_transfer_of_malformed_json_is_body_parsers_html_page(client: TestClient) -> None:
    response = client.post(
        "/program/v1/user/transfer", content=b'{"request": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


def test_transfer_under_a_prefix_with_faults_and_reset(client: TestClient) -> None:
    rule = {"method": "POST", "path": "*/program/v1/user/transfer", "status": 503, "times": 1}
    assert client.post("/_sandbox/faults", json=rule).status_code == 200
    url = "/program/program/v1/user/transfer"
    assert client.post(url, json={"request": transfer_event()}).status_code == 503
    assert client.get("/_sandbox/transfers").json() == {"transfers": []}
    assert client.post(url, json={"request": transfer_event()}).status_code == 200
    logged = [r["path"] for r in client.get("/_sandbox/requests").json()["requests"]]
    assert logged == [url, url]
    assert len(client.get("/_sandbox/transfers").json()["transfers"]) == 1
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/transfers").json() == {"transfers": []}


def test_delete_route_still_takes_a_user_called_transfer(client: TestClient) -> None:
    # express matches DELETE /user/:userId for it, as here: the two routes differ by method
    seed(client, users=["transfer"])
    assert client.delete("/program/v1/user/transfer").status_code == 200
