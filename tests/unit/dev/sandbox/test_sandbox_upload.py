"""Upload (fileUrl and packages) and the file server, against a real sandbox server (it HEADs itself)."""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cokreat_jobs.dev.sandbox import ServerThread
from cokreat_jobs.dev.sandbox.testing import seed

CHANNEL = {"X-Channel-Id": "channel-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("sandbox"), {"publish_delay_ms": 50}) as s:
        yield s


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        client.post("/_sandbox/reset")
        yield client


def storage(server: ServerThread) -> Path:
    return Path(server.app.state.sandbox.settings.storage_dir)


def put_file(server: ServerThread, relative: str, data: bytes) -> str:
    target = storage(server) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return f"{server.base_url}/_files/{relative}"


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def content(identifier: str, mime: str, **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": "Upload test",
        "code": "c",
        "mimeType": mime,
        "primaryCategory": "Learning Resource",
        "channel": "channel-1",
        **extra,
    }


def upload(http: httpx.Client, identifier: str, file_url: str, **params: str) -> httpx.Response:
    return http.post(
        f"/content/v4/upload/{identifier}",
        params={"validation": "false", **params},
        headers=CHANNEL,
        files={"fileUrl": (None, file_url)},
    )


def read(http: httpx.Client, identifier: str) -> dict[str, Any]:
    return http.get(f"/content/v4/read/{identifier}", params={"mode": "edit"}).json()["result"]["content"]


def test_pdf_upload_heads_the_url_for_its_size(server: ServerThread, http: httpx.Client) -> None:
    seed(http, contents=[content("do_pdf", "application/pdf")])
    url = put_file(server, "content/do_pdf/artifact/book.pdf", b"%PDF-1.4 twelve bytes")
    response = upload(http, "do_pdf", url)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["identifier"] == result["node_id"] == "do_pdf"
    assert result["artifactUrl"] == result["content_url"] == url
    assert result["versionKey"].isdigit()
    stored = read(http, "do_pdf")
    assert stored["artifactUrl"] == stored["downloadUrl"] == url
    assert stored["size"] == len(b"%PDF-1.4 twelve bytes")
    assert stored["status"] == "Draft"
    logged = http.get("/_sandbox/requests").json()["requests"]
    assert [(e["method"], e["path"]) for e in logged][:2] == [
        ("HEAD", "/_files/content/do_pdf/artifact/book.pdf"),
        ("POST", "/content/v4/upload/do_pdf"),
    ]
    assert logged[1]["body"] == {"fileUrl": url}
    assert logged[1]["query"] == {"validation": "false"}


@pytest.mark.parametrize(
    ("mime", "url"),
    [
        ("application/pdf", "http://localhost:8080/a.pdf"),
        ("application/pdf", "http://storage/a.pdf"),
        ("application/pdf", "ftp://example.org/a.pdf"),
        ("application/pdf", "not a url"),
        ("application/pdf", "http://example.org/a.pdf?sig=1"),
        ("application/pdf", "http://example.org/a.txt"),
        ("application/epub", "http://example.org/book.pdf"),
        ("application/msword", "http://example.org/doc.pdf"),
    ],
)
def test_invalid_file_urls(http: httpx.Client, mime: str, url: str) -> None:
    seed(http, contents=[content("do_u", mime)])
    response = upload(http, "do_u", url)
    assert response.status_code == 400
    assert response.json()["params"]["err"] == "ERR_INVALID_FILE_URL"
    assert response.json()["params"]["errmsg"] == "Please Provide Valid File Url!"


def test_head_failures(server: ServerThread, http: httpx.Client) -> None:
    seed(http, contents=[content("do_h", "video/mp4")])
    response = upload(http, "do_h", f"{server.base_url}/_files/missing/video.mp4")
    assert (response.status_code, response.json()["params"]["err"]) == (400, "ERR_API_CALL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    response = upload(http, "do_h", f"http://127.0.0.1:{closed_port}/video.mp4")
    assert (response.status_code, response.json()["params"]["err"]) == (500, "ERR_API_CALL")


def test_youtube_links_are_stored_without_probing(http: httpx.Client) -> None:
    seed(http, contents=[content("do_yt", "video/x-youtube")])
    response = upload(http, "do_yt", "https://www.youtube.com/watch?v=abc")
    assert response.status_code == 200
    assert read(http, "do_yt")["artifactUrl"] == "https://www.youtube.com/watch?v=abc"


@pytest.mark.parametrize(
    ("mime", "entries", "params", "ok"),
    [
        ("application/vnd.ekstep.h5p-archive", {"h5p.json": b"{}", "content/x.js": b""}, {}, True),
        ("application/vnd.ekstep.h5p-archive", {"content/h5p.json": b"{}"}, {}, False),
        (
            "application/vnd.ekstep.h5p-archive",
            {"content/h5p.json": b"{}"},
            {"fileFormat": "composed-h5p-zip"},
            True,
        ),
        ("application/vnd.ekstep.html-archive", {"index.html": b"<html/>"}, {}, True),
        ("application/vnd.ekstep.html-archive", {"site/index.html": b"<html/>"}, {}, False),
    ],
)
def test_packages_are_checked_and_stored(
    server: ServerThread,
    http: httpx.Client,
    mime: str,
    entries: dict[str, bytes],
    params: dict[str, str],
    ok: bool,
) -> None:
    seed(http, contents=[content("do_pkg", mime)])
    data = zip_bytes(entries)
    url = put_file(server, "content/do_pkg/artifact/package.zip", data)
    response = upload(http, "do_pkg", url, **params)
    if not ok:
        assert response.status_code == 400
        assert response.json()["params"]["err"] == "ERR_INVALID_FILE"
        assert response.json()["params"]["errmsg"] == "Please Provide Valid File!"
        return
    assert response.status_code == 200, response.text
    artifact = response.json()["result"]["artifactUrl"]
    assert artifact != url and artifact.startswith(f"{server.base_url}/_files/content/do_pkg/artifact/")
    assert httpx.get(artifact).content == data
    assert read(http, "do_pkg")["size"] == len(data)


def test_not_a_zip_package(server: ServerThread, http: httpx.Client) -> None:
    seed(http, contents=[content("do_bad", "application/vnd.ekstep.h5p-archive")])
    response = upload(http, "do_bad", put_file(server, "bad.h5p", b"not a zip"))
    assert response.json()["params"]["err"] == "ERR_INVALID_FILE"


def test_broken_upload_requests_get_the_framework_page(http: httpx.Client) -> None:
    seed(http, contents=[content("do_b", "application/pdf")])
    for kwargs in (
        {"json": {"fileUrl": "http://example.org/a.pdf"}},
        {"files": {"other": (None, "x")}},
        {"files": {"fileUrl": (None, "")}},
    ):
        response = http.post("/content/v4/upload/do_b", headers=CHANNEL, **kwargs)
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
    response = upload(http, "do_unknown", "http://example.org/a.pdf")
    assert response.status_code == 404


def test_direct_file_upload(http: httpx.Client) -> None:
    seed(http, contents=[content("do_file", "application/pdf")])
    response = http.post(
        "/content/v4/upload/do_file",
        headers=CHANNEL,
        files={"file": ("my book.pdf", b"%PDF data", "application/pdf")},
    )
    assert response.status_code == 200
    url = response.json()["result"]["artifactUrl"]
    assert url.endswith("my-book.pdf")
    assert httpx.get(url).content == b"%PDF data"


def test_upload_to_live_content_goes_to_the_image(server: ServerThread, http: httpx.Client) -> None:
    seed(
        http,
        contents=[
            content(
                "do_live",
                "application/pdf",
                status="Live",
                pkgVersion=1,
                artifactUrl="http://example.org/old.pdf",
            )
        ],
    )
    url = put_file(server, "new.pdf", b"%PDF new")
    assert upload(http, "do_live", url).status_code == 200
    live = http.get("/content/v4/read/do_live").json()["result"]["content"]
    assert live["artifactUrl"] == "http://example.org/old.pdf"
    assert read(http, "do_live")["artifactUrl"] == url


def test_file_server_get_head_and_traversal(server: ServerThread, http: httpx.Client) -> None:
    url = put_file(server, "dir/a file.bin", b"0123456789")
    head = http.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "10" and head.content == b""
    assert http.get(url).content == b"0123456789"
    assert http.get("/_files/dir/nothing").status_code == 404
    assert http.get("/_files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert http.get("/_files/dir/..%2F..%2F..%2Fsandbox.db").status_code == 404
