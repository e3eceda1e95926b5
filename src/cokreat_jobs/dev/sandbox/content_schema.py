"""The parts of the knowledge platform's Content definition (schemas/content/1.0) the service enforces.

The mime types are the schema's own enum; the defaults are the schema's `default` values the service fills
in on create; the required properties are those without a default. Validation messages follow the service's
"Validation Errors" list (`result.messages`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

MIME_TYPES = frozenset(
    {
        "application/vnd.ekstep.ecml-archive",
        "application/vnd.ekstep.html-archive",
        "application/vnd.android.package-archive",
        "application/vnd.ekstep.content-archive",
        "application/vnd.ekstep.content-collection",
        "application/vnd.ekstep.plugin-archive",
        "application/vnd.ekstep.h5p-archive",
        "application/epub",
        "text/x-url",
        "video/x-youtube",
        "application/octet-stream",
        "application/msword",
        "application/pdf",
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/tiff",
        "image/bmp",
        "image/gif",
        "image/svg+xml",
        "video/avi",
        "video/mpeg",
        "video/quicktime",
        "video/3gpp",
        "video/mp4",
        "video/ogg",
        "video/webm",
        "audio/mp3",
        "audio/mp4",
        "audio/mpeg",
        "audio/ogg",
        "audio/webm",
        "audio/x-wav",
        "audio/wav",
        "application/json",
    }
)

COLLECTION_MIME = "application/vnd.ekstep.content-collection"
H5P_MIME = "application/vnd.ekstep.h5p-archive"
HTML_MIME = "application/vnd.ekstep.html-archive"
PDF_MIME = "application/pdf"
EPUB_MIME = "application/epub"
MSWORD_MIME = "application/msword"
YOUTUBE_MIME = "video/x-youtube"
URL_MIME = "text/x-url"

PACKAGE_ENTRY = {H5P_MIME: "h5p.json", HTML_MIME: "index.html"}
"""Packages the service downloads and checks on upload, with the file that must be at their root."""

URL_EXTENSIONS = {
    PDF_MIME: (".pdf",),
    EPUB_MIME: (".epub",),
    MSWORD_MIME: (".doc", ".docx", ".ppt", ".pptx", ".key", ".odp", ".pps", ".odt", ".wpd", ".wps", ".wks"),
}
"""Mime types whose upload URL must end (query included) with one of these extensions."""

NO_HEAD_MIMES = frozenset({YOUTUBE_MIME, URL_MIME})
"""Links that are not files: the service stores the URL without probing it."""

STATUSES = frozenset(
    {
        "Draft",
        "Review",
        "Redraft",
        "Flagged",
        "Live",
        "Unlisted",
        "Retired",
        "Mock",
        "Processing",
        "FlagDraft",
        "FlagReview",
        "Failed",
    }
)
IMAGE_ON_EDIT = frozenset({"Live", "Unlisted", "Flagged"})
"""Editing a content in these states edits a Draft image instead of the node."""

DEFAULTS: dict[str, Any] = {
    "status": "Draft",
    "contentEncoding": "gzip",
    "contentDisposition": "inline",
    "mediaType": "content",
    "osId": "org.ekstep.launcher",
    "os": ["All"],
    "compatibilityLevel": 1,
    "visibility": "Default",
    "audience": ["Student"],
    "idealScreenSize": "normal",
    "idealScreenDensity": "hdpi",
    "license": "CC BY 4.0",
    "language": ["English"],
}

REQUIRED = ("name", "code", "mimeType", "primaryCategory", "channel")
RESTRICTED_ON_CREATE = ("status", "dialcodes")

_CONTENT_TYPES = {
    "digital textbook": "TextBook",
    "textbook": "TextBook",
    "etextbook": "eTextBook",
    "course": "Course",
    "explanation content": "ExplanationResource",
    "learning resource": "Resource",
    "practice question set": "PracticeQuestionSet",
    "teacher resource": "TeachingMethod",
    "lesson plan": "LessonPlan",
    "course assessment": "SelfAssess",
}


def content_type_for(primary_category: Any) -> str:
    """The legacy contentType the service derives from primaryCategory."""
    if isinstance(primary_category, str):
        return _CONTENT_TYPES.get(primary_category.strip().lower(), "Resource")
    return "Resource"


def object_type_for(metadata: dict[str, Any]) -> str:
    if metadata.get("mimeType") == COLLECTION_MIME:
        return "Collection"
    if str(metadata.get("primaryCategory", "")).lower() == "asset":
        return "Asset"
    return "Content"


def validate(metadata: dict[str, Any], keys: Collection[str] | None = None) -> list[str]:
    """Schema messages for a content's metadata; empty when valid.

    With `keys` (an update), only those properties are checked: the service validates what a request
    changes, so a node stored without some property (seeded, or written by another job) stays editable.
    """
    messages: list[str] = []
    for required in REQUIRED:
        if keys is not None and required not in keys:
            continue
        value = metadata.get(required)
        if value is None or (isinstance(value, str) and not value.strip()):
            messages.append(f"Required Metadata {required} not set")
    if keys is not None:
        metadata = {k: v for k, v in metadata.items() if k in keys}
    name = metadata.get("name")
    if name is not None:
        if not isinstance(name, str):
            messages.append("Metadata name should be a/an String value")
        elif name.strip() and len(name) < 5:
            messages.append("Metadata name should have minimum length of 5")
    code = metadata.get("code")
    if code is not None and not isinstance(code, str):
        messages.append("Metadata code should be a/an String value")
    mime = metadata.get("mimeType")
    if mime is not None and (not isinstance(mime, str) or (mime.strip() and mime not in MIME_TYPES)):
        messages.append(f"Metadata mimeType should be one of: {sorted(MIME_TYPES)}")
    status = metadata.get("status")
    if status is not None and status not in STATUSES:
        messages.append(f"Metadata status should be one of: {sorted(STATUSES)}")
    for prop in ("pkgVersion", "size", "compatibilityLevel"):
        value = metadata.get(prop)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            messages.append(f"Metadata {prop} should be a/an Number value")
    return messages
