"""auto-creator-v2's configuration, read once into a typed value (the Scala job's keys plus ours)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.sources import AllowedSources
from cokreat_jobs.sunbird.ecar import EcarLimits

__all__ = ["JOB_NAME", "Settings"]

JOB_NAME = "auto-creator-v2"
_P = "auto_creator_v2."


def _strs(values: list[object]) -> tuple[str, ...]:
    return tuple(str(v).strip() for v in values if v is not None and str(v).strip())


@dataclass(frozen=True)
class Settings:
    # the job's own name, never `job.name` (which names the Flink job only): failed records carry it as
    # jobName and replay goes by it, as user-delete's do
    job_name: str = JOB_NAME
    content_base_url: str = "http://localhost:9000/content"
    source_base_url: str = "http://localhost:9000/api"
    keyspaces: dict[str, str] = field(
        default_factory=lambda: {"questionset": "dev_hierarchy_store", "question": "dev_question_store"}
    )
    cloud_props: tuple[str, ...] = ("variants", "downloadUrl", "appIcon", "posterImage", "pdfUrl")
    override_manifest_props: tuple[str, ...] = (
        "variants",
        "downloadUrl",
        "previewUrl",
        "pdfUrl",
        "lastPublishedBy",
    )
    expandable_objects: tuple[str, ...] = ("QuestionSet",)
    non_expandable_objects: tuple[str, ...] = ("Question",)
    graph_enabled_objecttypes: tuple[str, ...] = ("Question",)
    link_delay_ms: int = 0
    # Waiting for the imported object to be readable before linking (ours): deadline and first backoff.
    link_wait_timeout_s: float = 60.0
    link_wait_backoff_s: float = 0.2
    link_wait_max_backoff_s: float = 5.0
    temp_dir: str = str(Path(tempfile.gettempdir()) / "auto-creator-v2")
    ecar_limits: EcarLimits = field(default_factory=EcarLimits)
    max_file_bytes: int = 200 * 1024 * 1024
    children_concurrency: int = 4
    # Where edata.repository may point (core/sources.py rules); empty in the config = under source.baseUrl.
    repository_allowed_sources: AllowedSources = field(default_factory=AllowedSources)
    # Bounds on one event's work (ours, HARDENING 13): the repository's answer (parsed in memory), the
    # children imported, the collections linked, and the repository origins whose clients are kept.
    repository_max_bytes: int = 4 * 1024 * 1024
    max_children: int = 500
    max_collections: int = 100
    repository_clients_max: int = 16
    replace_absolute_path: bool = False
    relative_path_prefix: str = "CONTENT_STORAGE_BASE_PATH"
    write_base_paths: tuple[str, ...] = ()
    container: str = ""

    def __post_init__(self) -> None:
        if not self.repository_allowed_sources.restricted:
            # never "any repository": an empty list means the source this job reads children from
            object.__setattr__(
                self, "repository_allowed_sources", AllowedSources.parse([self.source_base_url])
            )
        for key, value in (
            ("repository_max_bytes", self.repository_max_bytes),
            ("max_children", self.max_children),
            ("max_collections", self.max_collections),
            ("repository_clients_max", self.repository_clients_max),
        ):
            if value < 1:
                raise ConfigError(f"{_P}{key} must be at least 1, got {value}")

    @property
    def object_types(self) -> tuple[str, ...]:
        return (*self.expandable_objects, *self.non_expandable_objects)

    def keyspace_of(self, object_type: str) -> str:
        return self.keyspaces.get(object_type.lower().replace("image", ""), "")

    @classmethod
    def from_config(cls, cfg: JobConfig) -> Settings:
        d = cls()

        def strs(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            return _strs(cfg.get_list(key, list(default)))

        source_base_url = cfg.get_str("source.baseUrl", d.source_base_url)
        repositories = strs(_P + "repository_allowed_sources", ())
        keyspaces = dict(d.keyspaces)
        for kind in ("questionset", "question"):
            keyspaces[kind] = cfg.get_str(f"{kind}.keyspace", keyspaces[kind])
        return cls(
            content_base_url=cfg.get_str("service.content.basePath", d.content_base_url),
            source_base_url=source_base_url,
            keyspaces=keyspaces,
            cloud_props=strs("object.cloud_props", d.cloud_props),
            override_manifest_props=strs("object.override_manifest_props", d.override_manifest_props),
            expandable_objects=strs("expandable_objects", d.expandable_objects),
            non_expandable_objects=strs("non_expandable_objects", d.non_expandable_objects),
            graph_enabled_objecttypes=strs("graph_enabled_objecttypes", d.graph_enabled_objecttypes),
            link_delay_ms=cfg.get_int(_P + "link_delay_ms", 0),
            link_wait_timeout_s=cfg.get_float(_P + "link_wait_timeout_s", d.link_wait_timeout_s),
            link_wait_backoff_s=cfg.get_float(_P + "link_wait_backoff_ms", 200) / 1000.0,
            temp_dir=cfg.get_str(_P + "temp_file_location", d.temp_dir) or d.temp_dir,
            ecar_limits=EcarLimits.from_config(cfg, _P + "ecar."),
            max_file_bytes=cfg.get_int(_P + "max_file_bytes", d.max_file_bytes),
            children_concurrency=max(1, cfg.get_int(_P + "children_concurrency", d.children_concurrency)),
            repository_allowed_sources=AllowedSources.parse(repositories),
            repository_max_bytes=cfg.get_int(_P + "repository_max_bytes", d.repository_max_bytes),
            max_children=cfg.get_int(_P + "max_children", d.max_children),
            max_collections=cfg.get_int(_P + "max_collections", d.max_collections),
            repository_clients_max=cfg.get_int(_P + "repository_clients_max", d.repository_clients_max),
            replace_absolute_path=cfg.get_bool("cloudstorage.metadata.replace_absolute_path", False),
            relative_path_prefix=cfg.get_str("cloudstorage.relative_path_prefix", d.relative_path_prefix),
            write_base_paths=strs("cloudstorage.write_base_path", ()),
            container=cfg.get_str("cloud_storage_container", ""),
        )
