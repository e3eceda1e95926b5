"""The sample input in examples/ does what examples/README.md says it does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import MalformedEvent
from cokreat_jobs.core.event import parse_record
from cokreat_jobs.jobs.user_delete.logic import UserDeletion
from cokreat_jobs.ops.bulk import upload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OK = {"responseCode": "OK", "result": {"response": "User deleted Successfully"}}


def test_user_delete_examples() -> None:
    lines = (EXAMPLES / "user-delete.jsonl").read_bytes().splitlines()
    events: list[dict[str, Any]] = []
    malformed = 0
    for line in lines:
        try:
            events.append(parse_record(line, 1024 * 1024))
        except MalformedEvent:
            malformed += 1
    deleted: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        deleted.append(request.match_info["uid"])
        return web.json_response(OK)

    async def main() -> list[str]:
        app = web.Application()
        app.router.add_delete("/program/v1/user/{uid}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        cfg = load_config("user-delete", overrides=[f"program-service-baseUrl=http://127.0.0.1:{port}"])
        job = UserDeletion.from_config(cfg)
        try:
            return [(await job.process(e)).kind for e in events]
        finally:
            await job.close()
            await runner.cleanup()

    kinds = asyncio.run(main())
    assert malformed == 1
    assert kinds == ["success", "success", "success", "skipped"]
    assert deleted == ["example-user-1", "example-user-2", "example-user-3"]


def test_bulk_upload_example_passes_the_row_checks() -> None:
    rows, problems = upload.read_csv(EXAMPLES / "bulk-upload.csv", channel="example-channel")
    assert problems == [] and len(rows) == 3
    assert upload.precheck(rows) == []


@pytest.mark.parametrize("name", ["user-delete.jsonl", "bulk-upload.csv"])
def test_each_example_is_described(name: str) -> None:
    assert f"`{name}`" in (EXAMPLES / "README.md").read_text()
