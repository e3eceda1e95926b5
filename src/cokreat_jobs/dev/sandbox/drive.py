"""Google Drive v3 (files.get, metadata and `alt=media`) and the OAuth token endpoint of a service account.

content-auto-creator downloads Drive-hosted artifacts with a service account: google-auth signs a JWT and
posts it to the `token_uri` of the credentials JSON (point it at `<sandbox>/oauth2/token`) for a bearer token,
then the job calls the Drive REST API with it. The sandbox accepts any well-formed JWT-bearer assertion (it
cannot check signatures of keys it never issued), issues tokens that expire after an hour, and requires one on
every Drive call. Errors use Google's JSON error format, not Sunbird's envelope; fault rules on these paths
answer in that format too (403/429 as `userRateLimitExceeded`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api, google_error, json_response
from cokreat_jobs.dev.sandbox.multipart import parse_urlencoded
from cokreat_jobs.dev.sandbox.router import Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError
from cokreat_jobs.dev.sandbox.state import Database

API_DRIVE = Api("drive.files.get", "v3", "google")
API_TOKEN = Api("oauth2.token", "v4", "google")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS drive_files (id TEXT PRIMARY KEY, meta BLOB NOT NULL, content BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oauth_tokens (token TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)",
)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_TTL_S = 3600
GOOGLE_NATIVE_PREFIX = "application/vnd.google-apps."
DEFAULT_FIELDS = ("kind", "id", "name", "mimeType")


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def check_assertion(assertion: str) -> str | None:
    """Why a JWT-bearer assertion is malformed, or None when it is well-formed."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts):
        return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
    try:
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return "Invalid JWT Signature."
    if not isinstance(header, dict) or not isinstance(claims, dict) or not claims.get("iss"):
        return "Invalid JWT Signature."
    return None


def split_fields(fields: str) -> list[str]:
    """Top-level names of a Drive `fields` selector ("id,name,owners(emailAddress)")."""
    names: list[str] = []
    depth, current = 0, ""
    for char in fields:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current.strip())
            current = ""
            continue
        if depth == 0 and char not in "()":
            current += char
    names.append(current.strip())
    return [n.split("/", 1)[0] for n in names if n]


class Drive:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    # -- tokens -------------------------------------------------------------------------------------------

    def issue_token(self) -> str:
        token = "ya29.sandbox-" + secrets.token_urlsafe(24)
        expires = time.time_ns() // 1_000_000 + TOKEN_TTL_S * 1000
        self._db.execute("INSERT INTO oauth_tokens (token, expires_ms) VALUES (?, ?)", (token, expires))
        return token

    def token_valid(self, token: str) -> bool:
        row = self._db.query_one("SELECT expires_ms FROM oauth_tokens WHERE token = ?", (token,))
        return row is not None and row[0] > time.time_ns() // 1_000_000

    # -- files --------------------------------------------------------------------------------------------

    def seed(self, items: list[Any]) -> int:
        rows = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise SeedError(f"a drive file is an object with an id: {item!r}")
            try:
                content = base64.b64decode(item.get("content_base64") or "", validate=True)
            except binascii.Error as exc:
                raise SeedError(f"content_base64 of {item['id']} is not base64") from exc
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            mime = str(item.get("mimeType") or "application/octet-stream")
            meta: dict[str, Any] = {
                "kind": "drive#file",
                "id": item["id"],
                "name": item.get("name") or item["id"],
                "mimeType": mime,
                "owners": [
                    {
                        "kind": "drive#user",
                        "displayName": "Sandbox Owner",
                        "emailAddress": "owner@sandbox.example",
                        "me": False,
                    }
                ],
                "permissionIds": ["anyoneWithLink"],
                "properties": {},
                "createdTime": now,
                "modifiedTime": now,
            }
            if not mime.startswith(GOOGLE_NATIVE_PREFIX):
                # Google-native documents have no size, checksum or download link.
                meta["size"] = str(len(content))
                meta["md5Checksum"] = hashlib.md5(content).hexdigest()
                meta["webContentLink"] = f"https://drive.google.com/uc?id={item['id']}&export=download"
            meta.update({k: v for k, v in item.items() if k not in ("id", "content_base64")})
            rows.append((item["id"], orjson.dumps(meta), content))
        self._db.executemany("INSERT OR REPLACE INTO drive_files (id, meta, content) VALUES (?, ?, ?)", rows)
        return len(rows)

    def metadata(self, file_id: str) -> dict[str, Any] | None:
        row = self._db.query_one("SELECT meta FROM drive_files WHERE id = ?", (file_id,))
        return orjson.loads(row[0]) if row else None

    def content(self, file_id: str) -> bytes | None:
        row = self._db.query_one("SELECT content FROM drive_files WHERE id = ?", (file_id,))
        return bytes(row[0]) if row else None

    def clear(self) -> None:
        self._db.execute("DELETE FROM drive_files")
        self._db.execute("DELETE FROM oauth_tokens")


def _unauthenticated(reason: str, detail: str) -> Response:
    return google_error(
        401, detail, reason, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    )


def register(sandbox: Sandbox) -> None:
    drive = Drive(sandbox.db)
    sandbox.services["drive"] = drive
    sandbox.on_reset(drive.clear)
    sandbox.add_seed_kind("drive_files", drive.seed)

    async def token(call: Call) -> Response:
        if call.content_type.lower().startswith("application/json"):
            body = call.json()
            form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        else:
            form = parse_urlencoded(call.body)
        if form.get("grant_type") != JWT_BEARER:
            return json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"Invalid grant_type: {form.get('grant_type')}",
                },
                400,
            )
        problem = check_assertion(form.get("assertion", ""))
        if problem is not None:
            return json_response({"error": "invalid_grant", "error_description": problem}, 400)
        return json_response(
            {"access_token": drive.issue_token(), "expires_in": TOKEN_TTL_S, "token_type": "Bearer"}
        )

    async def get_file(call: Call) -> Response:
        authorization = call.header("authorization") or ""
        scheme, _, bearer = authorization.partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            return _unauthenticated(
                "required",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
            )
        if not drive.token_valid(bearer.strip()):
            return _unauthenticated(
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
            )
        file_id = call.params["fileId"]
        meta = drive.metadata(file_id)
        if meta is None:
            return google_error(404, f"File not found: {file_id}.", "notFound")
        if call.query.get("alt") == "media":
            mime = str(meta.get("mimeType", ""))
            if mime.startswith(GOOGLE_NATIVE_PREFIX):
                return google_error(
                    403,
                    "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                    "fileNotDownloadable",
                )
            data = drive.content(file_id) or b""
            return Response(data, media_type=mime or "application/octet-stream")
        fields = call.query.get("fields")
        if fields is None or fields.strip() == "":
            selected = {k: meta[k] for k in DEFAULT_FIELDS if k in meta}
        elif fields.strip() == "*":
            selected = meta
        else:
            selected = {k: meta[k] for k in split_fields(fields) if k in meta}
        return json_response(selected)

    sandbox.router.add("POST", "/token", token, API_TOKEN)
    sandbox.router.add("GET", "/drive/v3/files/{fileId}", get_file, API_DRIVE)
