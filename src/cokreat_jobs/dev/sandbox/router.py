"""Route table of the sandbox: service paths matched by suffix, sandbox paths from the root.

Deployments put the services behind base URLs that carry a prefix (`http://host/program`,
`http://host/content`), so a service path such as `/program/v1/user/{userId}` must match whatever precedes it
on the wire. Matching runs on the raw (still percent-encoded) path, so an id sent as one encoded segment
(`a%2Fb`) is captured whole and decoded afterwards, never split on its slash.

Patterns use `{name}` for one path segment and `{name:path}` for the rest of the path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api
from cokreat_jobs.dev.sandbox.multipart import parse_form

if TYPE_CHECKING:
    from cokreat_jobs.dev.sandbox.runtime import Sandbox

Handler = Callable[["Call"], Awaitable[Response]]
Anchor = Literal["suffix", "root"]

_PLACEHOLDER = re.compile(r"\{(\w+)(:path)?\}")


class ApiError(Exception):
    """A service failure answered in the route's own error format (Sunbird envelope or Google error)."""

    def __init__(
        self,
        status: int,
        err: str,
        errmsg: str,
        *,
        response_code: str | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(f"{status} {err}: {errmsg}")
        self.status = status
        self.err = err
        self.errmsg = errmsg
        self.response_code = response_code
        self.result = result


class HtmlFailure(Exception):
    """A failure the web framework answers with its own HTML page instead of the service's envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _compile(pattern: str, anchor: Anchor) -> re.Pattern[str]:
    def placeholder(m: re.Match[str]) -> str:
        return f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"

    parts: list[str] = []
    last = 0
    for m in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[last : m.start()]))
        parts.append(placeholder(m))
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    body = "".join(parts)
    # The prefix is lazy and the pattern starts with "/", so a prefix always ends on a segment boundary.
    return re.compile(("^" if anchor == "root" else "^(?:.*?)") + body + "/?$")


@dataclass(slots=True)
class Route:
    methods: frozenset[str]
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    api: Api
    internal: bool
    name: str


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    request: Request
    sandbox: Sandbox
    method: str
    path: str
    """Percent-decoded path, prefix included."""
    params: dict[str, str]
    """Path parameters, percent-decoded."""
    query: dict[str, str]
    body: bytes
    api: Api
    _json: Any = field(default=None)
    _json_parsed: bool = field(default=False)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def content_type(self) -> str:
        return self.request.headers.get("content-type", "")

    @property
    def base_url(self) -> str:
        """Scheme and authority the client used, e.g. `http://127.0.0.1:8765` (no trailing slash)."""
        return str(self.request.base_url).rstrip("/")

    def json(self) -> Any:
        """The JSON body; malformed JSON is answered by the framework's HTML error page, as Play does."""
        if not self._json_parsed:
            self._json_parsed = True
            if self.body.strip():
                try:
                    self._json = orjson.loads(self.body)
                except orjson.JSONDecodeError as exc:
                    raise HtmlFailure(500, f"Invalid Json: {exc}") from exc
        return self._json

    def request_object(self) -> dict[str, Any]:
        """`body.request` as a dict ({} when absent or not an object)."""
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("request"), dict):
            return body["request"]
        return {}

    def form(self) -> dict[str, Any] | None:
        return parse_form(self.content_type, self.body)


class Router:
    """Routes registered by the service modules; first match wins, in registration order."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._by_method: dict[str, list[Route]] = {}

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def add(
        self,
        methods: str | Iterable[str],
        pattern: str,
        handler: Handler,
        api: Api,
        *,
        anchor: Anchor = "suffix",
        internal: bool = False,
        name: str | None = None,
    ) -> Route:
        """Register a route.

        `anchor="suffix"` (services) matches the pattern at the end of the path, after any prefix;
        `anchor="root"` matches the whole path. `internal` routes (the `/_sandbox` API) are neither
        logged nor subject to fault rules.
        """
        wanted = frozenset([methods.upper()] if isinstance(methods, str) else (m.upper() for m in methods))
        if "GET" in wanted:
            wanted = wanted | {"HEAD"}
        route = Route(wanted, pattern, _compile(pattern, anchor), handler, api, internal, name or pattern)
        self._routes.append(route)
        self._by_method.clear()
        return route

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        candidates = self._by_method.get(method)
        if candidates is None:
            candidates = [r for r in self._routes if method in r.methods]
            self._by_method[method] = candidates
        for route in candidates:
            m = route.regex.match(raw_path)
            if m:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None


def parse_query(query_string: bytes) -> dict[str, str]:
    if not query_string:
        return {}
    return dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
