"""The local stack and the Kafka commands, through the real `cokreat-jobs` CLI and a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def cli(
    *args: str, stack_dir: Path, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, COKREAT_STACK_DIR=str(stack_dir))
    return subprocess.run(
        [sys.executable, "-m", "cokreat_jobs.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
    )


def test_stack_up_produce_consume_down(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    up = cli("stack", "up", stack_dir=stack)
    try:
        assert up.returncode == 0, up.stderr.decode()
        endpoints = json.loads((stack / "endpoints.json").read_text())
        assert endpoints["kafka"].startswith("127.0.0.1:") and endpoints["sandbox"].startswith(
            "http://127.0.0.1:"
        )
        assert cli("stack", "up", stack_dir=stack).stdout.decode().startswith("stack already up")
        status = cli("stack", "status", stack_dir=stack)
        assert status.returncode == 0 and status.stdout.decode().count("running (pid") == 2

        # records exactly as in the file: invalid UTF-8 and a non-JSON line included
        lines = [b'{"a": 1}', b"not json", b"\xff\xfe bytes", b'{"b": "\xc3\xbc"}']
        src = tmp_path / "batch.txt"
        src.write_bytes(b"\n".join(lines) + b"\n")
        produced = cli("produce", "t-cli", str(src), stack_dir=stack)
        assert produced.returncode == 0, produced.stderr.decode()
        consumed = cli(
            "consume", "t-cli", "--from-beginning", "--max", "4", "--timeout", "60", stack_dir=stack
        )
        assert consumed.returncode == 0
        # (two partitions: order holds per partition only)
        assert sorted(consumed.stdout.splitlines()) == sorted(lines)
        # stdin works too
        assert cli("produce", "t-cli", "-", stack_dir=stack, stdin=b'{"c": 3}\n').returncode == 0
        more = cli("consume", "t-cli", "--from-beginning", "--max", "5", "--timeout", "60", stack_dir=stack)
        assert sorted(more.stdout.splitlines()) == sorted([*lines, b'{"c": 3}'])
        # --timeout ends a consume that finds nothing, exit 0
        empty = cli("consume", "t-empty", "--timeout", "3", stack_dir=stack)
        assert empty.returncode == 0 and empty.stdout == b""
    finally:
        down = cli("stack", "down", stack_dir=stack)
    assert down.returncode == 0 and b"stopped" in down.stdout
    assert cli("stack", "status", stack_dir=stack).returncode != 0
    assert cli("stack", "down", stack_dir=stack).stdout.startswith(b"nothing was running")

    # state persists: the broker comes back with its data
    again = cli("stack", "up", stack_dir=stack)
    try:
        assert again.returncode == 0, again.stderr.decode()
        back = cli("consume", "t-cli", "--from-beginning", "--max", "5", "--timeout", "60", stack_dir=stack)
        assert len(back.stdout.splitlines()) == 5
    finally:
        cli("stack", "down", stack_dir=stack)
