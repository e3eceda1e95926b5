"""The sandbox-only inspection API under `/_sandbox/` (never logged, never faulted).

Service modules add their own inspection routes (e.g. `GET /_sandbox/users` in program.py); this module holds
the ones about the sandbox itself: health, seeding, the request log, fault rules, reset and the route list.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import SANDBOX_API, json_response
from cokreat_jobs.dev.sandbox.faults import FaultRuleError
from cokreat_jobs.dev.sandbox.router import Call, HtmlFailure
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError


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
