"""Artifact rules of content-auto-creator: where an artifact may come from, what it is called, how it is sent.

Plain functions, no I/O:

- :func:`source_allowed` / :class:`AllowedSources`: ``artifact_upload_allowed_source``, matched by the rule
  of :mod:`cokreat_jobs.core.sources` (shared with auto-creator-v2's repositories; re-exported here).
- :func:`drive_file_id`: the file id of a Google Drive link.
- :func:`upload_file_format`: the h5p ``fileFormat`` rule.
- :func:`size_cap`: the size cap, and the larger one of the ``bulk_upload_mime_types``.
- :func:`drive_mime_compatible`: may a Drive file of one mime type be a content of another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from cokreat_jobs.core.sources import AllowedSources, SourceRule, source_allowed

__all__ = [
    "COMPOSED_H5P",
    "H5P_MIME_TYPE",
    "AllowedSources",
    "SourceRule",
    "drive_file_id",
    "drive_mime_compatible",
    "is_drive_url",
    "size_cap",
    "source_allowed",
    "upload_file_format",
]

H5P_MIME_TYPE = "application/vnd.ekstep.h5p-archive"
HTML_MIME_TYPE = "application/vnd.ekstep.html-archive"
COMPOSED_H5P = "composed-h5p-zip"

# ------------------------------------------------------------------------------------------------ drive

_DRIVE_HOST = "drive.google.com"
_DRIVE_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_FILE_D_RE = re.compile(r"/file/d/([A-Za-z0-9_-]+)")


def is_drive_url(url: str) -> bool:
    """A Google Drive link: its host is drive.google.com (or a subdomain).

    The reference tested ``url.contains("drive.google.com")``; the host is checked here so that a URL merely
    mentioning Drive in its query is downloaded as what it is, a plain URL.
    """
    try:
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    return host == _DRIVE_HOST or host.endswith("." + _DRIVE_HOST)


def drive_file_id(url: str) -> str | None:
    """The file id of a Drive link, or None when it names none.

    Forms: ``...uc?export=download&id=<id>`` (the reference's only form), any ``id=<id>`` query parameter
    (``open?id=<id>``), and ``/file/d/<id>/view``.
    """
    text = url.strip()
    marker = "download&id="
    if marker in text:
        match = _DRIVE_ID_RE.match(text.split(marker, 1)[1])
        if match:
            return match.group(0)
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    ids = parse_qs(parts.query).get("id")
    if ids:
        match = _DRIVE_ID_RE.fullmatch(ids[0].strip())
        if match:
            return match.group(0)
    match = _FILE_D_RE.search(parts.path)
    return match.group(1) if match else None


# Content mime type -> the Drive mime types that may carry it (the reference's table); others: the same type.
_DRIVE_MIME_TABLE: dict[str, frozenset[str]] = {
    H5P_MIME_TYPE: frozenset({"application/zip", "application/x-zip"}),
    "application/epub": frozenset({"application/epub+zip"}),
    "audio/mp3": frozenset({"audio/mpeg"}),
    HTML_MIME_TYPE: frozenset({"application/x-zip-compressed"}),
}


def drive_mime_compatible(content_mime_type: str, drive_mime_type: str) -> bool:
    """May a Drive file of ``drive_mime_type`` be the artifact of a content of ``content_mime_type``?"""
    content = content_mime_type.strip().lower()
    drive = drive_mime_type.strip().lower()
    accepted = _DRIVE_MIME_TABLE.get(content)
    if accepted is not None:
        return drive in accepted
    return bool(content) and content == drive


# ------------------------------------------------------------------------------------------------ names

# ------------------------------------------------------------------------------------------------ upload


def upload_file_format(mime_type: str, file_name: str) -> str | None:
    """``composed-h5p-zip`` for an h5p-archive whose file does not end in ``.h5p``, else None.

    A ``.h5p`` file is the H5P package itself; any other file (a ``.zip``) is our composed package with the
    H5P content under ``content/``, which content-service must be told.
    """
    if mime_type.strip().lower() == H5P_MIME_TYPE and not file_name.lower().endswith(".h5p"):
        return COMPOSED_H5P
    return None


def size_cap(mime_type: str, max_size: int, exempt_mime_types: Sequence[str], exempt_max_size: int) -> int:
    """The byte cap for an artifact of ``mime_type``: ``exempt_max_size`` (``bulk_upload_max_size``) for the
    ``bulk_upload_mime_types`` (exact match, as the reference compared: large videos), else ``max_size``.
    Every kind has a cap: the reference exempted mp4 from any, so one event could fill the disk."""
    return exempt_max_size if mime_type in exempt_mime_types else max_size
