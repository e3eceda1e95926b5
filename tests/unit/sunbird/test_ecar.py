"""ECAR building and safe extraction: zip-slip, absolute paths, symlinks, zip bombs (size, entries), missing
manifest item, not a zip; and fetch_ecar through a real HTTP server."""

from __future__ import annotations

import asyncio
import io
import random
import stat
import struct
import warnings
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


# ----------------------------------------------------------------------------- hostile JSON and directories
# HARDENING 5: JSON entries capped by size before parsing, the entry count checked before the central
# directory is parsed, deep JSON and duplicate names refused, every package defect a PermanentError.

READERS = {
    "read": lambda path, limits: read_ecar(path, limits),
    "extract": lambda path, limits: extract_ecar(path, path.parent / "out", limits),
}
JSON_LIMITS = EcarLimits(
    max_download_bytes=10_000_000, max_expanded_bytes=5_000_000, max_entries=50, max_json_bytes=100_000
)


def _manifest(pad: int = 0, extra: str = "") -> str:
    return '{"archive": {"items": [{"identifier": "do_1"}]}, "pad": "' + "x" * pad + '"' + extra + "}"


def _package(path: Path, entries: list[tuple[str, str | bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names: some cases are made of them
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def _understate(path: Path, name: str, claimed: int) -> Path:
    """Rewrite ``name``'s declared size (central directory and local header) to ``claimed``."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    central = raw.find(b"PK\x01\x02")
    while raw[central + 46 : central + 46 + len(name)] != name.encode():
        central = raw.find(b"PK\x01\x02", central + 1)
    raw[central + 24 : central + 28] = claimed.to_bytes(4, "little")
    raw[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize("name", ["manifest.json", "hierarchy.json"])
def test_json_entry_over_its_cap_is_refused(tmp_path: Path, reader: str, name: str) -> None:
    """Well under the expanded-size cap, but over the cap of one JSON entry (named in the error)."""
    doc = _manifest(200_000) if name == "manifest.json" else '{"questionset": {"p": "' + "x" * 200_000 + '"}}'
    entries = [(name, doc)] + ([("manifest.json", _manifest())] if name != "manifest.json" else [])
    path = _package(tmp_path / "p.ecar", entries)
    with pytest.raises(PermanentError, match=f"{name} is 2000.. bytes, over the 100000-byte limit") as e:
        READERS[reader](path, JSON_LIMITS)
    assert "max_json_bytes" in str(e.value)


@pytest.mark.parametrize("reader", READERS, ids=str)
def test_json_entry_with_understated_size_is_refused(tmp_path: Path, reader: str) -> None:
    """zipfile expands no more than the declared size, then finds the CRC wrong."""
    path = _package(tmp_path / "p.ecar", [("manifest.json", _manifest(200_000))])
    _understate(path, "manifest.json", 10)
    with pytest.raises(PermanentError, match="the package is corrupt at entry 'manifest.json': Bad CRC-32"):
        READERS[reader](path, JSON_LIMITS)


def test_json_cap_is_enforced_on_the_bytes_expanded_too(tmp_path: Path) -> None:
    """Should a reader expand past the declared size, the JSON cap still holds while streaming."""
    from cokreat_jobs.sunbird.ecar import _Expansion

    path = _package(tmp_path / "p.ecar", [("manifest.json", _manifest(200_000))])
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("manifest.json")
        with pytest.raises(
            PermanentError, match="manifest.json expands past its declared size, over the 100000"
        ):
            _Expansion(JSON_LIMITS).copy(zf, info, None, json_name="manifest.json")


def test_json_cap_at_the_limit_is_accepted(tmp_path: Path) -> None:
    doc = _manifest(0)
    doc = _manifest(100_000 - len(doc))
    assert len(doc) == 100_000
    path = _package(tmp_path / "p.ecar", [("manifest.json", doc)])
    assert read_ecar(path, JSON_LIMITS).item("do_1") == {"identifier": "do_1"}


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize("depth", [101, 5_000, 200_000])
def test_deeply_nested_json_is_refused(tmp_path: Path, reader: str, depth: int) -> None:
    deep = ', "deep": ' + "[" * depth + "]" * depth
    path = _package(tmp_path / "p.ecar", [("manifest.json", _manifest(0, deep))])
    with pytest.raises(PermanentError, match="manifest.json is nested deeper than 100 levels"):
        READERS[reader](path, EcarLimits(max_json_depth=100))


def test_nesting_at_the_limit_and_brackets_in_strings_are_accepted(tmp_path: Path) -> None:
    deep = ', "deep": ' + "[" * 97 + "]" * 97 + ', "text": "[[[[{{{{\\"[[[[" '
    path = _package(tmp_path / "p.ecar", [("manifest.json", _manifest(0, deep))])
    ecar = read_ecar(path, EcarLimits(max_json_depth=100))  # {archive: {items: [{ }]}} is 4 deep
    assert ecar.manifest["text"] == '[[[[{{{{"[[[['


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize(
    "names",
    [
        ("manifest.json", "manifest.json"),
        ("manifest.json", "./manifest.json"),
        ("./manifest.json", "manifest.json"),
        ("manifest.json", ".\\manifest.json"),
        ("manifest.json", "MANIFEST.json"),
        ("hierarchy.json", "./hierarchy.json"),
        ("assets/a.png", "assets//a.png"),
    ],
)
def test_duplicate_names_are_refused(tmp_path: Path, reader: str, names: tuple[str, str]) -> None:
    entries: list[tuple[str, str | bytes]] = [(n, _manifest() if "json" in n else b"x") for n in names]
    if "manifest.json" not in {n.lower().lstrip("./\\") for n in names}:
        entries.insert(0, ("manifest.json", _manifest()))
    path = _package(tmp_path / "p.ecar", entries)
    with pytest.raises(PermanentError, match="appears twice in the package"):
        READERS[reader](path, LIMITS)


def _stored_zip(names: list[bytes], declared_entries: int | None = None) -> bytes:
    """A zip of empty stored entries, built directly (zipfile takes seconds for 400,000 entries);
    ``declared_entries`` overrides the count in the end-of-central-directory record (a lying one)."""
    local, central = bytearray(), bytearray()
    for name in names:
        offset = len(local)
        local += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central += (
            struct.pack(
                "<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset
            )
            + name
        )
    count = len(names) if declared_entries is None else declared_entries
    count = min(count, 0xFFFF)  # no zip64 needed: a capped count is what a lying archive would declare
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)


@pytest.mark.parametrize("declared", [None, 1], ids=["declared", "understated"])
def test_entry_count_is_checked_before_the_directory_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declared: int | None
) -> None:
    """400,000 entries are refused without zipfile parsing the central directory (and a lying count in the
    end record does not get them in: the directory is counted, and the count stops at the limit)."""
    names = [b"manifest.json"] + [b"f%d" % i for i in range(400_000)]
    path = tmp_path / "many.ecar"
    path.write_bytes(_stored_zip(names, declared))
    parsed: list[int] = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def spy(self: zipfile.ZipFile) -> None:
        parsed.append(1)
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", spy)
    for reader in READERS.values():
        with pytest.raises(PermanentError, match="more than the limit of 10000"):
            reader(path, EcarLimits())
    assert parsed == []


def test_zip64_entry_count_is_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", _manifest())
        for i in range(60):
            zf.writestr(f"f{i}", b"")
    raw = bytearray(buf.getvalue())
    # The same archive with a zip64 end record: classic record counts set to 0xFFFF
    end = raw.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<2I", raw[end + 12 : end + 20])
    zip64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 61, 61, cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size, 0xFFFFFFFF, 0)
    (tmp_path / "z.ecar").write_bytes(bytes(raw[:end]) + zip64 + locator + classic)
    with zipfile.ZipFile(tmp_path / "z.ecar") as zf:
        assert len(zf.infolist()) == 61  # a valid zip64 archive
    with pytest.raises(PermanentError, match="61 entries, more than the limit of 50"):
        read_ecar(tmp_path / "z.ecar", LIMITS)


def test_every_corruption_is_a_permanent_error(tmp_path: Path) -> None:
    """Random byte flips in packages of every compression method end as PermanentError, nothing else."""
    bases = []
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, zipfile.ZIP_STORED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            zf.writestr("manifest.json", _manifest(50))
            zf.writestr("hierarchy.json", '{"questionset": {"children": []}}')
            zf.writestr("assets/a.txt", "hello " * 500)
        bases.append(buf.getvalue())
    rng = random.Random(5)
    path = tmp_path / "c.ecar"
    leaked: dict[str, int] = {}
    for _ in range(3000):
        raw = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        path.write_bytes(bytes(raw))
        for reader in READERS.values():
            try:
                reader(path, LIMITS)
            except PermanentError:
                pass
            except Exception as e:  # noqa: BLE001 - collecting what leaks
                key = f"{type(e).__name__}: {str(e)[:60]}"
                leaked[key] = leaked.get(key, 0) + 1
    assert leaked == {}


def test_json_limits_from_config() -> None:
    from cokreat_jobs.core.config import load_config

    cfg = load_config(
        "auto-creator-v2",
        overrides=["auto_creator_v2.ecar.max_json_bytes=1234", "auto_creator_v2.ecar.max_json_depth=7"],
        env={},
    )
    limits = EcarLimits.from_config(cfg, "auto_creator_v2.ecar.")
    assert (limits.max_json_bytes, limits.max_json_depth) == (1234, 7)
    defaults = EcarLimits.from_config(load_config("auto-creator-v2", env={}), "auto_creator_v2.ecar.")
    assert defaults.max_json_bytes == EcarLimits().max_json_bytes == 4 * 1024 * 1024
    assert defaults.max_json_depth == EcarLimits().max_json_depth == 100
