"""content-auto-creator's configuration, read once into a typed value (the keys of the Scala job's .conf)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.sources import AllowedSources

__all__ = ["JOB_NAME", "Settings"]

JOB_NAME = "content-auto-creator"

_PREFIX = "content_auto_creator."

# The shipped list of system fields never copied from the source metadata.
_DEFAULT_REMOVED = tuple(
    """
    identifier downloadUrl variants createdOn collections children lastUpdatedOn
    SYS_INTERNAL_LAST_UPDATED_ON versionKey s3Key status pkgVersion toc_url mimeTypesCount
    contentTypesCount leafNodesCount childNodes prevState lastPublishedOn flagReasons compatibilityLevel
    size publishChecklist publishComment lastPublishedBy rejectReasons rejectComment badgeAssertions
    leafNodes sYS_INTERNAL_LAST_UPDATED_ON previewUrl channel objectType visibility version pragma
    prevStatus streamingUrl idealScreenSize contentDisposition lastStatusChangedOn idealScreenDensity
    lastSubmittedOn publishError flaggedBy flags lastFlaggedOn publisher lastUpdatedBy lastSubmittedBy
    uploadError lockKey publish_type reviewError totalCompressedSize origin originData importError
    questions posterImage
    """.split()
)


def _strs(values: list[object]) -> tuple[str, ...]:
    return tuple(str(v).strip() for v in values if v is not None and str(v).strip())


@dataclass(frozen=True)
class Settings:
    """Every setting the job's logic reads; defaults are the shipped .conf's (ours where JOBS.md says so)."""

    # the job's own name, never `job.name` (which names the Flink job only): failed records carry it as
    # jobName and replay goes by it, as user-delete's do
    job_name: str = JOB_NAME
    actions: tuple[str, ...] = ("auto-create",)
    allowed_object_types: tuple[str, ...] = ("Content",)
    allowed_stages: tuple[str, ...] = ("create", "upload", "review", "publish")
    mandatory_fields: tuple[str, ...] = tuple(
        "name code mimeType primaryCategory artifactUrl lastPublishedBy".split()
    )
    props_to_remove: tuple[str, ...] = _DEFAULT_REMOVED
    create_props: tuple[str, ...] = tuple(
        "name code mimeType contentType framework processId primaryCategory".split()
    )
    allowed_sources: AllowedSources = field(default_factory=AllowedSources)
    max_artifact_bytes: int = 52_428_800
    bulk_upload_mime_types: tuple[str, ...] = ("video/mp4",)
    # the cap of the bulk_upload_mime_types (ours: the reference had none)
    max_bulk_upload_bytes: int = 2 * 1024 * 1024 * 1024
    # edata.collection entries one event may link into (ours: each costs API calls)
    max_collections: int = 100
    max_iteration: int = 3
    api_call_delay_s: float = 0.0
    temp_dir: str = "/tmp/content"
    search_exists_fields: tuple[str, ...] = ("originData",)
    search_fields: tuple[str, ...] = tuple(
        "identifier mimeType pkgVersion channel status origin originData artifactUrl".split()
    )
    search_base_url: str = "http://localhost:9000/search"
    content_base_url: str = "http://localhost:9000/content"
    content_folder: str = "content"
    artifact_folder: str = "artifact"
    # Waiting for the state the next step needs (our keys): the whole wait's deadline and its first backoff.
    state_wait_timeout_s: float = 120.0
    state_wait_backoff_s: float = 0.2
    state_wait_max_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        # a cap of 0 meant "none" to the reference; every event's work is bounded here (HARDENING 13)
        for key, value in (
            ("artifact_upload_max_size", self.max_artifact_bytes),
            ("bulk_upload_max_size", self.max_bulk_upload_bytes),
            ("max_collections", self.max_collections),
        ):
            if value < 1:
                raise ConfigError(f"{_PREFIX}{key} must be at least 1, got {value}")

    @classmethod
    def from_config(cls, cfg: JobConfig) -> Settings:
        d = cls()
        p = _PREFIX

        def strs(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            return _strs(cfg.get_list(key, list(default)))

        return cls(
            actions=strs(p + "actions", d.actions),
            allowed_object_types=strs(p + "allowed_object_types", d.allowed_object_types),
            allowed_stages=tuple(s.lower() for s in strs(p + "allowed_content_stages", d.allowed_stages)),
            mandatory_fields=strs(p + "content_mandatory_fields", d.mandatory_fields),
            props_to_remove=strs(p + "content_props_to_removed", d.props_to_remove),
            create_props=strs(p + "content_create_props", d.create_props),
            allowed_sources=AllowedSources.parse(cfg.get_list(p + "artifact_upload_allowed_source", [])),
            max_artifact_bytes=cfg.get_int(p + "artifact_upload_max_size", d.max_artifact_bytes),
            bulk_upload_mime_types=strs(p + "bulk_upload_mime_types", d.bulk_upload_mime_types),
            max_bulk_upload_bytes=cfg.get_int(p + "bulk_upload_max_size", d.max_bulk_upload_bytes),
            max_collections=cfg.get_int(p + "max_collections", d.max_collections),
            max_iteration=cfg.get_int(p + "maxIteration", d.max_iteration),
            api_call_delay_s=cfg.get_float(p + "api_call_delay", d.api_call_delay_s),
            temp_dir=cfg.get_str(p + "temp_file_location", d.temp_dir) or d.temp_dir,
            search_exists_fields=strs("search_exists_fields", d.search_exists_fields),
            search_fields=strs("search_fields", d.search_fields),
            search_base_url=cfg.get_str("service.search.basePath", d.search_base_url),
            content_base_url=cfg.get_str("service.content_service.basePath", d.content_base_url),
            content_folder=cfg.get_str("cloud_storage.folder.content", d.content_folder),
            artifact_folder=cfg.get_str("cloud_storage.folder.artifact", d.artifact_folder),
            state_wait_timeout_s=cfg.get_int(p + "state_wait_timeout_ms", 120_000) / 1000.0,
            state_wait_backoff_s=cfg.get_int(p + "state_wait_backoff_ms", 200) / 1000.0,
            state_wait_max_backoff_s=cfg.get_int(p + "state_wait_max_backoff_ms", 5_000) / 1000.0,
        )
