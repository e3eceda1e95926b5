"""auto-creator-v2 writes what the Scala job wrote (COMPAT.md A7, issue 15 point 6), against a real sandbox
with sqlite stores:

- a child's ``processId`` is its own hierarchy node's (``enrichMetadata(child, node)``), not the event's;
- a property nulled at the source removes the stale one on re-import (the reference's ``n.<prop>=null``);
- the external key row is written even for an object without external props (``saveExternalData`` always ran);
- re-hosted files keep their names' case (``FilenameUtils.getName(url)``), still under the id as it is;
- ``originData`` is the reference's string, a child's repository with its ``?fields=`` query.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync, read_record_sync
from cokreat_jobs.dev.samples.question_sets import config, import_event, import_then_link, question_set

EXTERNAL_QUESTION_PROPS = ("body", "answer", "editorState", "responseDeclaration", "interactions")


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from cokreat_jobs.dev.sandbox.server import ServerThread

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


def seed(url: str, *objects: dict[str, Any]) -> None:
    r = httpx.post(f"{url}/_sandbox/seed", json={"source_objects": list(objects)}, timeout=30)
    assert r.status_code == 200, r.text


def imported(env: dict[str, Any], qs_id: str, extra: list[str] | None = None) -> Any:
    cfg = config(env["url"], env["tmp"], extra)
    out = asyncio.run(import_then_link(cfg, import_event(env["url"], qs_id)))
    assert out.kind == "success", (out.kind, out.reason, out.detail)
    return out


def node(env: dict[str, Any], identifier: str) -> dict[str, Any]:
    found = read_node_sync(str(env["tmp"] / "graph.db"), identifier)
    assert found is not None, identifier
    return found


def test_children_get_their_own_hierarchy_nodes_process_id(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_p", 2)
    obj["hierarchy"]["children"][0]["processId"] = "proc-of-q0"  # the event's is proc-0
    seed(env["url"], obj)
    imported(env, "do_p")
    assert node(env, "do_p")["processId"] == "proc-0"
    assert node(env, qids[0])["processId"] == "proc-of-q0"
    assert "processId" not in node(env, qids[1])  # none on its node: none set (the reference's pIdMap)


def test_a_property_nulled_at_the_source_is_removed_on_reimport(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_n", 1)
    obj["metadata"]["description"] = "old text"
    seed(env["url"], obj)
    imported(env, "do_n")
    assert node(env, "do_n")["description"] == "old text"
    obj["metadata"]["description"] = None
    seed(env["url"], obj)
    imported(env, "do_n")
    root = node(env, "do_n")
    assert "description" not in root, root.get("description")
    assert root["name"] == "Set do_n"  # the rest as before


def test_an_external_property_nulled_at_the_source_is_cleared_on_reimport(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_x", 1)
    seed(env["url"], obj)
    imported(env, "do_x")
    ext = str(env["tmp"] / "external.db")
    pk = {"identifier": "do_x"}
    rec = read_record_sync(ext, "dev_hierarchy_store", "questionset_hierarchy", pk)
    assert rec is not None and "instructions" in rec
    obj["metadata"]["instructions"] = None
    seed(env["url"], obj)
    imported(env, "do_x")
    rec = read_record_sync(ext, "dev_hierarchy_store", "questionset_hierarchy", pk)
    assert rec is not None and "instructions" not in rec and "hierarchy" in rec, rec


def test_the_external_key_row_is_written_without_external_props(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_e", 1)
    for prop in EXTERNAL_QUESTION_PROPS:
        del obj["hierarchy"]["children"][0][prop]
    seed(env["url"], obj)
    imported(env, "do_e")
    rec = read_record_sync(
        str(env["tmp"] / "external.db"), "dev_question_store", "question_data", {"identifier": qids[0]}
    )
    assert rec == {"identifier": qids[0]}


def test_no_key_row_and_no_failure_when_no_external_table_is_configured(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_f", 1)
    for prop in EXTERNAL_QUESTION_PROPS:
        del obj["hierarchy"]["children"][0][prop]
    seed(env["url"], obj)
    imported(env, "do_f", ["question.keyspace="])  # nothing to write to, nothing to write: not an error
    ext = str(env["tmp"] / "external.db")
    assert read_record_sync(ext, "dev_question_store", "question_data", {"identifier": qids[0]}) is None
    assert node(env, qids[0])["IL_FUNC_OBJECT_TYPE"] == "Question"


def test_rehosted_file_names_keep_their_case(env: dict[str, Any]) -> None:
    obj, qids = question_set("do_Case", 1)
    seed(env["url"], obj)
    imported(env, "do_Case")
    base = f"{env['url']}/_files"
    root = node(env, "do_Case")
    assert root["downloadUrl"] == f"{base}/questionset/do_Case/do_Case.ecar"
    variants = json.loads(root["variants"])
    assert variants["spine"]["ecarUrl"] == f"{base}/questionset/do_Case/do_Case-spine.ecar"
    assert node(env, qids[0])["downloadUrl"] == f"{base}/question/{qids[0]}/{qids[0]}.ecar"
    assert (env["tmp"] / "storage/questionset/do_Case/do_Case-spine.ecar").is_file()


def test_origin_data_is_the_references_string_a_childs_repository_with_its_fields_query(
    env: dict[str, Any],
) -> None:
    obj, qids = question_set("do_o", 1)
    seed(env["url"], obj)
    imported(env, "do_o")
    api = f"{env['url']}/api"
    child = node(env, qids[0])
    repository = json.loads(child["originData"])["repository"]
    assert repository.startswith(f"{api}/question/v1/read/{qids[0]}?fields="), repository
    fields = repository.split("?fields=", 1)[1].split(",")
    assert {"name", "body", "editorState"} <= set(fields)  # schema props, then external props
    # the reference's spacing, byte for byte
    assert child["originData"] == f'{{"identifier": "{qids[0]}","repository":"{repository}"}}'
    root = node(env, "do_o")
    assert root["originData"] == f'{{"identifier": "do_o","repository":"{api}/questionset/v1/read/do_o"}}'


def test_two_files_whose_names_differ_only_in_case_get_two_names(env: dict[str, Any]) -> None:
    obj = question_set("do_d", 1, with_icon=False)[0]
    obj["metadata"]["appIcon"] = f"{env['url']}/source-ecar/DO_D/DO_D.ecar"  # any served file
    seed(env["url"], obj, question_set("DO_D", 1)[0])
    imported(env, "do_d")
    root = node(env, "do_d")
    folder = f"{env['url']}/_files/questionset/do_d/"
    assert root["downloadUrl"] == folder + "do_d.ecar"
    assert root["appIcon"].startswith(folder) and root["appIcon"].endswith("-DO_D.ecar"), root["appIcon"]


def test_same_name_files_of_one_object_get_distinct_names_of_at_most_120_chars(tmp_path: Path) -> None:
    from cokreat_jobs.core.naming import FILE_NAME_MAX
    from cokreat_jobs.jobs.auto_creator_v2.processor import AutoCreatorV2, _Files
    from cokreat_jobs.jobs.auto_creator_v2.settings import Settings

    class Fakes:
        async def download(self, url: str, dest: Path, max_bytes: int) -> None:
            dest.write_bytes(b"x")

        async def upload_file(self, local: Path, remote: str) -> str:
            return f"https://store/{remote}"

    proc = AutoCreatorV2.__new__(AutoCreatorV2)
    proc.settings, proc.downloader, proc.storage = Settings(), Fakes(), Fakes()  # type: ignore[assignment]
    long = "Q" * 200 + "_SPINE.ecar"
    urls = [f"https://src/{d}/{long}" for d in ("a", "b", "c")] + ["https://src/d/" + long.lower()]
    files = _Files(tmp_path)

    async def go() -> list[str]:
        return [await proc._rehost(u, "Question", "do_1", files, hint="spine") for u in urls]

    names = [u.rsplit("/", 1)[1] for u in asyncio.run(go())]
    assert len({n.casefold() for n in names}) == 4, names
    assert all(len(n) <= FILE_NAME_MAX and n.endswith(".ecar") for n in names)
    assert names[0] == "Q" * (FILE_NAME_MAX - len(".ecar")) + ".ecar"  # cut, its extension kept
    assert all(n.startswith("spine-") for n in names[1:])
