"""Names the platform gives things: file and folder names (Sunbird's ``Slug.makeSlug`` rules)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

__all__ = ["file_name_from_url", "slug"]

_WHITESPACE_RE = re.compile(r"\s+")
_NOT_SLUG_RE = re.compile(r"[^A-Za-z0-9_.-]")
_DASHES_RE = re.compile(r"-{2,}")


def slug(text: str, fallback: str = "file") -> str:
    """A safe file or folder name, Sunbird's ``Slug.makeSlug`` rules.

    URL-decode; accents dropped (``é`` -> ``e``); whitespace runs to ``-``; keep only ``[A-Za-z0-9_.-]``;
    runs of ``-`` to one; no ``-`` at either end; lowercase. Beyond Sunbird: leading dots are dropped too, so
    a slug is never ``..`` nor a hidden file (it becomes a path segment on disk and in storage), and an empty
    result becomes ``fallback``.
    """
    decoded = unquote(text)
    ascii_text = unicodedata.normalize("NFKD", decoded)
    dashed = _WHITESPACE_RE.sub("-", ascii_text.strip())
    kept = _NOT_SLUG_RE.sub("", dashed)
    collapsed = _DASHES_RE.sub("-", kept).strip("-").lstrip(".").lower()
    return collapsed or fallback


def file_name_from_url(url: str, fallback: str = "file") -> str:
    """The slug of the URL's last path segment (query and fragment ignored)."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        path = ""
    segment = path.rstrip("/").rsplit("/", 1)[-1] if path else ""
    return slug(segment, fallback)
