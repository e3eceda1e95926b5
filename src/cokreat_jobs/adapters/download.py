"""Fetching what events name (artifacts, icons, packages, the repository's metadata): guarded against SSRF.

An event's URL is untrusted input: it may point at the job's own network (cloud metadata at 169.254.169.254,
an admin port on localhost, a database on 10.x), use another scheme (``file://``), redirect there after a
first harmless hop, or be larger than the disk. :class:`UrlGuard` is the one guard every such URL passes
(:class:`Downloader` for files; a :class:`~cokreat_jobs.adapters.http.ServiceClient` given a guard for a JSON
API read such as auto-creator-v2's ``edata.repository``). Through it a request

- accepts only ``http`` and ``https``;
- connects only to public addresses: every address a host name resolves to is checked *as resolved for the
  connection* (a resolver wrapped around aiohttp's, so a DNS answer cannot change between check and connect),
  and an IP written in the URL is checked before any request. Loopback, private, link-local, multicast,
  reserved and unspecified addresses are refused unless ``http.allow_private_networks`` names them: a host
  name, an IP or a CIDR, optionally with ``:port``, which then limits the allowance to that port
  (``127.0.0.1:8765``, ``[::1]:8765``, ``10.0.0.0/8``, ``sandbox:9000``);
- follows at most 5 redirects itself, checking each hop as the first (a ``Location`` that is not a URL is a
  permanent failure);
- reports a refused address as a :class:`PermanentError` whose public text is only :data:`ADDRESS_REFUSED`.

A download also
- has a connect timeout, a read timeout (for each wait on the socket) and an overall deadline;
- enforces the size cap from ``Content-Length`` before reading, and while streaming (a server that sends no
  length, or lies, is cut off as soon as the cap is passed), before the whole file is on disk;
- retries transient failures (connection errors, timeouts, 429, 5xx) through the one retry loop
  (:mod:`cokreat_jobs.adapters.retry`: backoff, ``Retry-After`` in seconds or as an HTTP-date), then raises
  :class:`TransientError`; refusals, oversize files and other 4xx raise :class:`PermanentError`;
- classifies errors of the local disk apart from the network's (:func:`local_file_error`): a name too long,
  a missing folder or a refused permission will not change by downloading again (permanent); a full disk or
  no file handles left may be gone later (transient, replayable), but not in the seconds of a retry, so
  neither is retried in place.

:func:`event_temp_dir` gives each event a folder of its own under the job's temp location, always removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from cokreat_jobs.adapters.retry import Retryable, RetryPolicy, call_with_retries, retry_after_s
from cokreat_jobs.core.errors import (
    ConfigError,
    JobError,
    PermanentError,
    TransientError,
    describe_exception,
)

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "ADDRESS_REFUSED",
    "AddressRefused",
    "Allowance",
    "Downloaded",
    "Downloader",
    "GuardedResolver",
    "NetworkPolicy",
    "UrlGuard",
    "close_session",
    "display_url",
    "event_temp_dir",
    "local_file_error",
    "write_capped",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The public text of every address refusal (HARDENING 11): uploaders read it in importError, and the address
# a name resolves to would tell them about the internal network. The message, for logs and the failed topic,
# keeps the details.
ADDRESS_REFUSED = "refused: not an allowed address"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


# ------------------------------------------------------------------------------------------------ policy


@dataclass(frozen=True, slots=True)
class Allowance:
    """One ``http.allow_private_networks`` entry: a host name, or a network (an IP is a /32 or /128)."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> Allowance:
        text = entry.strip()
        if not text:
            raise ValueError("empty entry")
        port: int | None = None
        if text.startswith("["):  # [v6] or [v6]:port
            end = text.find("]")
            if end < 0:
                raise ValueError(f"unclosed '[' in {entry!r}")
            rest = text[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"cannot read {entry!r}")
                port = _port(rest[1:], entry)
            text = text[1:end]
        elif text.count(":") == 1:  # v4, CIDR or host name with a port (a bare v6 has several colons)
            text, port_text = text.rsplit(":", 1)
            port = _port(port_text, entry)
        try:
            return cls(network=ipaddress.ip_network(text, strict=False), port=port)
        except ValueError:
            pass
        host = text.lower().rstrip(".")
        if not host or "/" in host or ":" in host:
            raise ValueError(f"{entry!r} is neither a host, an IP nor a CIDR")
        return cls(host=host, port=port)

    def matches(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        return host.lower().rstrip(".") == self.host


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {entry!r}")
    return int(text)


def _unmapped(ip: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it carries.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class NetworkPolicy:
    """Which addresses downloads may connect to: public ones, plus the allowances."""

    def __init__(self, allowances: Iterable[Allowance] = ()) -> None:
        self.allowances = tuple(allowances)

    @classmethod
    def parse(cls, entries: Iterable[str] | str | None) -> NetworkPolicy:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.split(",")
        allowances = []
        for entry in entries:
            if str(entry).strip():
                try:
                    allowances.append(Allowance.parse(str(entry)))
                except ValueError as e:
                    raise ConfigError(f"http.allow_private_networks: {e}") from None
        return cls(allowances)

    @classmethod
    def from_config(cls, cfg: JobConfig) -> NetworkPolicy:
        return cls.parse(cfg.get_list("http.allow_private_networks", []))

    @staticmethod
    def is_public(ip: IPAddress) -> bool:
        ip = _unmapped(ip)
        return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified

    def permits(self, host: str, ip: IPAddress, port: int) -> bool:
        ip = _unmapped(ip)
        if self.is_public(ip):
            return True
        return any(a.matches(host, ip, port) for a in self.allowances)


class AddressRefused(OSError):
    """A host resolved only to addresses the policy refuses (an OSError so aiohttp passes it through)."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy permits for this host and port."""

    def __init__(self, policy: NetworkPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        kept = []
        for result in results:
            try:
                ip = ipaddress.ip_address(result["host"].split("%", 1)[0])
            except ValueError:
                continue
            if self._policy.permits(host, ip, port):
                kept.append(result)
        if not kept:
            addresses = ", ".join(sorted({r["host"] for r in results})) or "nothing"
            raise AddressRefused(
                f"{host} resolves to {addresses}: not an allowed address (not public, and "
                f"http.allow_private_networks does not allow it on port {port})"
            )
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


# Local disk failures a later replay may not meet again (the disk empties as other events' folders are
# removed, handles and memory are freed as they finish), though downloading again at once would meet them.
_LOCAL_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EIO}
)


def local_file_error(exc: OSError, what: str) -> PermanentError | TransientError:
    """The job's error for ``exc``, a failure of the local disk while writing ``what``.

    Never a :class:`Retryable`: fetching the file again cannot mend the disk. A full disk, a quota, no file
    handles or memory left (:data:`_LOCAL_TRANSIENT_ERRNOS`) is a TransientError (``retries-exhausted``, so
    ``replay`` brings the event back later); anything else (a name too long, a missing folder, a refused
    permission, a read-only disk) a PermanentError. The path is not quoted: it is the job's own temp folder.
    """
    code = errno.errorcode.get(exc.errno or 0, "OSError")
    text = f"cannot write {what} to the local disk: {code}: {exc.strerror or describe_exception(exc)}"
    if exc.errno in _LOCAL_TRANSIENT_ERRNOS:
        return TransientError(text + " (not retried in place; a replay may succeed)")
    return PermanentError(text)


async def write_capped(
    resp: aiohttp.ClientResponse, target: Path, max_bytes: int | None, chunk_size: int, what: str
) -> int:
    """Stream the body into ``target``; the size cap is checked from ``Content-Length`` first, then while
    streaming, so an oversize file is never whole on disk. Returns the bytes written. ``what`` names the file
    in the errors ("file at <url>", "Google Drive file <id>"). A failure of the local disk is classified by
    :func:`local_file_error`, not left to look like the network's."""
    declared = resp.content_length
    if max_bytes is not None and declared is not None and declared > max_bytes:
        raise PermanentError(
            f"{what} is {declared} bytes, over the {max_bytes}-byte limit", status=resp.status
        )
    size = 0
    try:
        out = open(target, "wb")  # noqa: SIM115 - closed below; the open itself is classified too
    except OSError as e:
        raise local_file_error(e, what) from None
    # Writes are small (chunk_size) and to local disk: done inline rather than paying a thread hop each.
    with out:
        async for chunk in resp.content.iter_chunked(chunk_size):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise PermanentError(f"{what} is over the {max_bytes}-byte limit (cut off while streaming)")
            try:
                out.write(chunk)
            except OSError as e:
                raise local_file_error(e, what) from None
    return size


async def close_session(
    session: aiohttp.ClientSession | None, loop: asyncio.AbstractEventLoop | None
) -> None:
    """Close ``session`` on the loop it belongs to; when that loop is gone, drop its sockets without one."""
    if session is None or session.closed:
        return
    if loop is asyncio.get_running_loop():
        await session.close()
    elif loop is not None and loop.is_running() and not loop.is_closed():
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
    else:
        connector = session.connector
        session.detach()
        if connector is not None:
            with contextlib.suppress(Exception):
                connector._close()  # noqa: SLF001 - the only loop-free way to release the sockets


# ------------------------------------------------------------------------------------------- temp folders


@contextlib.asynccontextmanager
async def event_temp_dir(base: str | os.PathLike[str], label: str = "event") -> AsyncIterator[Path]:
    """A fresh folder under ``base`` for one event's files, removed (with everything in it) on exit."""
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    prefix = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60].lstrip(".") or "event"
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


# -------------------------------------------------------------------------------------------------- guard


def display_url(url: URL) -> str:
    """``scheme://host[:port]/path``: no query or credentials in messages (signed URLs carry tokens there)."""
    host = url.host or ""
    port = f":{url.explicit_port}" if url.explicit_port else ""
    return f"{url.scheme}://{host}{port}{url.path}"


def _refusal(exc: BaseException) -> AddressRefused | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, AddressRefused):
            return os_error
        current = current.__cause__ or current.__context__
    return None


class UrlGuard:
    """The SSRF guard of every URL an event names: checks, a guarded session, redirects followed by hand.

    One guard owns one aiohttp session per event loop (created on first use, on the running loop): its
    connector resolves through :class:`GuardedResolver` with no DNS cache, so every connection, redirect hops
    included, is made to addresses checked for it. Whoever made the guard closes it (:meth:`close`).
    """

    def __init__(
        self,
        policy: NetworkPolicy | None = None,
        *,
        max_redirects: int = MAX_REDIRECTS,
        resolver: AbstractResolver | None = None,
        max_connections: int = 100,
    ) -> None:
        self.policy = policy or NetworkPolicy()
        self.max_redirects = max_redirects
        self._inner_resolver = resolver
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_config(cls, cfg: JobConfig, **kwargs: Any) -> UrlGuard:
        """The policy from ``http.allow_private_networks``."""
        return cls(NetworkPolicy.from_config(cfg), **kwargs)

    # -- checks

    def check_url(self, url: str | URL) -> URL:
        """The URL parsed, or PermanentError when its scheme or (literal) address is refused."""
        try:
            parsed = url if isinstance(url, URL) else URL(url.strip())
        except (ValueError, TypeError) as e:
            raise PermanentError(f"not a valid URL: {describe_exception(e)}") from None
        scheme = (parsed.scheme or "").lower()
        if scheme not in _DEFAULT_PORTS:
            shown = scheme or "(none)"
            raise PermanentError(f"refused URL scheme {shown!r}: only http and https are fetched")
        host = parsed.host
        if not host:
            raise PermanentError("refused URL: it has no host")
        try:
            port = parsed.port or _DEFAULT_PORTS[scheme]
        except ValueError as e:  # a port out of range is only noticed when it is read
            raise PermanentError(f"not a valid URL: {describe_exception(e)}") from None
        try:
            ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return parsed  # a name: checked by the resolver, address by address
        if not self.policy.permits(host, ip, port):
            raise PermanentError(
                f"refused address {ip} (port {port}): not an allowed address (not public, and "
                "http.allow_private_networks does not allow it)",
                public=ADDRESS_REFUSED,
            )
        return parsed

    def refused(self, exc: BaseException, url: URL) -> PermanentError | None:
        """The PermanentError for ``exc`` when it is (or was caused by) an address refusal, else None."""
        refusal = _refusal(exc)
        if refusal is None:
            return None
        return PermanentError(f"refused request to {display_url(url)}: {refusal}", public=ADDRESS_REFUSED)

    # -- session

    def session(self) -> aiohttp.ClientSession:
        """The guarded session for the running loop (call from a coroutine)."""
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed and self._loop is loop:
            return self._session
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy, self._inner_resolver),
            # No cache: every connection is made to addresses checked for it.
            use_dns_cache=False,
            limit=self._max_connections,
        )
        # trust_env stays False: an environment proxy would connect on our behalf, unchecked.
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        self._loop = loop
        return self._session

    async def close(self) -> None:
        session, loop = self._session, self._loop
        self._session = self._loop = None
        await close_session(session, loop)

    # -- requests

    @contextlib.asynccontextmanager
    async def open(
        self,
        method: str,
        url: str | URL,
        *,
        timeout: aiohttp.ClientTimeout,
        headers: Any = None,
        session: aiohttp.ClientSession | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response of the last hop: the URL checked, redirects followed by hand and each hop checked as
        the first. Bodiless requests only (GET, HEAD): a redirect repeats the method. Address refusals by
        the resolver are raised as they come (an aiohttp error): :meth:`refused` classifies them."""
        first = self.check_url(url)
        current = first
        use = session or self.session()
        for _hop in range(self.max_redirects + 1):
            resp = await use.request(method, current, headers=headers, allow_redirects=False, timeout=timeout)
            if resp.status in REDIRECT_STATUSES and "Location" in resp.headers:
                location = resp.headers["Location"]
                resp.release()
                try:
                    target = current.join(URL(location))
                except (ValueError, TypeError) as e:
                    # a Location no URL can be made of: the same answer comes again, so permanent
                    raise PermanentError(
                        f"{display_url(first)} redirected to a malformed Location: {describe_exception(e)}"
                    ) from None
                try:
                    current = self.check_url(target)
                except PermanentError as e:
                    # an address refusal says no more outside than it did for the first URL
                    raise PermanentError(
                        f"refused redirect from {display_url(first)}: {e}", public=e.public
                    ) from None
                continue
            try:
                yield resp
            finally:
                resp.release()
            return
        raise PermanentError(f"{display_url(first)} redirected more than {self.max_redirects} times")

    def __repr__(self) -> str:
        return f"UrlGuard(allowances={len(self.policy.allowances)})"


# ----------------------------------------------------------------------------------------------- download


@dataclass(frozen=True, slots=True)
class Downloaded:
    path: Path
    size: int
    content_type: str
    url: str  # the last hop's URL


class Downloader:
    """Guarded, streamed downloads and HEAD sizes (see the module docstring)."""

    def __init__(
        self,
        policy: NetworkPolicy | None = None,
        *,
        retry: RetryPolicy | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        total_timeout_s: float | None = 600.0,
        max_redirects: int = MAX_REDIRECTS,
        chunk_size: int = 64 * 1024,
        user_agent: str = "cokreat-jobs",
        resolver: AbstractResolver | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        # the downloader's guard (and its session) also serve other reads of event URLs (guard=...)
        self.guard = UrlGuard(policy, max_redirects=max_redirects, resolver=resolver)
        self.retry = retry or RetryPolicy()
        self.timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self.chunk_size = chunk_size
        self._headers = {"User-Agent": user_agent}
        self._sleep = sleep

    @property
    def policy(self) -> NetworkPolicy:
        return self.guard.policy

    @classmethod
    def from_config(cls, cfg: JobConfig, **kwargs: Any) -> Downloader:
        """Policy from ``http.allow_private_networks``, retries from ``http.retry.*``, timeouts from
        ``http.connect_timeout_ms`` / ``http.read_timeout_ms`` / ``http.download_timeout_ms`` [600000]."""
        kwargs.setdefault("retry", RetryPolicy.from_config(cfg))
        kwargs.setdefault("connect_timeout_s", cfg.get_int("http.connect_timeout_ms", 5000) / 1000.0)
        kwargs.setdefault("read_timeout_s", cfg.get_int("http.read_timeout_ms", 30000) / 1000.0)
        total_ms = cfg.get_int("http.download_timeout_ms", 600_000)
        kwargs.setdefault("total_timeout_s", total_ms / 1000.0 if total_ms > 0 else None)
        return cls(NetworkPolicy.from_config(cfg), **kwargs)

    async def close(self) -> None:
        await self.guard.close()

    def check_url(self, url: str | URL) -> URL:
        """The URL parsed, or PermanentError when its scheme or (literal) address is refused."""
        return self.guard.check_url(url)

    # -- requests

    async def download(
        self, url: str, dest: str | os.PathLike[str], *, max_bytes: int | None = None
    ) -> Downloaded:
        """Stream ``url`` into the file ``dest``. The file is removed again when the download fails."""
        target = Path(dest)
        start = self.check_url(url)

        async def attempt() -> Downloaded:
            async with self._open("GET", start) as resp:
                return await self._stream(resp, target, max_bytes, start)

        try:
            return await self._with_retries(attempt, start)
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise

    async def head_size(self, url: str) -> int | None:
        """The ``Content-Length`` a HEAD on ``url`` answers (redirects followed and checked), or None."""
        start = self.check_url(url)

        async def attempt() -> int | None:
            async with self._open("HEAD", start) as resp:
                self._raise_for_status(resp, start)
                length = resp.headers.get("Content-Length", "").strip()
                return int(length) if length.isdigit() else None

        return await self._with_retries(attempt, start)

    async def _with_retries(self, attempt: Callable[[], Awaitable[Any]], url: URL) -> Any:
        async def classified() -> Any:
            try:
                return await attempt()
            except (Retryable, JobError):
                raise
            except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as e:
                raise PermanentError(f"cannot download {display_url(url)}: {describe_exception(e)}") from None
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                refused = self.guard.refused(e, url)
                if refused is not None:
                    raise refused from None
                raise Retryable(describe_exception(e)) from e

        return await call_with_retries(
            classified,
            self.retry,
            what=f"download of {display_url(url)}",
            sleep=self._sleep,
            log=logger,
            log_message="retrying a download",
            log_fields={"host": url.host},
        )

    def _open(self, method: str, url: URL) -> contextlib.AbstractAsyncContextManager[aiohttp.ClientResponse]:
        return self.guard.open(method, url, headers=self._headers, timeout=self.timeout)

    def _raise_for_status(self, resp: aiohttp.ClientResponse, url: URL) -> None:
        if 200 <= resp.status < 300:
            return
        if resp.status == 429 or resp.status >= 500:
            raise Retryable(f"HTTP {resp.status}", retry_after=retry_after_s(resp.headers))
        raise PermanentError(
            f"download of {display_url(url)} answered HTTP {resp.status}", status=resp.status
        )

    async def _stream(
        self, resp: aiohttp.ClientResponse, target: Path, max_bytes: int | None, url: URL
    ) -> Downloaded:
        self._raise_for_status(resp, url)
        size = await write_capped(resp, target, max_bytes, self.chunk_size, f"file at {display_url(url)}")
        return Downloaded(target, size, resp.headers.get("Content-Type", ""), str(resp.url))

    def __repr__(self) -> str:
        return f"Downloader(allowances={len(self.policy.allowances)})"
