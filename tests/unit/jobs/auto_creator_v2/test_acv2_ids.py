"""auto-creator-v2 and hostile ids (HARDENING 6 and 12).

- Re-hosting wrote to ``<objecttype>/<slug(id)>/<file>``: ids that differ only in case or in characters the
  slug drops shared a folder. Now the key holds the id as it is, and an id that is not a valid Sunbird
  identifier is refused.
- A child id ``..`` in a package's hierarchy read ``GET {source}/question/v1/`` (the HTTP client resolves dot
  segments).

The event's own id (``edata.metadata.identifier``) that is not an identifier skips the event, as a blank
one does (JOBS.md point 1); a child's id from the package fails the event as a package defect (permanent).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync
from cokreat_jobs.core.event import Event
from cokreat_jobs.core.naming import identifier_problem
from cokreat_jobs.dev.samples.question_sets import config, import_event, import_then_link, question_set
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.jobs.auto_creator_v2.logic import check_event
from cokreat_jobs.jobs.auto_creator_v2.settings import Settings

HOSTILE = ["do_113!", "do_113%00", "..", ".", "do_1/../do_2", "do 113", "%2e%2e", "ä"]


@pytest.mark.parametrize("identifier", HOSTILE, ids=repr)
def test_an_identifier_that_is_no_sunbird_identifier_is_skipped(identifier: str) -> None:
    event = import_event("http://src.test", "do_1", extra_metadata={"identifier": identifier})
    skip = check_event(Event(event), Settings())
    assert skip is not None and skip.reason == "invalid-identifier"
    assert skip.detail == {"problem": identifier_problem(identifier)}


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = {"storage_dir": str(tmp_path / "storage"), "graph_store": f"sqlite:///{tmp_path / 'graph.db'}"}
    server = ServerThread(tmp_path / "sandbox", settings).start()
    hostile, _ = question_set("do_h", 2)
    hostile["hierarchy"]["children"][0]["identifier"] = ".."
    sources = [hostile, question_set("DO_K", 1)[0], question_set("do_k", 1)[0]]
    r = httpx.post(f"{server.base_url}/_sandbox/seed", json={"source_objects": sources})
    assert r.status_code == 200, r.text
    try:
        yield {"url": server.base_url, "tmp": tmp_path}
    finally:
        server.stop()


def process(env: dict[str, Any], event: dict[str, Any]) -> Any:
    return asyncio.run(import_then_link(config(env["url"], env["tmp"]), event))


def requests_seen(url: str) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in httpx.get(f"{url}/_sandbox/requests").json()["requests"]]


def test_a_child_id_that_is_a_dot_segment_fails_the_event_unread(env: dict[str, Any]) -> None:
    out = process(env, import_event(env["url"], "do_h"))
    assert out.kind == "failed" and out.reason == "permanent", (out.kind, out.reason, out.detail)
    assert "child Question '..' has an invalid identifier: a dot segment" in out.detail["error"]
    assert read_node_sync(str(env["tmp"] / "graph.db"), "do_h") is None
    seen = requests_seen(env["url"])
    odd = [p for p in seen if "/question/" in p and not re.fullmatch(r"GET /api/question/v1/read/do_h_q1", p)]
    assert odd == [], seen


def test_ids_that_differ_only_in_case_are_rehosted_to_different_keys(env: dict[str, Any]) -> None:
    for qs_id in ("DO_K", "do_k"):
        out = process(env, import_event(env["url"], qs_id))
        assert out.kind == "success", (out.kind, out.reason, out.detail)
    storage = env["tmp"] / "storage"
    folders = sorted(p.relative_to(storage).as_posix() for p in storage.glob("question*/*") if p.is_dir())
    assert folders == ["question/DO_K_q0", "question/do_k_q0", "questionset/DO_K", "questionset/do_k"]
    for qs_id in ("DO_K", "do_k"):
        node = read_node_sync(str(env["tmp"] / "graph.db"), qs_id)
        assert node is not None and f"/questionset/{qs_id}/" in node["downloadUrl"]
