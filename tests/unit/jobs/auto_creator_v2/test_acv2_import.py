"""auto-creator-v2's processor end to end in one process: a real sandbox server (source repository, content
and hierarchy APIs, file server), the sqlite stores, local cloud storage; definitions from the shared real
ones (../shared/reference/schemas) and from the packaged copies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync, read_record_sync
from cokreat_jobs.dev.samples.question_sets import (
    as_json,
    config,
    import_event,
    import_then_link,
    question_set,
)
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.jobs.auto_creator_v2.processor import AutoCreatorV2

REFERENCE_SCHEMAS = Path(__file__).parents[4].parent / "shared/reference/schemas"


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = {
        "storage_dir": str(tmp_path / "storage"),
        "graph_store": f"sqlite:///{tmp_path / 'graph.db'}",
        "external_store": f"sqlite:///{tmp_path / 'external.db'}",
    }
    server = ServerThread(tmp_path / "sandbox", settings).start()
    try:
        yield {"url": server.base_url, "tmp": tmp_path}
    finally:
        server.stop()


def seed(url: str, **kinds: Any) -> None:
    r = httpx.post(f"{url}/_sandbox/seed", json=kinds, timeout=30)
    assert r.status_code == 200, r.text


def run(processor: AutoCreatorV2, event: dict[str, Any]) -> Any:
    async def go() -> Any:
        try:
            return await processor.process(event)
        finally:
            await processor.close()

    return asyncio.run(go())


def _import_one(env: dict[str, Any], extra: list[str]) -> None:
    url, tmp = env["url"], env["tmp"]
    obj, qids = question_set("do_qs1", 4, nested=True)
    obj["metadata"]["appIcon"] = f"{url}/source-ecar/do_qs1/do_qs1-spine.ecar"  # any served file
    seed(url, source_objects=[obj])
    seed(
        url,
        collections=[{"identifier": "do_col1", "name": "Course", "channel": "ch1", "units": ["do_unit1"]}],
    )
    cfg = config(url, tmp, extra)
    event = import_event(url, "do_qs1", collection=[{"identifier": "do_col1", "unitId": "do_unit1"}])
    outcome = asyncio.run(import_then_link(cfg, event))
    assert outcome.kind == "success", outcome
    assert outcome.detail["children"] == 4 and outcome.detail["linked"] == ["do_col1/do_unit1"]

    graph, external = str(tmp / "graph.db"), str(tmp / "external.db")
    root = read_node_sync(graph, "do_qs1")
    assert root is not None
    assert root["IL_FUNC_OBJECT_TYPE"] == "QuestionSet" and root["IL_SYS_NODE_TYPE"] == "DATA_NODE"
    assert root["processId"] == "proc-0" and root["origin"] == "do_qs1"
    assert json.loads(root["originData"])["identifier"] == "do_qs1"
    assert "identifier" not in root and "objectType" not in root and "children" not in root
    assert root["language"] == ["English"]
    assert "instructions" not in root and "outcomeDeclaration" not in root  # external props
    assert isinstance(root["timeLimits"], str)  # object-typed: JSON string
    variants = json.loads(root["variants"])
    assert set(variants) == {"full", "spine"}
    for v in variants.values():
        assert v["ecarUrl"].startswith(f"{url}/_files/questionset/do_qs1/") and v["size"] > 0
    assert root["downloadUrl"].startswith(f"{url}/_files/questionset/do_qs1/")
    assert root["appIcon"].startswith(f"{url}/_files/questionset/do_qs1/")
    assert (tmp / "storage/questionset/do_qs1").is_dir()

    rec = read_record_sync(external, "dev_hierarchy_store", "questionset_hierarchy", {"identifier": "do_qs1"})
    assert rec is not None and set(rec) >= {"identifier", "hierarchy", "instructions", "outcomedeclaration"}
    hierarchy = json.loads(rec["hierarchy"])
    assert hierarchy["downloadUrl"] == root["downloadUrl"]
    nodes = _walk(hierarchy)
    for qid in qids:
        node = nodes[qid]
        assert node["objectType"] == "Question"
        assert node["downloadUrl"].startswith(f"{url}/_files/question/{qid}/")
        assert set(as_json(node["variants"])) == {"full"}

    for i, qid in enumerate(qids):
        q = read_node_sync(graph, qid)
        assert q is not None and q["IL_FUNC_OBJECT_TYPE"] == "Question" and q["visibility"] == "Parent"
        assert q["keywords"] == ["k1", "k2"] and "body" not in q
        assert q["downloadUrl"].startswith(f"{url}/_files/question/{qid}/")
        assert q["lastPublishedBy"] == ""  # override_manifest_props: "" when the node has none
        qrec = read_record_sync(external, "dev_question_store", "question_data", {"identifier": qid})
        assert qrec is not None and qrec["body"] == f"<p>What is {i} + {i}?</p>"
        assert json.loads(qrec["editorstate"])["options"] == [{"value": 0}]
        assert "responsedeclaration" in qrec and "interactions" in qrec

    tree = httpx.get(f"{url}/_sandbox/hierarchies/do_col1", timeout=10).json()
    unit = _walk(tree)["do_unit1"]
    # linked under the unit it was asked for, as a direct child
    assert [c["identifier"] for c in unit.get("children") or []] == ["do_qs1"]
    # temp files removed
    assert not any((tmp / "acv2-tmp").iterdir())


def _walk(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for child in node.get("children") or []:
        out[child["identifier"]] = child
        out.update(_walk(child))
    return out


def test_import_with_the_real_reference_definitions(env: dict[str, Any]) -> None:
    if not REFERENCE_SCHEMAS.is_dir():
        pytest.skip(f"the shared reference definitions are absent ({REFERENCE_SCHEMAS})")
    _import_one(env, [f"schema.basePath={REFERENCE_SCHEMAS}"])


def test_import_with_the_packaged_definitions(env: dict[str, Any]) -> None:
    _import_one(env, [])
