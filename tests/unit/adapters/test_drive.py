"""Google Drive over aiohttp against a local stand-in for Google's token endpoint and Drive v3."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cokreat_jobs.adapters.drive import DRIVE_FIELDS, DriveClient, DriveFile, parse_service_account
from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import PermanentError, TransientError

FAST = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=2)


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def rate_limited(status: int = 403, reason: str = "userRateLimitExceeded") -> web.Response:
    body = {
        "error": {
            "code": status,
            "message": "User Rate Limit Exceeded",
            "errors": [{"domain": "usageLimits", "reason": reason, "message": "User Rate Limit Exceeded"}],
        }
    }
    return web.json_response(body, status=status)


class Google:
    """Token endpoint + Drive files.get, scripted per file id; records every request."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.assertions: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {
            "f1": (
                {"id": "f1", "name": "My Game.zip", "mimeType": "application/zip", "size": "7"},
                b"PK game",
            ),
        }
        self.failures: dict[str, list[web.Response]] = {}
        self.token_failures: list[web.Response] = []
        self.revoked: set[str] = set()

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        if self.token_failures:
            return self.token_failures.pop(0)
        payload = str(form["assertion"]).split(".")[1]
        self.assertions.append(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": f"tok-{self.tokens_issued}", "expires_in": 3599, "token_type": "Bearer"}
        )

    async def file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["id"]
        auth = request.headers.get("Authorization", "")
        self.requests.append({"id": file_id, "query": dict(request.query), "auth": auth})
        if not auth.startswith("Bearer ") or auth.split(" ", 1)[1] in self.revoked:
            return web.json_response({"error": {"code": 401, "message": "Invalid Credentials"}}, status=401)
        queue = self.failures.get(file_id)
        if queue:
            return queue.pop(0)
        if file_id not in self.files:
            return web.json_response(
                {"error": {"code": 404, "message": f"File not found: {file_id}."}}, status=404
            )
        meta, data = self.files[file_id]
        if request.query.get("alt") == "media":
            return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response(meta)


async def start_google(pem: str, **kw: Any) -> tuple[Google, TestServer, DriveClient]:
    """A stand-in Google (token endpoint, Drive files) and a client of it with a service-account key."""
    google = Google()
    app = web.Application()
    app.router.add_post("/oauth2/token", google.token)
    app.router.add_get("/drive/v3/files/{id}", google.file)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "drive-reader@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{base}/oauth2/token",
    }
    kw.setdefault("retry", FAST)
    kw.setdefault("sleep", _no_sleep)
    return google, server, DriveClient(orjson.dumps(info).decode(), api_base=base, **kw)


def run(body: Callable[[Google, DriveClient], Awaitable[Any]], pem: str, **kw: Any) -> Any:
    async def main() -> Any:
        google, server, client = await start_google(pem, **kw)
        try:
            return await body(google, client)
        finally:
            await client.close()
            await server.close()

    return asyncio.run(main())


async def _no_sleep(seconds: float) -> None:
    return None


def test_metadata_with_the_reference_fields(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        meta = await drive.get_metadata("f1")
        assert meta == DriveFile("f1", "My Game.zip", "application/zip", 7)
        assert meta.raw["size"] == "7"
        (req,) = google.requests
        assert req["query"]["fields"] == DRIVE_FIELDS
        assert req["auth"] == "Bearer tok-1"

    run(body, private_key_pem)


def test_token_is_signed_by_the_service_account_and_cached(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        await asyncio.gather(drive.get_metadata("f1"), drive.get_metadata("f1"), drive.get_metadata("f1"))
        await drive.get_metadata("f1")
        assert google.tokens_issued == 1
        (claims,) = google.assertions
        assert claims["iss"] == "drive-reader@p.iam.gserviceaccount.com"
        assert claims["aud"].endswith("/oauth2/token")
        assert "https://www.googleapis.com/auth/drive" in claims["scope"]
        assert claims["exp"] - claims["iat"] == 3600

    run(body, private_key_pem)


def test_download_streams_the_content(private_key_pem: str, tmp_path: Path) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        size = await drive.download("f1", tmp_path / "game.zip", max_bytes=100)
        assert size == 7
        assert (tmp_path / "game.zip").read_bytes() == b"PK game"
        assert google.requests[-1]["query"]["alt"] == "media"

    run(body, private_key_pem)


def test_download_over_the_cap_is_refused_and_removed(private_key_pem: str, tmp_path: Path) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        with pytest.raises(PermanentError, match="over the 3-byte limit"):
            await drive.download("f1", tmp_path / "game.zip", max_bytes=3)
        assert not (tmp_path / "game.zip").exists()

    run(body, private_key_pem)


@pytest.mark.parametrize(
    "answer",
    [
        lambda: rate_limited(403, "userRateLimitExceeded"),
        lambda: rate_limited(403, "rateLimitExceeded"),
        lambda: rate_limited(429, "rateLimitExceeded"),
        lambda: web.Response(status=503, text="unavailable"),
    ],
)
def test_rate_limits_back_off_and_retry(private_key_pem: str, answer: Callable[[], web.Response]) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def body(google: Google, drive: DriveClient) -> None:
        google.failures["f1"] = [answer(), answer()]
        meta = await drive.get_metadata("f1")
        assert meta.name == "My Game.zip"
        assert len(google.requests) == 3
        assert len(sleeps) == 2 and sleeps[1] >= sleeps[0] / 2

    run(body, private_key_pem, sleep=sleep)


def test_retry_after_as_an_http_date_is_honoured(private_key_pem: str) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def body(google: Google, drive: DriveClient) -> None:
        until = email.utils.formatdate(time.time() + 30, usegmt=True)
        google.failures["f1"] = [web.Response(status=429, headers={"Retry-After": until})]
        assert (await drive.get_metadata("f1")).name == "My Game.zip"
        [waited] = sleeps
        assert 28.0 <= waited <= 30.0  # Drive used to read only seconds and back off instead

    patient = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=60_000)
    run(body, private_key_pem, sleep=sleep, retry=patient)


def test_rate_limit_that_does_not_end_is_transient(private_key_pem: str, tmp_path: Path) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        google.failures["f1"] = [rate_limited() for _ in range(10)]
        with pytest.raises(TransientError, match="after 3 attempts"):
            await drive.download("f1", tmp_path / "x")
        assert not (tmp_path / "x").exists()

    run(body, private_key_pem)


def test_rate_limit_waits_do_not_block_other_calls(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        google.files["f2"] = ({"id": "f2", "name": "b.pdf", "mimeType": "application/pdf"}, b"%PDF")
        google.failures["f1"] = [rate_limited()]
        done: list[str] = []

        async def fetch(file_id: str) -> None:
            await drive.get_metadata(file_id)
            done.append(file_id)

        await asyncio.gather(fetch("f1"), fetch("f2"))
        assert done == ["f2", "f1"]

    run(body, private_key_pem, sleep=asyncio.sleep, retry=RetryPolicy(max_attempts=3, backoff_ms=200))


def test_missing_file_is_permanent(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        with pytest.raises(PermanentError, match="gone not found") as info:
            await drive.get_metadata("gone")
        assert info.value.status == 404  # type: ignore[attr-defined]
        assert len(google.requests) == 1

    run(body, private_key_pem)


def test_other_403_is_permanent(private_key_pem: str, tmp_path: Path) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        google.failures["f1"] = [rate_limited(403, "fileNotDownloadable")]
        with pytest.raises(PermanentError, match="HTTP 403"):
            await drive.download("f1", tmp_path / "x")
        assert len(google.requests) == 1

    run(body, private_key_pem)


def test_revoked_token_is_refreshed_once(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        await drive.get_metadata("f1")
        google.revoked.add("tok-1")
        await drive.get_metadata("f1")
        assert google.tokens_issued == 2
        assert google.requests[-1]["auth"] == "Bearer tok-2"
        google.revoked.add("tok-2")
        google.revoked.add("tok-3")
        with pytest.raises(PermanentError, match="unauthorised"):
            await drive.get_metadata("f1")

    run(body, private_key_pem)


def test_refused_service_account(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        google.token_failures = [
            web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400
            )
        ]
        with pytest.raises(PermanentError, match="invalid_grant") as info:
            await drive.get_metadata("f1")
        assert "PRIVATE KEY" not in str(info.value)

    run(body, private_key_pem)


def test_token_endpoint_outage_is_retried(private_key_pem: str) -> None:
    async def body(google: Google, drive: DriveClient) -> None:
        google.token_failures = [web.Response(status=503)]
        assert (await drive.get_metadata("f1")).id == "f1"

    run(body, private_key_pem)


# ------------------------------------------------------------------------------------------ configuration


def test_unconfigured_drive_fails_each_call_without_network() -> None:
    async def body() -> None:
        drive = DriveClient("")
        assert not drive.configured
        with pytest.raises(PermanentError, match="g_service_acct_cred is not set"):
            await drive.get_metadata("f1")
        await drive.close()

    asyncio.run(body())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "is not set"),
        ("  ", "is not set"),
        ("{not json", "is not valid JSON"),
        ("[1]", "is not a JSON object"),
        (5, "must be a JSON object or string"),
        ('{"client_email": "x"}', "lacks private_key, token_uri"),
    ],
)
def test_parse_service_account_errors(value: Any, message: str) -> None:
    info, why = parse_service_account(value)
    assert info is None and message in why


def test_parse_service_account_accepts_objects_and_strings() -> None:
    info = {"client_email": "e", "private_key": "k", "token_uri": "t"}
    assert parse_service_account(info) == (info, "")
    assert parse_service_account(orjson.dumps(info).decode()) == (info, "")


def test_from_config_and_repr_keep_secrets_out(private_key_pem: str) -> None:
    cred = {"client_email": "e@x", "private_key": private_key_pem, "token_uri": "http://t/token"}
    cfg = JobConfig(
        {"content_auto_creator": {"g_service_acct_cred": cred, "drive_api_base": "http://127.0.0.1:9/"}}
    )
    drive = DriveClient.from_config(cfg)
    assert drive.configured
    assert drive.api_base == "http://127.0.0.1:9"
    assert "PRIVATE" not in repr(drive)
    default = DriveClient.from_config(JobConfig({}))
    assert default.api_base == "https://www.googleapis.com" and not default.configured


def test_unusable_key_is_a_permanent_error() -> None:
    async def body() -> None:
        drive = DriveClient(
            {"client_email": "e", "private_key": "not a key", "token_uri": "http://127.0.0.1:9/t"}
        )
        with pytest.raises(PermanentError, match="unusable"):
            await drive.get_metadata("f1")
        await drive.close()

    asyncio.run(body())


def test_close_after_the_sessions_loop_has_ended(private_key_pem: str) -> None:
    """A client whose session was made on a loop that has ended (a Flink worker's) still releases it."""
    clients: list[DriveClient] = []

    async def open_and_leave() -> None:
        _google, server, drive = await start_google(private_key_pem)
        await drive.get_metadata("f1")
        clients.append(drive)  # not closed here: its loop ends with this coroutine
        await server.close()

    asyncio.run(open_and_leave())
    session = clients[0]._session
    assert session is not None and not session.closed
    asyncio.run(clients[0].close())  # on another loop than the session's: must not raise
    assert session.closed and clients[0]._session is None
