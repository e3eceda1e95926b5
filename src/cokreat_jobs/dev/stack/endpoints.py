"""How a job run finds the local stack: its endpoints fill every key the user did not set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyhocon import ConfigFactory


def stack_settings(endpoints: Mapping[str, Any]) -> dict[str, Any]:
    """Config keys pointing at the stack's broker, sandbox, stores and storage (all jobs' keys at once:
    unknown keys are ignored by the jobs that do not use them)."""
    sandbox = str(endpoints["sandbox"])
    settings: dict[str, Any] = {
        "kafka.broker-servers": endpoints["kafka"],
        "program-service-baseUrl": sandbox,
        "service.search.basePath": sandbox,
        "service.content_service.basePath": sandbox,
        "service.content.basePath": sandbox,
        "source.baseUrl": sandbox,
    }
    host = urlparse(sandbox)
    # downloads may reach the sandbox (loopback) and nothing else private
    settings["http.allow_private_networks"] = [f"{host.hostname}:{host.port}"]
    if endpoints.get("storage"):
        settings["cloud_storage_type"] = "local"
        settings["cloud_storage.local.path"] = endpoints["storage"]
        settings["cloud_storage.public_base_url"] = endpoints.get("storage_http", "")
    if endpoints.get("graph_store"):
        settings["graph.store"] = "sqlite"
        settings["graph.sqlite.url"] = endpoints["graph_store"]
    if endpoints.get("external_store"):
        settings["external.store"] = "sqlite"
        settings["external.sqlite.url"] = endpoints["external_store"]
    return settings


def user_named_keys(config_file: str | Path | None, overrides: Sequence[str]) -> set[str]:
    """Keys the user set explicitly (in their file or with --set); the stack never overrides those."""
    named: set[str] = set()
    if config_file:
        tree = ConfigFactory.parse_file(str(config_file))
        named |= _flat_keys(tree)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        named.add(key)
    return named


def _flat_keys(tree: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, v in tree.items():
        full = f"{prefix}{k}"
        keys.add(full)
        if hasattr(v, "items"):
            keys |= _flat_keys(v, full + ".")
    return keys


def stack_overrides(
    endpoints: Mapping[str, Any] | None, config_file: str | Path | None, overrides: Sequence[str]
) -> dict[str, Any]:
    if not endpoints:
        return {}
    named = user_named_keys(config_file, overrides)
    return {
        k: v
        for k, v in stack_settings(endpoints).items()
        if k not in named and not any(k.startswith(n + ".") for n in named)
    }
