"""What git must never hold: Flink scratch folders, large files, raw profiler dumps."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 5 * 1024 * 1024


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, stdin=subprocess.DEVNULL
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def offenders(paths: list[str], root: Path) -> list[str]:
    """Every reason a set of tracked paths is not clean, one line each."""
    found: list[str] = []
    total = 0
    for rel in paths:
        parts = Path(rel).parts
        if any(a == "flink" and b == "tmp" for a, b in zip(parts, parts[1:], strict=False)):
            found.append(f"{rel}: Flink scratch (flink/tmp) is tracked")
        if rel.endswith(".collapsed"):
            found.append(f"{rel}: raw profiler output is tracked")
        path = root / rel
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            if size > MAX_FILE_BYTES:
                found.append(f"{rel}: {size} bytes, over {MAX_FILE_BYTES}")
    if total > MAX_TOTAL_BYTES:
        found.append(f"tracked files hold {total} bytes in all, over {MAX_TOTAL_BYTES}")
    return found


def test_git_tracks_nothing_it_should_not() -> None:
    assert offenders(tracked_files(), ROOT) == []


@pytest.mark.parametrize(
    ("rel", "size", "why"),
    [
        ("auto-creator-v2/flink/tmp/python-dist-1/flink-python-udf-boot.log", 10, "flink/tmp"),
        ("bench/results/profile-1.collapsed", 10, "profiler"),
        ("data/huge.bin", MAX_FILE_BYTES + 1, "over"),
    ],
)
def test_the_check_fails_on_each_kind_of_offender(tmp_path: Path, rel: str, size: int, why: str) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    found = offenders([rel], tmp_path)
    assert found and why in found[0]
