"""auto-creator-v2's processor: one import request in, one Outcome out (JOBS.md auto-creator-v2, points 1-8).

    validate -> definition -> package (ECAR) + source metadata -> re-host cloud files -> children (questions,
    each imported the same way and stored first) -> hierarchy enriched -> external data, then graph node ->
    hand on to the link stage (``linker.py``, the job's second Flink operator) when there are collections

An event with collections ends here as `handed-on`: its outcome is the link stage's.

Failures: a :class:`JobError` (bad package, unknown object at the source, refused link, retries exhausted) or
any unexpected error fails the event alone: failed topic with the reason. Temp files are always removed.

Every URL the event names is untrusted (HARDENING 2): ``edata.repository`` must lie under
``auto_creator_v2.repository_allowed_sources`` (by default ``source.baseUrl``) and is read through the
downloader's network guard (addresses checked as resolved, each redirect hop checked); the package's
``downloadUrl``, the variants, the cloud props and each child's ``downloadUrl`` and cloud props are
downloaded through the same guard. One event's work is bounded: children, collections, the repository's
answer, and the repository clients kept (an LRU, ``repository_clients_max``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cokreat_jobs.adapters.download import Downloader, event_temp_dir
from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.adapters.storage import CloudStorage, storage_path
from cokreat_jobs.adapters.stores import (
    ExternalStore,
    GraphStore,
    external_store_from_config,
    graph_store_from_config,
)
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import CountingProcessor
from cokreat_jobs.core.errors import InvalidField, JobError, PermanentError
from cokreat_jobs.core.event import Event
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.logs import get_logger, log_event
from cokreat_jobs.core.naming import (
    file_name_from_url,
    identifier_problem,
    identifier_segment,
    safe_file_name,
    slug,
)
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.response import is_5xx_or_429
from cokreat_jobs.jobs.auto_creator_v2.linker import link_request
from cokreat_jobs.jobs.auto_creator_v2.logic import (
    ImportRequest,
    check_event,
    enrich,
    enrich_hierarchy,
    external_values,
    graph_properties,
    merge_metadata,
    origin_data,
    parse_variants,
    relativise,
    select_children,
    split_metadata,
)
from cokreat_jobs.jobs.auto_creator_v2.settings import Settings
from cokreat_jobs.sunbird.content_api import describe
from cokreat_jobs.sunbird.definitions import Definition, DefinitionLoader
from cokreat_jobs.sunbird.ecar import ExtractedEcar, read_ecar

if TYPE_CHECKING:
    from cokreat_jobs.core.counting import Metrics

__all__ = ["AutoCreatorV2", "ImportedObject"]

log = get_logger("cokreat_jobs.auto_creator_v2")
JSON = "application/json"


@dataclass(slots=True)
class ImportedObject:
    identifier: str
    object_type: str
    cloud_props: dict[str, Any]  # the new (re-hosted) cloud props
    graph: dict[str, Any] = field(default_factory=dict)
    external: dict[str, str] = field(default_factory=dict)


class _Files:
    """One object's re-hosted files: source URL -> new URL, and the local copies already downloaded."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.local: dict[str, Path] = {}
        self.rehosted: dict[str, str] = {}
        self.names: set[str] = set()


class AutoCreatorV2(CountingProcessor):
    def __init__(
        self,
        settings: Settings,
        definitions: DefinitionLoader,
        graph: GraphStore,
        external: ExternalStore,
        source: ServiceClient,
        storage: CloudStorage,
        downloader: Downloader,
        metrics: Metrics | None = None,
        *,
        client_factory: Callable[[str, str], ServiceClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.definitions = definitions
        self.graph = graph
        self.external = external
        self.source = source
        self.storage = storage
        self.downloader = downloader
        self.metrics = metrics
        self._client_factory = client_factory
        # by origin, least recently used first; bounded by settings.repository_clients_max
        self._repo_clients: OrderedDict[str, ServiceClient] = OrderedDict()
        self._clock = clock

    @classmethod
    def from_config(cls, cfg: JobConfig, metrics: Metrics | None = None) -> AutoCreatorV2:
        s = Settings.from_config(cfg)
        downloader = Downloader.from_config(cfg)

        def factory(name: str, base: str) -> ServiceClient:
            if name != "repository":
                return ServiceClient.from_config(name, base, cfg)
            # an origin named by an event: through the downloads' guard and session, its answer capped
            return ServiceClient.from_config(
                name, base, cfg, guard=downloader.guard, max_body_bytes=s.repository_max_bytes
            )

        return cls(
            s,
            DefinitionLoader.from_config(cfg),
            graph_store_from_config(cfg),
            external_store_from_config(cfg),
            factory("source", s.source_base_url),
            CloudStorage.from_config(cfg),
            downloader,
            metrics,
            client_factory=factory,
        )

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        closers = [self.source.close, self.downloader.close, self.definitions.close]
        closers += [c.close for c in self._repo_clients.values()]
        return [*closers, self.graph.close, self.external.close]

    # ------------------------------------------------------------------------------------------ the event

    async def process(self, data: dict[str, Any]) -> Outcome:
        started = self._clock()
        try:
            event = Event(data)
            skip = check_event(event, self.settings)
            if skip is not None:
                self._log("skipped", data, started, reason=skip.reason)
                return Outcome.skipped(skip.reason, skip.detail)
            req = ImportRequest.from_event(event)
        except InvalidField as e:
            return self._failed(data, e, started)
        detail: dict[str, Any] = {"identifier": req.identifier}
        try:
            async with event_temp_dir(self.settings.temp_dir, req.identifier) as tmp:
                await self._run(req, tmp, detail)
        except JobError as e:
            self.count("error")
            return self._failed(data, e, started, detail=detail)
        except Exception as e:  # a bug or an unforeseen library error: this event fails, the job goes on
            self.count("error")
            log_event(log, "ERROR", "unexpected error", identifier=req.identifier, exc_info=e)
            return self._failed(data, e, started, reason="permanent", detail=detail)
        if req.collections:
            self._log("imported", data, started, children=detail.get("children"), next="link-collection")
            return Outcome.handed_on(
                req.identifier, link_request(req.identifier, req.collections, data, detail), detail
            )
        self._log("success", data, started, children=detail.get("children"))
        return Outcome.success("", detail)

    def _failed(
        self,
        data: dict[str, Any],
        error: BaseException,
        started: float,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Outcome:
        code = reason or (error.reason if isinstance(error, JobError) else "permanent")
        record = failed_event(data, self.settings.job_name, error, code)
        self._log("failed", data, started, reason=code, error=str(error)[:500])
        return Outcome.failed(record, code, {**(detail or {}), "error": str(error)[:500]})

    def _log(self, outcome: str, data: dict[str, Any], started: float, **fields: Any) -> None:
        edata: dict[str, Any] = data["edata"] if isinstance(data.get("edata"), dict) else {}
        meta: dict[str, Any] = edata["metadata"] if isinstance(edata.get("metadata"), dict) else {}
        log_event(
            log,
            "INFO" if outcome != "failed" else "WARNING",
            f"event {outcome}",
            job=self.settings.job_name,
            mid=data.get("mid") if isinstance(data.get("mid"), str) else None,
            object_id=meta.get("identifier") if isinstance(meta.get("identifier"), str) else None,
            outcome=outcome,
            duration_ms=int((self._clock() - started) * 1000),
            **fields,
        )

    async def _run(self, req: ImportRequest, tmp: Path, detail: dict[str, Any]) -> None:
        s = self.settings
        if len(req.collections) > s.max_collections:  # before any call: each entry costs several
            raise PermanentError(
                f"edata.collection has {len(req.collections)} entries, more than the limit of "
                f"{s.max_collections} (auto_creator_v2.max_collections)"
            )
        self._check_repository(req.repository)  # before the package is downloaded
        definition = await self.definitions.get(req.object_type)
        files = _Files(tmp / "root")
        ecar = await self._package(req.download_url, files, "root")
        item = ecar.item(req.identifier)
        source = await self._read_repository(req.repository, req.object_type)
        metadata = merge_metadata(item, source, req.identifier, req.repository)
        cloud = await self._rehost_cloud_props(metadata, req.object_type, req.identifier, files)
        hierarchy = None
        if req.object_type in s.expandable_objects:
            root = ecar.hierarchy_root(req.object_type.lower())
            accepted = metadata.get("acceptedContributions")
            nodes = select_children(root, s, accepted if isinstance(accepted, list) else None)
            if len(nodes) > s.max_children:  # each child is a package of its own (up to its download cap)
                raise PermanentError(
                    f"the {req.object_type} has {len(nodes)} children to import, more than the limit of "
                    f"{s.max_children} (auto_creator_v2.max_children)"
                )
            imported = await self._import_children(req, nodes, tmp)
            detail["children"] = len(imported)
            child_props = {c.identifier: {**c.cloud_props, "objectType": c.object_type} for c in imported}
            hierarchy = enrich_hierarchy(root, cloud, child_props)
        await self._store(req.identifier, req.object_type, definition, metadata, req.process_id, hierarchy)

    # -------------------------------------------------------------------------------------------- package

    async def _package(self, url: str, files: _Files, name: str) -> ExtractedEcar:
        files.folder.mkdir(parents=True, exist_ok=True)
        archive = files.folder / f"{name}.ecar"
        limits = self.settings.ecar_limits
        await self.downloader.download(url, archive, max_bytes=limits.max_download_bytes)
        files.local[url] = archive  # the same file is re-hosted as downloadUrl / a variant
        return await asyncio.to_thread(read_ecar, archive, limits)

    def _check_repository(self, repository: str) -> None:
        allowed = self.settings.repository_allowed_sources
        if not allowed.allows(repository):
            raise PermanentError(
                f"edata.repository {_shown(repository)!r} is not an allowed source repository (allowed: "
                f"{', '.join(r.entry for r in allowed.rules)}; auto_creator_v2.repository_allowed_sources)"
            )

    async def _read_repository(self, repository: str, object_type: str) -> dict[str, Any]:
        """``GET edata.repository`` as given: ``result.<objecttype lowercased>``."""
        self._check_repository(repository)
        url = self.downloader.check_url(repository)  # literal addresses here; the client checks the rest
        # the origin without userinfo: credentials in an event's URL are not sent on
        client = self._repository_client(str(url.origin()))
        path = url.raw_path or "/"
        if url.raw_query_string:
            path += "?" + url.raw_query_string
        return await self._source_read(client, path, object_type, "GET {repository}")

    def _repository_client(self, origin: str) -> ServiceClient:
        """The client of ``origin``, kept in an LRU of ``repository_clients_max``. The clients share the
        downloader's guarded session, so dropping the least recently used one closes no connection that
        another event is using; it only forgets that origin's protection figures."""
        clients = self._repo_clients
        client = clients.get(origin)
        if client is not None:
            clients.move_to_end(origin)
            return client
        client = clients[origin] = self._make_client("repository", origin)
        while len(clients) > self.settings.repository_clients_max:
            clients.popitem(last=False)
        return client

    def _make_client(self, name: str, base: str) -> ServiceClient:
        if self._client_factory is not None:
            return self._client_factory(name, base)
        return ServiceClient(
            name,
            base,
            retry=self.source.retry,
            connect_timeout_s=5.0,
            read_timeout_s=30.0,
            guard=self.downloader.guard,
            max_body_bytes=self.settings.repository_max_bytes,
        )

    async def _source_read(
        self,
        client: ServiceClient,
        path: str,
        object_type: str,
        label: str,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        resp = await client.request(
            "GET",
            path,
            params=params,
            is_transient=is_5xx_or_429,
            on_retry=self.on_retry,
            label=label,
            headers={"Content-Type": JSON},
        )
        key = object_type.lower().replace("image", "")
        if not resp.ok:
            raise PermanentError(f"reading {object_type} from the source failed: {describe(resp)}")
        found = resp.result.get(key)
        if not isinstance(found, dict):
            raise PermanentError(f"the source's answer for the {object_type} has no result.{key}")
        return found

    # ---------------------------------------------------------------------------------------------- files

    async def _rehost_cloud_props(
        self, metadata: dict[str, Any], object_type: str, identifier: str, files: _Files
    ) -> dict[str, Any]:
        """Re-host every cloud prop present (variants rebuilt, always); returns the new values."""
        new: dict[str, Any] = {}
        for prop in self.settings.cloud_props:
            if prop == "variants":
                rebuilt: dict[str, Any] = {}
                for name, url in parse_variants(metadata.get("variants")).items():
                    ecar_url = await self._rehost(url, object_type, identifier, files, hint=name)
                    size = await self.downloader.head_size(ecar_url)
                    rebuilt[name] = {"ecarUrl": ecar_url, "size": size}
                new["variants"] = metadata["variants"] = rebuilt
                continue
            value = metadata.get(prop)
            if isinstance(value, str) and value.strip():
                new[prop] = metadata[prop] = await self._rehost(value.strip(), object_type, identifier, files)
        return new

    async def _rehost(
        self, url: str, object_type: str, identifier: str, files: _Files, hint: str = ""
    ) -> str:
        done = files.rehosted.get(url)
        if done is not None:
            return done
        # the URL's file name as the reference stored it (case kept: ``…_SPINE.ecar``) when it is a safe one,
        # else slugged with its case kept; <= FILE_NAME_MAX. The folder is the id as it is (below), so only
        # this object's own files can share a name: a second one gets a prefix (the reference overwrote the
        # first), names compared case-insensitively so a case-insensitive disk keeps both too
        name = base = file_name_from_url(url, keep_case=True)
        n = len(files.names)
        while name.casefold() in files.names:
            name = safe_file_name(f"{safe_file_name(slug(hint), 40)}-{n}-{base}")
            n += 1
        files.names.add(name.casefold())
        local = files.local.get(url)
        if local is None:
            files.folder.mkdir(parents=True, exist_ok=True)
            local = files.folder / f"dl-{len(files.local)}-{name}"
            await self.downloader.download(url, local, max_bytes=self.settings.max_file_bytes)
            files.local[url] = local
        # the id as it is (refused when not a Sunbird identifier): ids that differ never share a folder
        remote = storage_path(object_type.lower(), identifier_segment(identifier, f"{object_type} id"), name)
        new_url = await self.storage.upload_file(local, remote)
        files.rehosted[url] = new_url
        return new_url

    # ------------------------------------------------------------------------------------------- children

    async def _import_children(
        self, req: ImportRequest, nodes: list[dict[str, Any]], tmp: Path
    ) -> list[ImportedObject]:
        sem = asyncio.Semaphore(self.settings.children_concurrency)

        async def one(i: int, node: dict[str, Any]) -> ImportedObject:
            async with sem:
                return await self._import_child(req, node, tmp / f"child-{i}")

        tasks = [asyncio.ensure_future(one(i, n)) for i, n in enumerate(nodes)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _import_child(self, req: ImportRequest, node: dict[str, Any], folder: Path) -> ImportedObject:
        s = self.settings
        identifier = str(node["identifier"]).strip()
        object_type = str(node.get("objectType") or "")
        problem = identifier_problem(identifier)
        if problem is not None:  # it would name a request path and a storage key
            raise PermanentError(
                f"child {object_type} {identifier[:200]!r} has an invalid identifier: {problem}"
            )
        definition = await self.definitions.get(object_type)
        url = node.get("downloadUrl")
        if not isinstance(url, str) or not url.strip():
            raise PermanentError(f"child {object_type} {identifier} has no downloadUrl in the hierarchy")
        files = _Files(folder)
        ecar = await self._package(url.strip(), files, "child")
        item = ecar.item(identifier)
        kind = object_type.lower().replace("image", "")
        fields = ",".join(dict.fromkeys((*definition.schema_props, *definition.external_props)))
        read_path = f"/{kind}/v1/read/{quote(identifier, safe='')}"
        source = await self._source_read(
            self.source, read_path, object_type, f"GET /{kind}/v1/read/{{id}}", params={"fields": fields}
        )
        # as the reference: the node's value, "" when absent, null (removing the prop) when the node has null
        overrides = {p: node.get(p, "") for p in s.override_manifest_props}
        # the repository as the reference stored it in originData: the read URL with its ?fields= query
        repository = f"{self.source.base_url}{read_path}?fields={fields}"
        metadata = merge_metadata({**item, **source}, overrides, identifier, repository)
        metadata["originData"] = origin_data(identifier, repository)
        cloud = await self._rehost_cloud_props(metadata, object_type, identifier, files)
        # the child's own processId, from its hierarchy node (the reference's enrichMetadata(child, node))
        await self._store(identifier, object_type, definition, metadata, _process_id(node), None)
        return ImportedObject(identifier, object_type, cloud)

    # ---------------------------------------------------------------------------------------------- store

    async def _store(
        self,
        identifier: str,
        object_type: str,
        definition: Definition,
        metadata: dict[str, Any],
        process_id: str | None,
        hierarchy: dict[str, Any] | None,
    ) -> None:
        s = self.settings
        split = split_metadata(metadata, definition, hierarchy)
        graph = graph_properties(enrich(split.graph, identifier, object_type, process_id), definition)
        external = external_values(split.external)
        if s.replace_absolute_path:
            graph = relativise(graph, s.write_base_paths, s.container, s.relative_path_prefix)
            external = relativise(external, s.write_base_paths, s.container, s.relative_path_prefix)
        # the key row is written even with no external data, as the reference did; only an object with
        # neither external data nor an external table configured has no row (the reference failed there)
        keyspace = s.keyspace_of(object_type)
        if not keyspace or not definition.external_table:
            if external:
                raise PermanentError(f"no external keyspace or table configured for {object_type}")
        else:
            await self.external.upsert(
                keyspace, definition.external_table, {"identifier": identifier}, external
            )
        await self.graph.merge_node(identifier, graph)


def _process_id(node: dict[str, Any]) -> str | None:
    value = node.get("processId")
    return value if isinstance(value, str) and value.strip() else None


def _shown(url: str) -> str:
    # Without the query: signed URLs carry credentials there.
    return url.split("?", 1)[0].split("#", 1)[0][:300]
