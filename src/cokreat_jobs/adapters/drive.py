"""Google Drive v3 over aiohttp, authenticated as a service account.

The reference used Google's blocking Java client and, on a 403, slept the operator thread 20 to 65 minutes.
Here every call is a coroutine: a rate-limited file waits with ``asyncio.sleep`` (exponential backoff with
jitter, bounded by ``http.retry.*``) while other events keep running, then fails as retries-exhausted for
``replay`` to bring back later.

Authentication: the service-account JSON (``content_auto_creator.g_service_acct_cred``, a JSON string or an
object) is read by ``google.oauth2.service_account.Credentials`` only to sign a JWT assertion (a CPU-only
step, no I/O); the OAuth token exchange (JWT-bearer grant) is done here with aiohttp against the credential's
``token_uri``, so nothing blocks the event loop. The token is cached until shortly before it expires and
refreshed once on a 401. Neither the key, the assertion nor the token is ever logged.

API base (``content_auto_creator.drive_api_base``, default ``https://www.googleapis.com``) and the token URI
are configurable so the sandbox can stand in for Google.

Answers: 200 is the file; 403 with reason ``userRateLimitExceeded`` / ``rateLimitExceeded``, 429 and 5xx are
retried; 404 is a PermanentError (no such file, or not shared with the service account); any other 4xx (e.g.
403 ``fileNotDownloadable`` on a Google-native document) is a PermanentError quoting Google's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import orjson

from cokreat_jobs.adapters.download import close_session, write_capped
from cokreat_jobs.adapters.retry import Retryable, RetryPolicy, call_with_retries, retry_after_s
from cokreat_jobs.core.errors import PermanentError, describe_exception

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "DEFAULT_API_BASE",
    "DRIVE_FIELDS",
    "DRIVE_SCOPE",
    "DriveClient",
    "DriveFile",
    "parse_service_account",
]

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://www.googleapis.com"
DRIVE_FIELDS = "id,name,size,owners,mimeType,properties,permissionIds,webContentLink"
DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
# A token is renewed this long before Google says it expires, so none expires in flight.
_TOKEN_MARGIN_S = 120.0


def parse_service_account(value: Any) -> tuple[dict[str, Any] | None, str]:
    """(the service-account info, "") or (None, why there is none) from the config value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "content_auto_creator.g_service_acct_cred is not set"
    if isinstance(value, Mapping):
        info = dict(value)
    elif isinstance(value, str | bytes):
        try:
            info = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None, "content_auto_creator.g_service_acct_cred is not valid JSON"
    else:
        return None, "content_auto_creator.g_service_acct_cred must be a JSON object or string"
    if not isinstance(info, dict):
        return None, "content_auto_creator.g_service_acct_cred is not a JSON object"
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        return None, f"content_auto_creator.g_service_acct_cred lacks {', '.join(missing)}"
    return info, ""


@dataclass(frozen=True, slots=True)
class DriveFile:
    id: str
    name: str
    mime_type: str
    size: int | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], file_id: str) -> DriveFile:
        size = data.get("size")  # an int64 *string* in Drive v3
        try:
            parsed_size = int(size) if size is not None else None
        except (TypeError, ValueError):
            parsed_size = None
        return cls(
            id=str(data.get("id") or file_id),
            name=str(data.get("name") or ""),
            mime_type=str(data.get("mimeType") or ""),
            size=parsed_size,
            raw=dict(data),
        )


class _Unauthorised(Exception):
    pass


def _google_error(body: bytes) -> tuple[str, set[str]]:
    """(message, reasons) of Google's error format ``{"error": {"message", "errors": [{"reason"}]}}``."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):  # the OAuth endpoint: {"error": "invalid_grant", "error_description": ...}
        description = data.get("error_description") if isinstance(data, dict) else None
        return (f"{error}: {description}" if description else error), {error}
    if not isinstance(error, dict):
        return "", set()
    message = str(error.get("message") or "")
    reasons = {
        str(e.get("reason")) for e in error.get("errors") or [] if isinstance(e, dict) and e.get("reason")
    }
    if isinstance(error.get("status"), str):
        reasons.add(error["status"])
    return message, reasons


class DriveClient:
    """Drive v3 ``files.get`` (metadata) and ``alt=media`` (content) for a service account."""

    def __init__(
        self,
        service_account: Any = None,
        *,
        api_base: str = DEFAULT_API_BASE,
        retry: RetryPolicy | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        total_timeout_s: float | None = 600.0,
        scopes: tuple[str, ...] = (DRIVE_SCOPE,),
        chunk_size: int = 64 * 1024,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._info, self._unconfigured = parse_service_account(service_account)
        self.api_base = api_base.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self.scopes = scopes
        self.chunk_size = chunk_size
        self._sleep = sleep
        self._clock = clock
        self._signer: Any = None
        self._token: str | None = None
        self._token_expiry = 0.0
        self._token_lock: asyncio.Lock | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_config(cls, cfg: JobConfig, **kwargs: Any) -> DriveClient:
        kwargs.setdefault("retry", RetryPolicy.from_config(cfg))
        kwargs.setdefault("connect_timeout_s", cfg.get_int("http.connect_timeout_ms", 5000) / 1000.0)
        kwargs.setdefault("read_timeout_s", cfg.get_int("http.read_timeout_ms", 30000) / 1000.0)
        total_ms = cfg.get_int("http.download_timeout_ms", 600_000)
        kwargs.setdefault("total_timeout_s", total_ms / 1000.0 if total_ms > 0 else None)
        kwargs.setdefault("api_base", cfg.get_str("content_auto_creator.drive_api_base", DEFAULT_API_BASE))
        return cls(cfg.get("content_auto_creator.g_service_acct_cred", None), **kwargs)

    @property
    def configured(self) -> bool:
        return self._info is not None

    # -- session and token

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=self.timeout)
            self._loop = loop
            self._token_lock = asyncio.Lock()
        return self._session

    async def close(self) -> None:
        session, loop = self._session, self._loop
        self._session = self._loop = None
        await close_session(session, loop)

    def _assertion(self) -> str:
        """A signed JWT asking ``token_uri`` for a token with our scopes (RFC 7523)."""
        from google.auth import jwt
        from google.oauth2 import service_account

        assert self._info is not None
        if self._signer is None:
            try:
                credentials = service_account.Credentials.from_service_account_info(self._info)
            except (ValueError, TypeError) as e:
                # The message of google-auth names the missing field, never the key itself.
                raise PermanentError(f"content_auto_creator.g_service_acct_cred is unusable: {e}") from None
            self._signer = (credentials.signer, credentials.service_account_email)
        signer, email = self._signer
        now = int(self._clock())
        payload = {
            "iss": email,
            "scope": " ".join(self.scopes),
            "aud": self._info["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        token: bytes = jwt.encode(signer, payload)
        return token.decode("ascii") if isinstance(token, bytes) else str(token)

    async def _access_token(self, force: bool = False) -> str:
        if self._info is None:
            raise PermanentError(f"Google Drive link, but {self._unconfigured}")
        self._get_session()
        assert self._token_lock is not None
        async with self._token_lock:  # one refresh for all the events waiting on it
            if not force and self._token and self._clock() < self._token_expiry - _TOKEN_MARGIN_S:
                return self._token
            data = {"grant_type": JWT_BEARER, "assertion": self._assertion()}
            token, expires_in = await self._with_retries("token", lambda: self._exchange(data), refresh=False)
            self._token, self._token_expiry = token, self._clock() + expires_in
            return token

    async def _exchange(self, form: dict[str, str]) -> tuple[str, float]:
        session = self._get_session()
        async with session.post(self._info["token_uri"], data=form) as resp:  # type: ignore[index]
            body = await resp.read()
            if resp.status == 429 or resp.status >= 500:
                raise Retryable(
                    f"token endpoint answered HTTP {resp.status}", retry_after=retry_after_s(resp.headers)
                )
            if resp.status != 200:
                message, _ = _google_error(body)
                text = f"Google token endpoint refused the service account: HTTP {resp.status} {message}"
                raise PermanentError(text.strip(), status=resp.status)
        try:
            data = orjson.loads(body)
            return str(data["access_token"]), float(data.get("expires_in", 3600))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise PermanentError("Google token endpoint answered without an access_token") from None

    # -- calls

    async def _with_retries(
        self, label: str, attempt: Callable[[], Awaitable[Any]], refresh: bool = True
    ) -> Any:
        refreshed = False

        async def classified() -> Any:
            nonlocal refreshed
            while True:
                try:
                    return await attempt()
                except _Unauthorised:
                    if not refresh or refreshed:
                        raise PermanentError(
                            f"Google Drive {label}: unauthorised (HTTP 401)", status=401
                        ) from None
                    # an expired or revoked token: one fresh token, at once, and the same attempt again
                    refreshed = True
                    await self._access_token(force=True)
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as e:
                    raise Retryable(describe_exception(e)) from e

        return await call_with_retries(
            classified,
            self.retry,
            what=f"Google Drive {label}",
            sleep=self._sleep,
            log=logger,
            log_message="retrying a Google Drive call",
            log_fields={"call": label},
        )

    def _check(self, status: int, headers: Mapping[str, str], body: bytes, file_id: str) -> None:
        if status == 200:
            return
        message, reasons = _google_error(body)
        if status == 401:
            raise _Unauthorised()
        if status == 429 or status >= 500 or (status == 403 and reasons & RATE_LIMIT_REASONS):
            reason = f"HTTP {status} {' '.join(sorted(reasons))}".strip()
            raise Retryable(reason, retry_after=retry_after_s(headers))
        if status == 404:
            raise PermanentError(
                f"Google Drive file {file_id} not found (or not shared with the service account)", status=404
            )
        raise PermanentError(
            f"Google Drive answered HTTP {status} for file {file_id}: {message}".strip(), status=status
        )

    def _file_url(self, file_id: str) -> str:
        return f"{self.api_base}/drive/v3/files/{quote(file_id, safe='')}"

    async def get_metadata(self, file_id: str) -> DriveFile:
        """``files.get`` with the reference's fields."""

        async def attempt() -> DriveFile:
            token = await self._access_token()
            session = self._get_session()
            params = {"fields": DRIVE_FIELDS, "supportsAllDrives": "true"}
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(self._file_url(file_id), params=params, headers=headers) as resp:
                body = await resp.read()
                self._check(resp.status, resp.headers, body, file_id)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise PermanentError(
                    f"Google Drive answered metadata of file {file_id} that is not JSON"
                ) from None
            if not isinstance(data, dict):
                raise PermanentError(
                    f"Google Drive answered metadata of file {file_id} that is not an object"
                )
            return DriveFile.from_json(data, file_id)

        result: DriveFile = await self._with_retries("metadata", attempt)
        return result

    async def download(self, file_id: str, dest: str | os.PathLike[str], max_bytes: int | None = None) -> int:
        """Stream the file's content (``alt=media``) into ``dest``; returns its size. Removed on failure."""
        target = Path(dest)

        async def attempt() -> int:
            token = await self._access_token()
            session = self._get_session()
            params = {"alt": "media", "supportsAllDrives": "true"}
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(self._file_url(file_id), params=params, headers=headers) as resp:
                if resp.status != 200:
                    self._check(resp.status, resp.headers, await resp.read(), file_id)
                return await write_capped(
                    resp, target, max_bytes, self.chunk_size, f"Google Drive file {file_id}"
                )

        try:
            size: int = await self._with_retries("download", attempt)
            return size
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise

    def __repr__(self) -> str:
        return f"DriveClient(api_base={self.api_base!r}, configured={self.configured})"
