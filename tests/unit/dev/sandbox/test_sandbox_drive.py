"""Google Drive v3 and OAuth token stand-ins, driven by google-auth's real service-account flow."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from cokreat_jobs.dev.sandbox import ServerThread
from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client, seed

PDF = b"%PDF-1.4 drive bytes"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        seed(
            c,
            drive_files=[
                {
                    "id": "f1",
                    "name": "Book.pdf",
                    "mimeType": "application/pdf",
                    "content_base64": base64.b64encode(PDF).decode(),
                },
                {"id": "doc", "name": "Notes", "mimeType": "application/vnd.google-apps.document"},
            ],
        )
        yield c


def jwt(claims: dict[str, object]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def token(client: TestClient) -> str:
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt({"iss": "sa@x.iam"}),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    return body["access_token"]


def test_token_endpoint_refuses_bad_grants(client: TestClient) -> None:
    response = client.post("/oauth2/token", data={"grant_type": "password", "assertion": jwt({"iss": "a"})})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    for assertion in ("", "a.b", "not.base64!.x", jwt({"sub": "no issuer"})):
        response = client.post(
            "/oauth2/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        )
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_metadata_with_fields(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token(client)}"}
    fields = "id,name,size,owners,mimeType,properties,permissionIds,webContentLink"
    response = client.get("/drive/v3/files/f1", params={"fields": fields}, headers=headers)
    assert response.status_code == 200
    meta = response.json()
    assert set(meta) == set(fields.split(","))
    assert meta["size"] == str(len(PDF)) and isinstance(meta["size"], str)
    assert meta["mimeType"] == "application/pdf" and meta["name"] == "Book.pdf"
    assert meta["owners"][0]["emailAddress"]
    default = client.get("/drive/v3/files/f1", headers=headers).json()
    assert default == {"kind": "drive#file", "id": "f1", "name": "Book.pdf", "mimeType": "application/pdf"}


def test_media_download(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token(client)}"}
    response = client.get("/drive/v3/files/f1", params={"alt": "media"}, headers=headers)
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"].startswith("application/pdf")
    assert response.headers["content-length"] == str(len(PDF))
    response = client.get("/drive/v3/files/doc", params={"alt": "media"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["errors"][0]["reason"] == "fileNotDownloadable"


def test_errors_use_googles_format(client: TestClient) -> None:
    response = client.get("/drive/v3/files/f1")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert response.json()["error"]["errors"][0]["reason"] == "required"
    response = client.get("/drive/v3/files/f1", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401
    headers = {"Authorization": f"Bearer {token(client)}"}
    response = client.get("/drive/v3/files/nope", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"


def test_fault_on_drive_answers_a_rate_limit_error(client: TestClient) -> None:
    client.post("/_sandbox/faults", json={"path": "/drive/v3/files/*", "status": 403, "times": 1})
    headers = {"Authorization": f"Bearer {token(client)}"}
    response = client.get("/drive/v3/files/f1", params={"alt": "media"}, headers=headers)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == 403
    assert error["errors"][0] == {
        "message": "User Rate Limit Exceeded",
        "domain": "usageLimits",
        "reason": "userRateLimitExceeded",
    }
    assert client.get("/drive/v3/files/f1", params={"alt": "media"}, headers=headers).content == PDF


def test_google_auth_service_account_flow(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with ServerThread(tmp_path) as server:
        info = {
            "type": "service_account",
            "project_id": "sandbox",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "job@sandbox.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{server.base_url}/oauth2/token",
        }
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/drive.readonly"]
        )
        credentials.refresh(Request())
        assert credentials.token and credentials.valid
        with httpx.Client(base_url=server.base_url) as http:
            seed(
                http,
                drive_files=[
                    {
                        "id": "f",
                        "name": "a.pdf",
                        "mimeType": "application/pdf",
                        "content_base64": base64.b64encode(PDF).decode(),
                    }
                ],
            )
            response = http.get(
                "/drive/v3/files/f",
                params={"alt": "media"},
                headers={"Authorization": f"Bearer {credentials.token}"},
            )
            assert response.content == PDF
