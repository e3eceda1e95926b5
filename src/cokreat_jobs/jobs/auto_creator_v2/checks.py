"""auto-creator-v2's configuration checks (``core/checks.py``): at start, the brokers, the content service's
and the source's base URLs (and ``schema.basePath`` when it is a URL), the cloud storage and the graph and
external stores; in ``config check`` also the ``repository_allowed_sources`` entries that would match
nothing."""

from __future__ import annotations

from cokreat_jobs.adapters.config_checks import (
    check_external_store,
    check_graph_store,
    check_storage,
    storage_endpoints,
    store_endpoints,
)
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

BASE_URL_KEYS = ("service.content.basePath", "source.baseUrl")
SCHEMA_KEY = "schema.basePath"
ALLOW_LIST_KEY = "auto_creator_v2.repository_allowed_sources"


def startup(cfg: JobConfig) -> list[Problem]:
    problems = check_kafka(cfg)
    for key in BASE_URL_KEYS:
        problems += check_base_url(cfg, key)
    if "://" in cfg.get_str(SCHEMA_KEY, ""):  # else a local folder, or the packaged definitions
        problems += check_base_url(cfg, SCHEMA_KEY)
    return problems + check_storage(cfg) + check_graph_store(cfg) + check_external_store(cfg)


def advisory(cfg: JobConfig) -> list[Problem]:
    return check_allow_list(cfg, ALLOW_LIST_KEY)


def endpoints(cfg: JobConfig) -> list[Endpoint]:
    keys = (*BASE_URL_KEYS, SCHEMA_KEY)
    found = [url_endpoint(key, cfg.get_str(key, "")) for key in keys]
    return kafka_endpoints(cfg) + [e for e in found if e] + storage_endpoints(cfg) + store_endpoints(cfg)


CHECKS = ConfigChecks(startup=startup, advisory=advisory, endpoints=endpoints)
