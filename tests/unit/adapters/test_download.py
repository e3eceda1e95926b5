"""Guarded downloads against local aiohttp servers: caps, redirects, schemes, private addresses, retries."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from cokreat_jobs.adapters.download import Allowance, Downloader, NetworkPolicy, event_temp_dir
from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError, public_text

FAST = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=2)
PDF = b"%PDF-1.4 " + b"x" * 5000


class Files:
    """A small file server whose routes the tests script; it counts hits per path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.streamed = 0
        self.other_port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        if path == "/file.pdf":
            return web.Response(body=PDF, content_type="application/pdf")
        if path == "/redirect-ok":
            raise web.HTTPFound("/file.pdf")
        if path == "/redirect-metadata":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if path == "/redirect-other-port":
            raise web.HTTPFound(f"http://127.0.0.1:{self.other_port}/file.pdf")
        if path == "/redirect-file":
            raise web.HTTPFound("file:///etc/passwd")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/redirect-malformed":  # a port no URL can have (yarl raises ValueError on it)
            return web.Response(status=302, headers={"Location": "http://127.0.0.1:99999999/x"})
        if path == "/redirect-bad-ipv6":
            return web.Response(status=302, headers={"Location": "http://[::1/x"})
        if path == "/missing":
            return web.Response(status=404, text="not found")
        if path == "/flaky":
            if self.hits[path] == 1:
                return web.Response(status=503, text="busy")
            return web.Response(body=b"ok now")
        if path in ("/throttled-until", "/throttled-for"):
            if self.hits[path] == 1:
                wait = (
                    email.utils.formatdate(time.time() + 30, usegmt=True)
                    if path == "/throttled-until"
                    else "7"
                )
                return web.Response(status=429, text="slow down", headers={"Retry-After": wait})
            return web.Response(body=b"ok now")
        if path == "/down":
            return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")
        if path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk = b"y" * 65536
            try:
                for _ in range(800):  # 50 MiB if nobody stops reading
                    await resp.write(chunk)
                    self.streamed += len(chunk)
                await resp.write_eof()
            except (ConnectionError, RuntimeError):
                pass
            return resp
        return web.Response(status=404)


async def start(files: Files) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", files.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def downloader_for(*servers: TestServer, **kw: Any) -> Downloader:
    entries = [f"127.0.0.1:{s.port}" for s in servers]
    kw.setdefault("retry", FAST)
    kw.setdefault("connect_timeout_s", 2.0)
    kw.setdefault("read_timeout_s", 5.0)
    return Downloader(NetworkPolicy.parse(entries), **kw)


def with_server(body: Callable[[Files, TestServer], Awaitable[Any]], second: bool = False) -> Any:
    async def main() -> Any:
        files = Files()
        server = await start(files)
        other_files = Files()
        other = await start(other_files) if second else None
        if other is not None:
            files.other_port = other.port  # type: ignore[assignment]
            files.other_files = other_files  # type: ignore[attr-defined]
        try:
            return await body(files, server)
        finally:
            await server.close()
            if other is not None:
                await other.close()

    return asyncio.run(main())


def url(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


# ------------------------------------------------------------------------------------------------- happy


def test_download_streams_to_the_file(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            got = await d.download(url(server, "/file.pdf"), tmp_path / "a.pdf", max_bytes=len(PDF))
        finally:
            await d.close()
        assert got.size == len(PDF)
        assert got.content_type == "application/pdf"
        assert (tmp_path / "a.pdf").read_bytes() == PDF

    with_server(body)


def test_redirect_within_allowed_addresses_is_followed(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            got = await d.download(url(server, "/redirect-ok"), tmp_path / "a.pdf")
        finally:
            await d.close()
        assert got.url.endswith("/file.pdf")
        assert files.hits == {"/redirect-ok": 1, "/file.pdf": 1}

    with_server(body)


def test_head_size(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            assert await d.head_size(url(server, "/file.pdf")) == len(PDF)
            assert await d.head_size(url(server, "/redirect-ok")) == len(PDF)
            with pytest.raises(PermanentError, match="HTTP 404"):
                await d.head_size(url(server, "/missing"))
        finally:
            await d.close()

    with_server(body)


# ------------------------------------------------------------------------------------------------- caps


def test_oversize_by_content_length_is_refused_before_reading(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match=r"is 5009 bytes, over the 100-byte limit"):
                await d.download(url(server, "/file.pdf"), tmp_path / "a.pdf", max_bytes=100)
        finally:
            await d.close()
        assert not (tmp_path / "a.pdf").exists()
        assert files.hits["/file.pdf"] == 1  # not retried

    with_server(body)


def test_oversize_without_content_length_is_cut_off_while_streaming(tmp_path: Path) -> None:
    cap = 200_000

    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="cut off while streaming"):
                await d.download(url(server, "/chunked"), tmp_path / "big.bin", max_bytes=cap)
        finally:
            await d.close()
        await asyncio.sleep(0.2)  # let the server notice the closed connection
        assert not (tmp_path / "big.bin").exists()
        assert files.streamed < 800 * 65536  # the server was stopped, not read to the end
        assert files.hits["/chunked"] == 1

    with_server(body)


def test_no_cap_reads_everything(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            got = await d.download(url(server, "/file.pdf"), tmp_path / "a.pdf", max_bytes=None)
        finally:
            await d.close()
        assert got.size == len(PDF)

    with_server(body)


# ------------------------------------------------------------------------------------------------- SSRF


def test_redirect_to_a_link_local_address_is_refused(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match=r"refused redirect.*169\.254\.169\.254"):
                await d.download(url(server, "/redirect-metadata"), tmp_path / "a")
        finally:
            await d.close()
        assert not (tmp_path / "a").exists()

    with_server(body)


def test_another_loopback_port_is_refused(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)  # allows this server's port only
        other: Files = files.other_files  # type: ignore[attr-defined]
        try:
            with pytest.raises(
                PermanentError, match=rf"refused address 127\.0\.0\.1 \(port {files.other_port}\)"
            ):
                await d.download(f"http://127.0.0.1:{files.other_port}/file.pdf", tmp_path / "a")
            with pytest.raises(PermanentError, match="refused redirect"):
                await d.download(url(server, "/redirect-other-port"), tmp_path / "b")
            with pytest.raises(PermanentError, match="resolves to"):
                await d.download(f"http://localhost:{files.other_port}/file.pdf", tmp_path / "c")
        finally:
            await d.close()
        assert other.hits == {}

    with_server(body, second=True)


class _Resolver(AbstractResolver):
    """Resolves every name to one address, as an internal DNS might."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=self.address, port=port, family=2, proto=0, flags=0)  # type: ignore[typeddict-item]
        ]

    async def close(self) -> None:
        pass


def test_address_refusals_have_a_public_text_without_the_address(tmp_path: Path) -> None:
    """HARDENING 11: the message (for operators) names the address; the public text (importError) does not."""

    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server, resolver=_Resolver("10.20.30.40"))
        literal = Downloader(NetworkPolicy.parse([f"127.0.0.1:{server.port}"]), retry=FAST)
        try:
            with pytest.raises(PermanentError) as by_name:
                await d.download("http://intranet.corp.test:8080/x.pdf", tmp_path / "a")
            with pytest.raises(PermanentError) as by_ip:
                await d.download("http://10.1.2.3/x.pdf", tmp_path / "b")
            with pytest.raises(PermanentError) as by_redirect:
                await literal.download(url(server, "/redirect-metadata"), tmp_path / "c")
            with pytest.raises(PermanentError) as by_scheme:
                await literal.download(url(server, "/redirect-file"), tmp_path / "d")
        finally:
            await d.close()
            await literal.close()
        assert "intranet.corp.test resolves to 10.20.30.40" in str(by_name.value)
        assert "refused address 10.1.2.3" in str(by_ip.value)
        assert "169.254.169.254" in str(by_redirect.value)
        for refused in (by_name.value, by_ip.value, by_redirect.value):
            assert public_text(refused) == "refused: not an allowed address"
        # a refusal that reveals nothing about the network keeps its text
        assert public_text(by_scheme.value) == str(by_scheme.value)
        assert "refused URL scheme 'file'" in public_text(by_scheme.value)

    with_server(body)


def test_allowed_port_by_host_name(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)  # 127.0.0.1:<port>; localhost resolves to it
        try:
            got = await d.download(f"http://localhost:{server.port}/file.pdf", tmp_path / "a")
        finally:
            await d.close()
        assert got.size == len(PDF)

    with_server(body)


def test_loopback_is_refused_without_an_allowance(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = Downloader(NetworkPolicy(), retry=FAST)
        try:
            for target in (
                url(server, "/file.pdf"),
                f"http://localhost:{server.port}/file.pdf",
                f"http://[::ffff:127.0.0.1]:{server.port}/file.pdf",
                f"http://example.org@127.0.0.1:{server.port}/file.pdf",
                f"http://2130706433:{server.port}/file.pdf",
                f"http://0.0.0.0:{server.port}/file.pdf",
            ):
                with pytest.raises(PermanentError):
                    await d.download(target, tmp_path / "a")
        finally:
            await d.close()
        assert files.hits == {}

    with_server(body)


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "ftp://example.org/a.pdf",
        "gopher://127.0.0.1:70/",
        "data:text/plain,hi",
        "/relative",
    ],
)
def test_other_schemes_are_refused(tmp_path: Path, target: str) -> None:
    async def body() -> None:
        d = Downloader(NetworkPolicy(), retry=FAST)
        try:
            with pytest.raises(PermanentError, match="scheme"):
                await d.download(target, tmp_path / "a")
        finally:
            await d.close()

    asyncio.run(body())
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_file_scheme_is_refused(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="scheme 'file'"):
                await d.download(url(server, "/redirect-file"), tmp_path / "a")
        finally:
            await d.close()

    with_server(body)


def test_too_many_redirects(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="redirected more than 5 times"):
                await d.download(url(server, "/loop"), tmp_path / "a")
        finally:
            await d.close()
        assert files.hits["/loop"] == 6

    with_server(body)


# ------------------------------------------------------------------------------------------- status, retry


def test_404_is_permanent_and_not_retried(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="HTTP 404"):
                await d.download(url(server, "/missing"), tmp_path / "a")
        finally:
            await d.close()
        assert files.hits["/missing"] == 1
        assert not (tmp_path / "a").exists()

    with_server(body)


def test_503_is_retried(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        sleeps: list[float] = []

        async def sleep(s: float) -> None:
            sleeps.append(s)

        d = downloader_for(server, sleep=sleep)
        try:
            got = await d.download(url(server, "/flaky"), tmp_path / "a")
        finally:
            await d.close()
        assert (tmp_path / "a").read_bytes() == b"ok now" and got.size == 6
        assert files.hits["/flaky"] == 2 and len(sleeps) == 1

    with_server(body)


@pytest.mark.parametrize(
    ("path", "low", "high"),
    [
        ("/throttled-until", 28.0, 30.0),  # an HTTP-date (downloads used to ignore it and back off 1 ms)
        ("/throttled-for", 7.0, 7.0),  # delay-seconds
    ],
)
def test_retry_after_is_honoured(tmp_path: Path, path: str, low: float, high: float) -> None:
    async def body(files: Files, server: TestServer) -> None:
        sleeps: list[float] = []

        async def sleep(s: float) -> None:
            sleeps.append(s)

        patient = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=60_000)
        d = downloader_for(server, sleep=sleep, retry=patient)
        try:
            got = await d.download(url(server, path), tmp_path / "a")
        finally:
            await d.close()
        assert got.size == 6 and files.hits[path] == 2
        [waited] = sleeps
        assert low <= waited <= high

    with_server(body)


def test_persistent_5xx_is_transient(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(TransientError, match="after 3 attempts: HTTP 502"):
                await d.download(url(server, "/down"), tmp_path / "a")
        finally:
            await d.close()
        assert files.hits["/down"] == 3

    with_server(body)


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        port = server.port
        d = downloader_for(server)
        await server.close()
        try:
            with pytest.raises(TransientError):
                await d.download(f"http://127.0.0.1:{port}/file.pdf", tmp_path / "a")
        finally:
            await d.close()

    with_server(body)


# -------------------------------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1", Allowance(network=ipaddress.ip_network("127.0.0.1/32"))),
        ("127.0.0.1:8765", Allowance(network=ipaddress.ip_network("127.0.0.1/32"), port=8765)),
        ("10.0.0.0/8", Allowance(network=ipaddress.ip_network("10.0.0.0/8"))),
        ("10.1.2.3/8:80", Allowance(network=ipaddress.ip_network("10.0.0.0/8"), port=80)),
        ("::1", Allowance(network=ipaddress.ip_network("::1/128"))),
        ("[::1]:8080", Allowance(network=ipaddress.ip_network("::1/128"), port=8080)),
        ("fd00::/8", Allowance(network=ipaddress.ip_network("fd00::/8"))),
        ("Sandbox.Local", Allowance(host="sandbox.local")),
        ("sandbox:9000", Allowance(host="sandbox", port=9000)),
    ],
)
def test_allowance_parsing(entry: str, expected: Allowance) -> None:
    assert Allowance.parse(entry) == expected


@pytest.mark.parametrize("entry", ["host:port", "127.0.0.1:0", "[::1", "a/b", "1.2.3.4:99999"])
def test_bad_allowances(entry: str) -> None:
    with pytest.raises(ConfigError):
        NetworkPolicy.parse([entry])


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("ff02::1", False),
    ],
)
def test_public_addresses(ip: str, public: bool) -> None:
    assert NetworkPolicy.is_public(ipaddress.ip_address(ip)) is public


def test_permits_with_ports_and_names() -> None:
    policy = NetworkPolicy.parse("127.0.0.1:8765, 10.0.0.0/8, sandbox:9000")
    lo = ipaddress.ip_address("127.0.0.1")
    assert policy.permits("127.0.0.1", lo, 8765)
    assert not policy.permits("127.0.0.1", lo, 8766)
    assert policy.permits("anything", ipaddress.ip_address("10.9.9.9"), 1)
    assert policy.permits("sandbox", ipaddress.ip_address("172.18.0.2"), 9000)
    assert not policy.permits("sandbox", ipaddress.ip_address("172.18.0.2"), 9001)
    assert not policy.permits("other", ipaddress.ip_address("172.18.0.2"), 9000)
    assert policy.permits("x", ipaddress.ip_address("::ffff:127.0.0.1"), 8765)
    assert policy.permits("example.org", ipaddress.ip_address("93.184.216.34"), 443)


def test_policy_from_config() -> None:
    policy = NetworkPolicy.from_config(JobConfig({"http": {"allow_private_networks": ["127.0.0.1:1"]}}))
    assert policy.allowances == (Allowance(network=ipaddress.ip_network("127.0.0.1/32"), port=1),)
    assert NetworkPolicy.from_config(JobConfig({})).allowances == ()


def test_downloader_from_config() -> None:
    d = Downloader.from_config(
        JobConfig({"http": {"connect_timeout_ms": 1000, "read_timeout_ms": 2000, "download_timeout_ms": 0}})
    )
    assert (d.timeout.sock_connect, d.timeout.sock_read, d.timeout.total) == (1.0, 2.0, None)


# ------------------------------------------------------------------------------------------- temp folders


def test_event_temp_dir_is_removed_even_on_error(tmp_path: Path) -> None:
    base = tmp_path / "content"
    seen: list[Path] = []

    async def body() -> None:
        async with event_temp_dir(base, "do_1/../x") as folder:
            seen.append(folder)
            assert folder.parent == base
            assert folder.name.startswith("do_1_.._x-")
            (folder / "f.bin").write_bytes(b"x")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        asyncio.run(body())
    assert not seen[0].exists()
    assert list(base.iterdir()) == []


def test_close_after_the_sessions_loop_has_ended(tmp_path: Path) -> None:
    # PyFlink closes the processor on a fresh loop after the operator's loop stopped
    d: list[Downloader] = []

    async def body(files: Files, server: TestServer) -> None:
        downloader = downloader_for(server)
        await downloader.download(url(server, "/file.pdf"), tmp_path / "a.pdf")
        d.append(downloader)

    with_server(body)
    asyncio.run(d[0].close())
    assert d[0].guard._session is None  # noqa: SLF001


# --------------------------------------------------------------------------- HARDENING 14: error classes


@pytest.mark.parametrize("path", ["/redirect-malformed", "/redirect-bad-ipv6"])
def test_a_malformed_location_is_a_permanent_failure_asked_once(tmp_path: Path, path: str) -> None:
    """Not a raw ValueError (an unexpected error to the job) and not retried: the same answer comes again."""

    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="redirected to a malformed Location") as err:
                await d.download(url(server, path), tmp_path / "a.pdf")
        finally:
            await d.close()
        assert files.hits[path] == 1
        assert f"http://127.0.0.1:{server.port}{path}" in str(err.value)
        assert not (tmp_path / "a.pdf").exists()

    with_server(body)


def test_a_file_name_too_long_is_permanent_and_downloaded_once(tmp_path: Path) -> None:
    """ENAMETOOLONG is the local disk's answer, not the network's: no retry, no replay."""

    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="to the local disk: ENAMETOOLONG") as err:
                await d.download(url(server, "/file.pdf"), tmp_path / ("n" * 300 + ".pdf"))
        finally:
            await d.close()
        assert files.hits["/file.pdf"] == 1
        assert str(tmp_path) not in str(err.value)  # the job's own temp path says nothing useful

    with_server(body)


def test_a_missing_folder_is_permanent(tmp_path: Path) -> None:
    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(PermanentError, match="ENOENT"):
                await d.download(url(server, "/file.pdf"), tmp_path / "gone" / "a.pdf")
        finally:
            await d.close()
        assert files.hits["/file.pdf"] == 1

    with_server(body)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_transient_for_a_replay_but_not_retried_in_place(tmp_path: Path) -> None:
    """ENOSPC: another event's folder may free the disk later (retries-exhausted, replayable), but fetching
    the file again at once would fill it again: one request. Written through a link to /dev/full, which
    answers every write with ENOSPC (the link, not /dev/full, is what a failed download removes)."""
    full = tmp_path / "full.pdf"
    full.symlink_to("/dev/full")

    async def body(files: Files, server: TestServer) -> None:
        d = downloader_for(server)
        try:
            with pytest.raises(TransientError, match="to the local disk: ENOSPC") as err:
                await d.download(url(server, "/file.pdf"), full)
        finally:
            await d.close()
        assert err.value.reason == "retries-exhausted"
        assert files.hits["/file.pdf"] == 1

    with_server(body)


def test_local_file_error_classes() -> None:
    import errno

    from cokreat_jobs.adapters.download import local_file_error

    def err(code: int) -> OSError:
        return OSError(code, os.strerror(code))

    for code in (errno.ENAMETOOLONG, errno.ENOENT, errno.EACCES, errno.EROFS, errno.EISDIR, errno.ENOTDIR):
        assert isinstance(local_file_error(err(code), "f"), PermanentError), errno.errorcode[code]
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        got = local_file_error(err(code), "f")
        assert isinstance(got, TransientError) and got.reason == "retries-exhausted", errno.errorcode[code]


def test_file_names_from_urls_are_safe_length() -> None:
    from cokreat_jobs.core.naming import FILE_NAME_MAX, file_name_from_url, safe_file_name

    name = file_name_from_url("https://files.test/" + "a" * 1000 + ".pdf?x=1")
    assert len(name) == FILE_NAME_MAX and name.endswith(".pdf")
    assert len(file_name_from_url("https://files.test/" + "b" * 1000)) == FILE_NAME_MAX
    assert safe_file_name("short.pdf") == "short.pdf"
    # an "extension" too long to be one is cut like the rest
    assert safe_file_name("x." + "e" * 200, 50) == "x." + "e" * 48
