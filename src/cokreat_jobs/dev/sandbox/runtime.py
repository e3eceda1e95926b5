"""The sandbox object the service modules register into: settings, database, routes, seed kinds, hooks.

A service module exposes `register(sandbox)`; there it declares its tables, adds its routes with
`sandbox.router.add(...)`, its seed kinds with `sandbox.add_seed_kind(...)` and any start/stop work with
`sandbox.on_startup(...)` / `sandbox.on_shutdown(...)`. Modules that need each other's state find it in
`sandbox.services` (e.g. `sandbox.services["nodes"]`), registered under a name by the module that owns it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cokreat_jobs.dev.sandbox.faults import FaultRegistry
from cokreat_jobs.dev.sandbox.requestlog import RequestLog
from cokreat_jobs.dev.sandbox.router import Router
from cokreat_jobs.dev.sandbox.state import DB_FILE, Database

log = logging.getLogger("cokreat_jobs.dev.sandbox")

Seeder = Callable[[list[Any]], int]
"""Upserts the items of one seed kind; answers how many it stored. Raises SeedError for a bad item."""
Hook = Callable[[], Awaitable[None] | None]


class SeedError(ValueError):
    """A seed request the sandbox refuses (answered 400)."""


@dataclass(slots=True)
class Settings:
    state_dir: Path
    storage_dir: Path
    publish_delay_ms: int = 500
    search_index_delay_ms: int = 0
    graph_store: str | None = None
    external_store: str | None = None
    unknown_route_status: int = 500
    """Play answers a path it has no route for with its HTML error page; SANDBOX.md says 500."""
    files_path: str = "/_files"
    """Where the storage directory is served over HTTP (GET and HEAD)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings this version does not know, kept for the modules of later phases."""

    @classmethod
    def build(cls, state_dir: str | Path, settings: dict[str, Any] | None) -> Settings:
        given = dict(settings or {})
        state = Path(state_dir)
        storage = given.pop("storage_dir", None)
        out = cls(state_dir=state, storage_dir=Path(storage) if storage else state / "storage")
        for name in ("publish_delay_ms", "search_index_delay_ms", "unknown_route_status"):
            if given.get(name) is not None:
                setattr(out, name, int(given.pop(name)))
            given.pop(name, None)
        for name in ("graph_store", "external_store", "files_path"):
            if name in given:
                setattr(out, name, given.pop(name))
        out.files_path = "/" + out.files_path.strip("/")
        out.extra = given
        return out


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.state_dir / DB_FILE)
        self.router = Router()
        self.requests = RequestLog(self.db)
        self.faults = FaultRegistry(self.db)
        self.services: dict[str, Any] = {}
        self._seeders: dict[str, Seeder] = {}
        self._resetters: list[Callable[[], None]] = []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- registration -------------------------------------------------------------------------------------

    def add_seed_kind(self, name: str, seeder: Seeder) -> None:
        if name in self._seeders:
            raise ValueError(f"seed kind {name!r} registered twice")
        self._seeders[name] = seeder

    @property
    def seed_kinds(self) -> list[str]:
        return list(self._seeders)

    def on_reset(self, fn: Callable[[], None]) -> None:
        """Called by `POST /_sandbox/reset` to drop a module's state."""
        self._resetters.append(fn)

    def on_startup(self, hook: Hook) -> None:
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self._shutdown.append(hook)

    # -- seeding ------------------------------------------------------------------------------------------

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        unknown = [k for k in spec if k not in self._seeders]
        if unknown:
            raise SeedError(f"unknown seed kinds: {unknown}; known: {sorted(self._seeders)}")
        for name, items in spec.items():
            if not isinstance(items, list):
                raise SeedError(f"{name} must be a list")
        return {name: self._seeders[name](items) for name, items in spec.items()}

    def reset(self) -> None:
        for fn in self._resetters:
            fn()
        self.faults.clear()
        self.requests.clear()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started_on_this_loop(self) -> bool:
        return self._loop is asyncio.get_running_loop()

    async def ensure_started(self) -> None:
        """Start background work on the loop that serves requests (once per loop).

        Called from the ASGI lifespan and, as a fallback, by the first request, so servers or test
        clients that skip the lifespan still get the timers.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._session = None
        self.requests.start()
        for hook in self._startup:
            result = hook()
            if inspect.isawaitable(result):
                await result

    async def shutdown(self) -> None:
        for hook in reversed(self._shutdown):
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # shutdown must go on
                log.exception("sandbox shutdown hook failed")
        await self.requests.stop()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self._loop = None

    def http(self) -> aiohttp.ClientSession:
        """The sandbox's own outbound client (HEAD on upload URLs, package downloads), on the serving loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=60, connect=10),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session
