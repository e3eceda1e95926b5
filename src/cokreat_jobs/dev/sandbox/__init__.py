"""The sandbox: a local stand-in for the Sunbird / coKreat services the jobs call (see README.md here).

`create_app(state_dir, settings)` builds the ASGI app; `python -m cokreat_jobs.dev.sandbox` serves it;
`ServerThread` runs it in a background thread for tests.

- ``app``, ``server``, ``router``, ``runtime``, ``state``: the ASGI app, its server, routing, shared state
- ``envelope``, ``multipart``: Sunbird's answer envelope, multipart forms
- ``content``, ``content_schema``, ``nodes``, ``publisher``, ``hierarchy``, ``search``: content-service,
  its schema rules, the node store, the asynchronous publish, collection hierarchies, search
- ``program``: program-service's user paths
- ``source``: the source repository (question sets, questions, their ECARs)
- ``imports``: the import APIs (``content/v4/import``, ``questionset/v1/import``)
- ``drive``: Google Drive's API and its OAuth token endpoint
- ``files``: the local cloud storage over HTTP
- ``admin``, ``faults``, ``requestlog``: the ``/_sandbox/*`` paths, fault rules, the request log
- ``testing``: helpers for tests
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
