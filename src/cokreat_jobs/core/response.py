"""One HTTP answer as a value: the body read in full, the Sunbird envelope's fields, and which statuses are
worth another attempt. No sockets here: the clients in :mod:`cokreat_jobs.adapters` build these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["TRANSIENT_STATUSES", "HttpResponse", "default_is_transient", "is_5xx_or_429"]

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

_UNPARSED: Any = object()


def _parse_json(body: bytes) -> Any:
    # Gateways answer HTML pages whatever the Content-Type says: try JSON, never raise.
    if not body or body.lstrip()[:1] in (b"<", b""):
        return None
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP answer, body read in full. ``json`` is parsed from the body when it is JSON, else None."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    json: Any = _UNPARSED

    def __post_init__(self) -> None:
        if self.json is _UNPARSED:
            object.__setattr__(self, "json", _parse_json(self.body))

    @property
    def response_code(self) -> str | None:
        """The Sunbird envelope's ``responseCode`` (``OK``, ``CLIENT_ERROR``, ...), or None."""
        code = self.json.get("responseCode") if isinstance(self.json, dict) else None
        return code if isinstance(code, str) else None

    @property
    def result(self) -> dict[str, Any]:
        value = self.json.get("result") if isinstance(self.json, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def params(self) -> dict[str, Any]:
        value = self.json.get("params") if isinstance(self.json, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def err(self) -> str | None:
        value = self.params.get("err")
        return value if isinstance(value, str) else None

    @property
    def errmsg(self) -> str | None:
        value = self.params.get("errmsg")
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        """HTTP 200 with ``responseCode: OK``: a Sunbird call that succeeded."""
        return self.status == 200 and self.response_code == "OK"

    def __repr__(self) -> str:
        # Never the body: it can carry personal data.
        return f"HttpResponse(status={self.status}, responseCode={self.response_code!r}, err={self.err!r})"


def default_is_transient(resp: HttpResponse) -> bool:
    """429, 502, 503, 504: the service or its gateway is overloaded or restarting. 500 is left to callers."""
    return resp.status in TRANSIENT_STATUSES


def is_5xx_or_429(resp: HttpResponse) -> bool:
    return resp.status >= 500 or resp.status == 429
