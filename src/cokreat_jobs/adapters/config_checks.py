"""Start-up checks of the adapters' settings (``core/checks.py`` describes the scheme): cloud storage and the
graph and external stores, by the same rules the adapters apply when they are built, without any I/O.

- :func:`check_storage`: ``cloud_storage_type`` known (as :class:`CloudStorage` reads it), its container,
  credentials and fsspec backend package present, endpoint and public base well-formed URLs;
- :func:`check_graph_store` / :func:`check_external_store`: the selected store's settings present;
- :func:`store_endpoints` / :func:`storage_endpoints`: where they connect, for ``config check``'s probe.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING

from cokreat_jobs.adapters.storage import CloudStorage
from cokreat_jobs.adapters.stores.neo4j_store import parse_route, protocol_for
from cokreat_jobs.core.checks import Endpoint, Problem, check_base_url, url_endpoint
from cokreat_jobs.core.errors import ConfigError

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "check_external_store",
    "check_graph_store",
    "check_storage",
    "storage_endpoints",
    "store_endpoints",
]

TYPE_KEY = "cloud_storage_type"
# fsspec's backend for each of CloudStorage's kinds
_BACKEND = {"s3": "s3fs", "azure": "adlfs", "gcs": "gcsfs"}


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check_storage(cfg: JobConfig, installed: Callable[[str], bool] = _installed) -> list[Problem]:
    """What the cloud storage needs before the first upload (``installed(package)``: for tests)."""
    try:
        storage = CloudStorage.from_config(cfg)
    except ConfigError as e:
        # CloudStorage stops at its first problem and says which key it is
        return [Problem(e.key or TYPE_KEY, str(e))]
    kind = storage.kind
    problems: list[Problem] = []
    for key in ("cloud_storage_endpoint", "cloud_storage.public_base_url"):
        if cfg.get_str(key, "").strip():
            problems += check_base_url(cfg, key)
    if kind == "local":
        return problems
    declared = cfg.get_str(TYPE_KEY, "")
    package = _BACKEND.get(kind)
    if package and not installed(package):
        problems.append(
            Problem(TYPE_KEY, f"{declared!r} needs the Python package {package}, which is not installed")
        )
    key = cfg.get_str("cloud_storage_key", "").strip()
    secret = cfg.get_str("cloud_storage_secret", "").strip()
    if kind == "azure":
        if not key:
            problems.append(Problem("cloud_storage_key", f"{declared!r} needs the storage account name here"))
        if not secret:
            problems.append(
                Problem("cloud_storage_secret", f"{declared!r} needs the storage account key here")
            )
    elif kind == "s3" and bool(key) != bool(secret):
        # both empty: the environment's credentials (an instance role); one alone is a mistake
        missing = "cloud_storage_secret" if key else "cloud_storage_key"
        problems.append(Problem(missing, f"{declared!r} has one of key and secret but not the other"))
    elif kind == "gcs" and not secret.startswith("{") and bool(key) != bool(secret):
        missing = "cloud_storage_secret" if key else "cloud_storage_key"
        problems.append(
            Problem(
                missing, f"{declared!r} needs a service-account JSON secret, or client email and private key"
            )
        )
    return problems


def storage_endpoints(cfg: JobConfig) -> list[Endpoint]:
    endpoint = cfg.get_str("cloud_storage_endpoint", "").strip()
    found = url_endpoint("cloud_storage_endpoint", endpoint) if endpoint else None
    return [found] if found else []


def check_graph_store(cfg: JobConfig) -> list[Problem]:
    kind = cfg.get_str("graph.store", "neo4j").strip().lower()
    if kind == "neo4j":
        uri = cfg.get_str("neo4j.routePath", "").strip()
        if not uri:
            return [
                Problem(
                    "neo4j.routePath",
                    "graph.store = neo4j needs the graph's URL here (bolt://host:7687, or http://host:7474)",
                )
            ]
        # The store's own parser and protocol rule: a route the store accepts passes, and only that. An
        # http(s):// route is Cypher over HTTP, what a Neo4j 3.3 / 3.4 (Bolt 1 / 2 only) is written with.
        try:
            route = parse_route(uri)
        except ConfigError as e:
            return [Problem("neo4j.routePath", str(e))]
        try:
            # (3, 0): any Bolt version the driver speaks; only the protocol's name and the scheme are checked
            protocol_for(cfg.get_str("graph.neo4j.protocol", "auto") or "auto", route.scheme, (3, 0))
        except ConfigError as e:
            return [Problem("graph.neo4j.protocol", str(e))]
        return []
    if kind == "sqlite":
        if not cfg.get_str("graph.sqlite.url", "").strip():
            return [
                Problem("graph.sqlite.url", "graph.store = sqlite needs the database here (sqlite:///path)")
            ]
        return []
    return [Problem("graph.store", f"must be neo4j or sqlite, got {kind!r}")]


def check_external_store(cfg: JobConfig) -> list[Problem]:
    kind = cfg.get_str("external.store", "cassandra").strip().lower()
    if kind == "cassandra":
        problems = []
        if not cfg.get_str("lms-cassandra.host", "").strip():
            problems.append(Problem("lms-cassandra.host", "external.store = cassandra needs the hosts here"))
        try:
            cfg.get_int("lms-cassandra.port", 9042)
        except ConfigError as e:
            problems.append(Problem("lms-cassandra.port", str(e)))
        return problems
    if kind == "sqlite":
        if not cfg.get_str("external.sqlite.url", "").strip():
            return [
                Problem(
                    "external.sqlite.url", "external.store = sqlite needs the database here (sqlite:///path)"
                )
            ]
        return []
    return [Problem("external.store", f"must be cassandra or sqlite, got {kind!r}")]


def store_endpoints(cfg: JobConfig) -> list[Endpoint]:
    """The graph and external stores' servers (none for sqlite)."""
    result = []
    if cfg.get_str("graph.store", "neo4j").strip().lower() == "neo4j":
        try:
            route = parse_route(cfg.get_str("neo4j.routePath", ""))
            result.append(Endpoint("neo4j.routePath", route.host, route.port))
        except ConfigError:
            pass  # check_graph_store says what is wrong with it
    if cfg.get_str("external.store", "cassandra").strip().lower() == "cassandra":
        try:
            port = cfg.get_int("lms-cassandra.port", 9042)
        except ConfigError:
            port = 9042
        for host in cfg.get_str("lms-cassandra.host", "").split(","):
            if host.strip():
                result.append(Endpoint("lms-cassandra.host", host.strip(), port))
    return result
