"""Helpers for tests that drive the sandbox in-process (Starlette's TestClient) or over a real socket.

`sandbox_client(state_dir)` gives a TestClient with the app's lifespan running (needed for the publish
timers and the request-log flush). Use `ServerThread` (server.py) when the client must be a real HTTP client,
e.g. for `hang` faults or when the sandbox must call itself (upload HEADs its own file server).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient will move to httpx2; httpx is what this project has.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from cokreat_jobs.dev.sandbox.app import create_app

__all__ = ["TestClient", "sandbox_client", "seed"]


@contextmanager
def sandbox_client(state_dir: str | Path, settings: dict[str, Any] | None = None) -> Iterator[TestClient]:
    # a loopback base URL: the admin paths answer only a loopback Host (admin.admin_refusal)
    with TestClient(create_app(state_dir, settings), base_url="http://127.0.0.1") as client:
        yield client


def seed(client: Any, **kinds: Any) -> dict[str, int]:
    """POST /_sandbox/seed with the given kinds; fails loudly when the sandbox refuses."""
    response = client.post("/_sandbox/seed", json=kinds)
    if response.status_code != 200:
        raise AssertionError(f"seed refused: {response.status_code} {response.text}")
    result: dict[str, int] = response.json()
    return result
