"""Names the platform gives things: file and folder names (Sunbird's ``Slug.makeSlug`` rules), and the rule
for object identifiers.

**Identifiers** (``object.id``, ``edata.identifier``, ``edata.metadata.identifier``, a package's child ids,
collection and unit ids): a valid Sunbird identifier is 1 to 128 characters of ASCII letters, digits, ``_``,
``.`` and ``-``, the first a letter or a digit. Sunbird's own identifiers (``do_1134...``, their ``.img``
copies) all are. Such an identifier is one safe segment as it is, in a storage key and in a URL path: never
``.`` or ``..``, no ``/``, no ``%``, nothing a file system or an HTTP client reads specially. So storage keys
hold the identifier **as it is** (case kept, nothing folded or dropped) and two different identifiers never
share a key; anything that is not an identifier is refused, never folded into one (``slug`` folded
``DO_113``, ``do_113!`` and ``do_113%00`` into ``do_113``). Where a key is built, :func:`identifier_segment`
refuses with a :class:`PermanentError`; the jobs check the ids of an event up front with
:func:`identifier_problem` and skip the event with the reason, as they skip a blank id.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from cokreat_jobs.core.errors import PermanentError

__all__ = [
    "FILE_NAME_MAX",
    "IDENTIFIER_MAX_LENGTH",
    "file_name_from_url",
    "identifier_problem",
    "identifier_segment",
    "is_dot_segment",
    "safe_file_name",
    "slug",
]

IDENTIFIER_MAX_LENGTH = 128
# The longest file name the jobs write (on disk and as the last part of a storage key): file systems allow
# 255 bytes, and the jobs add prefixes ("dl-3-", "full-2-"); an event's URL can carry a segment of any length.
FILE_NAME_MAX = 120
_EXTENSION_MAX = 16
_IDENTIFIER_CHAR_RE = re.compile(r"[A-Za-z0-9_.-]")
_IDENTIFIER_FIRST_RE = re.compile(r"[A-Za-z0-9]")

_WHITESPACE_RE = re.compile(r"\s+")
_NOT_SLUG_RE = re.compile(r"[^A-Za-z0-9_.-]")
_DASHES_RE = re.compile(r"-{2,}")
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def slug(text: str, fallback: str = "file", *, lower: bool = True) -> str:
    """A safe file or folder name, Sunbird's ``Slug.makeSlug`` rules.

    URL-decode; accents dropped (``é`` -> ``e``); whitespace runs to ``-``; keep only ``[A-Za-z0-9_.-]``;
    runs of ``-`` to one; no ``-`` at either end; lowercase (unless ``lower`` is false). Beyond Sunbird:
    leading dots are dropped too, so a slug is never ``..`` nor a hidden file (it becomes a path segment on
    disk and in storage), and an empty result becomes ``fallback``.
    """
    decoded = unquote(text)
    ascii_text = unicodedata.normalize("NFKD", decoded)
    dashed = _WHITESPACE_RE.sub("-", ascii_text.strip())
    kept = _NOT_SLUG_RE.sub("", dashed)
    collapsed = _DASHES_RE.sub("-", kept).strip("-").lstrip(".")
    if lower:
        collapsed = collapsed.lower()
    return collapsed or fallback


def safe_file_name(name: str, max_length: int = FILE_NAME_MAX) -> str:
    """``name`` cut to at most ``max_length`` characters, its extension (up to 16 characters) kept, so a long
    name cannot fail a write with ENAMETOOLONG. Meant for slugs, which are ASCII: characters are bytes."""
    if len(name) <= max_length:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) <= _EXTENSION_MAX:
        return stem[: max_length - len(ext) - 1] + "." + ext
    return name[:max_length]


def file_name_from_url(url: str, fallback: str = "file", *, keep_case: bool = False) -> str:
    """The slug of the URL's last path segment (query and fragment ignored), at most FILE_NAME_MAX long.

    ``keep_case`` (auto-creator-v2, which stored ``FilenameUtils.getName(url)`` as it was): a segment that is
    already a safe name (URL-decoded, only ``[A-Za-z0-9_.-]``, not starting with a dot, at most FILE_NAME_MAX
    long) is kept exactly, case included (``do_1_SPINE.ecar``); any other gets the slug rules with its case
    kept (``My%20File.PDF`` -> ``My-File.PDF``), cut to FILE_NAME_MAX. Either way one safe path segment."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        path = ""
    segment = path.rstrip("/").rsplit("/", 1)[-1] if path else ""
    if keep_case:
        decoded = unquote(segment)
        if len(decoded) <= FILE_NAME_MAX and _SAFE_NAME_RE.fullmatch(decoded):
            return decoded
        return safe_file_name(slug(segment, fallback, lower=False))
    return safe_file_name(slug(segment, fallback))


def is_dot_segment(text: str) -> bool:
    """Whether ``text`` is made of dots only (``.``, ``..``; ``...`` too): as a URL path segment the first two
    change the path (``/user/..`` is ``/``) and none of them names anything."""
    return bool(text) and text.strip(".") == ""


def identifier_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Sunbird identifier (see the module docstring), or None when it is one."""
    if not value:
        return "empty"
    if is_dot_segment(value) and len(value) <= 2:
        return "a dot segment"
    if len(value) > IDENTIFIER_MAX_LENGTH:
        return f"longer than {IDENTIFIER_MAX_LENGTH} characters"
    for ch in value:
        if not _IDENTIFIER_CHAR_RE.fullmatch(ch):
            return f"{ch!r} is not one of the allowed characters (A-Z, a-z, 0-9, '_', '.', '-')"
    if not _IDENTIFIER_FIRST_RE.fullmatch(value[0]):
        return f"starts with {value[0]!r}, not a letter or a digit"
    return None


def identifier_segment(identifier: str, what: str = "identifier") -> str:
    """``identifier`` as one storage-key (or path) segment: itself, when it is a valid Sunbird identifier;
    else PermanentError naming ``what`` and the reason. Different identifiers give different segments."""
    problem = identifier_problem(identifier)
    if problem is not None:
        raise PermanentError(f"{what} {identifier[:200]!r} is not a valid Sunbird identifier: {problem}")
    return identifier
