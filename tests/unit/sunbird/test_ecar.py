"""ECAR building and safe extraction: zip-slip, absolute paths, symlinks, zip bombs (size, entries), missing
manifest item, not a zip; and fetch_ecar through a real HTTP server."""

from __future__ import annotations

import asyncio
import io
import stat
import zipfile
from pathlib import Path

import pytest

from cokreat_jobs.adapters.download import Downloader, NetworkPolicy
from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.sunbird.ecar import EcarLimits, build_ecar, extract_ecar, fetch_ecar, read_ecar

LIMITS = EcarLimits(max_download_bytes=10_000_000, max_expanded_bytes=1_000_000, max_entries=50)


def write(tmp: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    path = tmp / "p.ecar"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", '{"archive": {"items": [{"identifier": "do_1"}]}}')
        for name, data in entries:
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def test_build_and_extract_roundtrip(tmp_path: Path) -> None:
    data = build_ecar(
        {
            "items": [{"identifier": "do_QS", "objectType": "QuestionSet"}, {"identifier": "q1"}],
            "hierarchy": {"identifier": "do_QS", "children": [{"identifier": "q1"}]},
            "files": {"assets/a.txt": "hello", "assets/b.bin": b"\x00\x01"},
        }
    )
    (tmp_path / "x.ecar").write_bytes(data)
    ecar = extract_ecar(tmp_path / "x.ecar", tmp_path / "out", LIMITS)
    assert ecar.item("do_qs")["objectType"] == "QuestionSet"  # case-insensitive
    assert ecar.manifest["archive"]["count"] == 2
    assert ecar.hierarchy_root("questionset")["children"] == [{"identifier": "q1"}]
    assert (tmp_path / "out/assets/a.txt").read_text() == "hello"
    assert sorted(ecar.files) == ["assets/a.txt", "assets/b.bin", "hierarchy.json", "manifest.json"]


def test_single_object_description() -> None:
    data = build_ecar({"identifier": "q1", "objectType": "Question", "name": "n"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["manifest.json"]


def test_missing_manifest_item(tmp_path: Path) -> None:
    (tmp_path / "x.ecar").write_bytes(build_ecar({"items": [{"identifier": "other"}]}))
    ecar = extract_ecar(tmp_path / "x.ecar", tmp_path / "out", LIMITS)
    with pytest.raises(PermanentError, match="no archive.items entry for do_1"):
        ecar.item("do_1")
    with pytest.raises(PermanentError, match="hierarchy.json"):
        ecar.hierarchy_root("questionset")


def test_missing_manifest(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    (tmp_path / "x.ecar").write_bytes(buf.getvalue())
    with pytest.raises(PermanentError, match="no manifest.json"):
        extract_ecar(tmp_path / "x.ecar", tmp_path / "out", LIMITS)


@pytest.mark.parametrize("name", ["../evil.txt", "assets/../../evil.txt", "a\\..\\..\\evil.txt"])
def test_zip_slip_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, [(name, b"x")])
    with pytest.raises(PermanentError, match="zip-slip"):
        extract_ecar(path, tmp_path / "out", LIMITS)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/etc/evil", "C:/evil.txt", "\\evil.txt"])
def test_absolute_path_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, [(name, b"x")])
    with pytest.raises(PermanentError, match="absolute path"):
        extract_ecar(path, tmp_path / "out", LIMITS)


def test_symlink_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = write(tmp_path, [(info, b"/etc/passwd")])
    with pytest.raises(PermanentError, match="symbolic link"):
        extract_ecar(path, tmp_path / "out", LIMITS)


def test_zip_bomb_by_size(tmp_path: Path) -> None:
    path = write(tmp_path, [("big.bin", b"\x00" * 2_000_000)])
    assert path.stat().st_size < 50_000
    with pytest.raises(PermanentError, match="over the limit"):
        extract_ecar(path, tmp_path / "out", LIMITS)


def test_zip_bomb_with_understated_sizes(tmp_path: Path) -> None:
    path = write(tmp_path, [("big.bin", b"\x00" * 2_000_000)])
    # rewrite the declared sizes (local header and central directory) to claim 10 bytes
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("big.bin")
    central = raw.rfind(b"PK\x01\x02")
    assert central > 0 and raw[central + 46 : central + 46 + 7] == b"big.bin"
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    local = info.header_offset
    raw[local + 22 : local + 26] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(PermanentError):
        extract_ecar(path, tmp_path / "out", LIMITS)
    out = tmp_path / "out/big.bin"
    assert not out.exists() or out.stat().st_size <= LIMITS.max_expanded_bytes


def test_read_ecar_writes_nothing_and_checks_every_entry(tmp_path: Path) -> None:
    """auto-creator-v2 reads manifest and hierarchy in memory; the package is refused as extraction would."""
    path = write(tmp_path, [("hierarchy.json", '{"questionset": {}}'), ("assets/a.txt", b"hello")])
    before = sorted(tmp_path.rglob("*"))
    ecar = read_ecar(path, LIMITS)
    assert ecar.files == ["hierarchy.json", "manifest.json"] and ecar.item("do_1") == {"identifier": "do_1"}
    assert ecar.hierarchy_root("questionset") == {}
    assert sorted(tmp_path.rglob("*")) == before
    cases = {
        "over the limit": [("assets/big.bin", b"\x00" * 2_000_000)],
        "zip-slip": [("assets/../../x.txt", b"x")],
        "absolute path": [("/etc/x", b"x")],
        "entries": [(f"f{i}", b"") for i in range(60)],
    }
    for i, (why, entries) in enumerate(cases.items()):
        sub = tmp_path / f"c{i}"
        sub.mkdir()
        with pytest.raises(PermanentError, match=why):
            read_ecar(write(sub, entries), LIMITS)
    link = zipfile.ZipInfo("assets/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(PermanentError, match="symbolic link"):
        read_ecar(write(tmp_path / "c0", [(link, b"/etc/passwd")]), LIMITS)
    (tmp_path / "bad.ecar").write_bytes(b"not a zip")
    with pytest.raises(PermanentError, match="not a valid ECAR"):
        read_ecar(tmp_path / "bad.ecar", LIMITS)
    with pytest.raises(PermanentError, match="no manifest.json"):
        read_ecar(_zip(tmp_path / "nomanifest.ecar", {"hierarchy.json": "{}"}), LIMITS)


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_zip_bomb_by_entry_count(tmp_path: Path) -> None:
    path = write(tmp_path, [(f"f{i}", b"") for i in range(60)])
    with pytest.raises(PermanentError, match="entries"):
        extract_ecar(path, tmp_path / "out", LIMITS)


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "x.ecar").write_bytes(b"<html>502</html>")
    with pytest.raises(PermanentError, match="not a valid ECAR"):
        extract_ecar(tmp_path / "x.ecar", tmp_path / "out", LIMITS)


def test_fetch_ecar_over_http(tmp_path: Path) -> None:
    from cokreat_jobs.dev.sandbox.server import ServerThread

    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "p.ecar").write_bytes(build_ecar({"identifier": "do_1"}))
    server = ServerThread(tmp_path / "sb", {"storage_dir": str(storage)}).start()
    try:

        async def go() -> None:
            d = Downloader(NetworkPolicy.parse(["127.0.0.1"]))
            try:
                ecar = await fetch_ecar(d, f"{server.base_url}/_files/p.ecar", tmp_path / "w", LIMITS)
                assert ecar.item("do_1") == {"identifier": "do_1"}
                assert not (tmp_path / "w/package.ecar").exists()
                small = EcarLimits(max_download_bytes=10)
                with pytest.raises(PermanentError):
                    await fetch_ecar(d, f"{server.base_url}/_files/p.ecar", tmp_path / "w2", small)
            finally:
                await d.close()

        asyncio.run(go())
    finally:
        server.stop()
