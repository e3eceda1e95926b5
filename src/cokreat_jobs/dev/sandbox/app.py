"""The sandbox's ASGI application: one catch-all route and a dispatcher over the sandbox's own route table.

Starlette's router is not used for the service paths because they must match under any base-URL prefix and
on the raw, percent-encoded path (see router.py). The dispatcher applies, for every service request, the
fault rules, the handler, and the request log; `/_sandbox/*` paths skip both faults and logging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from cokreat_jobs.dev.sandbox import admin, content, drive, files, hierarchy, imports, program, search, source
from cokreat_jobs.dev.sandbox.envelope import (
    Api,
    default_fault_body,
    error,
    google_error,
    html_page,
    json_response,
)
from cokreat_jobs.dev.sandbox.faults import FaultRule
from cokreat_jobs.dev.sandbox.multipart import parse_form
from cokreat_jobs.dev.sandbox.router import ApiError, Call, HtmlFailure, parse_query
from cokreat_jobs.dev.sandbox.runtime import Sandbox, Settings

log = logging.getLogger("cokreat_jobs.dev.sandbox")

DEFAULT_MODULES: tuple[ModuleType, ...] = (
    admin,
    program,
    files,
    content,
    search,
    hierarchy,
    drive,
    imports,
    source,
)
"""Service modules, each with `register(sandbox)`, in dependency order (files' storage and content's nodes
are used by the modules after them); routes match in registration order."""

UNKNOWN_API = Api("api.unknown", "1.0")

_REDACTED_HEADERS = {"authorization", "proxy-authorization", "cookie"}


def create_app(
    state_dir: str | Path,
    settings: dict[str, Any] | None = None,
    *,
    extra_modules: Iterable[ModuleType] = (),
) -> Starlette:
    """Build the sandbox app over the state kept in `<state_dir>/sandbox.db`.

    `settings`: `publish_delay_ms` [500], `search_index_delay_ms` [0], `storage_dir` [`<state_dir>/storage`],
    `graph_store`, `external_store`, `unknown_route_status` [500], `files_path` [`/_files`]; unknown keys
    are kept in `Settings.extra`. `extra_modules` are registered after the default service modules.
    """
    sandbox = Sandbox(Settings.build(state_dir, settings))
    for module in (*DEFAULT_MODULES, *extra_modules):
        module.register(sandbox)
    dispatcher = Dispatcher(sandbox)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await sandbox.ensure_started()
        try:
            yield
        finally:
            await sandbox.shutdown()

    # The dispatcher is a plain ASGI app, so Starlette hands it every method.
    app = Starlette(routes=[StarletteRoute("/{path:path}", dispatcher)], lifespan=lifespan)
    app.state.sandbox = sandbox
    return app


def _log_body(call: Call | None, content_type: str, body: bytes) -> Any:
    if not body:
        return None
    if call is not None and call._json_parsed:
        return call._json
    form = parse_form(content_type, body)
    if form is not None:
        return form
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _log_headers(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        if name in _REDACTED_HEADERS:
            value = value.split(" ", 1)[0] + " ***" if " " in value else "***"
        out[name] = value
    return out


def fault_response(rule: FaultRule, api: Api, throttled: bool) -> Response:
    status = 429 if throttled else (rule.status or 500)
    headers = {"Retry-After": "1"} if throttled else None
    if rule.raw_body is not None:
        return Response(
            rule.raw_body, status, headers=headers, media_type=rule.content_type or "text/html; charset=utf-8"
        )
    if rule.has_body:
        return json_response(rule.body, status, headers)
    if throttled and api.style != "google":
        # What the API gateway (Kong) answers when its rate limit trips; the service never sees the call.
        return json_response({"message": "API rate limit exceeded"}, 429, headers)
    return json_response(default_fault_body(api, status), status, headers)


class Dispatcher:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        sandbox = self.sandbox
        if not sandbox.started_on_this_loop():
            await sandbox.ensure_started()
        scope = request.scope
        method: str = scope["method"]
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1") if raw else quote(scope["path"])
        matched = sandbox.router.match(method, raw_path)

        if raw_path.startswith("/_sandbox") or (matched is not None and matched[0].internal):
            refusal = admin.admin_refusal(scope, request.headers)
            if refusal is not None:
                return refusal
        if matched is not None and matched[0].internal:
            route, params = matched
            internal_call = Call(
                request,
                sandbox,
                method,
                scope["path"],
                params,
                parse_query(scope["query_string"]),
                await request.body(),
                route.api,
            )
            try:
                return await route.handler(internal_call)
            except HtmlFailure as exc:
                return json_response({"error": exc.message}, 400)
        if raw_path.startswith("/_sandbox/"):
            return json_response({"error": f"no sandbox route {method} {raw_path}"}, 404)

        arrived_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()
        path: str = scope["path"]
        query = parse_query(scope["query_string"])
        body = await request.body()
        api = matched[0].api if matched else UNKNOWN_API
        call: Call | None = None
        response: Response | None = None

        decision = sandbox.faults.decide(method, path)
        if decision is not None:
            if decision.latency_ms:
                await asyncio.sleep(decision.latency_ms / 1000)
            rule = decision.rule
            if rule is not None and rule.hang and not decision.throttled:
                await self._wait_for_disconnect(request)
                # 499: nginx's "client closed request"; nothing was ever answered.
                status = rule.status or 499
                self._record(request, arrived_ms, started, method, path, query, status, None, body)
                return Response(status_code=status)
            if rule is not None:
                response = fault_response(rule, api, decision.throttled)

        if response is None:
            if matched is None:
                response = html_page(
                    sandbox.settings.unknown_route_status, f"Action Not Found: For request '{method} {path}'"
                )
            else:
                route, params = matched
                call = Call(request, sandbox, method, path, params, query, body, route.api)
                try:
                    response = await route.handler(call)
                except ApiError as exc:
                    if api.style == "google":
                        response = google_error(exc.status, exc.errmsg, exc.err)
                    else:
                        response = error(
                            api,
                            exc.status,
                            exc.err,
                            exc.errmsg,
                            response_code=exc.response_code,
                            result=exc.result,
                        )
                except HtmlFailure as exc:
                    response = html_page(exc.status, exc.message)
                except Exception as exc:
                    log.exception("sandbox handler %s failed", route.name)
                    message = f"Something went wrong in server: {exc}"
                    response = error(api, 500, "ERR_SYSTEM_EXCEPTION", message)

        self._record(request, arrived_ms, started, method, path, query, response.status_code, call, body)
        return response

    def _record(
        self,
        request: Request,
        arrived_ms: int,
        started: float,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        call: Call | None,
        body: bytes,
    ) -> None:
        self.sandbox.requests.record(
            {
                "ts_ms": arrived_ms,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "method": method,
                "path": path,
                "query": query,
                "status": status,
                "body": _log_body(call, request.headers.get("content-type", ""), body),
                "headers": _log_headers(request),
            }
        )

    @staticmethod
    async def _wait_for_disconnect(request: Request) -> None:
        # The body has been read, so the next message the server hands us is the disconnect.
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return
