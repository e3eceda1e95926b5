"""The Neo4j graph store against a real Neo4j 5 (embedded DBMS with Bolt, started from jars/neo4j)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from cokreat_jobs.adapters.stores.neo4j_store import MERGE_QUERY, Neo4jGraphStore
from cokreat_jobs.core.config import JobConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T = TypeVar("T")


def run(server: Any, body: Callable[[Neo4jGraphStore], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        store = Neo4jGraphStore(server.uri, **kwargs)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def count_nodes(server: Any, identifier: str) -> int:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(server.uri, auth=None) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (n:domain {IL_UNIQUE_ID: $id}) RETURN count(n) AS c", {"id": identifier}
        )
        return int(records[0]["c"])


def test_merge_creates_then_updates_with_the_same_props(neo4j_server: Any) -> None:
    props = {"name": "Set one", "status": "Live", "IL_FUNC_OBJECT_TYPE": "QuestionSet", "maxScore": 5}

    async def body(store: Neo4jGraphStore) -> tuple[Any, Any, Any]:
        await store.merge_node("do_create_1", props)
        created = await store.read_node("do_create_1")
        await store.merge_node("do_create_1", props)
        same = await store.read_node("do_create_1")
        await store.merge_node("do_create_1", {"status": "Retired", "versionKey": "2"})
        return created, same, await store.read_node("do_create_1")

    created, same, updated = run(neo4j_server, body)
    assert created == {**props, "IL_UNIQUE_ID": "do_create_1"}
    assert same == created  # on match exactly what create set
    assert updated == {**props, "status": "Retired", "versionKey": "2", "IL_UNIQUE_ID": "do_create_1"}
    assert count_nodes(neo4j_server, "do_create_1") == 1


def test_lists_are_deduplicated_in_order(neo4j_server: Any) -> None:
    async def body(store: Neo4jGraphStore) -> Any:
        await store.merge_node(
            "do_lists",
            {"keywords": ["b", "a", "b", "c", "a"], "grades": [3, 1, 3], "empty": [], "one": ["x"]},
        )
        return await store.read_node("do_lists")

    node = run(neo4j_server, body)
    assert node["keywords"] == ["b", "a", "c"]
    assert node["grades"] == [3, 1]
    assert node["one"] == ["x"]
    assert node["empty"] == []


def test_json_valued_props_are_json_strings(neo4j_server: Any) -> None:
    variants = {"full": {"ecarUrl": "https://x/a.ecar", "size": 12}, "spine": {"ecarUrl": "https://x/s.ecar"}}
    options = [{"value": 1, "label": "A"}, {"value": 2, "label": "B"}]

    async def body(store: Neo4jGraphStore) -> Any:
        await store.merge_node("do_json", {"variants": variants, "options": options, "nested": [[1, 2], [3]]})
        return await store.read_node("do_json")

    node = run(neo4j_server, body)
    assert isinstance(node["variants"], str) and json.loads(node["variants"]) == variants
    assert isinstance(node["options"], str) and json.loads(node["options"]) == options
    assert json.loads(node["nested"]) == [[1, 2], [3]]


def test_none_values_remove_the_property(neo4j_server: Any) -> None:
    # the reference's SET n.a=null: a prop nulled at the source does not survive a re-import
    async def body(store: Neo4jGraphStore) -> Any:
        await store.merge_node("do_none", {"a": "1", "b": "2"})
        await store.merge_node("do_none", {"a": None, "c": None, "b": "3"})
        return await store.read_node("do_none")

    assert run(neo4j_server, body) == {"b": "3", "IL_UNIQUE_ID": "do_none"}


def test_quotes_and_cypher_in_names_and_values_are_stored_verbatim(neo4j_server: Any) -> None:
    evil_value = "'}) DETACH DELETE n //"
    evil_id = "do_'evil\"}) MATCH (m) DETACH DELETE m //"
    props = {
        "name": "O'Brien's \"quoted\" set \\ with backslash",
        "description": evil_value,
        "weird key`}) DETACH DELETE n //": evil_value,
        "keywords": [evil_value, "x'y", evil_value],
    }

    async def body(store: Neo4jGraphStore) -> tuple[Any, Any, Any]:
        await store.merge_node("do_victim", {"name": "must survive"})
        await store.merge_node("do_evil", props)
        await store.merge_node(evil_id, {"name": evil_value})
        return (
            await store.read_node("do_evil"),
            await store.read_node(evil_id),
            await store.read_node("do_victim"),
        )

    evil, evil_by_id, victim = run(neo4j_server, body)
    assert evil == {**props, "keywords": [evil_value, "x'y"], "IL_UNIQUE_ID": "do_evil"}
    assert evil_by_id == {"name": evil_value, "IL_UNIQUE_ID": evil_id}
    assert victim == {"name": "must survive", "IL_UNIQUE_ID": "do_victim"}
    assert "$id" in MERGE_QUERY and "$props" in MERGE_QUERY


def test_read_of_an_absent_node_is_none(neo4j_server: Any) -> None:
    async def body(store: Neo4jGraphStore) -> Any:
        return await store.read_node("do_never_written")

    assert run(neo4j_server, body) is None


def test_from_config_and_factory(neo4j_server: Any) -> None:
    from cokreat_jobs.adapters.stores import graph_store_from_config

    cfg = JobConfig({"graph": {"store": "neo4j"}, "neo4j": {"routePath": neo4j_server.uri}})
    store = graph_store_from_config(cfg)
    assert isinstance(store, Neo4jGraphStore) and store.uri == neo4j_server.uri and store.database is None

    async def main() -> Any:
        try:
            await store.merge_node("do_factory", {"name": "via config"})
            return await store.read_node("do_factory")
        finally:
            await store.close()

    assert asyncio.run(main()) == {"name": "via config", "IL_UNIQUE_ID": "do_factory"}

    named = Neo4jGraphStore.from_config(
        JobConfig(
            {
                "neo4j": {"routePath": neo4j_server.uri, "user": "neo4j", "password": "pw"},
                "graph": {"neo4j": {"database": "neo4j"}},
            }
        )
    )
    assert (named.user, named.password, named.database) == ("neo4j", "pw", "neo4j")


def test_no_schema_change_unless_configured_then_the_4_4_syntax(neo4j_server: Any) -> None:
    from neo4j import GraphDatabase

    def constraints() -> list[str]:
        with GraphDatabase.driver(neo4j_server.uri, auth=None) as driver:
            records, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties")
            return [r["name"] for r in records if r["labelsOrTypes"] == ["domain"]]

    async def write(store: Neo4jGraphStore) -> Any:
        await store.merge_node("do_schema", {"name": "x"})
        return store.protocol

    with GraphDatabase.driver(neo4j_server.uri, auth=None) as driver:  # whatever ran before on this server
        driver.execute_query("DROP CONSTRAINT domain_il_unique_id IF EXISTS")
    assert run(neo4j_server, write) == "bolt"  # auto: the handshake agreed to Bolt 5
    assert constraints() == []

    async def with_constraint() -> None:
        store = Neo4jGraphStore(neo4j_server.uri, ensure_constraint=True)
        try:
            await write(store)
        finally:
            await store.close()

    asyncio.run(with_constraint())
    asyncio.run(with_constraint())  # IF NOT EXISTS: again is a no-op
    assert constraints() == ["domain_il_unique_id"]


def test_concurrent_merges_of_one_node_converge(neo4j_server: Any) -> None:
    # With the uniqueness constraint Sunbird's graph has (here made by the store, as configured): without it
    # 30 concurrent first MERGEs of one id made 30 nodes on this server.
    async def body(store: Neo4jGraphStore) -> Any:
        await asyncio.gather(*(store.merge_node("do_race", {"n": i % 3, "tag": "t"}) for i in range(30)))
        return await store.read_node("do_race")

    node = run(neo4j_server, body, ensure_constraint=True)
    assert node["tag"] == "t" and node["n"] in (0, 1, 2)
    assert count_nodes(neo4j_server, "do_race") == 1
