"""Artifact rules of content-auto-creator: where an artifact may come from, what it is called, how it is sent.

Plain functions, no I/O:

- :func:`source_allowed` / :class:`AllowedSources`: ``artifact_upload_allowed_source``. The reference tested
  ``url.contains(entry)``, so ``example.org`` also let ``https://evil.test/?x=example.org`` through. Here an
  entry is matched against the *parsed* URL:

  * ``example.org`` (a host, optionally ``:port``): the URL's host equals it or is a subdomain of it
    (``cdn.example.org``); with a port, the URL's port must be that one;
  * ``example.org/files`` (a host and a path, no scheme): as above, and the URL's path starts with the path;
  * ``https://example.org/files`` (a scheme): a prefix from the URL's start: same scheme, the same host
    exactly, the same port (default ports filled in), and the path starting with the entry's path.

  A prefix ends at a boundary: ``/files`` matches ``/files`` and ``/files/a.pdf`` but not ``/files2``
  (unless the entry itself ends in ``/``, ``?``, ``=``, ``&`` or ``#``). Only http(s) URLs are ever allowed.
- :func:`drive_file_id`: the file id of a Google Drive link.
- :func:`upload_file_format`: the h5p ``fileFormat`` rule.
- :func:`size_cap`: the size cap with the ``bulk_upload_mime_types`` exemption.
- :func:`drive_mime_compatible`: may a Drive file of one mime type be a content of another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

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

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PREFIX_ENDS = ("/", "?", "=", "&", "#")

# ------------------------------------------------------------------------------------------ allowed sources


@dataclass(frozen=True, slots=True)
class SourceRule:
    """One parsed ``artifact_upload_allowed_source`` entry."""

    entry: str
    host: str
    scheme: str | None = None  # set for prefix entries ("https://host/path")
    port: int | None = None
    path: str = ""
    subdomains: bool = True  # a host entry also covers its subdomains; a prefix entry does not

    @classmethod
    def parse(cls, entry: str) -> SourceRule | None:
        text = entry.strip()
        if not text:
            return None
        if "://" in text:
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").lower().rstrip(".")
            if scheme not in _DEFAULT_PORTS or not host:
                return None
            try:
                port = parts.port or _DEFAULT_PORTS[scheme]
            except ValueError:
                return None
            path = parts.path
            if parts.query or text.endswith("?"):
                path += "?" + parts.query
            return cls(text, host, scheme, port, path, subdomains=False)
        # "host[:port][/path]": parse it as the authority of a URL so IPv6 brackets and ports read right.
        parts = urlsplit("//" + text)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return None
        try:
            given_port = parts.port
        except ValueError:
            return None
        path = parts.path
        if parts.query or text.endswith("?"):
            path += "?" + parts.query
        return cls(text, host, None, given_port, path, subdomains=True)

    def matches(self, scheme: str, host: str, port: int, path_and_query: str) -> bool:
        if self.scheme is not None and scheme != self.scheme:
            return False
        if host != self.host and not (self.subdomains and host.endswith("." + self.host)):
            return False
        if self.port is not None and port != self.port:
            return False
        return _prefix_matches(path_and_query, self.path)


def _prefix_matches(value: str, prefix: str) -> bool:
    if not prefix or prefix == "/":
        return True
    if not value.startswith(prefix):
        return False
    if prefix.endswith(_PREFIX_ENDS) or len(value) == len(prefix):
        return True
    return value[len(prefix)] in "/?#"


@dataclass(frozen=True, slots=True)
class AllowedSources:
    """The parsed allow-list; empty means any http(s) source."""

    rules: tuple[SourceRule, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] | str | None) -> AllowedSources:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.split(",")
        rules = []
        for entry in entries:
            rule = SourceRule.parse(str(entry))
            if rule is not None:
                rules.append(rule)
        return cls(tuple(rules))

    @property
    def restricted(self) -> bool:
        return bool(self.rules)

    def allows(self, url: str) -> bool:
        parsed = _parse_http_url(url)
        if parsed is None:
            return False
        if not self.rules:
            return True
        return any(rule.matches(*parsed) for rule in self.rules)


def _parse_http_url(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path[?query]) of an http(s) URL, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or _DEFAULT_PORTS[scheme], path


def source_allowed(url: str, allowed: Iterable[str] | str | None) -> bool:
    """Is ``url`` from an allowed source (see the module docstring)? Empty ``allowed`` = any http(s) URL."""
    return AllowedSources.parse(allowed).allows(url)


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


def size_cap(mime_type: str, max_size: int, exempt_mime_types: Sequence[str]) -> int | None:
    """The byte cap for an artifact of ``mime_type``: None (no cap) when the type is exempt (exact match, as
    the reference compared), or when ``max_size`` is not positive."""
    if mime_type in exempt_mime_types or max_size <= 0:
        return None
    return max_size
