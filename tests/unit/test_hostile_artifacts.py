"""Hostile artifacts (issue 8 §2) at the level of each job's processor, against a real sandbox.

auto-creator-v2 (both stages, as the pipeline runs them) gets ECARs with zip-slip entries, absolute paths, zip
bombs (expanded size, understated sizes, entry count), symlink entries, an oversize or deeply nested JSON
entry and a duplicate ``manifest.json``; both content jobs get artifact URLs
(auto-creator-v2's ECAR ``downloadUrl``, a re-hosted cloud prop, a variant, a child's ``downloadUrl`` and a
child's cloud prop; content-auto-creator's ``artifactUrl`` and ``appIcon``) that point at a loopback port
nobody allows, a host name resolving to loopback, link-local and private addresses, ``file://`` and
``ftp://``, an oversize file streamed without ``Content-Length``, and redirects to a forbidden address or
scheme. auto-creator-v2's ``edata.repository`` (a JSON read whose answer the job publishes, HARDENING 2) gets
the same addresses and redirects, origins outside ``repository_allowed_sources`` and an oversize answer; the
forbidden server plays the internal service and answers a repository envelope with a secret in it, so a
read that reached it would publish the secret.

The network guard runs as in production: only the sandbox's and the evil server's ports are allowed
(``http.allow_private_networks``), and the repository allow-list names every hostile origin, so that what
refuses them is the network guard, not the name rule (which has cases of its own).

Each case must end failed (reason ``permanent``) with a reason naming its cause in the failed record's
``failInfo.error`` (and, for content-auto-creator, in the content's ``importError``), nothing written outside
the job's temp directory (its parent holds nothing else, no escaped file exists), the temp directory empty,
and the forbidden server never asked anything. A good event on the same settings succeeds, so each refusal
is the case's own and not a setting that refuses everything.

:class:`HostileServers` and the case tables are reused by ``tests/e2e/test_hostile_artifacts_e2e.py``.
"""

from __future__ import annotations

import asyncio
import io
import stat
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync
from cokreat_jobs.core.config import load_config
from cokreat_jobs.dev.samples.question_sets import import_event, import_then_link, question_set
from cokreat_jobs.dev.samples.question_sets import job_overrides as acv2_overrides
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.jobs.content_auto_creator.processor import ContentAutoCreator
from cokreat_jobs.sunbird.ecar import build_ecar

LIMIT = 1_000_000  # every size cap of these tests: download, expanded ECAR, re-hosted file, artifact
MAX_ENTRIES = 100
MAX_JSON = LIMIT // 4  # the cap on manifest.json and hierarchy.json: under the expanded-size cap
STREAM_BYTES = 32 * LIMIT  # what the chunked endpoint sends if nobody cuts it off (more than socket buffers)
CHANNEL = "ch_hostile"
INTERNAL_SECRET = "secret from a private service"


# ---------------------------------------------------------------------------------------- hostile servers


class HostileServers:
    """Two tiny HTTP servers on 127.0.0.1, in a thread (and event loop) of their own.

    ``evil`` runs on a port the jobs' ``http.allow_private_networks`` allows (as the sandbox's is): it serves
    the hostile ECARs (``/ecar/<case>.ecar``), plain files (``/file/<name>``), a stream without
    ``Content-Length`` (``/chunked/<name>``, chunked transfer encoding, ``STREAM_BYTES`` long), redirects
    (``/redirect/<target>/<name>``: to the forbidden server, to ``file://``, to the cloud metadata address)
    and a source repository (``/api/questionset/v1/read/<id>``: ``result.questionset`` = ``repository[id]``).
    ``forbidden`` runs on another loopback port, which nothing allows: the internal service. It records every
    request it gets (the jobs must never reach it) and answers each with a repository envelope holding
    :data:`INTERNAL_SECRET`, which must never be published.
    """

    def __init__(self) -> None:
        self.ecars: dict[str, bytes] = {}
        self.repository: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {"lesson.pdf": b"%PDF-1.4 hostile-test lesson\n" + b"x" * 500}
        self.forbidden_requests: list[str] = []
        self.stream_sent: list[int] = []  # bytes each chunked answer got out before it ended
        self.evil_port = self.forbidden_port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-servers", daemon=True)
        self._runners: list[web.AppRunner] = []

    @property
    def evil(self) -> str:
        return f"http://127.0.0.1:{self.evil_port}"

    @property
    def forbidden(self) -> str:
        return f"http://127.0.0.1:{self.forbidden_port}"

    def start(self) -> HostileServers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(15)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
        self._loop.close()

    def __enter__(self) -> HostileServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def _start(self) -> None:
        evil = web.Application()
        evil.router.add_get("/ecar/{name}", self._ecar)
        evil.router.add_get("/file/{name}", self._file)
        evil.router.add_get("/chunked/{name}", self._chunked)
        evil.router.add_get("/redirect/{target}/{name}", self._redirect)
        evil.router.add_get("/api/questionset/v1/read/{id}", self._repository)
        forbidden = web.Application()
        forbidden.router.add_route("*", "/{tail:.*}", self._forbidden)
        self.evil_port = await self._serve(evil)
        self.forbidden_port = await self._serve(forbidden)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    async def _ecar(self, request: web.Request) -> web.Response:
        data = self.ecars.get(request.match_info["name"].removesuffix(".ecar"))
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()  # no Content-Length: the cap can only be enforced while streaming
        await resp.prepare(request)
        sent = 0
        try:
            while sent < STREAM_BYTES:
                await resp.write(b"\0" * 65536)
                sent += 65536
            await resp.write_eof()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self.stream_sent.append(sent)
        return resp

    async def _redirect(self, request: web.Request) -> web.Response:
        target, name = request.match_info["target"], request.match_info["name"]
        location = {
            "forbidden": f"{self.forbidden}/{name}",
            "file": "file:///etc/passwd",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }[target]
        return web.Response(status=302, headers={"Location": location})

    async def _repository(self, request: web.Request) -> web.Response:
        found = self.repository.get(request.match_info["id"])
        if found is None:
            return web.json_response({"params": {"err": "NOT_FOUND"}, "result": {}}, status=404)
        return web.json_response({"responseCode": "OK", "result": {"questionset": found}})

    async def _forbidden(self, request: web.Request) -> web.Response:
        self.forbidden_requests.append(f"{request.method} {request.path_qs}")
        # what an internal service would answer a repository read: published if the job ever read it
        envelope = {"responseCode": "OK", "result": {"questionset": {"note": INTERNAL_SECRET}}}
        return web.json_response(envelope)

    def forbidden_is_reachable(self) -> bool:
        """The forbidden server answers when asked directly (so its 0 requests mean something); the request
        is taken off its log again."""
        with urllib.request.urlopen(f"{self.forbidden}/probe", timeout=10) as r:
            ok = r.status == 200
        assert self.forbidden_requests[-1] == "GET /probe"
        self.forbidden_requests.pop()
        return ok


# -------------------------------------------------------------------------------------------- ECAR cases


def _with_entry(identifier: str, name: str | zipfile.ZipInfo, data: bytes) -> bytes:
    """A valid ECAR for ``identifier`` with one hostile entry added at the end."""
    buf = io.BytesIO(build_ecar({"identifier": identifier, "objectType": "QuestionSet"}))
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _understated_bomb(identifier: str) -> bytes:
    """A bomb whose headers claim its big entry expands to 10 bytes (local header and central directory).

    Python's zipfile reads no more than the declared size and then finds the CRC wrong: the entry is
    refused as corrupt after 10 bytes, before the written-bytes cap is even needed."""
    raw = bytearray(_with_entry(identifier, "assets/big.bin", b"\0" * (3 * LIMIT)))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("assets/big.bin")
    central = raw.rfind(b"PK\x01\x02")
    assert raw[central + 46 : central + 46 + len(info.filename)] == info.filename.encode()
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    raw[info.header_offset + 22 : info.header_offset + 26] = (10).to_bytes(4, "little")
    return bytes(raw)


def _many_entries(identifier: str) -> bytes:
    buf = io.BytesIO(build_ecar({"identifier": identifier, "objectType": "QuestionSet"}))
    with zipfile.ZipFile(buf, "a") as zf:
        for i in range(MAX_ENTRIES + 20):
            zf.writestr(f"assets/f{i}.txt", b"")
    return buf.getvalue()


def _symlink(identifier: str, target: str) -> bytes:
    info = zipfile.ZipInfo("assets/evil-link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _with_entry(identifier, info, target.encode())


# Extraction happens in <temp>/<event folder>/root/root-extracted: four ".." reach the temp directory's
# parent, five the test's own folder.
SLIP_TO_PARENT = "../" * 4
ESCAPED = "escaped-by-hostile-ecar.txt"  # the name every escaping entry would write: must exist nowhere


@dataclass(frozen=True)
class EcarCase:
    name: str
    error: str  # fragments of failInfo.error, separated by "|"

    def build(self, identifier: str, root: Path) -> bytes:
        n = self.name
        if n == "zip-slip":
            return _with_entry(identifier, SLIP_TO_PARENT + ESCAPED, b"pwned")
        if n == "zip-slip-shallow":
            return _with_entry(identifier, "assets/../../" + ESCAPED, b"pwned")
        if n == "zip-slip-backslash":
            return _with_entry(identifier, SLIP_TO_PARENT.replace("/", "\\") + ESCAPED, b"pwned")
        if n == "absolute-path":
            return _with_entry(identifier, str(root / ESCAPED), b"pwned")
        if n == "absolute-path-etc":
            return _with_entry(identifier, f"/etc/{ESCAPED}", b"pwned")
        if n == "zip-bomb-size":
            return _with_entry(identifier, "assets/big.bin", b"\0" * (3 * LIMIT))
        if n == "zip-bomb-understated":
            return _understated_bomb(identifier)
        if n == "zip-bomb-entries":
            return _many_entries(identifier)
        if n == "symlink":
            return _symlink(identifier, str(root / ESCAPED))
        if n == "json-oversize":
            return build_ecar(
                {"identifier": identifier, "objectType": "QuestionSet", "pad": "x" * 2 * MAX_JSON}
            )
        if n == "json-deep":
            return _with_entry(identifier, "hierarchy.json", b"[" * 100_000 + b"]" * 100_000)
        if n == "json-duplicate":
            return _with_entry(identifier, "./manifest.json", b'{"archive": {"items": []}}')
        raise AssertionError(n)


ECAR_CASES = [
    EcarCase(
        "zip-slip",
        f"unsafe package: entry '{SLIP_TO_PARENT}{ESCAPED}' leaves the extraction folder (zip-slip)",
    ),
    EcarCase(
        "zip-slip-shallow",
        "unsafe package: entry 'assets/../../" + ESCAPED + "' leaves the extraction folder",
    ),
    EcarCase("zip-slip-backslash", "leaves the extraction folder (zip-slip)"),
    EcarCase("absolute-path", "has an absolute path"),
    EcarCase("absolute-path-etc", f"unsafe package: entry '/etc/{ESCAPED}' has an absolute path"),
    EcarCase("zip-bomb-size", f"unsafe package: expands to 3|bytes, over the limit of {LIMIT}"),
    EcarCase("zip-bomb-understated", "the package is corrupt at entry 'assets/big.bin': Bad CRC-32"),
    EcarCase(
        "zip-bomb-entries",
        f"unsafe package: {MAX_ENTRIES + 20 + 1} entries, more than the limit of {MAX_ENTRIES}",
    ),
    EcarCase("symlink", "unsafe package: entry 'assets/evil-link' is a symbolic link"),
    EcarCase("json-oversize", f"unsafe package: manifest.json is 5|bytes, over the {MAX_JSON}-byte limit"),
    EcarCase("json-deep", "unsafe package: hierarchy.json is nested deeper than 100 levels"),
    EcarCase(
        "json-duplicate",
        "unsafe package: manifest.json appears twice in the package (entries 'manifest.json' and "
        "'./manifest.json')",
    ),
]


# ---------------------------------------------------------------------------------------- download cases


@dataclass(frozen=True)
class UrlCase:
    """An artifact URL; ``{evil}``, ``{forbidden}``, ``{fport}`` and ``{ext}`` are filled in per run."""

    name: str
    url: str
    error: list[str]  # fragments of the reason, all present
    # the content's importError when it says less than the reason (an address refusal: HARDENING 11)
    shown: str | None = None

    def fill(self, servers: HostileServers, ext: str) -> tuple[str, list[str]]:
        values = {
            "evil": servers.evil,
            "forbidden": servers.forbidden,
            "fport": servers.forbidden_port,
            "ext": ext,
        }
        return self.url.format(**values), [e.format(**values) for e in self.error]


NOT_ALLOWED = "refused: not an allowed address"


URL_CASES = [
    UrlCase(
        "ssrf-loopback-port",
        "{forbidden}/private{ext}",
        ["refused address 127.0.0.1 (port {fport})"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "ssrf-localhost-name",
        "http://localhost:{fport}/private{ext}",
        ["localhost resolves to", "does not allow it on port {fport}"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "ssrf-ipv6-loopback",
        "http://[::1]:{fport}/private{ext}",
        ["refused address ::1 (port {fport})"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "ssrf-link-local",
        "http://169.254.169.254/latest/meta-data{ext}",
        ["refused address 169.254.169.254 (port 80)"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "ssrf-private",
        "http://10.20.30.40:8080/x{ext}",
        ["refused address 10.20.30.40 (port 8080)"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "drive-lookalike",  # mentions Drive but is not on its host: fetched as what it is, and refused
        "{forbidden}/drive.google.com/uc?export=download&id=abc{ext}",
        ["refused address 127.0.0.1 (port {fport})"],
        NOT_ALLOWED,
    ),
    UrlCase("scheme-file", "file:///etc/passwd{ext}", ["refused URL scheme 'file'"]),
    UrlCase("scheme-ftp", "ftp://127.0.0.1:{fport}/x{ext}", ["refused URL scheme 'ftp'"]),
    UrlCase(
        "oversize-chunked",
        "{evil}/chunked/big{ext}",
        [f"over the {LIMIT}-byte limit (cut off while streaming)"],
    ),
    UrlCase(
        "redirect-forbidden",
        "{evil}/redirect/forbidden/x{ext}",
        ["refused redirect from {evil}/redirect/forbidden/x", "refused address 127.0.0.1 (port {fport})"],
        NOT_ALLOWED,
    ),
    UrlCase(
        "redirect-file", "{evil}/redirect/file/x{ext}", ["refused redirect from", "refused URL scheme 'file'"]
    ),
    UrlCase(
        "redirect-link-local",
        "{evil}/redirect/metadata/x{ext}",
        ["refused redirect from", "refused address 169.254.169.254"],
        NOT_ALLOWED,
    ),
]
# For the second URL of each job (a re-hosted cloud prop, the content's icon): one case of each kind.
ICON_CASES = [
    c
    for c in URL_CASES
    if c.name in ("ssrf-loopback-port", "scheme-file", "oversize-chunked", "redirect-forbidden")
]


# auto-creator-v2's edata.repository: every address and redirect case of the network guard (each error also
# says "not an allowed address"), and the cases the name rule (repository_allowed_sources) refuses first.
NOT_AN_ALLOWED_ADDRESS = "not an allowed address"
NOT_AN_ALLOWED_SOURCE = "is not an allowed source repository"
REPOSITORY_CASES = [
    *(
        UrlCase(c.name, c.url, [*c.error, NOT_AN_ALLOWED_ADDRESS], c.shown)
        for c in URL_CASES
        if c.shown == NOT_ALLOWED
    ),
    UrlCase(
        "redirect-file", "{evil}/redirect/file/x{ext}", ["refused redirect from", "refused URL scheme 'file'"]
    ),
    UrlCase(
        "origin-elsewhere", "https://elsewhere.test/api/questionset/v1/read/x{ext}", [NOT_AN_ALLOWED_SOURCE]
    ),
    UrlCase(
        "origin-other-port", "http://127.0.0.1:1/api/questionset/v1/read/x{ext}", [NOT_AN_ALLOWED_SOURCE]
    ),
    UrlCase("scheme-file", "file:///etc/passwd{ext}", [NOT_AN_ALLOWED_SOURCE]),
    UrlCase("scheme-ftp", "ftp://127.0.0.1:{fport}/x{ext}", [NOT_AN_ALLOWED_SOURCE]),
    UrlCase("oversize-chunked", "{evil}/chunked/big{ext}", [f"answered more than {LIMIT} bytes"]),
]


def repository_origins(servers: HostileServers) -> list[str]:
    """``repository_allowed_sources`` naming every hostile origin (so the network guard is what refuses)."""
    fport = servers.forbidden_port
    return [
        servers.evil,
        servers.forbidden,
        f"localhost:{fport}",
        f"[::1]:{fport}",
        "169.254.169.254",
        "10.20.30.40:8080",
    ]


def oid_of(prefix: str, case: str) -> str:
    return f"do_{prefix}_" + case.replace("-", "_")


# -------------------------------------------------------------------------------------------- settings


def acv2_settings(sandbox: str, root: Path, temp: Path, servers: HostileServers) -> list[str]:
    """auto-creator-v2 on the sandbox with sqlite stores; only the sandbox's and the evil server's ports
    allowed; every cap ``LIMIT``."""
    sandbox_port = sandbox.rsplit(":", 1)[1]
    repositories = ",".join(f'"{o}"' for o in [f"{sandbox}/api", *repository_origins(servers)])
    return [
        *acv2_overrides(sandbox, root / "storage", root / "graph.db", root / "external.db"),
        f'http.allow_private_networks=["127.0.0.1:{sandbox_port}","127.0.0.1:{servers.evil_port}"]',
        f"auto_creator_v2.repository_allowed_sources=[{repositories}]",
        f"auto_creator_v2.repository_max_bytes={LIMIT}",
        f"auto_creator_v2.temp_file_location={temp}",
        f"auto_creator_v2.ecar.max_download_bytes={LIMIT}",
        f"auto_creator_v2.ecar.max_expanded_bytes={LIMIT}",
        f"auto_creator_v2.ecar.max_entries={MAX_ENTRIES}",
        f"auto_creator_v2.ecar.max_json_bytes={MAX_JSON}",
        f"auto_creator_v2.max_file_bytes={LIMIT}",
        "http.retry.max_attempts=2",
    ]


def content_settings(sandbox: str, root: Path, temp: Path, servers: HostileServers) -> list[str]:
    """content-auto-creator on the sandbox; only the sandbox's and the evil server's ports allowed; sources
    unrestricted (so every URL reaches the downloader's own checks); artifacts capped at ``LIMIT``."""
    sandbox_port = sandbox.rsplit(":", 1)[1]
    return [
        f"service.search.basePath={sandbox}",
        f"service.content_service.basePath={sandbox}",
        f'http.allow_private_networks=["127.0.0.1:{sandbox_port}","127.0.0.1:{servers.evil_port}"]',
        "cloud_storage_type=local",
        f"cloud_storage.local.path={root / 'storage'}",
        f"cloud_storage.public_base_url={sandbox}/_files",
        "content_auto_creator.artifact_upload_allowed_source=[]",
        f"content_auto_creator.artifact_upload_max_size={LIMIT}",
        f"content_auto_creator.temp_file_location={temp}",
        "content_auto_creator.state_wait_backoff_ms=50",
        "http.retry.backoff_ms=20",
        "http.retry.max_attempts=2",
    ]


def content_event(oid: str, artifact: str, icon: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"Hostile {oid}",
        "code": f"code-{oid}",
        "mimeType": "application/pdf",
        "primaryCategory": "Learning Resource",
        "contentType": "Resource",
        "artifactUrl": artifact,
        "lastPublishedBy": "hostile-test",
    }
    if icon is not None:
        metadata["appIcon"] = icon
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": 1617174912468,
        "mid": f"LP.{oid}",
        "actor": {"id": "Auto Creator", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": CHANNEL},
        "object": {"id": oid, "ver": "1"},
        "edata": {
            "action": "auto-create",
            "objectType": "Content",
            "repository": f"https://dock.sunbirded.org/api/content/v1/read/{oid}",
            "metadata": metadata,
            "iteration": 1,
        },
    }


def sandbox_node(sandbox: str, oid: str) -> dict[str, Any] | None:
    r = httpx.get(f"{sandbox}/_sandbox/nodes/{oid}", timeout=30)
    return r.json() if r.status_code == 200 else None


def seed_source(sandbox: str, oid: str, **metadata: Any) -> None:
    obj, _ = question_set(oid, 1)
    obj["metadata"].update(metadata)
    r = httpx.post(f"{sandbox}/_sandbox/seed", json={"source_objects": [obj]}, timeout=30)
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------- what must hold


def assert_contained(root: Path, work: Path, temp: Path) -> None:
    """The temp directory is empty, its parent holds nothing but it, no escaping entry was written (under
    ``root``, the test's folder, nor in /etc or /tmp) and no symlink was made."""
    assert temp.is_dir() and list(temp.iterdir()) == [], list(temp.rglob("*"))[:10]
    assert list(work.iterdir()) == [temp], list(work.iterdir())
    # every escape of these cases would land under ``root`` (the temp dir's parent is ../../../.. away)
    escaped = [
        *root.rglob(ESCAPED),
        *(p / ESCAPED for p in (Path("/etc"), Path("/tmp")) if (p / ESCAPED).exists()),
    ]
    assert escaped == [], escaped
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert links == [], links


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("hostile-sandbox")
    settings = {"storage_dir": str(root / "storage"), "graph_store": f"sqlite:///{root / 'graph.db'}"}
    server = ServerThread(root / "sandbox", settings).start()
    try:
        yield server.base_url, root
    finally:
        server.stop()


@dataclass
class Env:
    sandbox: str
    root: Path  # the sandbox's folder (stores, storage)
    case_root: Path  # this test's folder
    work: Path  # the temp directory's parent: must hold nothing but it
    temp: Path
    servers: HostileServers


@pytest.fixture()
def env(sandbox: tuple[str, Path], tmp_path: Path) -> Iterator[Env]:
    url, root = sandbox
    work = tmp_path / "work"
    temp = work / "job-tmp"
    temp.mkdir(parents=True)
    with HostileServers() as servers:
        yield Env(url, root, tmp_path, work, temp, servers)
        assert servers.forbidden_requests == [], "the forbidden server was reached"
        assert servers.forbidden_is_reachable()


# ------------------------------------------------------------------------------------------ auto-creator-v2


def run_acv2(env: Env, event: dict[str, Any]) -> Any:
    cfg = load_config(
        "auto-creator-v2", overrides=acv2_settings(env.sandbox, env.root, env.temp, env.servers), env={}
    )
    return asyncio.run(import_then_link(cfg, event))


def assert_acv2_failed(env: Env, out: Any, oid: str, fragments: list[str]) -> None:
    assert out.kind == "failed" and out.reason == "permanent", (out.kind, out.reason, out.detail)
    error = out.failed_record["failInfo"]["error"]
    for fragment in fragments:
        assert fragment in error, (fragment, error)
    assert out.failed_record["failInfo"]["reason"] == "permanent"
    assert out.failed_record["jobName"] == "auto-creator-v2" and out.failed_record["edata"]["iteration"] == 2
    assert read_node_sync(str(env.root / "graph.db"), oid) is None, "nothing stored for a refused package"
    assert_nothing_internal_published(env.root)
    assert_contained(env.case_root, env.work, env.temp)


def assert_nothing_internal_published(root: Path) -> None:
    """The internal service's answer is in no store (graph, external, their journals) and no stored file."""
    stores = [p for p in root.glob("*.db*") if p.is_file()]  # none yet when no event has stored anything
    files = [p for p in (root / "storage").rglob("*") if p.is_file()] if (root / "storage").exists() else []
    leaked = [p for p in [*stores, *files] if INTERNAL_SECRET.encode() in p.read_bytes()]
    assert leaked == [], leaked


def test_acv2_good_package_passes_on_these_settings(env: Env) -> None:
    oid = "do_hx_good"
    seed_source(env.sandbox, oid, appIcon=f"{env.servers.evil}/file/lesson.pdf")
    out = run_acv2(env, import_event(env.sandbox, oid))
    assert out.kind == "success", (out.kind, out.reason, out.detail)
    assert read_node_sync(str(env.root / "graph.db"), oid) is not None
    assert_contained(env.case_root, env.work, env.temp)


@pytest.mark.parametrize("case", ECAR_CASES, ids=lambda c: c.name)
def test_acv2_hostile_ecar(env: Env, case: EcarCase) -> None:
    oid = oid_of("hx_ecar", case.name)
    env.servers.ecars[case.name] = case.build(oid, env.case_root)
    url = f"{env.servers.evil}/ecar/{case.name}.ecar"
    out = run_acv2(env, import_event(env.sandbox, oid, extra_metadata={"downloadUrl": url}))
    assert_acv2_failed(env, out, oid, case.error.split("|"))


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c.name)
def test_acv2_hostile_ecar_url(env: Env, case: UrlCase) -> None:
    oid = oid_of("hx_url", case.name)
    url, fragments = case.fill(env.servers, ".ecar")
    out = run_acv2(env, import_event(env.sandbox, oid, extra_metadata={"downloadUrl": url}))
    assert_acv2_failed(env, out, oid, fragments)


@pytest.mark.parametrize("case", ICON_CASES, ids=lambda c: c.name)
def test_acv2_hostile_rehosted_cloud_prop(env: Env, case: UrlCase) -> None:
    """The package is fine; the object's appIcon (re-hosted like every cloud prop) is hostile."""
    oid = oid_of("hx_icon", case.name)
    url, fragments = case.fill(env.servers, ".png")
    seed_source(env.sandbox, oid, appIcon=url)
    out = run_acv2(env, import_event(env.sandbox, oid))
    assert_acv2_failed(env, out, oid, fragments)


@pytest.mark.parametrize("case", REPOSITORY_CASES, ids=lambda c: c.name)
def test_acv2_hostile_repository(env: Env, case: UrlCase) -> None:
    """The package and its files are fine (the sandbox's); ``edata.repository`` is hostile."""
    oid = oid_of("hx_repo", case.name)
    seed_source(env.sandbox, oid)
    url, fragments = case.fill(env.servers, "")
    event = import_event(env.sandbox, oid)
    event["edata"]["repository"] = url
    out = run_acv2(env, event)
    assert_acv2_failed(env, out, oid, fragments)


def test_acv2_repository_from_an_allowed_origin_passes(env: Env) -> None:
    """A repository on another allowed origin (the evil server's) is read, and its answer published: the
    refusals above are the cases' own."""
    oid = "do_hx_repo_good"
    seed_source(env.sandbox, oid)
    env.servers.repository[oid] = {"identifier": oid, "name": "read from the evil origin", "status": "Live"}
    event = import_event(env.sandbox, oid)
    event["edata"]["repository"] = f"{env.servers.evil}/api/questionset/v1/read/{oid}"
    out = run_acv2(env, event)
    assert out.kind == "success", (out.kind, out.reason, out.detail)
    node = read_node_sync(str(env.root / "graph.db"), oid)
    assert node is not None and node["name"] == "read from the evil origin", node


@pytest.mark.parametrize("case", ICON_CASES, ids=lambda c: c.name)
def test_acv2_hostile_variant(env: Env, case: UrlCase) -> None:
    """The repository (an allowed origin) names a hostile variant; variants are re-hosted like cloud props."""
    oid = oid_of("hx_variant", case.name)
    seed_source(env.sandbox, oid)
    url, fragments = case.fill(env.servers, ".ecar")
    env.servers.repository[oid] = {"identifier": oid, "variants": {"spine": {"ecarUrl": url, "size": 1}}}
    event = import_event(env.sandbox, oid)
    event["edata"]["repository"] = f"{env.servers.evil}/api/questionset/v1/read/{oid}"
    out = run_acv2(env, event)
    assert_acv2_failed(env, out, oid, fragments)


def _set_with_child(oid: str, child: dict[str, Any]) -> bytes:
    """The ECAR of set ``oid`` whose hierarchy holds ``child`` (a question node)."""
    root = {"identifier": oid, "objectType": "QuestionSet", "name": f"Set {oid}"}
    return build_ecar(
        {
            "items": [root, child],
            "hierarchy": {**root, "children": [child]},
            "hierarchy_key": "questionset",
        }
    )


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c.name)
def test_acv2_hostile_child_download_url(env: Env, case: UrlCase) -> None:
    """The set's package names a child whose own package URL is hostile."""
    oid = oid_of("hx_child", case.name)
    seed_source(env.sandbox, oid)
    url, fragments = case.fill(env.servers, ".ecar")
    child = {"identifier": f"{oid}_q0", "objectType": "Question", "visibility": "Parent", "downloadUrl": url}
    env.servers.ecars[oid] = _set_with_child(oid, child)
    event = import_event(
        env.sandbox, oid, extra_metadata={"downloadUrl": f"{env.servers.evil}/ecar/{oid}.ecar"}
    )
    out = run_acv2(env, event)
    assert_acv2_failed(env, out, oid, fragments)
    assert read_node_sync(str(env.root / "graph.db"), f"{oid}_q0") is None


@pytest.mark.parametrize("case", ICON_CASES, ids=lambda c: c.name)
def test_acv2_hostile_child_cloud_prop(env: Env, case: UrlCase) -> None:
    """A child's package is fine; the child's appIcon at the source is hostile."""
    oid = oid_of("hx_childicon", case.name)
    url, fragments = case.fill(env.servers, ".png")
    obj, qids = question_set(oid, 1)
    obj["hierarchy"]["children"][0]["appIcon"] = url  # the child seeded from its node, icon included
    r = httpx.post(f"{env.sandbox}/_sandbox/seed", json={"source_objects": [obj]}, timeout=30)
    assert r.status_code == 200, r.text
    out = run_acv2(env, import_event(env.sandbox, oid))
    assert_acv2_failed(env, out, oid, fragments)
    assert read_node_sync(str(env.root / "graph.db"), qids[0]) is None


# ------------------------------------------------------------------------------------ content-auto-creator


def run_content(env: Env, event: dict[str, Any]) -> Any:
    cfg = load_config(
        "content-auto-creator",
        overrides=content_settings(env.sandbox, env.root, env.temp, env.servers),
        env={},
    )

    async def go() -> Any:
        processor = ContentAutoCreator.from_config(cfg)
        try:
            return await processor.process(event)
        finally:
            await processor.close()

    return asyncio.run(go())


def assert_content_failed(
    env: Env, out: Any, oid: str, fragments: list[str], shown: str | None = None
) -> None:
    """Failed with ``fragments`` in ``failInfo.error``, and in the content's importError unless ``shown``
    says what the uploader sees instead (then nothing of the reason shows there)."""
    assert out.is_failed and out.reason == "permanent", (out.kind, out.reason, out.detail)
    error = out.failed_record["failInfo"]["error"]
    node = sandbox_node(env.sandbox, oid)
    assert node is not None, "the content was created before its artifact was fetched"
    assert node["status"] == "Failed", node
    import_error = node.get("importError") or ""
    for fragment in fragments:
        assert fragment in error, (fragment, error)
        if shown is None:
            assert fragment in import_error, (fragment, import_error)
        else:
            assert fragment not in import_error, (fragment, import_error)
    if shown is not None:
        assert import_error == shown, import_error
    assert (
        out.failed_record["jobName"] == "content-auto-creator"
        and out.failed_record["edata"]["iteration"] == 2
    )
    assert not str(node.get("artifactUrl") or "").startswith(f"{env.sandbox}/_files/"), node["artifactUrl"]
    assert_contained(env.case_root, env.work, env.temp)


def test_content_good_artifact_passes_on_these_settings(env: Env) -> None:
    oid = "do_hc_good"
    lesson = f"{env.servers.evil}/file/lesson.pdf"
    out = run_content(env, content_event(oid, lesson, icon=lesson))
    assert out.is_success, (out.kind, out.reason, out.detail)
    node = sandbox_node(env.sandbox, oid)
    # published asynchronously by the sandbox: Review until its publisher gets to it
    assert node is not None and node["status"] in ("Review", "Live") and not node.get("importError"), node
    assert node["artifactUrl"].startswith(f"{env.sandbox}/_files/content/{oid}/"), node["artifactUrl"]
    assert_contained(env.case_root, env.work, env.temp)


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c.name)
def test_content_hostile_artifact_url(env: Env, case: UrlCase) -> None:
    oid = oid_of("hc_art", case.name)
    url, fragments = case.fill(env.servers, ".pdf")
    out = run_content(env, content_event(oid, url))
    assert_content_failed(env, out, oid, fragments, case.shown)


@pytest.mark.parametrize("case", ICON_CASES, ids=lambda c: c.name)
def test_content_hostile_app_icon(env: Env, case: UrlCase) -> None:
    oid = oid_of("hc_icon", case.name)
    url, fragments = case.fill(env.servers, ".png")
    out = run_content(env, content_event(oid, f"{env.servers.evil}/file/lesson.pdf", icon=url))
    assert_content_failed(env, out, oid, fragments, case.shown)


DRIVE_LINKS = {
    "dot-segments": "https://drive.google.com/uc?export=download&id=../../127.0.0.1:{fport}/x",
    "userinfo": "https://drive.google.com/open?id=abc@127.0.0.1:{fport}",
    "encoded-path": "https://drive.google.com/file/d/%2e%2e%2f127.0.0.1/view",
}


@pytest.mark.parametrize("name", list(DRIVE_LINKS))
def test_content_drive_links_name_only_a_file_id(env: Env, name: str) -> None:
    """A Drive link is never fetched itself: only its file id (``[A-Za-z0-9_-]+``) is sent, to the configured
    Drive API. An id that tries to carry a path or a host is no id: the event fails before any call."""
    oid = oid_of("hc_drive", name)
    link = DRIVE_LINKS[name]
    url = link.format(fport=env.servers.forbidden_port)
    out = run_content(env, content_event(oid, url))
    assert_content_failed(env, out, oid, ["invalid Google Drive link"])


def test_chunked_stream_is_cut_off_early(env: Env) -> None:
    """The oversize stream without Content-Length is abandoned soon after the cap, not read to its end."""
    url, _ = URL_CASES[[c.name for c in URL_CASES].index("oversize-chunked")].fill(env.servers, ".pdf")
    out = run_content(env, content_event(oid_of("hc_art", "cutoff"), url))
    assert out.is_failed
    deadline = time.monotonic() + 10  # the server notices the closed connection at its next write
    while not env.servers.stream_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.servers.stream_sent and env.servers.stream_sent[0] < STREAM_BYTES // 2, env.servers.stream_sent
    with urllib.request.urlopen(url, timeout=30) as r:  # the endpoint really has no Content-Length
        assert r.headers.get("Content-Length") is None and r.headers.get("Transfer-Encoding") == "chunked"
        assert len(r.read(2 * LIMIT)) == 2 * LIMIT
    assert_contained(env.case_root, env.work, env.temp)
