"""The sandbox-only inspection API under `/_sandbox/` (never logged, never faulted), and its guard.

Service modules add their own inspection routes (e.g. `GET /_sandbox/users` in program.py); this module holds
the ones about the sandbox itself: health, seeding, the request log, fault rules, reset and the route list.

The admin paths have no auth, so :func:`admin_refusal` keeps them to local clients that name the sandbox
itself (HARDENING 15): the `Host` must be a loopback name or address with the sandbox's own port (a page on an
attacker's name that resolves to 127.0.0.1, DNS rebinding, is refused), an `Origin`, when sent, must be such
a loopback origin, and a POST, PUT or PATCH may not carry a body type a browser sends cross-site without
asking first (`text/plain`, forms). The service paths are not guarded: the jobs call them by any name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from cokreat_jobs.dev.sandbox.envelope import SANDBOX_API, json_response
from cokreat_jobs.dev.sandbox.faults import FaultRuleError
from cokreat_jobs.dev.sandbox.router import Call, HtmlFailure
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError

# Content types a browser sends cross-site without a preflight (the CORS-safelisted ones).
_SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1, also IPv4-mapped), without brackets or port."""
    name = host.strip().lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _split_authority(authority: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` (IPv6 in brackets) -> (host, port); None when it cannot be read."""
    text = authority.strip()
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        return None  # a bare IPv6 address is no Host
    else:
        host, _, port_text = text.partition(":")
    if port_text == "":
        return host, default_port
    if not port_text.isdigit():
        return None
    return host, int(port_text)


def _names_the_sandbox(authority: str, default_port: int, port: int | None) -> bool:
    parts = _split_authority(authority, default_port)
    if parts is None:
        return False
    host, given = parts
    return is_loopback_host(host) and (port is None or given == port)


def admin_refusal(scope: Scope, headers: Mapping[str, str]) -> Response | None:
    """None when an admin request may be served; else the answer that refuses it."""
    server = scope.get("server")
    port = int(server[1]) if server and server[1] is not None else None
    host = headers.get("host")
    if host is None or not _names_the_sandbox(host, 80, port):
        return json_response(
            {"error": "the sandbox's admin paths answer only a loopback Host with the sandbox's port"}, 403
        )
    origin = headers.get("origin")
    if origin is not None:
        scheme, sep, authority = origin.partition("://")
        defaults = {"http": 80, "https": 443}
        if (
            not sep
            or scheme.lower() not in defaults
            or not _names_the_sandbox(authority.rstrip("/"), defaults[scheme.lower()], port)
        ):
            return json_response(
                {"error": "the sandbox's admin paths refuse requests from other origins"}, 403
            )
    if scope.get("method") in ("POST", "PUT", "PATCH"):
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type in _SIMPLE_CONTENT_TYPES:
            return json_response(
                {"error": f"the sandbox's admin paths take JSON, not {content_type} (a cross-site form)"}, 415
            )
    return None


def bad_request(message: str) -> Response:
    return json_response({"error": message}, 400)


def inspect_route(sandbox: Sandbox, methods: str | list[str], pattern: str, handler: Any) -> None:
    """Register a `/_sandbox/...` route: matched from the root, exempt from faults and the request log."""
    sandbox.router.add(methods, pattern, handler, SANDBOX_API, anchor="root", internal=True)


def json_object(call: Call) -> dict[str, Any]:
    try:
        body = call.json()
    except HtmlFailure as exc:
        raise HtmlFailure(400, exc.message) from exc
    if not isinstance(body, dict):
        raise HtmlFailure(400, "the body must be a JSON object")
    return body


def _int_param(call: Call, name: str) -> int | None:
    value = call.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise HtmlFailure(400, f"{name} must be an integer") from exc


def register(sandbox: Sandbox) -> None:
    async def health(call: Call) -> Response:
        return json_response({"status": "ok"})

    async def seed(call: Call) -> Response:
        try:
            return json_response(sandbox.seed(json_object(call)))
        except SeedError as exc:
            return bad_request(str(exc))

    async def list_requests(call: Call) -> Response:
        since, limit = _int_param(call, "since"), _int_param(call, "limit")
        body = sandbox.requests.entries_json(since, limit)
        return Response(body, media_type="application/json")

    async def clear_requests(call: Call) -> Response:
        sandbox.requests.clear()
        return json_response({"cleared": True})

    async def add_fault(call: Call) -> Response:
        try:
            rule = sandbox.faults.add(json_object(call))
        except FaultRuleError as exc:
            return bad_request(str(exc))
        return json_response({"id": rule.id})

    async def list_faults(call: Call) -> Response:
        return json_response({"faults": [r.to_json() for r in sandbox.faults.rules]})

    async def clear_faults(call: Call) -> Response:
        sandbox.faults.clear()
        return json_response({"cleared": True})

    async def remove_fault(call: Call) -> Response:
        if not sandbox.faults.remove(call.params["rule_id"]):
            return json_response({"error": "no such rule"}, 404)
        return json_response({"removed": call.params["rule_id"]})

    async def reset(call: Call) -> Response:
        sandbox.reset()
        return json_response({"reset": True})

    async def routes(call: Call) -> Response:
        return json_response(
            {
                "routes": [
                    {
                        "methods": sorted(r.methods),
                        "pattern": r.pattern,
                        "api": r.api.id,
                        "internal": r.internal,
                    }
                    for r in sandbox.router.routes
                ],
                "seed_kinds": sandbox.seed_kinds,
            }
        )

    inspect_route(sandbox, "GET", "/_sandbox/health", health)
    inspect_route(sandbox, "POST", "/_sandbox/seed", seed)
    inspect_route(sandbox, "GET", "/_sandbox/requests", list_requests)
    inspect_route(sandbox, "DELETE", "/_sandbox/requests", clear_requests)
    inspect_route(sandbox, "POST", "/_sandbox/faults", add_fault)
    inspect_route(sandbox, "GET", "/_sandbox/faults", list_faults)
    inspect_route(sandbox, "DELETE", "/_sandbox/faults", clear_faults)
    inspect_route(sandbox, "DELETE", "/_sandbox/faults/{rule_id}", remove_fault)
    inspect_route(sandbox, "POST", "/_sandbox/reset", reset)
    inspect_route(sandbox, "GET", "/_sandbox/routes", routes)
