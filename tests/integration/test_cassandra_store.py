"""The Cassandra external store against a real Cassandra 5.0 node (started from jars/cassandra)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from cokreat_jobs.adapters.stores.cassandra_store import CassandraExternalStore
from cokreat_jobs.core.config import JobConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T = TypeVar("T")
QKS, QTABLE = "dev_question_store", "question_data"
HKS, HTABLE = "dev_hierarchy_store", "questionset_hierarchy"


def run(node: Any, body: Callable[[CassandraExternalStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = CassandraExternalStore(node.host, node.port)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def raw_row(node: Any, cql: str, *params: Any) -> Any:
    from cassandra.cluster import Cluster

    cluster = Cluster([node.host], port=node.port)
    try:
        return cluster.connect().execute(cql, params).one()
    finally:
        cluster.shutdown()


def test_upsert_writes_only_present_columns(cassandra_node: Any) -> None:
    async def body(store: CassandraExternalStore) -> tuple[Any, Any]:
        await store.upsert(
            HKS, HTABLE, {"identifier": "do_qs_1"}, {"hierarchy": '{"a":1}', "instructions": "i1"}
        )
        first = await store.read(HKS, HTABLE, {"identifier": "do_qs_1"})
        await store.upsert(HKS, HTABLE, {"identifier": "do_qs_1"}, {"outcomedeclaration": "o2"})
        return first, await store.read(HKS, HTABLE, {"identifier": "do_qs_1"})

    first, second = run(cassandra_node, body)
    assert first == {"identifier": "do_qs_1", "hierarchy": '{"a":1}', "instructions": "i1"}
    assert second == {**first, "outcomedeclaration": "o2"}  # untouched columns kept


def test_blob_columns_via_text_as_blob_read_back_as_text(cassandra_node: Any) -> None:
    body_html = "<div class='q'>Ünïcödé \"quoted\" 'x'); DROP TABLE question_data; --</div>"

    async def body(store: CassandraExternalStore) -> Any:
        await store.upsert(
            QKS,
            QTABLE,
            {"identifier": "do_q_blob"},
            {"body": body_html, "answer": "<p>42</p>", "editorState": '{"options":[]}', "media": "[]"},
        )
        return await store.read(QKS, QTABLE, {"identifier": "do_q_blob"})

    record = run(cassandra_node, body)
    assert record == {
        "identifier": "do_q_blob",
        "body": body_html,
        "answer": "<p>42</p>",
        "editorstate": '{"options":[]}',
        "media": "[]",
    }
    raw = raw_row(
        cassandra_node,
        f"SELECT body, blobAsText(answer) AS a FROM {QKS}.{QTABLE} WHERE identifier = %s",
        "do_q_blob",
    )
    assert raw.body == body_html.encode("utf-8") and raw.a == "<p>42</p>"  # stored as a real blob


def test_json_valued_props_are_json_strings(cassandra_node: Any) -> None:
    declaration = {"response1": {"cardinality": "single", "correctResponse": {"value": "0"}}}
    interactions = {"response1": {"type": "choice", "options": [{"label": "A", "value": 0}]}}
    media = [{"id": "m1", "src": "/a.png"}]

    async def body(store: CassandraExternalStore) -> Any:
        await store.upsert(
            QKS,
            QTABLE,
            {"identifier": "do_q_json"},
            {
                "responsedeclaration": declaration,
                "interactions": interactions,
                "media": media,
                "body": {"b": 1},
            },
        )
        return await store.read(QKS, QTABLE, {"identifier": "do_q_json"})

    record = run(cassandra_node, body)
    assert isinstance(record["responsedeclaration"], str)
    assert json.loads(record["responsedeclaration"]) == declaration
    assert json.loads(record["interactions"]) == interactions
    assert json.loads(record["media"]) == media
    assert json.loads(record["body"]) == {"b": 1}  # a blob column too


def test_read_of_an_absent_row_is_none(cassandra_node: Any) -> None:
    async def body(store: CassandraExternalStore) -> Any:
        return await store.read(QKS, QTABLE, {"identifier": "do_never_written"})

    assert run(cassandra_node, body) is None


def test_prepared_statements_are_reused(cassandra_node: Any) -> None:
    async def body(store: CassandraExternalStore) -> tuple[int, int, int]:
        await store.upsert(QKS, QTABLE, {"identifier": "do_p_0"}, {"body": "b", "hints": "h"})
        after_first = store.prepare_count  # the INSERT for (body, hints, identifier)
        await asyncio.gather(
            *(
                store.upsert(QKS, QTABLE, {"identifier": f"do_p_{i}"}, {"hints": "h", "body": f"b{i}"})
                for i in range(40)
            )
        )
        await asyncio.gather(*(store.read(QKS, QTABLE, {"identifier": f"do_p_{i}"}) for i in range(40)))
        after_many = store.prepare_count  # + one SELECT
        await store.upsert(QKS, QTABLE, {"identifier": "do_p_x"}, {"media": "[]"})
        return after_first, after_many, store.prepare_count

    after_first, after_many, after_other = run(cassandra_node, body)
    assert (after_first, after_many, after_other) == (1, 2, 3)


def test_the_key_alone_writes_the_row(cassandra_node: Any) -> None:
    # auto-creator-v2 writes the key row of an object without external props, as the reference did
    async def body(store: CassandraExternalStore) -> Any:
        await store.upsert(QKS, QTABLE, {"identifier": "do_q_key_only"}, {})
        return await store.read(QKS, QTABLE, {"identifier": "do_q_key_only"})

    assert run(cassandra_node, body) == {"identifier": "do_q_key_only"}


def test_none_values_and_unknown_columns(cassandra_node: Any) -> None:
    async def body(store: CassandraExternalStore) -> Any:
        first = {"hints": "h1", "solutions": "s1", "body": "b1"}
        await store.upsert(QKS, QTABLE, {"identifier": "do_q_none"}, first)
        # body is a blob column: textAsBlob(null) is null
        await store.upsert(
            QKS, QTABLE, {"identifier": "do_q_none"}, {"hints": None, "solutions": "s2", "body": None}
        )
        with pytest.raises(KeyError):
            await store.upsert(QKS, QTABLE, {"identifier": "do_q_none"}, {'x" text); DROP TABLE t; --': "v"})
        with pytest.raises(LookupError):
            await store.read(QKS, "no_such_table", {"identifier": "do_q_none"})
        return await store.read(QKS, QTABLE, {"identifier": "do_q_none"})

    # a None clears the column (the reference overwrote a prop nulled at the source too)
    assert run(cassandra_node, body) == {"identifier": "do_q_none", "solutions": "s2"}


def test_from_config_and_factory(cassandra_node: Any) -> None:
    from cokreat_jobs.adapters.stores import external_store_from_config

    cfg = JobConfig(
        {
            "external": {"store": "cassandra"},
            "lms-cassandra": {"host": cassandra_node.host, "port": str(cassandra_node.port)},
        }
    )
    store = external_store_from_config(cfg)
    assert isinstance(store, CassandraExternalStore)
    assert (store.hosts, store.port) == ([cassandra_node.host], cassandra_node.port)

    async def main() -> Any:
        try:
            await store.upsert(HKS, HTABLE, {"identifier": "do_factory"}, {"hierarchy": "{}"})
            return await store.read(HKS, HTABLE, {"identifier": "do_factory"})
        finally:
            await store.close()

    assert asyncio.run(main()) == {"identifier": "do_factory", "hierarchy": "{}"}


def test_schema_has_sunbird_columns(cassandra_node: Any) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster([cassandra_node.host], port=cassandra_node.port)
    try:
        session = cluster.connect()
        columns = {
            (r.keyspace_name, r.table_name, r.column_name): r.type
            for ks in (QKS, HKS)
            for r in session.execute(
                "SELECT keyspace_name, table_name, column_name, type FROM system_schema.columns"
                " WHERE keyspace_name = %s",
                (ks,),
            )
        }
    finally:
        cluster.shutdown()
    assert {c: t for (ks, tb, c), t in columns.items() if (ks, tb) == (QKS, QTABLE)} == {
        "identifier": "text",
        "body": "blob",
        "editorstate": "text",
        "answer": "blob",
        "solutions": "text",
        "instructions": "text",
        "hints": "text",
        "media": "text",
        "responsedeclaration": "text",
        "interactions": "text",
    }
    assert {c: t for (ks, tb, c), t in columns.items() if (ks, tb) == (HKS, HTABLE)} == {
        "identifier": "text",
        "hierarchy": "text",
        "instructions": "text",
        "outcomedeclaration": "text",
    }


def test_apply_schema_with_other_keyspace_names(cassandra_node: Any) -> None:
    from cokreat_jobs.dev.stack.cassandra import apply_schema

    apply_schema(cassandra_node.host, cassandra_node.port, "prod_hierarchy_store", "prod_question_store")

    async def body(store: CassandraExternalStore) -> Any:
        await store.upsert("prod_question_store", QTABLE, {"identifier": "do_k"}, {"body": "x"})
        return await store.read("prod_question_store", QTABLE, {"identifier": "do_k"})

    assert run(cassandra_node, body) == {"identifier": "do_k", "body": "x"}
