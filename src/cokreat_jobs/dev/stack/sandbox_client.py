"""A small blocking client of the sandbox's inspection API (`/_sandbox/*`), for the demo, tests and chaos."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"sandbox {method} {path}: HTTP {e.code} {e.read()[:500]!r}") from e
        return json.loads(raw) if raw else None

    def seed(self, **kinds: Any) -> dict[str, int]:
        result: dict[str, int] = self._call("POST", "/_sandbox/seed", kinds)
        return result

    def hierarchy(self, identifier: str) -> Any:
        """A collection's stored tree (`GET /_sandbox/hierarchies/{id}`)."""
        return self._call("GET", f"/_sandbox/hierarchies/{identifier}")

    def users(self) -> list[str]:
        return list(self._call("GET", "/_sandbox/users")["users"])

    def transfers(self) -> list[Any]:
        """The ownership-transfer requests program-service accepted (`GET /_sandbox/transfers`)."""
        return list(self._call("GET", "/_sandbox/transfers")["transfers"])

    def requests(self, since: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        query = []
        if since is not None:
            query.append(f"since={since}")
        if limit is not None:
            query.append(f"limit={limit}")
        path = "/_sandbox/requests" + ("?" + "&".join(query) if query else "")
        return list(self._call("GET", path)["requests"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/_sandbox/requests")

    def add_fault(self, **rule: Any) -> str:
        return str(self._call("POST", "/_sandbox/faults", rule)["id"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")
