"""One `resolve_config` for every command: packaged conf, --config, --set, and the stack's endpoints for the
keys the user did not name."""

from __future__ import annotations

from pathlib import Path

import pytest

from cokreat_jobs.cli import config, inspect, jobs, kafka
from cokreat_jobs.dev.stack import local

ENDPOINTS = {
    "kafka": "127.0.0.1:19092",
    "sandbox": "http://127.0.0.1:18765",
    "graph_store": "sqlite:////tmp/stack/graph.db",
}


def test_every_command_module_resolves_through_the_one_function() -> None:
    assert jobs.resolve_config is config.resolve_config
    assert kafka.resolve_config is config.resolve_config
    assert inspect.resolve_config is config.resolve_config


def test_no_stack_the_packaged_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "read_endpoints", lambda: None)
    cfg = config.resolve_config("user-delete", None, ())
    assert cfg.get_str("kafka.broker-servers") != ENDPOINTS["kafka"]


def test_the_stack_fills_what_the_user_did_not_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local, "read_endpoints", lambda: ENDPOINTS)
    cfg = config.resolve_config("auto-creator-v2", None, ())
    assert cfg.get_str("kafka.broker-servers") == ENDPOINTS["kafka"]
    assert cfg.get_str("graph.store") == "sqlite"
    assert cfg.get_str("source.baseUrl") == ENDPOINTS["sandbox"]

    cfg = config.resolve_config("auto-creator-v2", None, ("kafka.broker-servers=broker:9092",))
    assert cfg.get_str("kafka.broker-servers") == "broker:9092"
    assert cfg.get_str("source.baseUrl") == ENDPOINTS["sandbox"]

    conf = tmp_path / "mine.conf"
    conf.write_text('graph.store = "neo4j"\n')
    cfg = config.resolve_config("auto-creator-v2", str(conf), ())
    assert cfg.get_str("graph.store") == "neo4j"
    assert cfg.get_str("kafka.broker-servers") == ENDPOINTS["kafka"]
