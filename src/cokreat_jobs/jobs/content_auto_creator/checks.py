"""content-auto-creator's configuration checks (``core/checks.py``): at start, the brokers, the search and
content services' and Drive's base URLs and the cloud storage; in ``config check`` also the
``artifact_upload_allowed_source`` entries that would match nothing (COMPAT A8)."""

from __future__ import annotations

from cokreat_jobs.adapters.config_checks import check_storage, storage_endpoints
from cokreat_jobs.core.checks import (
    ConfigChecks,
    Endpoint,
    Problem,
    check_allow_list,
    check_base_url,
    check_kafka,
    kafka_endpoints,
    url_endpoint,
)
from cokreat_jobs.core.config import JobConfig

BASE_URL_KEYS = (
    "service.search.basePath",
    "service.content_service.basePath",
    "content_auto_creator.drive_api_base",
)
ALLOW_LIST_KEY = "content_auto_creator.artifact_upload_allowed_source"


def startup(cfg: JobConfig) -> list[Problem]:
    problems = check_kafka(cfg)
    for key in BASE_URL_KEYS:
        problems += check_base_url(cfg, key, required=key != "content_auto_creator.drive_api_base")
    return problems + check_storage(cfg)


def advisory(cfg: JobConfig) -> list[Problem]:
    return check_allow_list(cfg, ALLOW_LIST_KEY)


def endpoints(cfg: JobConfig) -> list[Endpoint]:
    found = [url_endpoint(key, cfg.get_str(key, "")) for key in BASE_URL_KEYS[:2]]
    return kafka_endpoints(cfg) + [e for e in found if e] + storage_endpoints(cfg)


CHECKS = ConfigChecks(startup=startup, advisory=advisory, endpoints=endpoints)
