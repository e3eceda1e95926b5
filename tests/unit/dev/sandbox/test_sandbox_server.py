"""The sandbox as a real server: the CLI entry point and concurrent load."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

from cokreat_jobs.dev.sandbox import ServerThread
from cokreat_jobs.dev.sandbox.testing import seed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cokreat_jobs.dev.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / "state"),
            "--publish-delay-ms",
            "20",
            "--search-index-delay-ms",
            "0",
            "--storage-dir",
            str(tmp_path / "files"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/health", timeout=1).json() == {"status": "ok"}:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "sandbox did not become ready"
            time.sleep(0.1)
        seed(httpx.Client(base_url=base), users=["cli-user"])
        assert httpx.delete(f"{base}/program/v1/user/cli-user").status_code == 200
        assert (tmp_path / "state" / "sandbox.db").exists()
        assert (tmp_path / "files").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == b""


def test_concurrent_requests_are_all_answered_and_logged(tmp_path: Path) -> None:
    users = [f"user-{i}" for i in range(400)]

    async def hammer(base: str) -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

            async def one(user: str) -> int:
                async with session.delete(f"{base}/program/v1/user/{user}") as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one(u) for u in users + ["missing"] * 100))

    with ServerThread(tmp_path) as server, httpx.Client(base_url=server.base_url) as http:
        seed(http, users=users)
        statuses = asyncio.run(hammer(server.base_url))
        assert statuses.count(200) == 400 and statuses.count(404) == 100
        logged = http.get("/_sandbox/requests").json()["requests"]
        assert len(logged) == 500
        assert len({e["seq"] for e in logged}) == 500
        assert http.get("/_sandbox/users").json() == {"users": []}
