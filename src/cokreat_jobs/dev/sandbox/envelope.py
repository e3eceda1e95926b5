"""Response bodies in the formats the real services use.

Three families: the Sunbird envelope of the Scala services (content, search: `ts` without milliseconds, in
the odd `yyyy-MM-dd'T'HH:mm:ss'Z'XXX` pattern that prints `...Z` twice for UTC), the program-service
(Node.js) envelope (ISO `ts` with milliseconds), and Google's JSON error format (Drive, OAuth). Failures the
web framework answers itself (malformed JSON, unknown routes, a broken upload) are HTML pages, as the jobs
must cope with them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any, Literal

import orjson
from starlette.responses import Response

Style = Literal["sunbird", "program", "google"]

_HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class Api:
    """What a route puts in its envelope: `id`, `ver`, and which family of formats it answers in."""

    id: str
    ver: str = "4.0"
    style: Style = "sunbird"


SANDBOX_API = Api("api.sandbox", "1.0")


def reason(status: int) -> str:
    return _HTTP_REASONS.get(status, "Error")


def sunbird_ts() -> str:
    # Java's 'Z' is a literal and XXX prints "Z" for UTC: "2026-11-24T10:00:00ZZ".
    return time.strftime("%Y-%m-%dT%H:%M:%SZZ", time.gmtime())


def program_ts() -> str:
    # JavaScript's Date.toJSON().
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def kp_timestamp() -> str:
    """The knowledge platform's createdOn / lastUpdatedOn format: 2026-11-24T10:00:00.123+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def response_code_for(status: int) -> str:
    if status == 404:
        return "RESOURCE_NOT_FOUND"
    if 400 <= status < 500:
        return "CLIENT_ERROR"
    if status >= 500:
        return "SERVER_ERROR"
    return "OK"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _envelope(api: Api, params: dict[str, Any], response_code: str, result: Any) -> dict[str, Any]:
    ts = program_ts() if api.style == "program" else sunbird_ts()
    return {
        "id": api.id,
        "ver": api.ver,
        "ts": ts,
        "params": params,
        "responseCode": response_code,
        "result": result,
    }


def ok(api: Api, result: Any, status: int = 200) -> Response:
    params = {
        "resmsgid": str(uuid.uuid4()),
        "msgid": str(uuid.uuid4()) if api.style == "program" else None,
        "err": None,
        "status": "successful",
        "errmsg": None,
    }
    return json_response(_envelope(api, params, "OK", result), status)


def error_body(
    api: Api,
    status: int,
    err: str,
    errmsg: str,
    *,
    response_code: str | None = None,
    result: Any = None,
) -> dict[str, Any]:
    params = {
        "resmsgid": str(uuid.uuid4()),
        "msgid": str(uuid.uuid4()) if api.style == "program" else None,
        "err": err,
        "status": "failed",
        "errmsg": errmsg,
    }
    if result is None:
        result = {"messages": None}
    return _envelope(api, params, response_code or response_code_for(status), result)


def error(
    api: Api,
    status: int,
    err: str,
    errmsg: str,
    *,
    response_code: str | None = None,
    result: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = error_body(api, status, err, errmsg, response_code=response_code, result=result)
    return json_response(body, status, headers)


def google_error_body(status: int, message: str, reason_code: str, domain: str = "global") -> dict[str, Any]:
    google_status = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }.get(status)
    body: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason_code}],
    }
    if google_status:
        body["status"] = google_status
    return {"error": body}


def google_error(
    status: int, message: str, reason_code: str, domain: str = "global", headers: dict[str, str] | None = None
) -> Response:
    return json_response(google_error_body(status, message, reason_code, domain), status, headers)


def default_fault_body(api: Api, status: int) -> dict[str, Any]:
    """The body a fault rule answers when it names no body of its own."""
    if api.style == "google":
        if status in (403, 429):
            message = "User Rate Limit Exceeded"
            return google_error_body(status, message, "userRateLimitExceeded", "usageLimits")
        return google_error_body(status, f"Sandbox fault ({status})", "backendError")
    return error_body(api, status, "ERR_SANDBOX_FAULT", f"Fault injected by the sandbox ({status})")


def html_page(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A web framework's own error page (Play's production page), not an envelope."""
    title = reason(status)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n"
        f"<p>{escape(message)}</p>\n</body>\n</html>\n"
    )
    return Response(page, status_code=status, headers=headers, media_type="text/html; charset=utf-8")
