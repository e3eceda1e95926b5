"""user-delete's decisions, against a scripted program-service (in-process aiohttp server, no Flink)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.core.logs import JsonFormatter, hash_id
from cokreat_jobs.core.response import HttpResponse
from cokreat_jobs.jobs.user_delete.logic import UserDeletion, delete_path, interpret, is_transient


def resp(status: int, body: Any, ctype: str = "application/json") -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {"Content-Type": ctype}, raw)


def envelope(code: str, response: Any) -> dict[str, Any]:
    return {
        "id": "api.user.delete",
        "ver": "1.0",
        "params": {"err": None if code == "OK" else "ERR_DELETING_USER_FAILED"},
        "responseCode": code,
        "result": {"response": response},
    }


OK = envelope("OK", "User deleted Successfully ${req.params.userId}")
NOT_FOUND = envelope("SERVER_ERROR", "User not found in Sunbird")
NOT_FOUND_OS = envelope("SERVER_ERROR", "User not found in OS")
REFUSED = envelope("SERVER_ERROR", "Can only delete Individual or contributing org user")
STICKY_404 = envelope("SERVER_ERROR", "Unable to connect to registry")
HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (200, OK, False),
        (404, NOT_FOUND, False),
        (404, NOT_FOUND_OS, False),
        (404, STICKY_404, True),  # program-service's sticky 404: an error in disguise
        (500, envelope("SERVER_ERROR", "kafka down"), True),
        (502, HTML, True),
        (503, {}, True),
        (504, envelope("SERVER_ERROR", "x"), True),
        (429, {}, True),
        (400, REFUSED, False),
        (500, REFUSED, False),  # the reason decides, not the code
        (400, envelope("CLIENT_ERROR", "bad"), False),
        (403, HTML, False),
    ],
)
def test_status_classification(status: int, body: Any, transient: bool) -> None:
    assert is_transient(resp(status, body)) is transient


def test_interpret_final_answers() -> None:
    assert interpret(resp(200, OK)) == "deleted"
    assert interpret(resp(404, NOT_FOUND)) == "not-found"
    with pytest.raises(PermanentError, match="Can only delete"):
        interpret(resp(500, REFUSED))
    with pytest.raises(PermanentError, match="HTTP 200"):
        interpret(resp(200, envelope("SERVER_ERROR", "odd")))  # a 200 without OK
    with pytest.raises(PermanentError, match="HTTP 403"):
        interpret(resp(403, HTML))  # an HTML body is read, not parsed into a crash


def test_user_id_is_one_percent_encoded_path_segment() -> None:
    assert delete_path("a/b?c d") == "/program/v1/user/a%2Fb%3Fc%20d"
    assert delete_path("ü-1") == "/program/v1/user/%C3%BC-1"


class ProgramService:
    """Answers DELETE /program/v1/user/{id} from a script per user id; records what it was asked."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, Any]]] = {}
        self.calls: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        uid = request.match_info["uid"]
        self.calls.append(uid)
        answers = self.script.get(uid) or [(404, NOT_FOUND)]
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="text/html")
        return web.json_response(body, status=status)


def event(uid: Any, action: str = "delete-user", **extra: Any) -> dict[str, Any]:
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1.x",
        "object": {"id": uid, "type": "User"},
        "edata": {"action": action, "userId": uid, **extra},
    }


class Counts:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] += n


async def run_job(
    routes: list[tuple[str, Any]],
    events: list[dict[str, Any]],
    *overrides: str,
    metrics: Counts | None = None,
) -> list[Any]:
    """``events`` through user-delete against a stand-in program-service serving ``routes`` (DELETE paths)."""
    app = web.Application()
    for path, handler in routes:
        app.router.add_delete(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cfg = load_config(
        "user-delete",
        overrides=[
            f"program-service-baseUrl=http://127.0.0.1:{port}/prefix",
            "http.retry.backoff_ms=1",
            *overrides,
        ],
        env={},
    )
    job = UserDeletion.from_config(cfg, metrics)
    try:
        return [await job.process(e) for e in events]
    finally:
        await job.close()
        await runner.cleanup()


async def run_events(
    service: ProgramService, events: list[dict[str, Any]], metrics: Counts | None = None
) -> list[Any]:
    routes = [("/prefix/program/v1/user/{uid}", service.handle)]
    return await run_job(routes, events, "http.retry.max_attempts=3", metrics=metrics)


def test_outcomes_end_to_end_against_a_scripted_service(caplog: pytest.LogCaptureFixture) -> None:
    svc = ProgramService()
    svc.script = {
        "u-ok": [(200, OK)],
        "u-gone": [(404, NOT_FOUND)],
        "u-flaky": [(503, {}), (404, STICKY_404), (200, OK)],
        "u-admin": [(400, REFUSED)],
        "u-down": [(503, {})],
        "u-odd": [(200, envelope("SERVER_ERROR", "?"))],
        "a/b": [(200, OK)],
    }
    events = [
        event("u-ok"),
        event("u-gone"),
        event("u-flaky"),
        event("u-admin"),
        event("u-down"),
        event("u-odd"),
        event("a/b"),
        event("u-x", action="other"),
        event("  "),
        event(5),
    ]
    caplog.set_level(logging.DEBUG)
    out = asyncio.run(run_events(svc, events))
    kinds = [(o.kind, o.reason) for o in out]
    assert kinds == [
        ("success", ""),
        ("success", ""),
        ("success", ""),
        ("failed", "permanent"),
        ("failed", "retries-exhausted"),
        ("failed", "permanent"),
        ("success", ""),
        ("skipped", "not a delete-user event"),
        ("skipped", "edata.userId is blank"),
        ("failed", "invalid-field"),
    ]
    assert out[1].detail == {"result": "not-found"}
    # retries: flaky took 3 calls, down exhausted its 3 attempts, a permanent refusal was not retried
    assert svc.calls.count("u-flaky") == 3 and svc.calls.count("u-down") == 3
    assert svc.calls.count("u-admin") == 1 and "a/b" in svc.calls
    # failed records: the original event, jobName, failInfo with a reason, iteration incremented
    rec = out[3].failed_record
    assert rec is not None and rec["jobName"] == "user-delete"
    assert rec["failInfo"]["reason"] == "permanent" and "Can only delete" in rec["failInfo"]["error"]
    assert rec["edata"]["iteration"] == 2 and rec["edata"]["userId"] == "u-admin"
    # personal data: no user id in any log line, at any level
    # (the test's own stand-in server logs its access lines; those are not the job's)
    records = [r for r in caplog.records if r.name != "aiohttp.access"]
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in records)
    for uid in ("u-ok", "u-gone", "u-flaky", "u-admin", "u-down", "u-odd", "a/b", "a%2Fb"):
        assert uid not in text


# ------------------------------------------------------------------------- personal data (HARDENING 7)


def id_forms(uid: str) -> list[str]:
    """How an id can show in a text: as it is, percent-encoded (either case), lower / upper case."""
    return sorted(
        {uid, quote(uid, safe=""), quote(uid, safe="").lower(), quote(uid), uid.lower(), uid.upper()}
    )


def job_text(records: list[logging.LogRecord]) -> str:
    """Every log line of the job as it is written (JSON) and every attribute of its records."""
    formatter = JsonFormatter()
    jobs = [r for r in records if r.name != "aiohttp.access"]  # the stand-in's own access lines
    return "\n".join(
        formatter.format(r) + json.dumps(r.__dict__, default=str, ensure_ascii=False) for r in jobs
    )


class HostileProgramService:
    """A program-service whose answers quote the id, and that loops redirects."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def delete(self, request: web.Request) -> web.StreamResponse:
        uid = request.match_info["uid"]
        self.calls.append(uid)
        if uid.startswith("quote"):
            # the reason quotes the id three times, once in upper case
            body = envelope("CLIENT_ERROR", f"User {uid} cannot be deleted: {uid} is locked ({uid.upper()})")
            return web.json_response(body, status=400)
        if uid.startswith("loop"):
            raise web.HTTPFound(str(request.rel_url))  # to itself, until the client gives up
        if uid.startswith("bounce"):
            raise web.HTTPFound(f"/prefix/elsewhere/{quote(uid, safe='')}/{quote(uid, safe='')}")
        if uid.startswith("html"):
            return web.Response(status=503, text=f"<html>no luck for {uid}</html>", content_type="text/html")
        return web.json_response(envelope("CLIENT_ERROR", f"odd {uid}"), status=422)

    async def elsewhere(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/prefix/program/v1/user/{request.match_info['uid']}")


async def run_hostile(svc: HostileProgramService, events: list[dict[str, Any]], *extra: str) -> list[Any]:
    routes = [
        ("/prefix/program/v1/user/{uid}", svc.delete),
        ("/prefix/elsewhere/{uid}/{again}", svc.elsewhere),
    ]
    return await run_job(routes, events, "http.retry.max_attempts=2", *extra)


HOSTILE_IDS = [
    "quote-Person-0001",
    "loop-person-0002",
    "bounce-person-0003",
    "html-person-0004",
    "quote-ü-person-0005",
    "quote-a/b c?d-0006",
    "odd-person-0007",
]


def test_no_user_id_in_logs_nor_fail_info_whatever_the_service_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = HostileProgramService()
    caplog.set_level(logging.DEBUG)
    out = asyncio.run(run_hostile(svc, [event(uid) for uid in HOSTILE_IDS]))
    assert [o.kind for o in out] == ["failed"] * len(HOSTILE_IDS)
    assert [o.reason for o in out] == [
        "permanent",  # the reason quotes the id
        "permanent",  # a redirect loop: the same request loops again
        "permanent",
        "retries-exhausted",  # 503 with an HTML page naming the user
        "permanent",
        "permanent",
        "permanent",
    ]
    assert len(svc.calls) > len(HOSTILE_IDS)  # the loops were followed for a while
    logs = job_text(caplog.records)
    for uid, outcome in zip(HOSTILE_IDS, out, strict=True):
        error = outcome.failed_record["failInfo"]["error"]
        for form in id_forms(uid):
            assert form not in error, (form, error)
            assert form not in logs, form
        if not uid.startswith("html"):  # the 503's page is not quoted at all (only its status)
            assert "<user>" in error
        # the record still says what happened, and still carries the event so it can be replayed
        assert outcome.failed_record["edata"]["userId"] == uid
    quoted = out[0].failed_record["failInfo"]["error"]
    assert "cannot be deleted: <user> is locked (<user>)" in quoted, quoted
    assert "TooManyRedirects" in out[1].failed_record["failInfo"]["error"]


def test_an_unexpected_error_is_scrubbed_too(caplog: pytest.LogCaptureFixture) -> None:
    uid = "boom-person-0008"

    async def go() -> Any:
        cfg = load_config("user-delete", overrides=["program-service-baseUrl=http://127.0.0.1:9"], env={})
        job = UserDeletion.from_config(cfg)

        async def broken(method: str, path: str, **kwargs: Any) -> Any:
            raise RuntimeError(f"unexpected trouble with {path} for {uid}")

        job._program.request = broken  # type: ignore[method-assign]
        try:
            return await job.process(event(uid))
        finally:
            await job.close()

    caplog.set_level(logging.DEBUG)
    outcome = asyncio.run(go())
    assert outcome.kind == "failed" and outcome.reason == "permanent"
    error = outcome.failed_record["failInfo"]["error"]
    logs = job_text(caplog.records)
    for form in id_forms(uid):
        assert form not in error and form not in logs, form


def test_logs_hash_with_the_deployment_salt(caplog: pytest.LogCaptureFixture) -> None:
    svc = HostileProgramService()
    caplog.set_level(logging.DEBUG)
    asyncio.run(run_hostile(svc, [event("odd-person-0009")], "log.id_hash_salt=deploy-a-4f1c"))
    users = [getattr(r, "cokreat_fields", {}).get("user") for r in caplog.records]
    assert hash_id("odd-person-0009", salt="deploy-a-4f1c") in users
    assert hash_id("odd-person-0009") not in users
    assert not [r for r in caplog.records if "id_hash_salt" in r.getMessage()]  # set: no warning


def test_an_unset_salt_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    import cokreat_jobs.jobs.user_delete.logic as logic

    logic.UserDeletion.warned_unkeyed = False
    svc = HostileProgramService()
    caplog.set_level(logging.DEBUG)
    asyncio.run(run_hostile(svc, [event("odd-person-0010")]))
    asyncio.run(run_hostile(svc, [event("odd-person-0011")]))
    warnings = [r for r in caplog.records if "log.id_hash_salt" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    users = [getattr(r, "cokreat_fields", {}).get("user") for r in caplog.records]
    assert hash_id("odd-person-0010") in users  # the built-in salt: the hashes earlier versions wrote


def test_dot_segment_user_ids_are_skipped_and_never_sent() -> None:
    """HARDENING 12: ``..`` sent ``DELETE /program/v1/``, ``.`` ``DELETE /program/v1/user/`` (the client
    resolves dot segments, percent-encoded or not). Such ids are skipped as invalid, as a blank one is."""
    seen: list[tuple[str, str]] = []

    async def anything(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, request.raw_path))
        return web.json_response(OK)

    async def go() -> list[Any]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        cfg = load_config(
            "user-delete", overrides=[f"program-service-baseUrl=http://127.0.0.1:{port}/prefix"]
        )
        job = UserDeletion.from_config(cfg)
        try:
            return [await job.process(event(u)) for u in ("..", ".", "...", "..a", "%2e%2e")]
        finally:
            await job.close()
            await runner.cleanup()

    out = asyncio.run(go())
    kinds = [(o.kind, o.reason) for o in out]
    invalid = "edata.userId is not a valid user id: a dot segment"
    assert kinds == [("skipped", invalid)] * 3 + [("success", ""), ("success", "")]
    assert seen == [
        ("DELETE", "/prefix/program/v1/user/..a"),
        ("DELETE", "/prefix/program/v1/user/%252e%252e"),
    ]


def test_retries_and_errors_are_counted_as_the_other_jobs_count_them() -> None:
    svc = ProgramService()
    svc.script = {
        "u-ok": [(200, OK)],
        "u-flaky": [(503, {}), (404, STICKY_404), (200, OK)],  # 2 retries, then deleted
        "u-down": [(503, {})],  # 3 attempts: 2 retries, then retries exhausted
        "u-admin": [(400, REFUSED)],  # permanent: no retry
    }
    metrics = Counts()
    out = asyncio.run(run_events(svc, [event(u) for u in svc.script], metrics))
    assert [o.kind for o in out] == ["success", "success", "failed", "failed"]
    # each retried call counts a retry and an error (the Scala jobs' error count), each failure an error
    assert metrics.counts == {"retry": 4, "error": 4 + 2}


def test_the_logic_module_imports_no_pyflink() -> None:
    src = Path(__file__).resolve().parents[4] / "src"
    code = (
        "import sys, cokreat_jobs.jobs.user_delete.logic\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyflink'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
