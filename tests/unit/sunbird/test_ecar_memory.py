"""Peak memory of reading the worst packages (HARDENING 5), with the shipped limits.

Measured with tracemalloc (every Python allocation, zlib's buffers included), around `read_ecar` only: the
package is built and written to disk before the measurement starts. The reference figures were 1.36 GB RSS
for a 50 MiB manifest (a 50 KiB download) and 242 MiB for 400,000 entries.

- a 50 MiB manifest, honest header: refused from the size it declares, before anything is expanded;
- the same with its size understated to 100 bytes: zipfile reads no more than that and finds the CRC wrong
  (were it to read on, the JSON cap is also enforced on the bytes expanded);
- a manifest and a hierarchy at the JSON cap made of empty containers only (the most objects a byte of JSON
  can make): accepted, and the bound covers parsing both;
- 400,000 entries (declared honestly, and declared as 1): refused before zipfile parses the directory.
"""

from __future__ import annotations

import gc
import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.sunbird.ecar import EcarLimits, read_ecar

MiB = 1024 * 1024
LIMITS = EcarLimits()  # the shipped defaults
JSON_CAP = 4 * MiB  # their cap on one JSON entry


def peak_of(call: Callable[[], Any]) -> tuple[int, Any]:
    """(peak traced bytes above the start, the call's result or exception)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result: Any = call()
    except Exception as e:  # noqa: BLE001 - the refusal is the result
        result = e
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, result


def big_manifest(path: Path, size: int) -> Path:
    head = b'{"archive": {"items": [{"identifier": "do_1"}]}, "pad": "'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("manifest.json", "w") as out:
            out.write(head)
            chunk = b"x" * MiB
            for _ in range(size // MiB):
                out.write(chunk)
            out.write(b'"}')
    return path


def understate(path: Path, claimed: int) -> Path:
    """The same package with the manifest's declared size (central directory and local header) ``claimed``."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("manifest.json")
    central = raw.find(b"PK\x01\x02")
    raw[central + 24 : central + 28] = claimed.to_bytes(4, "little")
    raw[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


def stored_zip(count: int, declared: int) -> bytes:
    """``count`` empty stored entries, built directly (zipfile takes seconds for 400,000); the end records
    (zip64 ones above 65,535) declare ``declared`` entries."""
    local, central = bytearray(), bytearray()
    for i in range(count):
        name = b"manifest.json" if i == 0 else b"f%d" % i
        offset = len(local)
        local += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        header = (b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset)
        central += struct.pack("<4s6H3I5H2I", *header) + name
    zip64 = b""
    if declared > 0xFFFF:
        at = len(local) + len(central)
        zip64 = struct.pack(
            "<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, declared, declared, len(central), len(local)
        ) + struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)
    short = min(declared, 0xFFFF)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, short, short, len(central), len(local), 0)
    return bytes(local + central + zip64 + end)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ecar-memory")
    out = {
        "manifest-50MiB": big_manifest(root / "big.ecar", 50 * MiB),
        "manifest-50MiB-understated": understate(big_manifest(root / "lying.ecar", 50 * MiB), 100),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, head, tail in (
            ("manifest.json", b'{"archive": {"items": [{"identifier": "do_1"}]}, "c": [', b"[]]}"),
            ("hierarchy.json", b'{"questionset": {"c": [', b"[]]}}"),
        ):
            doc = head + b"[]," * ((JSON_CAP - len(head) - len(tail)) // 3) + tail
            assert JSON_CAP - 3 < len(doc) <= JSON_CAP, len(doc)
            zf.writestr(name, doc)
    (root / "containers.ecar").write_bytes(buf.getvalue())
    out["json-at-the-cap-containers"] = root / "containers.ecar"
    (root / "many.ecar").write_bytes(stored_zip(400_001, 400_001))
    out["entries-400000"] = root / "many.ecar"
    (root / "many-lying.ecar").write_bytes(stored_zip(400_001, 1))
    out["entries-400000-declared-1"] = root / "many-lying.ecar"
    return out


# (case, what the outcome says, bound on the peak)
CASES = [
    ("manifest-50MiB", "manifest.json is 52428859 bytes, over the 4194304-byte limit", 1 * MiB),
    # zipfile reads no more than the declared size, then finds the CRC wrong
    ("manifest-50MiB-understated", "the package is corrupt at entry 'manifest.json'", 2 * JSON_CAP),
    ("json-at-the-cap-containers", "", 256 * MiB),
    ("entries-400000", "400001 entries, more than the limit of 10000", 1 * MiB),
    ("entries-400000-declared-1", "more than the limit of 10000", 1 * MiB),
]


@pytest.mark.parametrize(("case", "outcome", "bound"), CASES, ids=[c[0] for c in CASES])
def test_peak_memory_of_the_worst_packages(
    packages: dict[str, Path], case: str, outcome: str, bound: int, record_property: Any
) -> None:
    path = packages[case]
    assert path.stat().st_size < 50 * MiB  # what the download cap lets in
    peak, result = peak_of(lambda: read_ecar(path, LIMITS))
    record_property("peak_mib", round(peak / MiB, 2))
    print(f"{case}: file {path.stat().st_size / MiB:.2f} MiB, peak {peak / MiB:.2f} MiB, {result!s:.100}")
    if outcome:
        assert isinstance(result, PermanentError), result
        assert outcome in str(result)
    else:
        assert not isinstance(result, Exception), result
        del result
    assert peak < bound, f"{case}: peak {peak / MiB:.1f} MiB, bound {bound / MiB:.1f} MiB"
