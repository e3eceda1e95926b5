"""ECAR packages (zips with ``manifest.json``, ``hierarchy.json`` and assets): safe download and extraction,
and a builder for valid ones (used by the sandbox, the tests and the demo).

Extraction refuses, as a :class:`PermanentError` naming the entry and the reason, an archive that is not a
zip, an entry whose path would leave the extraction folder (``..`` segments: zip-slip), an absolute path (or a
drive letter), a symlink entry, more entries than ``max_entries``, and an archive that expands past
``max_expanded_bytes``: checked both on the sizes the archive declares and on the bytes actually written (a
zip bomb can lie in its headers).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import stat
import time
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cokreat_jobs.core.errors import PermanentError

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
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class EcarLimits:
    max_download_bytes: int = 200 * 1024 * 1024
    max_expanded_bytes: int = 500 * 1024 * 1024
    max_entries: int = 10_000

    @classmethod
    def from_config(cls, cfg: JobConfig, prefix: str = "auto_creator_v2.ecar.") -> EcarLimits:
        d = cls()
        return cls(
            max_download_bytes=cfg.get_int(prefix + "max_download_bytes", d.max_download_bytes),
            max_expanded_bytes=cfg.get_int(prefix + "max_expanded_bytes", d.max_expanded_bytes),
            max_entries=cfg.get_int(prefix + "max_entries", d.max_entries),
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


def _open_zip(archive: str | os.PathLike[str]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise PermanentError(f"the package is not a valid ECAR (zip): {e}") from None


def _checked_entries(zf: zipfile.ZipFile, limits: EcarLimits) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every entry with its safe relative path, or PermanentError for the whole package (entry count, declared
    size, a symlink, an absolute path, a zip-slip path). Entries with an empty name are left out."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise PermanentError(
            f"unsafe package: {len(infos)} entries, more than the limit of {limits.max_entries}"
        )
    declared = sum(max(i.file_size, 0) for i in infos)
    if declared > limits.max_expanded_bytes:
        raise PermanentError(
            f"unsafe package: expands to {declared} bytes, over the limit of {limits.max_expanded_bytes}"
        )
    entries: list[tuple[zipfile.ZipInfo, str]] = []
    for info in infos:
        if _is_symlink(info):
            raise PermanentError(f"unsafe package: entry {info.filename!r} is a symbolic link")
        rel = _safe_name(info.filename)
        if rel:
            entries.append((info, rel))
    return entries


class _Expansion:
    """Counts the bytes actually expanded across a package: a zip bomb can lie in its headers."""

    def __init__(self, limits: EcarLimits) -> None:
        self.limit = limits.max_expanded_bytes
        self.total = 0

    def copy(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Any) -> None:
        try:
            with zf.open(info) as src:
                while chunk := src.read(_CHUNK):
                    self.total += len(chunk)
                    if self.total > self.limit:
                        raise PermanentError(
                            "unsafe package: expands past the limit of "
                            f"{self.limit} bytes (sizes in the archive understated)"
                        )
                    if out is not None:
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise PermanentError(f"the package is corrupt at entry {info.filename!r}: {e}") from None


def extract_ecar(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: EcarLimits
) -> ExtractedEcar:
    """Extract ``archive`` into ``dest`` (blocking; see the module docstring for what is refused)."""
    target = Path(dest).resolve()
    target.mkdir(parents=True, exist_ok=True)
    written_names: list[str] = []
    with _open_zip(archive) as zf:
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
            with open(path, "wb") as out:
                expansion.copy(zf, info, out)
            written_names.append(path.relative_to(target).as_posix())
    manifest = _load_json(target / MANIFEST, required=True)
    hierarchy = _load_json(target / HIERARCHY, required=False)
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
    found: dict[str, bytes] = {}
    with _open_zip(archive) as zf:
        expansion = _Expansion(limits)
        for info, rel in _checked_entries(zf, limits):
            if info.is_dir():
                continue
            if rel in (MANIFEST, HIERARCHY):
                buf = io.BytesIO()
                expansion.copy(zf, info, buf)
                found[rel] = buf.getvalue()
            else:
                expansion.copy(zf, info, None)
    manifest = _parse_json(MANIFEST, found.get(MANIFEST), required=True)
    hierarchy = _parse_json(HIERARCHY, found.get(HIERARCHY), required=False)
    if not isinstance(manifest, dict):
        raise PermanentError(f"the package's {MANIFEST} is not a JSON object")
    return ExtractedEcar(
        Path(archive).parent,
        manifest,
        hierarchy if isinstance(hierarchy, dict) else None,
        sorted(found),
    )


def _parse_json(name: str, data: bytes | None, required: bool) -> Any:
    if data is None:
        if required:
            raise PermanentError(f"the package has no {name}")
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise PermanentError(f"the package's {name} is not valid JSON: {e}") from None


def _load_json(path: Path, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise PermanentError(f"the package has no {path.name}")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise PermanentError(f"the package's {path.name} is not valid JSON: {e}") from None


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
