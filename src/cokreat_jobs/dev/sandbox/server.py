"""Running the sandbox under uvicorn: in the foreground (the CLI) or in a background thread (tests).

Tuned for load: no access log (the sandbox keeps its own request log), a deep accept backlog, keep-alive
long enough for pooled clients, and a short graceful-shutdown bound so hanging requests (fault rules with
`hang`) cannot hold a stop forever.

It binds to loopback only (HARDENING 15): a stand-in with an unauthenticated admin API is never served to the
network, whatever host it is given.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from cokreat_jobs.dev.sandbox.admin import is_loopback_host
from cokreat_jobs.dev.sandbox.app import create_app


def require_loopback(host: str) -> str:
    """``host`` when it is a loopback name or address; ValueError otherwise."""
    if not is_loopback_host(host):
        raise ValueError(f"the sandbox binds to loopback only (127.0.0.1, ::1, localhost), not {host!r}")
    return host


def uvicorn_config(app: Starlette, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
    )


class _CleanExitServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after shutting down (exit status -15); a stop is not a failure."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def serve(
    state_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    settings: dict[str, Any] | None = None,
    log_level: str = "info",
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    require_loopback(host)
    _CleanExitServer(uvicorn_config(create_app(state_dir, settings), host, port, log_level)).run()


class ServerThread:
    """A real sandbox server on a free port in a background thread.

    `with ServerThread(state_dir) as server: ... server.base_url ...`
    """

    def __init__(
        self,
        state_dir: str | Path,
        settings: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        require_loopback(host)
        self.app = create_app(state_dir, settings)
        self.host = host
        self._server = uvicorn.Server(uvicorn_config(self.app, host, port, log_level))
        self._thread = threading.Thread(target=self._server.run, name="sandbox-server", daemon=True)
        self.port = port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
