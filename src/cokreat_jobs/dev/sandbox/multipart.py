"""Minimal form parsing (multipart/form-data and urlencoded) for request bodies already in memory.

Starlette's own form parser needs the python-multipart package; the sandbox's forms are tiny (the upload API's
`fileUrl` field, the OAuth token request), so a small parser over the buffered body is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl


@dataclass(slots=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def as_log(self) -> dict[str, Any]:
        """Fields as given, files summarised (their bytes never go into the request log)."""
        out: dict[str, Any] = dict(self.fields)
        for name, f in self.files.items():
            out[name] = {"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
        return out


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["content-type"] = value
    params = {k.lower(): v for k, v in msg.get_params(failobj=[])[1:]}
    return msg.get_content_type(), params


def parse_multipart(content_type: str, body: bytes) -> Form | None:
    """Parse a multipart/form-data body; None when it is not one or is malformed."""
    kind, params = _header_params(content_type)
    boundary = params.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        return None
    form = Form()
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        msg = Message()
        msg["content-disposition"] = disposition
        field_name = msg.get_param("name", header="content-disposition")
        filename = msg.get_param("filename", header="content-disposition")
        if not isinstance(field_name, str):
            continue
        if isinstance(filename, str):
            form.files[field_name] = UploadedFile(
                filename, headers.get("content-type", "application/octet-stream"), data
            )
        else:
            form.fields[field_name] = data.decode("utf-8", "replace")
    return form


def parse_urlencoded(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def parse_form(content_type: str, body: bytes) -> dict[str, Any] | None:
    """Form fields as an object (for the request log), or None when the body is not a form."""
    lowered = content_type.lower()
    if lowered.startswith("multipart/form-data"):
        form = parse_multipart(content_type, body)
        return form.as_log() if form else None
    if lowered.startswith("application/x-www-form-urlencoded"):
        return parse_urlencoded(body)
    return None
