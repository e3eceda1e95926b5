"""HARDENING 15: the sandbox's admin paths (`/_sandbox/*`) answer only loopback clients that name the
sandbox itself: a Host that is a loopback name or address with the sandbox's port, no foreign Origin, and no
POST a browser could send cross-site without asking (text/plain, forms). The sandbox binds to loopback only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cokreat_jobs.dev.sandbox import ServerThread
from cokreat_jobs.dev.sandbox.server import serve
from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with sandbox_client(tmp_path) as c:
        yield c


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("sandbox-admin")) as s:
        yield s


BAD_HOSTS = [
    "evil.example",  # DNS rebinding: an attacker's name resolving to 127.0.0.1
    "evil.example:{port}",
    "127.0.0.1.evil.example:{port}",
    "localhost.evil.example:{port}",
    "10.0.0.5:{port}",
    "0.0.0.0:{port}",
    "127.0.0.1:{other}",  # a loopback address, but not the sandbox's port
    "localhost:{other}",
    "127.0.0.1",  # no port: 80, not the sandbox's
    "",
]
GOOD_HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "127.0.0.2:{port}", "[::1]:{port}"]


def _host(template: str, port: int) -> str:
    return template.format(port=port, other=port + 1)


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_admin_paths_refuse_a_host_that_is_not_the_sandbox(server: ServerThread, host: str) -> None:
    base = server.base_url
    headers = {"Host": _host(host, server.port)}
    for method, path, body in (
        ("GET", "/_sandbox/health", None),
        ("GET", "/_sandbox/requests", None),
        ("POST", "/_sandbox/seed", {"users": ["rebound"]}),
        ("POST", "/_sandbox/reset", None),
        ("DELETE", "/_sandbox/faults", None),
        ("GET", "/_sandbox/no-such-admin-path", None),
    ):
        r = httpx.request(method, base + path, headers=headers, json=body, timeout=10)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    users = httpx.get(base + "/_sandbox/users", timeout=10).json()["users"]
    assert "rebound" not in users


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_admin_paths_answer_a_loopback_host_with_the_sandbox_port(server: ServerThread, host: str) -> None:
    r = httpx.get(
        server.base_url + "/_sandbox/health", headers={"Host": _host(host, server.port)}, timeout=10
    )
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_service_paths_do_not_check_the_host(server: ServerThread) -> None:
    # the jobs reach the services by whatever name their base URL says; only the admin paths are guarded
    r = httpx.delete(
        server.base_url + "/program/v1/user/nobody", headers={"Host": "program.example"}, timeout=10
    )
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; b=x",
    ],
)
def test_admin_posts_a_browser_could_send_cross_site_are_refused(
    client: TestClient, content_type: str
) -> None:
    body = b'{"users": ["csrf"]}'
    r = client.post("/_sandbox/seed", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    r = client.post("/_sandbox/faults", content=b'{"status": 500}', headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert client.get("/_sandbox/users").json()["users"] == []
    assert client.get("/_sandbox/faults").json()["faults"] == []


def test_admin_requests_from_a_foreign_origin_are_refused(client: TestClient) -> None:
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1"):
        r = client.post("/_sandbox/reset", headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text)
    assert client.post("/_sandbox/reset", headers={"Origin": "http://127.0.0.1"}).status_code == 200


def test_json_posts_from_local_clients_still_work(client: TestClient) -> None:
    assert client.post("/_sandbox/seed", json={"users": ["u1"]}).status_code == 200
    assert client.post("/_sandbox/seed", content=b'{"users": ["u2"]}').status_code == 200  # no type
    assert client.get("/_sandbox/users").json()["users"] == ["u1", "u2"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.org", ""])
def test_the_sandbox_binds_to_loopback_only(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ServerThread(tmp_path, host=host)
    with pytest.raises(ValueError, match="loopback"):
        serve(tmp_path, host=host, port=1)
    proc = subprocess.run(
        [sys.executable, "-m", "cokreat_jobs.dev.sandbox", "--host", host, "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "loopback" in proc.stderr, proc.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_hosts_are_accepted(tmp_path: Path, host: str) -> None:
    with ServerThread(tmp_path, host=host) as s:
        assert httpx.get(
            f"http://{'[::1]' if host == '::1' else host}:{s.port}/_sandbox/health", timeout=10
        ).json() == {"status": "ok"}
