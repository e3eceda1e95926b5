"""The local cloud storage, served over HTTP: `GET|HEAD {files_path}/{relative path}` (default `/_files/...`).

The jobs write artifacts into the storage directory through fsspec and publish `<sandbox base>/_files/<path>`
as their URL; the content service's upload then HEADs that URL for its size (auto-creator-v2 sizes variants
the same way), so answers carry `Content-Length`, and HEAD is served without a body. Downloads are logged
and can be faulted like any service call. The sandbox writes its own files here too (stored packages,
published ECARs) through `Storage`.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from urllib.parse import quote

from starlette.responses import FileResponse, Response

from cokreat_jobs.dev.sandbox.envelope import Api, html_page
from cokreat_jobs.dev.sandbox.router import Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox

API_FILES = Api("api.files", "1.0")

mimetypes.add_type("application/zip", ".h5p")
mimetypes.add_type("application/zip", ".ecar")
mimetypes.add_type("application/epub+zip", ".epub")


class Storage:
    def __init__(self, root: Path, files_path: str) -> None:
        self.root = root.resolve()
        self.files_path = files_path

    def resolve(self, relative: str) -> Path | None:
        """The file for a relative path, or None when it would leave the storage root."""
        candidate = (self.root / relative.lstrip("/")).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            return None
        return candidate

    def write(self, relative: str, data: bytes) -> Path:
        target = self.resolve(relative)
        if target is None:
            raise ValueError(f"path outside the storage: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    def url(self, base_url: str, relative: str) -> str:
        """The public URL of a stored file, for a sandbox reached at `base_url`."""
        return f"{base_url.rstrip('/')}{self.files_path}/{quote(relative.lstrip('/'))}"


def register(sandbox: Sandbox) -> None:
    storage = Storage(sandbox.settings.storage_dir, sandbox.settings.files_path)
    sandbox.services["storage"] = storage

    async def serve(call: Call) -> Response:
        target = storage.resolve(call.params["path"])
        if target is None or not target.is_file():
            return html_page(404, "The specified blob does not exist.")
        stat = target.stat()
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, stat_result=stat, media_type=media_type)

    sandbox.router.add("GET", sandbox.settings.files_path + "/{path:path}", serve, API_FILES, anchor="root")
