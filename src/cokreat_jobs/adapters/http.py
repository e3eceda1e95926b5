"""Outbound HTTP for the jobs: aiohttp with timeouts, bounded retries and answers that never raise on parsing.

A :class:`ServiceClient` talks to one service (content, search, program, source). Every call has a connect and
a read timeout; connection errors, timeouts and answers that ``is_transient`` flags (by default 429, 502,
503, 504) are retried by the one retry loop (:mod:`cokreat_jobs.adapters.retry`: exponential backoff with
jitter, ``Retry-After`` honoured, up to ``RetryPolicy.max_attempts`` attempts in all); then
:class:`TransientError`. Every attempt passes the client's
:class:`~cokreat_jobs.adapters.protection.ServiceProtection` when it has one (``from_config`` builds it from
``http.services.<name>.*`` and ``http.adaptive.*``): cap on requests in flight, adaptive limit, rate limit,
and a ``Retry-After`` that pauses every call to the service. Any other answer is returned, for
the job to interpret: the services' error envelopes mean different things per call (a 404 is a success for
user-delete, a missing unit for linking).

The aiohttp session is created lazily on the event loop that first uses it: PyFlink runs coroutines on an
event loop in a thread of its own, and a session belongs to the loop it was created on.

A client whose URLs come from an event (auto-creator-v2's ``edata.repository``) is given a ``guard``
(:class:`~cokreat_jobs.adapters.download.UrlGuard`, the downloads' SSRF guard): its requests use the guard's
session (addresses checked as resolved for each connection), every URL and redirect hop is checked by hand,
and an address refusal is a :class:`PermanentError` whose public text names no address.

Headers and bodies are never logged (tokens, personal data); a path is logged only when the caller gives it
as a ``label`` (e.g. ``"DELETE /program/v1/user/{id}"``), since paths can carry personal ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from cokreat_jobs.adapters.download import UrlGuard
from cokreat_jobs.adapters.protection import ServiceProtection
from cokreat_jobs.adapters.retry import Retryable, RetryPolicy, call_with_retries, retry_after_s
from cokreat_jobs.core.errors import ConfigError, PermanentError, describe_exception
from cokreat_jobs.core.response import HttpResponse, default_is_transient

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ServiceClient",
]

logger = logging.getLogger(__name__)

# API answers are small JSON envelopes; a bigger body is a misbehaving service, not data to hold in memory.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


# ------------------------------------------------------------------------------------------------ client

# Failures of the network or the peer: worth another attempt.
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
    asyncio.TimeoutError,
)
# Failures of the request itself: the same request fails the same way again.
_PERMANENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    aiohttp.InvalidURL,
    aiohttp.TooManyRedirects,
    aiohttp.RedirectClientError,
    aiohttp.NonHttpUrlClientError,
)

DataArg = bytes | str | Mapping[str, str] | Callable[[], Any] | None


def _same(text: str) -> str:
    return text


class ServiceClient:
    """Calls to one service under ``base_url`` (which may carry a path prefix, e.g. ``http://host/content``).

    ``session_provider``, when given, supplies the aiohttp session (shared between clients; its owner closes
    it); otherwise the client creates its own on first use, on the running loop, and :meth:`close` closes it.
    Close it before its loop ends (``async with`` does): a session whose loop is gone can only be dropped.

    ``guard``, when given, makes this a client for URLs from an event (see the module docstring): bodiless
    requests only, through the guard's session (the guard's owner closes it).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        retry: RetryPolicy,
        connect_timeout_s: float,
        read_timeout_s: float,
        default_headers: Mapping[str, str] | None = None,
        session_provider: Callable[[], aiohttp.ClientSession] | None = None,
        total_timeout_s: float | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int = 100,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        protection: ServiceProtection | None = None,
        guard: UrlGuard | None = None,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"{name}: base URL must be an http(s) URL with a host, got {base_url!r}")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.default_headers = CIMultiDict(default_headers or {})
        # sock_read bounds each wait for data, total the whole call (connect, send, answer), so a server
        # dribbling bytes cannot hold an event forever either.
        total = connect_timeout_s + read_timeout_s if total_timeout_s is None else total_timeout_s
        self.timeout = aiohttp.ClientTimeout(
            total=total, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self.max_body_bytes = max_body_bytes
        self._max_connections = max_connections
        self._session_provider = session_provider
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sleep = sleep
        # cap, adaptive limit, rate limit and Retry-After pause for this service (adapters/protection.py)
        self.protection = protection
        self.guard = guard

    @classmethod
    def from_config(cls, name: str, base_url: str, cfg: JobConfig, **kwargs: Any) -> ServiceClient:
        """A client with ``http.retry.*``, ``http.connect_timeout_ms``, ``http.read_timeout_ms`` from cfg."""
        kwargs.setdefault("retry", RetryPolicy.from_config(cfg))
        kwargs.setdefault("connect_timeout_s", cfg.get_int("http.connect_timeout_ms", 5000) / 1000.0)
        kwargs.setdefault("read_timeout_s", cfg.get_int("http.read_timeout_ms", 30000) / 1000.0)
        if "protection" not in kwargs:
            kwargs["protection"] = ServiceProtection.from_config(name, cfg)
        return cls(name, base_url, **kwargs)

    # -- session

    def session(self) -> aiohttp.ClientSession:
        """The session for the running loop (created on first use; call from a coroutine)."""
        if self._session_provider is not None:
            return self._session_provider()
        if self.guard is not None:
            return self.guard.session()
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and not session.closed and self._loop is loop:
            return session
        if session is not None and not session.closed:
            # Used from another loop than before (a restarted operator, a test): the old loop closes its own.
            self._abandon(session, self._loop)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            # No cookies: calls for different users and events must not share state.
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self.timeout,
        )
        self._session, self._loop = session, loop
        return session

    @staticmethod
    def _abandon(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None and loop.is_running() and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(session.close(), loop)
        else:
            _force_close(session)

    async def close(self) -> None:
        """Close the client's own session, on the loop it belongs to."""
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is None or session.closed:
            return
        if loop is asyncio.get_running_loop():
            await session.close()
        elif loop is not None and loop.is_running() and not loop.is_closed():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
        else:
            _force_close(session)

    def close_sync(self, timeout_s: float = 5.0) -> None:
        """Close from synchronous code, e.g. a Flink function's ``close()`` on another thread."""
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is None or session.closed or loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            loop.create_task(session.close())
        elif loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout_s)
        elif not loop.is_closed():
            loop.run_until_complete(session.close())
        else:
            _force_close(session)

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> URL:
        """``base_url + path``, keeping the percent-encoding in ``path``; unsafe characters get encoded.

        A path with a dot segment (``.`` or ``..``, percent-encoded or not) is a PermanentError: the URL
        would resolve it, and ``/content/v4/read/..`` be sent as ``/content/v4/``, another resource. Paths
        are built from ids (one percent-encoded segment each), so only an id that is dots makes one.
        """
        if path and not path.startswith("/"):
            path = "/" + path
        if any(unquote(seg) in (".", "..") for seg in path.split("?", 1)[0].split("/")):
            raise PermanentError(f"{self.name}: refused a request path with a dot segment ('.' or '..')")
        url = URL(self.base_url + path)
        if params:
            url = url.extend_query({k: str(v) for k, v in params.items()})
        return url

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: DataArg = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        multipart: Mapping[str, str] | None = None,
        is_transient: Callable[[HttpResponse], bool] = default_is_transient,
        on_retry: Callable[[int, str], None] | None = None,
        label: str | None = None,
        retry: RetryPolicy | None = None,
        scrub: Callable[[str], str] | None = None,
    ) -> HttpResponse:
        """Send the request, retrying transient failures; return the first non-transient answer.

        Body: ``json`` (serialised, ``Content-Type: application/json`` unless given), ``data`` (bytes, text, a
        form mapping, or a zero-argument callable returning a fresh body for each attempt) or ``multipart``
        (text fields sent as multipart/form-data). ``on_retry(attempt, reason)`` is called after each failed
        attempt that will be retried; the last one raises :class:`TransientError` instead. ``label`` names the
        call in logs and errors in place of the path (give a template when the path carries personal ids).
        ``retry`` overrides the client's policy for this call (e.g. ``RetryPolicy(max_attempts=1)``).
        ``scrub`` is applied to every text this call logs or raises (the reasons of failed attempts: an
        exception's text can quote the URL, e.g. a redirect loop's), to take personal data out of it; the
        chained cause of a raised error keeps its own text, for the caller to scrub (``failed_event``).
        """
        hide = scrub or _same
        policy = retry or self.retry
        method = method.upper()
        url = self.url(path, params)
        name = label or path.split("?", 1)[0]
        merged = CIMultiDict(self.default_headers)
        if headers:
            merged.update(headers)
        body_json: bytes | None = None
        if multipart is not None:
            # aiohttp writes multipart's Content-Type with its boundary; a default one would break the body.
            merged.popall("Content-Type", None)
        if json is not None:
            body_json = orjson.dumps(json)
            merged.setdefault("Content-Type", "application/json")

        async def attempt() -> HttpResponse:
            try:
                response = await self._send_protected(method, url, merged, body_json, data, multipart, name)
            except _PERMANENT_EXCEPTIONS as e:
                why = describe_exception(e)
                raise PermanentError(hide(f"{self.name}: {method} {name} cannot be sent: {why}")) from e
            except _TRANSIENT_EXCEPTIONS as e:
                # a guarded client's resolver refusing an address: the same name resolves the same way again
                refused = self.guard.refused(e, url) if self.guard is not None else None
                if refused is not None:
                    raise refused from None
                raise Retryable(hide(describe_exception(e))) from e
            if not is_transient(response):
                return response
            # The envelope's error code (never its message: messages can quote personal data).
            code = f" {response.err}" if response.err else ""
            raise Retryable(
                f"HTTP {response.status}{code}",
                retry_after=retry_after_s(response.headers),
                status=response.status,
                response=response,
            )

        def retried(n: int, failure: Retryable, delay: float) -> None:
            if self.protection is not None:
                self.protection.retries += 1
                if failure.retry_after is not None:
                    # Retry-After holds every call to this service, not only this one; one deadline for both
                    self.protection.pause_for(delay)
            if on_retry is not None:
                on_retry(n, failure.reason)

        return await call_with_retries(
            attempt,
            policy,
            what=f"{self.name}: {method} {name}",
            on_retry=retried,
            sleep=self._sleep,
            log=logger,
            log_message="retrying a call",
            log_fields={"service": self.name, "method": method, "call": label},
        )

    async def _send_protected(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body_json: bytes | None,
        data: DataArg,
        multipart: Mapping[str, str] | None,
        name: str,
    ) -> HttpResponse:
        protection = self.protection
        if protection is None:
            return await self._send(method, url, headers, body_json, data, multipart, name)
        sent_at = await protection.acquire()
        status: int | None = None
        timed_out = False
        try:
            response = await self._send(method, url, headers, body_json, data, multipart, name)
            status = response.status
            return response
        except TimeoutError:
            timed_out = True
            raise
        except PermanentError as e:  # an oversized answer: the service did answer
            status = e.status
            raise
        finally:
            protection.release(sent_at, status=status, timed_out=timed_out)

    async def _send(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body_json: bytes | None,
        data: DataArg,
        multipart: Mapping[str, str] | None,
        name: str,
    ) -> HttpResponse:
        body: Any = body_json
        if body is None:
            if multipart is not None:
                # Built per attempt: aiohttp consumes a FormData once.
                form = aiohttp.FormData(default_to_multipart=True)
                for field_name, value in multipart.items():
                    form.add_field(field_name, value)
                body = form
            elif callable(data):
                body = data()
            else:
                body = data
        session = self.session()
        opened: contextlib.AbstractAsyncContextManager[aiohttp.ClientResponse]
        if self.guard is not None:
            if body is not None:
                raise ConfigError(f"{self.name}: a guarded client sends bodiless requests only")
            # the URL and each redirect hop checked; the guard's session checks each address it connects to
            opened = self.guard.open(method, url, headers=headers, timeout=self.timeout, session=session)
        else:
            opened = session.request(method, url, headers=headers, data=body, timeout=self.timeout)
        async with opened as resp:
            payload = await self._read_body(resp, method, name)
            # A plain CIMultiDict, not aiohttp's proxy: it pickles (TransientError carries the response).
            return HttpResponse(resp.status, CIMultiDict(resp.headers), payload)

    async def _read_body(self, resp: aiohttp.ClientResponse, method: str, name: str) -> bytes:
        limit = self.max_body_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise PermanentError(
                f"{self.name}: {method} {name} answered {resp.content_length} bytes, over {limit}",
                status=resp.status,
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise PermanentError(
                    f"{self.name}: {method} {name} answered more than {limit} bytes", status=resp.status
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def __repr__(self) -> str:
        return f"ServiceClient({self.name!r}, {self.base_url!r})"


def _force_close(session: aiohttp.ClientSession) -> None:
    # The session's loop is gone: nothing can await its close any more; drop its sockets without a loop.
    connector = session.connector
    session.detach()
    if connector is not None:
        with contextlib.suppress(Exception):
            connector._close()  # noqa: SLF001 - the only loop-free way to release the sockets
