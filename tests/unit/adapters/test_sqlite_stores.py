"""The sqlite graph and external stores: merge semantics, partial upserts, concurrency, readers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.stores import (
    ExternalStore,
    GraphStore,
    external_store_from_config,
    graph_store_from_config,
    sqlite_path,
)
from cokreat_jobs.adapters.stores.sqlite_store import (
    SqliteExternalStore,
    SqliteGraphStore,
    read_node_sync,
    read_record_sync,
)
from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import ConfigError


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:///abs/g.db") == "/abs/g.db"
    assert sqlite_path("/abs/g.db") == "/abs/g.db"


def test_factories(tmp_path: Path) -> None:
    cfg = load_config(
        "auto-creator-v2",
        overrides=[
            "graph.store=sqlite",
            f"graph.sqlite.url=sqlite:///{tmp_path}/g.db",
            "external.store=sqlite",
            f"external.sqlite.url=sqlite:///{tmp_path}/e.db",
        ],
        env={},
    )
    g, e = graph_store_from_config(cfg), external_store_from_config(cfg)
    assert isinstance(g, SqliteGraphStore) and isinstance(g, GraphStore)
    assert isinstance(e, SqliteExternalStore) and isinstance(e, ExternalStore)
    with pytest.raises(ConfigError):
        graph_store_from_config(cfg.with_overrides({"graph.store": "mongo"}))
    with pytest.raises(ConfigError):
        external_store_from_config(cfg.with_overrides({"external.sqlite.url": ""}))


def test_graph_merge(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "g.db")

    async def go() -> None:
        assert await store.read_node("do_1") is None
        await store.merge_node(
            "do_1", {"name": "a", "x": 1, "meta": {"k": [1]}, "refs": [{"a": 1}], "l": ["a"]}
        )
        await store.merge_node("do_1", {"name": "b", "y": None})
        node = await store.read_node("do_1")
        assert node == {
            "IL_UNIQUE_ID": "do_1",
            "name": "b",
            "x": 1,
            "meta": '{"k":[1]}',
            "refs": '[{"a":1}]',
            "l": ["a"],
        }
        await asyncio.gather(*(store.merge_node(f"n{i}", {"i": i}) for i in range(50)))
        assert (await store.read_node("n49")) == {"IL_UNIQUE_ID": "n49", "i": 49}
        await store.close()

    asyncio.run(go())
    assert read_node_sync(str(tmp_path / "g.db"), "do_1")["name"] == "b"  # type: ignore[index]


def test_graph_merge_of_a_none_removes_the_property(tmp_path: Path) -> None:
    # as Neo4j's SET n += {k: null} (and the reference's SET n.k=null): a prop nulled at the source goes
    store = SqliteGraphStore(tmp_path / "g.db")

    async def go() -> Any:
        await store.merge_node("do_1", {"name": "a", "description": "stale", "x": 1})
        await store.merge_node("do_1", {"name": "b", "description": None, "IL_UNIQUE_ID": None})
        try:
            return await store.read_node("do_1")
        finally:
            await store.close()

    assert asyncio.run(go()) == {"IL_UNIQUE_ID": "do_1", "name": "b", "x": 1}


def test_external_upsert_of_the_key_alone_writes_the_row(tmp_path: Path) -> None:
    store = SqliteExternalStore(tmp_path / "e.db")

    async def go() -> Any:
        await store.upsert("ks", "question_data", {"identifier": "do_1"}, {})
        try:
            return await store.read("ks", "question_data", {"identifier": "do_1"})
        finally:
            await store.close()

    assert asyncio.run(go()) == {"identifier": "do_1"}


def test_external_upsert_of_a_none_clears_the_column(tmp_path: Path) -> None:
    store = SqliteExternalStore(tmp_path / "e.db")
    pk = {"identifier": "do_1"}

    async def go() -> Any:
        await store.upsert("ks", "question_data", pk, {"hints": "h1", "body": "b1"})
        await store.upsert("ks", "question_data", pk, {"hints": None, "body": "b2", "identifier": None})
        try:
            return await store.read("ks", "question_data", pk)
        finally:
            await store.close()

    assert asyncio.run(go()) == {"identifier": "do_1", "body": "b2"}
    assert read_node_sync(str(tmp_path / "missing.db"), "do_1") is None


def test_external_upsert_only_present_columns(tmp_path: Path) -> None:
    store = SqliteExternalStore(tmp_path / "e.db")

    async def go() -> None:
        pk = {"identifier": "q1"}
        assert await store.read("ks", "question_data", pk) is None
        await store.upsert("ks", "question_data", pk, {"body": "<p>1</p>", "editorstate": "{}"})
        await store.upsert("ks", "question_data", pk, {"body": "<p>2</p>"})
        assert await store.read("ks", "question_data", pk) == {
            "identifier": "q1",
            "body": "<p>2</p>",
            "editorstate": "{}",
        }
        assert await store.read("ks", "other", pk) is None
        await asyncio.gather(
            *(store.upsert("ks", "t", {"identifier": f"i{i}"}, {"v": str(i)}) for i in range(50))
        )
        await store.close()

    asyncio.run(go())
    rec = read_record_sync(str(tmp_path / "e.db"), "ks", "t", {"identifier": "i7"})
    assert rec == {"identifier": "i7", "v": "7"}
