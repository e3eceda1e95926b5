"""The sandbox: a local stand-in for the Sunbird / coKreat services the jobs call (see README.md here).

`create_app(state_dir, settings)` builds the ASGI app; `python -m cokreat_jobs.dev.sandbox` serves it;
`ServerThread` runs it in a background thread for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "ServerThread"]

if TYPE_CHECKING:
    from cokreat_jobs.dev.sandbox.app import create_app
    from cokreat_jobs.dev.sandbox.server import ServerThread


def __getattr__(name: str) -> Any:
    # Lazy, so importing a submodule (e.g. the envelope helpers) does not pull in the whole server.
    if name == "create_app":
        from cokreat_jobs.dev.sandbox.app import create_app

        return create_app
    if name == "ServerThread":
        from cokreat_jobs.dev.sandbox.server import ServerThread

        return ServerThread
    raise AttributeError(name)
