"""The Neo4j graph store's protocol choice, URLs, handshake bytes and constraint syntax, without a server
(tests/integration/test_neo4j3_store.py runs them against a real Neo4j 3.3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from cokreat_jobs.adapters.stores.neo4j_store import (
    BOLT_HANDSHAKE,
    CONSTRAINT_QUERY,
    Neo4jGraphStore,
    Neo4jHttpCypher,
    agreed_bolt_version,
    constraint_query,
    http_base_url,
    parse_route,
    parse_version,
    protocol_for,
    transaction_commit_path,
)
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError


def test_routes_of_the_reference_and_http_forms() -> None:
    r = parse_route("bolt://neo4j-host:7687")
    assert (r.scheme, r.host, r.port, r.user) == ("bolt", "neo4j-host", 7687, None)
    assert parse_route("bolt://10.0.0.5").port == 7687
    assert parse_route("neo4j://h").scheme == "neo4j"
    assert parse_route("http://h").port == 7474
    assert parse_route("https://h").port == 7473
    creds = parse_route("bolt://neo4j:p%40ss@h:7688")
    assert (creds.user, creds.password, creds.port) == ("neo4j", "p@ss", 7688)
    for bad in ("", "localhost:7687", "ftp://h", "bolt://:7687", "bolt://h:notaport"):
        with pytest.raises(ConfigError):
            parse_route(bad)


def test_http_base_url_follows_the_bolt_host_unless_told() -> None:
    assert http_base_url(parse_route("bolt://graph.svc:7687")) == "http://graph.svc:7474"
    assert http_base_url(parse_route("bolt://graph.svc:7687"), http_port=17474) == "http://graph.svc:17474"
    assert http_base_url(parse_route("http://g:8080/")) == "http://g:8080"
    assert http_base_url(parse_route("bolt://g"), "https://other:7473/neo") == "https://other:7473/neo"
    assert http_base_url(parse_route("bolt://[::1]:7687")) == "http://[::1]:7474"
    with pytest.raises(ConfigError):
        http_base_url(parse_route("bolt://g"), "bolt://g:7687")


def test_handshake_proposes_bolt_5_4_3_and_1_and_reads_the_answer() -> None:
    assert BOLT_HANDSHAKE[:4] == bytes.fromhex("6060b017") and len(BOLT_HANDSHAKE) == 20
    proposals = [BOLT_HANDSHAKE[i : i + 4] for i in range(4, 20, 4)]
    assert [(p[3], p[2], p[1]) for p in proposals] == [(5, 8, 8), (4, 4, 2), (3, 0, 0), (1, 0, 0)]
    assert agreed_bolt_version(bytes.fromhex("00000001")) == (1, 0)  # Neo4j 3.0-3.4
    assert agreed_bolt_version(bytes.fromhex("00000003")) == (3, 0)  # 3.5, 4.0, 4.1
    assert agreed_bolt_version(bytes.fromhex("00000404")) == (4, 4)
    assert agreed_bolt_version(bytes.fromhex("00000805")) == (5, 8)
    assert agreed_bolt_version(bytes(4)) == (0, 0)
    with pytest.raises(ValueError):
        agreed_bolt_version(b"\x00\x01")


def test_protocol_choice() -> None:
    assert protocol_for("auto", "bolt", (1, 0)) == "http"  # Sunbird's 3.3
    assert protocol_for("auto", "bolt", (2, 0)) == "http"  # 3.4
    assert protocol_for("auto", "bolt", (0, 0)) == "http"
    assert protocol_for("auto", "bolt", (3, 0)) == "bolt"  # 3.5
    assert protocol_for("auto", "neo4j", (5, 8)) == "bolt"
    assert protocol_for("auto", "http") == "http"
    assert protocol_for("AUTO", "bolt+s") == "bolt"
    assert protocol_for("http", "bolt", (5, 8)) == "http"
    assert protocol_for("bolt", "bolt", (1, 0)) == "bolt"
    with pytest.raises(ConfigError):
        protocol_for("grpc", "bolt")
    with pytest.raises(ConfigError):
        protocol_for("bolt", "http")
    with pytest.raises(ValueError):
        protocol_for("auto", "bolt")


def test_constraint_syntax_by_server_version() -> None:
    old = "CREATE CONSTRAINT ON (n:domain) ASSERT n.IL_UNIQUE_ID IS UNIQUE"
    assert constraint_query(parse_version("3.3.9")) == old
    assert constraint_query(parse_version("Neo4j/3.5.35")) == old
    assert constraint_query((4, 0)) == old
    assert "IF NOT EXISTS ON (n:domain) ASSERT" in constraint_query((4, 3))
    assert constraint_query(parse_version("Neo4j/4.4.40")) == CONSTRAINT_QUERY
    assert constraint_query(parse_version("5.26.10")) == CONSTRAINT_QUERY
    assert constraint_query(parse_version("2025.01.0")) == CONSTRAINT_QUERY
    assert parse_version(None) == (0, 0) and parse_version("unknown") == (0, 0)


def test_commit_path_from_the_discovery_documents() -> None:
    v4 = {"transaction": "http://proxy-host:7474/db/{databaseName}/tx", "neo4j_version": "4.4.40"}
    assert transaction_commit_path(v4, None) == "/db/neo4j/tx/commit"
    assert transaction_commit_path(v4, "graph") == "/db/graph/tx/commit"
    assert transaction_commit_path({"data": "http://h:7474/db/data/"}, None) is None


def test_schema_changes_are_opt_in_and_the_new_keys_are_read() -> None:
    cfg = JobConfig({"neo4j": {"routePath": "bolt://g:7687"}})
    store = Neo4jGraphStore.from_config(cfg)
    assert store.ensure_constraint is False  # the reference never changed the graph's schema
    assert store.protocol is None and store.http_base == "http://g:7474"
    assert Neo4jGraphStore("bolt://g").ensure_constraint is False
    on = Neo4jGraphStore.from_config(
        JobConfig(
            {
                "neo4j": {"routePath": "bolt://g:7687"},
                "graph": {"neo4j": {"ensure_constraint": "true", "protocol": "http", "http_port": "8474"}},
            }
        )
    )
    assert (on.ensure_constraint, on.protocol, on.http_base) == (True, "http", "http://g:8474")
    with pytest.raises(ConfigError):
        Neo4jGraphStore.from_config(
            JobConfig({"neo4j": {"routePath": "bolt://g"}, "graph": {"neo4j": {"protocol": "grpc"}}})
        )
    assert "secret" not in repr(Neo4jGraphStore("bolt://u:secret@g:7687"))


class FakeNeo4j:
    """A 3.x-shaped HTTP endpoint that records the statements it is sent."""

    def __init__(self, error: dict[str, str] | None = None, status: int = 200) -> None:
        self.bodies: list[Any] = []
        self.error = error
        self.status = status
        self.auth: list[str | None] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.root)
        app.router.add_get("/db/data/", self.data)
        app.router.add_post("/db/data/transaction/commit", self.commit)
        return app

    async def root(self, request: web.Request) -> web.Response:
        return web.json_response({"data": "http://elsewhere:1/db/data/", "bolt": "bolt://elsewhere:2"})

    async def data(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"transaction": "http://elsewhere:1/db/data/transaction", "neo4j_version": "3.3.9"}
        )

    async def commit(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization"))
        self.bodies.append(await request.json())
        if self.status != 200:
            return web.Response(status=self.status, text="boom")
        if self.error:
            return web.json_response({"results": [], "errors": [self.error]})
        return web.json_response(
            {"results": [{"columns": ["props"], "data": [{"row": [{"a": 1}]}]}], "errors": []}
        )


def serve(fake: FakeNeo4j, body: Any) -> Any:
    async def main() -> Any:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await body(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_http_statements_are_parameterised_and_discovered_by_path() -> None:
    fake = FakeNeo4j()

    async def body(url: str) -> Any:
        store = Neo4jGraphStore(url, user="neo4j", password="pw")
        try:
            await store.merge_node("do_1", {"name": "'}) DETACH DELETE n //", "gone": None, "m": {"k": 1}})
            return await store.read_node("do_1"), store._http.server_version  # type: ignore[union-attr]
        finally:
            await store.close()

    node, version = serve(fake, body)
    assert node == {"a": 1} and version == (3, 3)
    merge = fake.bodies[0]["statements"][0]
    assert merge["statement"] == "MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props"
    assert merge["parameters"] == {
        "id": "do_1",
        "props": {
            "name": "'}) DETACH DELETE n //",
            "gone": None,  # sent as null: SET n += removes the prop, as the reference's n.gone=null did
            "m": json.dumps({"k": 1}).replace(" ", ""),
            "IL_UNIQUE_ID": "do_1",
        },
    }
    assert fake.auth[0] == "Basic bmVvNGo6cHc="  # neo4j:pw
    assert len(fake.bodies) == 2  # no schema statement unless configured


def test_http_constraint_only_when_configured_in_the_servers_syntax() -> None:
    fake = FakeNeo4j()

    async def body(url: str) -> None:
        store = Neo4jGraphStore(url, ensure_constraint=True)
        try:
            await store.merge_node("do_1", {"a": 1})
            await store.merge_node("do_2", {"a": 1})
        finally:
            await store.close()

    serve(fake, body)
    statements = [b["statements"][0]["statement"] for b in fake.bodies]
    assert statements[0] == "CREATE CONSTRAINT ON (n:domain) ASSERT n.IL_UNIQUE_ID IS UNIQUE"
    assert statements[1:] == ["MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props"] * 2


@pytest.mark.parametrize(
    ("error", "status", "raised"),
    [
        ({"code": "Neo.TransientError.Transaction.DeadlockDetected", "message": "d"}, 200, TransientError),
        ({"code": "Neo.ClientError.Statement.SyntaxError", "message": "s"}, 200, PermanentError),
        (None, 503, TransientError),
        (None, 401, PermanentError),
    ],
)
def test_http_errors_are_classified(error: dict[str, str] | None, status: int, raised: type) -> None:
    fake = FakeNeo4j(error=error, status=status)

    async def body(url: str) -> None:
        http = Neo4jHttpCypher(url)
        try:
            await http.run("RETURN 1")
        finally:
            await http.close()

    with pytest.raises(raised):
        serve(fake, body)


def test_a_refused_bolt_handshake_is_transient_and_asked_again() -> None:
    async def body() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        store = Neo4jGraphStore(f"bolt://127.0.0.1:{port}", connection_timeout=2)
        try:
            with pytest.raises(TransientError):
                await store.merge_node("do_1", {"a": 1})
            assert store.protocol is None
        finally:
            server.close()
            await store.close()

    asyncio.run(body())


def test_auto_picks_http_for_a_bolt_1_server() -> None:
    """A fake Bolt listener that agrees to version 1 (as Neo4j 3.3 does) sends the store to HTTP."""
    fake = FakeNeo4j()
    seen: list[bytes] = []

    async def body(url: str) -> Any:
        async def bolt1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.readexactly(20))
            writer.write(bytes.fromhex("00000001"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(bolt1, "127.0.0.1", 0)
        bolt_port = server.sockets[0].getsockname()[1]
        store = Neo4jGraphStore(f"bolt://127.0.0.1:{bolt_port}", http_url=url)
        try:
            await store.merge_node("do_1", {"a": 1})
            return store.protocol
        finally:
            server.close()
            await store.close()

    assert serve(fake, body) == "http"
    assert seen == [BOLT_HANDSHAKE] and len(fake.bodies) == 1
