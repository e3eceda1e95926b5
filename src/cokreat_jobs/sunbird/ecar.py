"""ECAR packages (zips with ``manifest.json``, ``hierarchy.json`` and assets): safe download and extraction,
and a builder for valid ones (used by the sandbox, the tests and the demo).

Reading and extraction refuse, as a :class:`PermanentError` naming the entry and the reason (every defect of
a package ends so, never as another exception):

- an archive that is not a zip, or is corrupt anywhere (headers, compressed data, CRC), whatever its
  compression method;
- more entries than ``max_entries``: checked before zipfile parses the central directory (which it does
  whole, in memory), first from the count the end record declares, then by counting the directory's records
  up to the limit (the declared count can lie);
- an entry whose path would leave the extraction folder (``..`` segments: zip-slip), an absolute path (or a
  drive letter), a symlink entry;
- two entries with the same path once normalised (``manifest.json`` twice, ``manifest.json`` and
  ``./manifest.json``, ``a//b`` and ``a/b``; ``manifest.json`` and ``hierarchy.json`` also in any case):
  which copy wins would be up to the reader;
- an archive that expands past ``max_expanded_bytes``: checked both on the sizes the archive declares and on
  the bytes actually written (a zip bomb can lie in its headers);
- a ``manifest.json`` or ``hierarchy.json`` over ``max_json_bytes`` (declared or expanded): they are read
  and parsed in memory, and parsing costs up to about 23 times the text's size;
- JSON nested deeper than ``max_json_depth`` (checked on the text, before parsing: no RecursionError), not
  UTF-8, or not valid JSON.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import stat
import struct
import time
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from cokreat_jobs.core.errors import PermanentError, exception_message

if TYPE_CHECKING:
    from cokreat_jobs.adapters.download import Downloader
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "EcarLimits",
    "ExtractedEcar",
    "build_ecar",
    "extract_ecar",
    "fetch_ecar",
    "read_ecar",
    "manifest_item",
]

MANIFEST = "manifest.json"
HIERARCHY = "hierarchy.json"
_JSON_ENTRIES = (MANIFEST, HIERARCHY)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 1024

try:
    import lzma

    _LZMA_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,)
except ImportError:  # a Python built without lzma: zipfile then refuses such entries itself
    _LZMA_ERRORS = ()

# What zipfile and its decompressors raise on a corrupt archive (bz2 raises OSError, a bad offset ValueError
# or OSError, an unknown version NotImplementedError, an encrypted entry RuntimeError).
_CORRUPT: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    *_LZMA_ERRORS,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
    struct.error,
    OverflowError,
)


@dataclass(frozen=True, slots=True)
class EcarLimits:
    max_download_bytes: int = 200 * 1024 * 1024
    max_expanded_bytes: int = 500 * 1024 * 1024
    max_entries: int = 10_000
    # manifest.json and hierarchy.json are each read and parsed in memory; parsing costs up to about 23 times
    # the text (a text of empty containers only): with both at 4 MiB, about 200 MiB at worst
    max_json_bytes: int = 4 * 1024 * 1024
    max_json_depth: int = 100

    @classmethod
    def from_config(cls, cfg: JobConfig, prefix: str = "auto_creator_v2.ecar.") -> EcarLimits:
        d = cls()
        return cls(
            max_download_bytes=cfg.get_int(prefix + "max_download_bytes", d.max_download_bytes),
            max_expanded_bytes=cfg.get_int(prefix + "max_expanded_bytes", d.max_expanded_bytes),
            max_entries=cfg.get_int(prefix + "max_entries", d.max_entries),
            max_json_bytes=cfg.get_int(prefix + "max_json_bytes", d.max_json_bytes),
            max_json_depth=cfg.get_int(prefix + "max_json_depth", d.max_json_depth),
        )


@dataclass(slots=True)
class ExtractedEcar:
    folder: Path
    manifest: dict[str, Any]
    hierarchy: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[dict[str, Any]]:
        archive = self.manifest.get("archive")
        items = archive.get("items") if isinstance(archive, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def item(self, identifier: str) -> dict[str, Any]:
        return manifest_item(self.items, identifier)

    def hierarchy_root(self, key: str) -> dict[str, Any]:
        """``hierarchy.json``'s object under ``key`` (e.g. ``questionset``); PermanentError when absent."""
        root = self.hierarchy.get(key) if isinstance(self.hierarchy, dict) else None
        if not isinstance(root, dict):
            raise PermanentError(f"the package has no {HIERARCHY} with a '{key}' object")
        return root


def manifest_item(items: list[dict[str, Any]], identifier: str) -> dict[str, Any]:
    wanted = identifier.strip().lower()
    for item in items:
        ident = item.get("identifier")
        if isinstance(ident, str) and ident.strip().lower() == wanted:
            return item
    raise PermanentError(f"the package's {MANIFEST} has no archive.items entry for {identifier}")


def _safe_name(name: str) -> str:
    """The entry's relative path, or PermanentError when it is absolute or leaves the folder."""
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise PermanentError(f"unsafe package: entry {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PermanentError(f"unsafe package: entry {name!r} leaves the extraction folder (zip-slip)")
    return "/".join(parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return bool(mode) and stat.S_ISLNK(mode)


# End of central directory record, zip64 end record and its locator, central directory file header.
_END = struct.Struct("<4s4H2IH")
_END64_LOCATOR = struct.Struct("<4sIQI")
_END64 = struct.Struct("<4sQ2H2I4Q")
_CENTRAL = struct.Struct("<4s6H3I5H2I")
_END_SIG, _END64_LOCATOR_SIG, _END64_SIG, _CENTRAL_SIG = (
    b"PK\x05\x06",
    b"PK\x06\x07",
    b"PK\x06\x06",
    b"PK\x01\x02",
)


def _too_many(count: int, limits: EcarLimits) -> PermanentError:
    return PermanentError(f"unsafe package: {count} entries, more than the limit of {limits.max_entries}")


def _check_entry_count(fp: IO[bytes], limits: EcarLimits) -> None:
    """Refuse more than ``max_entries`` entries before zipfile parses the central directory.

    zipfile reads the whole directory into memory and makes an object per entry (400,000 entries: seconds
    and hundreds of MiB). First the count the end record declares (zip64's when there is one), then the
    directory's records themselves, counted up to the limit and no further, since the declared count can
    lie (zipfile ignores it). Anything unreadable here is left to zipfile, which says what is wrong.
    """
    size = fp.seek(0, os.SEEK_END)
    tail_start = max(0, size - _END.size - 0xFFFF)  # the record, then a comment of up to 64 KiB
    fp.seek(tail_start)
    tail = fp.read()
    at = tail.rfind(_END_SIG)
    if at < 0 or at + _END.size > len(tail):
        return
    _, _, _, _, declared, directory_size, _, _ = _END.unpack_from(tail, at)
    directory_end = tail_start + at
    locator_at = directory_end - _END64_LOCATOR.size
    if locator_at - _END64.size >= 0:
        fp.seek(locator_at)
        locator = fp.read(_END64_LOCATOR.size)
        if locator[:4] == _END64_LOCATOR_SIG:
            fp.seek(locator_at - _END64.size)
            record = fp.read(_END64.size)
            if len(record) == _END64.size and record[:4] == _END64_SIG:
                _, _, _, _, _, _, _, declared, directory_size, _ = _END64.unpack(record)
                directory_end = locator_at - _END64.size
    if declared > limits.max_entries:
        raise _too_many(declared, limits)
    fp.seek(max(0, directory_end - directory_size))
    counted = walked = 0
    while walked < directory_size:
        header = fp.read(_CENTRAL.size)
        if len(header) < _CENTRAL.size or header[:4] != _CENTRAL_SIG:
            return
        counted += 1
        if counted > limits.max_entries:
            raise PermanentError(
                f"unsafe package: its central directory holds more than the limit of {limits.max_entries} "
                f"entries (its end record declares {declared})"
            )
        name_len, extra_len, comment_len = struct.unpack_from("<3H", header, 28)
        fp.seek(name_len + extra_len + comment_len, os.SEEK_CUR)
        walked += _CENTRAL.size + name_len + extra_len + comment_len


def _open_zip(archive: str | os.PathLike[str], limits: EcarLimits) -> zipfile.ZipFile:
    try:
        with open(archive, "rb") as fp:
            _check_entry_count(fp, limits)
        return zipfile.ZipFile(archive)
    except _CORRUPT as e:
        raise PermanentError(f"the package is not a valid ECAR (zip): {exception_message(e)}") from None


def _checked_entries(zf: zipfile.ZipFile, limits: EcarLimits) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every entry with its safe relative path, or PermanentError for the whole package (entry count, declared
    sizes, a symlink, an absolute path, a zip-slip path, a duplicate path). Entries with an empty name are
    left out."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _too_many(len(infos), limits)
    declared = sum(max(i.file_size, 0) for i in infos)
    if declared > limits.max_expanded_bytes:
        raise PermanentError(
            f"unsafe package: expands to {declared} bytes, over the limit of {limits.max_expanded_bytes}"
        )
    entries: list[tuple[zipfile.ZipInfo, str]] = []
    seen: dict[str, str] = {}
    for info in infos:
        if _is_symlink(info):
            raise PermanentError(f"unsafe package: entry {info.filename!r} is a symbolic link")
        rel = _safe_name(info.filename)
        if not rel:
            continue
        key = rel.lower() if rel.lower() in _JSON_ENTRIES else rel
        first = seen.setdefault(key, info.filename)
        if first is not info.filename:
            raise PermanentError(
                f"unsafe package: {key} appears twice in the package "
                f"(entries {first!r} and {info.filename!r})"
            )
        if key in _JSON_ENTRIES and info.file_size > limits.max_json_bytes:
            raise _json_too_big(key, f"is {info.file_size} bytes", limits)
        entries.append((info, rel))
    return entries


def _json_too_big(name: str, what: str, limits: EcarLimits) -> PermanentError:
    return PermanentError(
        f"unsafe package: {name} {what}, over the {limits.max_json_bytes}-byte limit of a JSON entry "
        "(ecar max_json_bytes)"
    )


class _Expansion:
    """Counts the bytes actually expanded across a package: a zip bomb can lie in its headers."""

    def __init__(self, limits: EcarLimits) -> None:
        self.limits = limits
        self.limit = limits.max_expanded_bytes
        self.total = 0

    def copy(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Any, json_name: str = "") -> None:
        """Expand ``info`` into ``out`` (None: count only); ``json_name`` caps it at ``max_json_bytes``."""
        entry = 0
        try:
            src = zf.open(info)
        except _CORRUPT as e:
            raise _corrupt(info, e) from None
        with src:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except _CORRUPT as e:
                    raise _corrupt(info, e) from None
                if not chunk:
                    break
                self.total += len(chunk)
                entry += len(chunk)
                if self.total > self.limit:
                    raise PermanentError(
                        "unsafe package: expands past the limit of "
                        f"{self.limit} bytes (sizes in the archive understated)"
                    )
                if json_name and entry > self.limits.max_json_bytes:
                    raise _json_too_big(json_name, "expands past its declared size", self.limits)
                if out is not None:
                    out.write(chunk)  # local write errors (disk full) are not the package's: they propagate


def _corrupt(info: zipfile.ZipInfo, e: BaseException) -> PermanentError:
    return PermanentError(f"the package is corrupt at entry {info.filename!r}: {exception_message(e)}")


def extract_ecar(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: EcarLimits
) -> ExtractedEcar:
    """Extract ``archive`` into ``dest`` (blocking; see the module docstring for what is refused)."""
    target = Path(dest).resolve()
    target.mkdir(parents=True, exist_ok=True)
    written_names: list[str] = []
    with _open_zip(archive, limits) as zf:
        plan: list[tuple[zipfile.ZipInfo, Path]] = []
        for info, rel in _checked_entries(zf, limits):
            path = (target / rel).resolve()
            if path != target and target not in path.parents:
                raise PermanentError(f"unsafe package: entry {info.filename!r} leaves the extraction folder")
            plan.append((info, path))
        expansion = _Expansion(limits)
        for info, path in plan:
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            rel = path.relative_to(target).as_posix()
            with open(path, "wb") as out:
                expansion.copy(zf, info, out, json_name=rel if rel in _JSON_ENTRIES else "")
            written_names.append(rel)
    manifest = _load_json(target / MANIFEST, required=True, limits=limits)
    hierarchy = _load_json(target / HIERARCHY, required=False, limits=limits)
    if not isinstance(manifest, dict):
        raise PermanentError(f"the package's {MANIFEST} is not a JSON object")
    return ExtractedEcar(target, manifest, hierarchy if isinstance(hierarchy, dict) else None, written_names)


def read_ecar(archive: str | os.PathLike[str], limits: EcarLimits) -> ExtractedEcar:
    """The manifest and hierarchy of ``archive``, read in memory: nothing is written to disk.

    All auto-creator-v2 reads from a package (its assets are not used: the package itself is re-hosted). The
    package is refused exactly as `extract_ecar` refuses it: every entry is checked and expanded (to nothing),
    so understated sizes are caught. Writing the entries out and deleting them again was about a quarter of
    the job's CPU in the benchmark's profile (file creation, path resolution, rmtree).
    """
    found: dict[str, bytearray] = {}
    with _open_zip(archive, limits) as zf:
        expansion = _Expansion(limits)
        for info, rel in _checked_entries(zf, limits):
            if info.is_dir():
                continue
            if rel in _JSON_ENTRIES:
                buf = found[rel] = bytearray()
                expansion.copy(zf, info, _Appender(buf), json_name=rel)
            else:
                expansion.copy(zf, info, None)
    names = sorted(found)
    manifest = _parse_json(MANIFEST, found.pop(MANIFEST, None), True, limits)
    hierarchy = _parse_json(HIERARCHY, found.pop(HIERARCHY, None), False, limits)
    if not isinstance(manifest, dict):
        raise PermanentError(f"the package's {MANIFEST} is not a JSON object")
    return ExtractedEcar(
        Path(archive).parent,
        manifest,
        hierarchy if isinstance(hierarchy, dict) else None,
        names,
    )


class _Appender:
    def __init__(self, buf: bytearray) -> None:
        self.write = buf.extend


# Nesting is measured on the text, before parsing: escapes out, then strings out (escapes first, so that
# both patterns stay linear), then only brackets are left, whose running sum is the depth.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_DEPTH_STEP = tuple(1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256))


def _json_depth(data: bytes | bytearray) -> int:
    """How deep the arrays and objects of the JSON text ``data`` nest (``{"a": [1]}`` is 2), without parsing
    it: linear in its size, no recursion."""
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _parse_json(name: str, data: bytes | bytearray | None, required: bool, limits: EcarLimits) -> Any:
    if data is None:
        if required:
            raise PermanentError(f"the package has no {name}")
        return None
    if len(data) > limits.max_json_bytes:
        raise _json_too_big(name, f"is {len(data)} bytes", limits)
    if _json_depth(data) > limits.max_json_depth:
        raise PermanentError(
            f"unsafe package: {name} is nested deeper than {limits.max_json_depth} levels "
            "(ecar max_json_depth)"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:  # not reached under a sane max_json_depth; a clear reason all the same
        raise PermanentError(f"unsafe package: {name} is nested too deeply to parse") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PermanentError(f"the package's {name} is not valid JSON: {e}") from None


def _load_json(path: Path, required: bool, limits: EcarLimits) -> Any:
    if not path.is_file():
        return _parse_json(path.name, None, required, limits)
    try:
        size = path.stat().st_size
        if size > limits.max_json_bytes:
            raise _json_too_big(path.name, f"is {size} bytes", limits)
        data = path.read_bytes()
    except OSError as e:
        raise PermanentError(f"the package's {path.name} cannot be read: {e}") from None
    return _parse_json(path.name, data, required, limits)


async def fetch_ecar(
    downloader: Downloader, url: str, workdir: Path, limits: EcarLimits, name: str = "package"
) -> ExtractedEcar:
    """Download ``url`` (``max_download_bytes`` enforced while streaming) and extract it under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / f"{name}.ecar"
    await downloader.download(url, archive, max_bytes=limits.max_download_bytes)
    try:
        return await asyncio.to_thread(extract_ecar, archive, workdir / name, limits)
    finally:
        archive.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ building


def _envelope(api_id: str) -> dict[str, Any]:
    return {
        "id": api_id,
        "ver": "1.0",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"resmsgid": str(uuid.uuid4())},
    }


def build_ecar(description: Mapping[str, Any]) -> bytes:
    """A valid ECAR (zip bytes) from a description::

        {"items": [metadata, ...],                # manifest.json archive.items (the object first)
         "hierarchy": {...root, "children": [...]} | None,   # hierarchy.json, under hierarchy_key
         "hierarchy_key": "questionset",          # default: the first item's objectType lowercased
         "files": {"<path>": bytes | str}}        # assets (str is written as UTF-8)

    A description with ``identifier`` (and no ``items``) is one object: its metadata is the only item.
    """
    items = description.get("items")
    if items is None:
        meta = description.get("metadata") or {
            k: v for k, v in description.items() if k not in ("hierarchy", "files", "hierarchy_key")
        }
        items = [meta]
    items = [dict(i) for i in items]
    manifest = _envelope("sunbird.content.archive")
    manifest["archive"] = {"count": len(items), "ttl": 24, "items": items}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False))
        hierarchy = description.get("hierarchy")
        if hierarchy is not None:
            key = description.get("hierarchy_key") or str(items[0].get("objectType", "questionset")).lower()
            doc = _envelope(f"sunbird.{key}.hierarchy")
            doc[key] = hierarchy
            zf.writestr(HIERARCHY, json.dumps(doc, ensure_ascii=False))
        for path, data in (description.get("files") or {}).items():
            rel = _safe_name(str(path))
            zf.writestr(rel, data.encode("utf-8") if isinstance(data, str) else bytes(data))
    return buf.getvalue()
