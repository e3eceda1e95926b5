"""ServiceClient against a real aiohttp server on a free local port."""

from __future__ import annotations

import asyncio
import gc
import pickle
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from cokreat_jobs.adapters.download import ADDRESS_REFUSED, NetworkPolicy, UrlGuard
from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError, public_text
from cokreat_jobs.core.response import HttpResponse, default_is_transient, is_5xx_or_429

FAST = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=5)
OK_ENVELOPE = {
    "id": "api.content.read",
    "ver": "4.0",
    "params": {"status": "successful", "err": None, "errmsg": None},
    "responseCode": "OK",
    "result": {"content": {"identifier": "do_1"}},
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Recorder:
    """Answers with a script of responses, one per request (the last one repeats), and records requests."""

    def __init__(self, *script: Handler | web.StreamResponse) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": CIMultiDict(request.headers),
                "body": body,
                "content_type": request.content_type,
            }
        )
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, web.StreamResponse):
            return step if len(self.script) > 1 else _clone(step)
        return await step(request)


def _clone(resp: web.StreamResponse) -> web.StreamResponse:
    assert isinstance(resp, web.Response)
    return web.Response(status=resp.status, body=resp.body, headers=resp.headers)


def json_resp(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(OK_ENVELOPE if body is None else body, status=status, headers=headers)


async def start(recorder: Recorder) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = TestServer(app)
    await server.start_server()
    return server


def client(server: TestServer, prefix: str = "", **kw: Any) -> ServiceClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("connect_timeout_s", 2.0)
    kw.setdefault("read_timeout_s", 2.0)
    return ServiceClient("content", str(server.make_url(prefix)), **kw)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- retrying


def test_retries_503_then_succeeds() -> None:
    async def main() -> None:
        rec = Recorder(json_resp(503, {"responseCode": "SERVER_ERROR"}), json_resp(503), json_resp(200))
        server = await start(rec)
        retries: list[tuple[int, str]] = []
        async with client(server) as c:
            resp = await c.request("GET", "/x", on_retry=lambda n, why: retries.append((n, why)))
        await server.close()
        assert resp.ok
        assert resp.result == {"content": {"identifier": "do_1"}}
        assert len(rec.requests) == 3
        assert retries == [(1, "HTTP 503"), (2, "HTTP 503")]

    run(main())


def test_exhausted_retries_raise_transient_error() -> None:
    async def main() -> None:
        rec = Recorder(json_resp(502, {"responseCode": "SERVER_ERROR", "params": {"err": "ERR_GATEWAY"}}))
        server = await start(rec)
        async with client(server) as c:
            with pytest.raises(TransientError) as info:
                await c.request("DELETE", "/program/v1/user/u1")
            with pytest.raises(TransientError) as labelled:
                await c.request("DELETE", "/program/v1/user/u1", label="DELETE user/{id}")
        await server.close()
        err = info.value
        assert err.reason == "retries-exhausted"
        assert err.status == 502
        assert err.attempts == 3
        assert err.response is not None and err.response.status == 502
        assert (
            "content" in str(err)
            and "DELETE /program/v1/user/u1" in str(err)
            and "HTTP 502 ERR_GATEWAY" in str(err)
        )
        assert "u1" not in str(labelled.value) and "user/{id}" in str(labelled.value)
        again = pickle.loads(pickle.dumps(err))
        assert again.response is not None and again.response.status == 502
        assert again.response.headers["content-type"].startswith("application/json")
        assert len(rec.requests) == 6

    run(main())


def test_no_retry_on_400_or_500_by_default() -> None:
    async def main() -> None:
        rec = Recorder(
            json_resp(400, {"responseCode": "CLIENT_ERROR", "params": {"err": "E1", "errmsg": "bad"}})
        )
        server = await start(rec)
        async with client(server) as c:
            resp = await c.request("POST", "/x", json={"request": {}})
            assert resp.status == 400
            assert (resp.response_code, resp.err, resp.errmsg, resp.ok) == (
                "CLIENT_ERROR",
                "E1",
                "bad",
                False,
            )
            rec.script = [json_resp(500, {"responseCode": "SERVER_ERROR"})]
            assert (await c.request("GET", "/y")).status == 500
        await server.close()
        assert len(rec.requests) == 2

    run(main())


def test_custom_transient_predicate_retries_500() -> None:
    async def main() -> None:
        rec = Recorder(json_resp(500), json_resp(200))
        server = await start(rec)
        async with client(server) as c:
            resp = await c.request("GET", "/x", is_transient=is_5xx_or_429)
        await server.close()
        assert resp.status == 200 and len(rec.requests) == 2

    run(main())


def test_per_call_retry_policy() -> None:
    async def main() -> None:
        rec = Recorder(json_resp(503))
        server = await start(rec)
        async with client(server) as c:
            with pytest.raises(TransientError, match="after 1 attempt:"):
                await c.request("POST", "/create", retry=RetryPolicy(max_attempts=1))
        await server.close()
        assert len(rec.requests) == 1

    run(main())


def test_read_timeout_is_transient() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return json_resp()

    async def main() -> None:
        rec = Recorder(slow)
        server = await start(rec)
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with client(server, read_timeout_s=0.2, retry=RetryPolicy(2, 1, 5)) as c:
            with pytest.raises(TransientError, match="Timeout") as info:
                await c.request("GET", "/slow")
        elapsed = loop.time() - started
        await server.close()
        assert info.value.status is None and info.value.attempts == 2
        assert elapsed < 2.0

    run(main())


def test_connection_refused_is_transient() -> None:
    async def main() -> None:
        server = await start(Recorder(json_resp()))
        url = str(server.make_url(""))
        await server.close()  # nothing listens there any more
        retries: list[int] = []
        async with ServiceClient("search", url, retry=FAST, connect_timeout_s=1, read_timeout_s=1) as c:
            with pytest.raises(TransientError, match="search: POST /v3/search failed after 3 attempts"):
                await c.request("POST", "/v3/search", json={}, on_retry=lambda n, _: retries.append(n))
        assert retries == [1, 2]

    run(main())


def test_retry_after_is_honoured_and_capped() -> None:
    async def main() -> None:
        rec = Recorder(
            json_resp(429, headers={"Retry-After": "2"}),
            json_resp(429, headers={"Retry-After": "120"}),
            json_resp(503, headers={"Retry-After": "not a number"}),
            json_resp(200),
        )
        server = await start(rec)
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        policy = RetryPolicy(max_attempts=4, backoff_ms=100, max_backoff_ms=10_000)
        async with client(server, retry=policy, sleep=fake_sleep) as c:
            resp = await c.request("GET", "/x")
        await server.close()
        assert resp.status == 200
        assert slept[0] == 2.0
        assert slept[1] == 10.0  # capped at max_backoff_ms
        assert 0.2 <= slept[2] <= 0.4  # third attempt's backoff: 400 ms with equal jitter

    run(main())


# ------------------------------------------------------------------------------------------------ answers


def test_html_body_gives_no_json() -> None:
    async def main() -> None:
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        rec = Recorder(web.Response(status=500, body=page, content_type="text/html"))
        server = await start(rec)
        async with client(server) as c:
            resp = await c.request("POST", "/content/v4/upload/do_1")
        await server.close()
        assert resp.status == 500
        assert resp.json is None
        assert resp.response_code is None and resp.result == {} and resp.err is None and not resp.ok
        assert "Bad Gateway" in resp.text

    run(main())


def test_json_mislabelled_and_broken_bodies() -> None:
    assert HttpResponse(200, {}, b'{"responseCode": "OK"}').ok
    assert HttpResponse(200, {}, b'{"responseCode": "OK"').json is None
    assert HttpResponse(200, {}, b"").json is None
    assert HttpResponse(200, {}, b"\xff\xfe").text == "\ufffd\ufffd"
    odd = HttpResponse(200, {}, b'{"result": [1], "params": "x", "responseCode": 5}')
    assert (odd.result, odd.err, odd.response_code, odd.ok) == ({}, None, None, False)
    assert HttpResponse(200, {}, b"[1]").result == {}
    explicit = HttpResponse(200, {}, b"ignored", json={"responseCode": "OK"})
    assert explicit.ok
    assert "ignored" not in repr(explicit)


def test_body_size_cap() -> None:
    async def main() -> None:
        rec = Recorder(web.Response(body=b"x" * 5000))
        server = await start(rec)
        async with client(server, max_body_bytes=1000) as c:
            with pytest.raises(PermanentError, match="over 1000|more than 1000"):
                await c.request("GET", "/big")
        await server.close()

    run(main())


# ------------------------------------------------------------------------------------------------ requests


def test_base_url_prefix_and_encoding_are_kept() -> None:
    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        async with client(server, prefix="/content/") as c:
            await c.request("GET", "/content/v4/read/do_1", params={"mode": "edit"})
            await c.request("DELETE", "/program/v1/user/a%2Fb%20c")
            await c.request("GET", "/content/v3/hierarchy/do_2?mode=edit", params={"fields": "a,b"})
            await c.request("GET", "relative/no/slash")
        await server.close()
        paths = [r["raw_path"] for r in rec.requests]
        assert paths == [
            "/content/content/v4/read/do_1?mode=edit",
            "/content/program/v1/user/a%2Fb%20c",
            "/content/content/v3/hierarchy/do_2?mode=edit&fields=a,b",
            "/content/relative/no/slash",
        ]

    run(main())


def test_headers_and_bodies() -> None:
    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        c = client(server, default_headers={"X-Channel-Id": "ch1", "Content-Type": "text/plain"})
        await c.request("POST", "/json", json={"request": {"content": {"name": "é"}}})
        await c.request("POST", "/hdr", json={}, headers={"x-channel-id": "ch2"})
        await c.request("POST", "/upload", multipart={"fileUrl": "http://files/a.pdf"}, headers={})
        calls = iter([b"first", b"second"])
        await c.request("POST", "/data", data=lambda: next(calls))
        await c.close()
        await server.close()
        r_json, r_hdr, r_upload, r_data = rec.requests
        assert r_json["headers"]["X-Channel-Id"] == "ch1"
        assert r_json["content_type"] == "text/plain"  # an explicit Content-Type wins over json's default
        assert r_json["body"].decode() == '{"request":{"content":{"name":"é"}}}'
        assert r_hdr["headers"]["X-Channel-Id"] == "ch2"
        assert r_upload["content_type"] == "multipart/form-data"
        assert b'name="fileUrl"' in r_upload["body"] and b"http://files/a.pdf" in r_upload["body"]
        assert r_data["body"] == b"first"

    run(main())


def test_json_content_type_default() -> None:
    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        async with client(server) as c:
            await c.request("PATCH", "/x", json={"a": 1})
            await c.request("DELETE", "/y", headers={"Content-Type": "application/json"})
        await server.close()
        assert rec.requests[0]["content_type"] == "application/json"
        assert rec.requests[1]["body"] == b""

    run(main())


def test_multipart_is_rebuilt_for_each_attempt() -> None:
    async def main() -> None:
        rec = Recorder(json_resp(503), json_resp(200))
        server = await start(rec)
        async with client(server) as c:
            resp = await c.request("POST", "/upload", multipart={"fileUrl": "u"})
        await server.close()
        assert resp.ok
        assert all(b'name="fileUrl"' in r["body"] for r in rec.requests)

    run(main())


# ------------------------------------------------------------------------------------------------ sessions


def test_session_is_lazy_and_reused_then_closed_sync_off_loop() -> None:
    rec = Recorder(json_resp())
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(start(rec))
    c = client(server)
    assert c._session is None

    async def twice() -> aiohttp.ClientSession:
        await c.request("GET", "/a")
        first = c.session()
        await c.request("GET", "/b")
        assert c.session() is first
        return first

    session = loop.run_until_complete(twice())
    assert not session.closed
    c.close_sync()  # the loop is idle here: the session is closed by running it to completion
    assert session.closed
    loop.run_until_complete(server.close())
    loop.close()


def test_close_sync_from_another_thread_closes_on_the_loop() -> None:
    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        c = client(server)
        await c.request("GET", "/a")
        session = c.session()
        # Flink calls close() on the operator thread while the loop keeps running in its own.
        await asyncio.to_thread(c.close_sync)
        assert session.closed
        await server.close()

    run(main())


# A session whose loop has ended cannot close its sockets cleanly any more (asyncio warns when they are
# collected): that is the price of a client not closed before its loop ended, which this test does on purpose.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_new_loop_gets_a_new_session() -> None:
    rec = Recorder(json_resp())
    loop1 = asyncio.new_event_loop()
    server = loop1.run_until_complete(start(rec))
    c = ServiceClient("x", str(server.make_url("")), retry=FAST, connect_timeout_s=1, read_timeout_s=1)
    thread = threading.Thread(target=loop1.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(c.request("GET", "/on-loop1"), loop1).result(5)
        s1 = c._session
        # Used from another loop while loop1 still runs: a new session; loop1 closes the old one itself.
        asyncio.run(c.request("GET", "/on-loop2"))
        s2 = c._session
        assert s2 is not s1 and s1 is not None
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop1).result(5)
        assert s1.closed
        # loop2 is closed by now: its session is dropped without a loop.
        asyncio.run(c.request("GET", "/on-loop3"))
        assert s2 is not None and s2.closed and c._session is not s2
        asyncio.run(c.close())
        assert len(rec.requests) == 3
        del s1, s2
        gc.collect()
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop1).result(5)
        loop1.call_soon_threadsafe(loop1.stop)
        thread.join(5)
        loop1.close()


def test_session_provider_is_used_and_not_closed() -> None:
    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        shared = aiohttp.ClientSession()
        c = client(server, session_provider=lambda: shared)
        await c.request("GET", "/a")
        await c.close()
        assert not shared.closed
        await shared.close()
        await server.close()
        assert len(rec.requests) == 1

    run(main())


# ------------------------------------------------------------------------------------------------ policies


def test_client_from_config_and_bad_base_url() -> None:
    cfg = load_config("user-delete", env={})
    c = ServiceClient.from_config("program", "http://localhost:9000/program/", cfg)
    assert c.base_url == "http://localhost:9000/program"
    assert c.timeout.sock_connect == 5.0 and c.timeout.sock_read == 30.0 and c.timeout.total == 35.0
    assert c.retry == RetryPolicy(5, 200, 10_000)
    with pytest.raises(ConfigError):
        ServiceClient("x", "localhost:9000", retry=FAST, connect_timeout_s=1, read_timeout_s=1)


def test_transient_predicates() -> None:
    def r(status: int) -> HttpResponse:
        return HttpResponse(status, {}, b"")

    assert [s for s in (200, 400, 404, 429, 500, 502, 503, 504) if default_is_transient(r(s))] == [
        429,
        502,
        503,
        504,
    ]
    assert [s for s in (200, 404, 429, 500, 501) if is_5xx_or_429(r(s))] == [429, 500, 501]


@pytest.mark.parametrize(
    "path",
    [
        "/content/v4/read/..",
        "/program/v1/user/.",
        "/content/v4/read/%2e%2e",
        "/content/v4/read/.%2E?mode=edit",
        "/question/v1/read/../x",
        "/a/./b",
    ],
)
def test_a_path_with_a_dot_segment_is_refused_unsent(path: str) -> None:
    """HARDENING 12: the client resolves dot segments (percent-encoded ones too), so ``/read/..`` would be
    sent as ``/content/v4/``, another resource. An id that makes one is a permanent failure, never sent."""

    async def main() -> None:
        rec = Recorder(json_resp())
        server = await start(rec)
        async with client(server, prefix="/base") as c:
            with pytest.raises(PermanentError, match="dot segment"):
                await c.request("GET", path)
            await c.request("GET", "/content/v4/read/do_1.img..x/..a/.b%2F..")  # dots inside are fine
        await server.close()
        assert [r["raw_path"] for r in rec.requests] == ["/base/content/v4/read/do_1.img..x/..a/.b%2F.."]

    run(main())


# ------------------------------------------------------------------------- guarded: URLs from an event


def guarded(base: str, *allowed: TestServer, **kw: Any) -> tuple[ServiceClient, UrlGuard]:
    """A client through a guard configured as in production: nothing private allowed but ``allowed``."""
    guard = UrlGuard(NetworkPolicy.parse([f"127.0.0.1:{s.port}" for s in allowed]))
    kw.setdefault("retry", FAST)
    return ServiceClient(
        "repository", base, connect_timeout_s=2.0, read_timeout_s=2.0, guard=guard, **kw
    ), guard


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])
def test_a_guarded_client_never_reaches_an_internal_service(host: str) -> None:
    """HARDENING 2: a name resolving to loopback, or loopback written out, is refused before any request,
    as a permanent failure (the same name resolves the same way again) whose public text names nothing."""

    async def main() -> None:
        internal = Recorder(json_resp())
        server = await start(internal)
        c, guard = guarded(f"http://{host}:{server.port}")
        retries: list[Any] = []
        try:
            with pytest.raises(PermanentError) as err:
                await c.request("GET", "/api/questionset/v1/read/do_1", on_retry=lambda *a: retries.append(a))
        finally:
            await c.close()
            await guard.close()
            await server.close()
        assert internal.requests == [] and retries == []
        assert "not an allowed address" in str(err.value)
        assert public_text(err.value) == ADDRESS_REFUSED

    run(main())


def test_a_guarded_client_checks_each_redirect_hop() -> None:
    """An allowed front redirects to the internal service (by address and by a name resolving to it):
    refused at the hop; a redirect within allowed addresses is followed."""

    async def main() -> None:
        internal = Recorder(json_resp())
        inner = await start(internal)

        async def front_handle(request: web.Request) -> web.StreamResponse:
            target = {
                "/to-ip": f"http://127.0.0.1:{inner.port}/secret",
                "/to-name": f"http://localhost:{inner.port}/secret",
                "/to-self": "/ok",
                "/malformed": "http://127.0.0.1:99999999/x",
            }.get(request.path)
            if target is not None:
                return web.Response(status=302, headers={"Location": target})
            return json_resp()

        front = await start(Recorder(front_handle))
        c, guard = guarded(f"http://127.0.0.1:{front.port}", front)
        try:
            for path in ("/to-ip", "/to-name"):
                with pytest.raises(PermanentError) as err:
                    await c.request("GET", path)
                assert "not an allowed address" in str(err.value), path
                assert public_text(err.value) == ADDRESS_REFUSED
            with pytest.raises(PermanentError, match="redirected to a malformed Location"):
                await c.request("GET", "/malformed")
            resp = await c.request("GET", "/to-self")
            with pytest.raises(ConfigError, match="bodiless"):
                await c.request("POST", "/x", json={"a": 1})
        finally:
            await c.close()
            await guard.close()
            await front.close()
            await inner.close()
        assert resp.ok
        assert internal.requests == []

    run(main())
