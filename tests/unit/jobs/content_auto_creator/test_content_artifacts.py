"""content-auto-creator's artifact rules: allowed sources, Drive links, slugs, the h5p and size rules."""

from __future__ import annotations

import pytest

from cokreat_jobs.core.naming import file_name_from_url, slug
from cokreat_jobs.jobs.content_auto_creator.artifacts import (
    COMPOSED_H5P,
    H5P_MIME_TYPE,
    AllowedSources,
    SourceRule,
    drive_file_id,
    drive_mime_compatible,
    is_drive_url,
    size_cap,
    source_allowed,
    upload_file_format,
)

# ------------------------------------------------------------------------------------------ allowed sources


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a.pdf",
        "http://example.org/a.pdf",
        "https://EXAMPLE.org/a.pdf",
        "https://cdn.example.org/a.pdf",
        "https://a.b.example.org/x/y.zip?sig=1",
        "https://example.org.:443/a.pdf",
    ],
)
def test_host_entry_matches_the_host_and_its_subdomains(url: str) -> None:
    assert source_allowed(url, ["example.org"])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/?x=example.org",  # the reference's substring match let this through
        "https://evil.test/example.org/a.pdf",
        "https://example.org.evil.test/a.pdf",
        "https://notexample.org/a.pdf",
        "https://example.org@evil.test/a.pdf",  # userinfo, the host is evil.test
        "https://evil.test#example.org",
        "ftp://example.org/a.pdf",
        "file://example.org/etc/passwd",
        "example.org/a.pdf",  # no scheme
        "",
    ],
)
def test_host_entry_refuses_lookalikes_and_other_schemes(url: str) -> None:
    assert not source_allowed(url, ["example.org"])


def test_prefix_entry_matches_from_the_start_at_a_boundary() -> None:
    allowed = ["https://example.org/files"]
    assert source_allowed("https://example.org/files", allowed)
    assert source_allowed("https://example.org/files/a.pdf", allowed)
    assert source_allowed("https://example.org/files?x=1", allowed)
    assert source_allowed("https://EXAMPLE.ORG:443/files/a.pdf", allowed)
    assert not source_allowed("https://example.org/files2/a.pdf", allowed)
    assert not source_allowed("https://example.org/other/files/a.pdf", allowed)
    assert not source_allowed("http://example.org/files/a.pdf", allowed)  # another scheme
    assert not source_allowed("https://cdn.example.org/files/a.pdf", allowed)  # a prefix is exact
    assert not source_allowed("https://example.org:8443/files/a.pdf", allowed)
    assert not source_allowed("https://example.org.evil.test/files/a.pdf", allowed)
    assert not source_allowed("https://evil.test/?u=https://example.org/files/a.pdf", allowed)


def test_prefix_entry_without_path_and_with_trailing_slash() -> None:
    assert source_allowed("https://example.org/x.pdf", ["https://example.org"])
    assert not source_allowed("https://example.org.evil.test/x.pdf", ["https://example.org"])
    assert source_allowed("https://example.org/dir/file", ["https://example.org/di"]) is False
    assert source_allowed("https://example.org/dir/file", ["https://example.org/dir/"])
    assert source_allowed("https://example.org/get?id=7", ["https://example.org/get?id="])


def test_host_with_port_and_host_with_path_entries() -> None:
    assert source_allowed("http://files.test:8080/a.pdf", ["files.test:8080"])
    assert not source_allowed("http://files.test:9090/a.pdf", ["files.test:8080"])
    assert not source_allowed("http://files.test/a.pdf", ["files.test:8080"])
    assert source_allowed("https://cdn.files.test/uploads/a.pdf", ["files.test/uploads"])
    assert not source_allowed("https://files.test/downloads/a.pdf", ["files.test/uploads"])


def test_ip_entries() -> None:
    assert source_allowed("http://127.0.0.1:8765/files/a.pdf", ["127.0.0.1:8765"])
    assert not source_allowed("http://127.0.0.1:8766/files/a.pdf", ["127.0.0.1:8765"])
    assert source_allowed("http://[::1]:8765/a.pdf", ["[::1]:8765"])


def test_empty_list_allows_any_http_url_only() -> None:
    assert source_allowed("https://anything.test/a.pdf", [])
    assert source_allowed("https://anything.test/a.pdf", None)
    assert not source_allowed("file:///etc/passwd", [])
    assert not source_allowed("not a url", [])


def test_comma_separated_string_and_blank_entries() -> None:
    allowed = AllowedSources.parse(" example.org , ,https://files.test/x ")
    assert [r.entry for r in allowed.rules] == ["example.org", "https://files.test/x"]
    assert allowed.restricted
    assert allowed.allows("https://example.org/a")
    assert allowed.allows("https://files.test/x/a")
    assert not allowed.allows("https://files.test/y/a")
    assert not AllowedSources.parse(["", "  "]).restricted


def test_unreadable_entries_are_ignored() -> None:
    assert SourceRule.parse("ftp://example.org") is None
    assert SourceRule.parse("https://") is None
    assert SourceRule.parse("   ") is None


# ------------------------------------------------------------------------------------------------ drive


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://drive.google.com/uc?export=download&id=1AbC-d_E", "1AbC-d_E"),
        ("https://drive.google.com/uc?export=download&id=1AbC&confirm=t", "1AbC"),
        ("https://drive.google.com/open?id=1XyZ", "1XyZ"),
        ("https://drive.google.com/file/d/1QwE-rT_y/view?usp=sharing", "1QwE-rT_y"),
        ("https://drive.google.com/file/d/1QwE/", "1QwE"),
        ("https://drive.google.com/drive/folders", None),
        ("https://drive.google.com/uc?export=download&id=", None),
    ],
)
def test_drive_file_id(url: str, expected: str | None) -> None:
    assert drive_file_id(url) == expected


def test_drive_url_is_judged_by_host() -> None:
    assert is_drive_url("https://drive.google.com/uc?export=download&id=1")
    assert is_drive_url("https://DRIVE.google.com/file/d/1/view")
    assert not is_drive_url("https://evil.test/?x=drive.google.com")
    assert not is_drive_url("https://drive.google.com.evil.test/file/d/1/view")
    assert not is_drive_url("not a url")


@pytest.mark.parametrize(
    ("content", "drive", "ok"),
    [
        (H5P_MIME_TYPE, "application/zip", True),
        (H5P_MIME_TYPE, "application/x-zip", True),
        (H5P_MIME_TYPE, "APPLICATION/ZIP", True),
        (H5P_MIME_TYPE, "application/x-zip-compressed", False),
        ("application/epub", "application/epub+zip", True),
        ("application/epub", "application/epub", False),
        ("audio/mp3", "audio/mpeg", True),
        ("audio/mp3", "audio/mp3", False),
        ("application/vnd.ekstep.html-archive", "application/x-zip-compressed", True),
        ("application/vnd.ekstep.html-archive", "application/zip", False),
        ("application/pdf", "application/pdf", True),
        ("application/pdf", "Application/PDF", True),
        ("video/mp4", "video/webm", False),
        ("", "", False),
    ],
)
def test_drive_mime_compatibility(content: str, drive: str, ok: bool) -> None:
    assert drive_mime_compatible(content, drive) is ok


# ------------------------------------------------------------------------------------------------ slugs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My File.pdf", "my-file.pdf"),
        ("My%20File%20(1).pdf", "my-file-1.pdf"),
        ("  lots   of   space .mp4", "lots-of-space-.mp4"),
        ("Résumé Été.PDF", "resume-ete.pdf"),
        ("do_1234567890", "do_1234567890"),
        ("a--b---c", "a-b-c"),
        ("-lead-and-trail-", "lead-and-trail"),
        ("../../etc/passwd", "etcpasswd"),
        ("..", "file"),
        (".hidden", "hidden"),
        ("%2e%2e%2fsecret", "secret"),
        ("日本語", "file"),
        ("", "file"),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_slug_fallback() -> None:
    assert slug("???", fallback="artifact") == "artifact"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/files/My%20Book.epub?sig=abc#frag", "my-book.epub"),
        ("https://example.org/files/dir/", "dir"),
        ("https://example.org/", "file"),
        ("https://example.org", "file"),
        ("https://example.org/a/..%2F..%2Fx.pdf", "x.pdf"),
    ],
)
def test_file_name_from_url(url: str, expected: str) -> None:
    assert file_name_from_url(url) == expected


# ------------------------------------------------------------------------------------------- h5p and size


def test_h5p_file_format_rule() -> None:
    assert upload_file_format(H5P_MIME_TYPE, "package.zip") == COMPOSED_H5P
    assert upload_file_format(H5P_MIME_TYPE, "package") == COMPOSED_H5P
    assert upload_file_format(H5P_MIME_TYPE, "package.h5p") is None
    assert upload_file_format(H5P_MIME_TYPE, "PACKAGE.H5P") is None
    assert upload_file_format(H5P_MIME_TYPE.upper(), "package.zip") == COMPOSED_H5P
    assert upload_file_format("application/vnd.ekstep.html-archive", "package.zip") is None
    assert upload_file_format("application/pdf", "a.pdf") is None


def test_size_cap_and_its_exemption() -> None:
    # the exempt types get their own (larger) cap, never none (HARDENING 13)
    exempt = ("video/mp4",)
    assert size_cap("application/pdf", 100, exempt, 5000) == 100
    assert size_cap("video/mp4", 100, exempt, 5000) == 5000
    # exact match, as the reference compared
    assert size_cap("VIDEO/MP4", 100, exempt, 5000) == 100
    assert size_cap("video/webm", 100, exempt, 5000) == 100
