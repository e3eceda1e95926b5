"""The Neo4j graph store against a real Neo4j 3.3 (Bolt 1 and HTTP), the line Sunbird's knowledge platform
ships, started from jars/neo4j3. The store is given only the reference's route (``bolt://host:port``) and the
HTTP port: it finds out by the Bolt handshake that the server speaks Bolt 1, which the pinned 5.x driver
cannot, and writes over HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from cokreat_jobs.adapters.stores.neo4j_store import Neo4jGraphStore, probe_bolt
from cokreat_jobs.core.config import JobConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T = TypeVar("T")


def store_for(server: Any, **kwargs: Any) -> Neo4jGraphStore:
    return Neo4jGraphStore(server.uri, http_port=server.http_port, **kwargs)


def run(server: Any, body: Callable[[Neo4jGraphStore], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        store = store_for(server, **kwargs)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def cypher(server: Any, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
    """A check beside the store: Neo4j 3's own HTTP endpoint, straight."""
    body = json.dumps({"statements": [{"statement": statement, "parameters": parameters or {}}]}).encode()
    request = urllib.request.Request(
        f"{server.http_url}/db/data/transaction/commit",
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback test server)
        answer = json.loads(resp.read())
    assert not answer["errors"], answer["errors"]
    return [item["row"] for item in answer["results"][0]["data"]]


def test_the_server_is_bolt_1_only_and_the_pinned_driver_cannot_reach_it(neo4j3_server: Any) -> None:
    from neo4j import GraphDatabase

    assert asyncio.run(probe_bolt("127.0.0.1", neo4j3_server.port)) == (1, 0)
    # What the store did before: the 5.x driver over Bolt (the handshake finds no common version).
    with GraphDatabase.driver(neo4j3_server.uri, auth=None, connection_timeout=5) as driver:
        with pytest.raises(Exception, match="does not support communication with this driver"):
            driver.execute_query("RETURN 1")

    async def forced(store: Neo4jGraphStore) -> None:
        await store.merge_node("do_forced_bolt", {"name": "x"})

    with pytest.raises(Exception, match="does not support communication with this driver"):
        run(neo4j3_server, forced, protocol="bolt")


def test_create_update_read_with_what_auto_creator_v2_writes(neo4j3_server: Any) -> None:
    props = {
        "name": "Set one",
        "status": "Live",
        "IL_FUNC_OBJECT_TYPE": "QuestionSet",
        "IL_SYS_NODE_TYPE": "DATA_NODE",
        "maxScore": 5,
        "timeLimit": 1.5,
        "showHints": False,
        "keywords": ["b", "a", "b", "c"],
        "grades": [3, 1, 3],
        "empty": [],
        "variants": {"full": {"ecarUrl": "https://x/a.ecar", "size": 12}},
        "options": [{"value": 1, "label": "A"}],
        "nested": [[1, 2], [3]],
        "description": None,
    }

    async def body(store: Neo4jGraphStore) -> tuple[Any, ...]:
        await store.merge_node("do_v3_1", {"name": "old", "description": "kept"})
        await store.merge_node("do_v3_1", props)
        first = await store.read_node("do_v3_1")
        await store.merge_node("do_v3_1", props)
        same = await store.read_node("do_v3_1")
        await store.merge_node("do_v3_1", {"status": "Retired", "versionKey": "2"})
        return (
            store.protocol,
            first,
            same,
            await store.read_node("do_v3_1"),
            await store.read_node("do_absent"),
        )

    protocol, first, same, updated, absent = run(neo4j3_server, body)
    assert protocol == "http"
    # None removes the property, as over Bolt (the reference's SET n.description=null)
    assert "description" not in first
    expected = {
        "name": "Set one",
        "status": "Live",
        "IL_FUNC_OBJECT_TYPE": "QuestionSet",
        "IL_SYS_NODE_TYPE": "DATA_NODE",
        "maxScore": 5,
        "timeLimit": 1.5,
        "showHints": False,
        "keywords": ["b", "a", "c"],
        "grades": [3, 1],
        "empty": [],
        "IL_UNIQUE_ID": "do_v3_1",
    }
    assert {k: v for k, v in first.items() if k not in ("variants", "options", "nested")} == expected
    assert isinstance(first["variants"], str) and json.loads(first["variants"]) == props["variants"]
    assert json.loads(first["options"]) == props["options"] and json.loads(first["nested"]) == [[1, 2], [3]]
    assert same == first
    assert updated == {**first, "status": "Retired", "versionKey": "2"}
    assert absent is None
    assert cypher(neo4j3_server, "MATCH (n:domain {IL_UNIQUE_ID: 'do_v3_1'}) RETURN count(n)") == [[1]]


def test_quotes_and_cypher_are_stored_verbatim(neo4j3_server: Any) -> None:
    evil = "'}) DETACH DELETE n //"
    evil_id = "do_'evil\"}) MATCH (m) DETACH DELETE m //"

    async def body(store: Neo4jGraphStore) -> tuple[Any, Any, Any]:
        await store.merge_node("do_v3_victim", {"name": "must survive"})
        await store.merge_node(evil_id, {"name": evil, "weird key`}) DETACH DELETE n //": 'é"\\'})
        return (
            await store.read_node(evil_id),
            await store.read_node("do_v3_victim"),
            await store.read_node("do_v3_1' OR 1=1 //"),
        )

    by_id, victim, none = run(neo4j3_server, body)
    assert by_id == {"name": evil, "weird key`}) DETACH DELETE n //": 'é"\\', "IL_UNIQUE_ID": evil_id}
    assert victim == {"name": "must survive", "IL_UNIQUE_ID": "do_v3_victim"} and none is None


def test_no_schema_change_unless_configured_then_the_3x_syntax(neo4j3_server: Any) -> None:
    def constraints() -> list[list[Any]]:
        return cypher(neo4j3_server, "CALL db.constraints()")

    async def write(store: Neo4jGraphStore) -> None:
        await store.merge_node("do_v3_schema", {"name": "x"})

    run(neo4j3_server, write)
    assert constraints() == []  # the default writes nodes only

    run(neo4j3_server, write, ensure_constraint=True)
    assert constraints() == [["CONSTRAINT ON ( domain:domain ) ASSERT domain.IL_UNIQUE_ID IS UNIQUE"]]
    run(neo4j3_server, write, ensure_constraint=True)  # again: a no-op, not an error
    assert len(constraints()) == 1


def test_config_with_the_reference_keys_and_an_http_route(neo4j3_server: Any) -> None:
    from cokreat_jobs.adapters.stores import graph_store_from_config

    cfg = JobConfig(
        {
            "graph": {"store": "neo4j", "neo4j": {"http_port": neo4j3_server.http_port}},
            "neo4j": {"routePath": neo4j3_server.uri, "graph": "domain"},
        }
    )
    by_route = graph_store_from_config(cfg)
    by_http = Neo4jGraphStore.from_config(JobConfig({"neo4j": {"routePath": neo4j3_server.http_url}}))

    async def main() -> Any:
        try:
            await by_route.merge_node("do_v3_cfg", {"name": "via config"})
            return await by_http.read_node("do_v3_cfg"), by_http.protocol
        finally:
            await by_route.close()
            await by_http.close()

    assert asyncio.run(main()) == ({"name": "via config", "IL_UNIQUE_ID": "do_v3_cfg"}, "http")


def test_concurrent_merges_of_one_node_converge(neo4j3_server: Any) -> None:
    async def body(store: Neo4jGraphStore) -> Any:
        await store.merge_node("do_v3_race", {"tag": "t"})
        await asyncio.gather(*(store.merge_node("do_v3_race", {"n": i % 3, "tag": "t"}) for i in range(30)))
        return await store.read_node("do_v3_race")

    node = run(neo4j3_server, body)
    assert node["tag"] == "t" and node["n"] in (0, 1, 2)
    assert cypher(neo4j3_server, "MATCH (n:domain {IL_UNIQUE_ID: 'do_v3_race'}) RETURN count(n)") == [[1]]


def test_the_sandbox_reads_what_the_job_wrote_over_http(neo4j3_server: Any) -> None:
    """The sandbox's content reads and hierarchy/add know the objects auto-creator-v2 writes (as
    content-service reads the graph): with Neo4j 3.3 the job's route is the HTTP one, and the sandbox's."""
    from cokreat_jobs.dev.sandbox.source import graph_reader

    async def write(store: Neo4jGraphStore) -> None:
        await store.merge_node(
            "do_sandbox_http", {"name": "Set", "IL_FUNC_OBJECT_TYPE": "QuestionSet", "status": "Live"}
        )

    run(neo4j3_server, write)
    reader = graph_reader(neo4j3_server.http_url)
    assert reader is not None, "an http:// graph store is read"
    node = reader("do_sandbox_http")
    assert node is not None and node["identifier"] == "do_sandbox_http"
    assert node["objectType"] == "QuestionSet" and node["status"] == "Live" and node["name"] == "Set"
    assert not any(k.startswith("IL_") for k in node)
    assert reader("do_not_there") is None
