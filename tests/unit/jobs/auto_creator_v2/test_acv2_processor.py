"""auto-creator-v2's processor against a real sandbox server with sqlite stores: failure paths, retries,
missing units, temp files; and the sandbox's source repository API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync
from cokreat_jobs.dev.samples.question_sets import config, import_event, import_then_link, question_set
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.jobs.auto_creator_v2.processor import AutoCreatorV2


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = {"storage_dir": str(tmp_path / "storage"), "graph_store": f"sqlite:///{tmp_path / 'graph.db'}"}
    server = ServerThread(tmp_path / "sandbox", settings).start()
    url = server.base_url
    sources = [question_set(f"do_{c}", 2)[0] for c in "abc"]
    sources[2]["metadata"]["visibility"] = "Private"
    r = httpx.post(
        f"{url}/_sandbox/seed",
        json={
            "source_objects": sources,
            "collections": [{"identifier": "do_col", "name": "C", "channel": "ch1", "units": ["do_u1"]}],
        },
    )
    assert r.status_code == 200, r.text
    try:
        yield {"url": url, "tmp": tmp_path}
    finally:
        server.stop()


def process(env: dict[str, Any], event: dict[str, Any], extra: list[str] | None = None) -> Any:
    return asyncio.run(import_then_link(config(env["url"], env["tmp"], extra), event))


def fault(url: str, **rule: Any) -> None:
    assert httpx.post(f"{url}/_sandbox/faults", json=rule).status_code == 200


def no_temp_files(env: dict[str, Any]) -> bool:
    tmp = env["tmp"] / "acv2-tmp"
    return not tmp.exists() or not any(tmp.iterdir())


def test_skipped(env: dict[str, Any]) -> None:
    out = process(env, import_event(env["url"], "do_a", extra_metadata={"downloadUrl": "http://x/a.zip"}))
    assert out.kind == "skipped" and out.reason == "not-an-ecar"


def test_invalid_field_fails(env: dict[str, Any]) -> None:
    ev = import_event(env["url"], "do_a")
    ev["edata"]["repository"] = 5
    out = process(env, ev)
    assert out.kind == "failed" and out.reason == "invalid-field"


def test_broken_package_fails_and_cleans_up(env: dict[str, Any]) -> None:
    fault(env["url"], path="/source-ecar/do_a/*", status=200, raw_body="garbage")
    out = process(env, import_event(env["url"], "do_a"))
    assert out.kind == "failed" and out.reason == "permanent" and "not a valid ECAR" in out.detail["error"]
    assert out.failed_record["failInfo"]["reason"] == "permanent"
    assert out.failed_record["edata"]["iteration"] == 2 and out.failed_record["jobName"] == "auto-creator-v2"
    assert no_temp_files(env)
    assert read_node_sync(str(env["tmp"] / "graph.db"), "do_a") is None


def test_missing_manifest_item_fails(env: dict[str, Any]) -> None:
    ev = import_event(
        env["url"], "do_a", extra_metadata={"downloadUrl": f"{env['url']}/source-ecar/do_b/do_b.ecar"}
    )
    out = process(env, ev)
    assert out.kind == "failed" and "no archive.items entry for do_a" in out.detail["error"]
    assert no_temp_files(env)


def test_source_unknown_and_private(env: dict[str, Any]) -> None:
    ev = import_event(env["url"], "do_a")
    ev["edata"]["repository"] = f"{env['url']}/api/questionset/v1/read/do_zzz"
    out = process(env, ev)
    assert out.kind == "failed" and "NOT_FOUND" in out.detail["error"]
    out = process(env, import_event(env["url"], "do_c"))
    assert out.kind == "failed" and "ERR_ACCESS_DENIED" in out.detail["error"]


def test_transient_503s_are_retried(env: dict[str, Any]) -> None:
    fault(env["url"], path="*/questionset/v1/read/*", status=503, times=2)
    fault(env["url"], path="*/question/v1/read/*", status=503, times=2)
    fault(env["url"], path="*/content/v3/hierarchy/add", status=503, times=1)
    ev = import_event(env["url"], "do_a", collection=[{"identifier": "do_col", "unitId": "do_u1"}])
    out = process(env, ev)
    assert out.kind == "success" and out.detail["linked"] == ["do_col/do_u1"]


def test_retries_exhausted(env: dict[str, Any]) -> None:
    fault(env["url"], path="*/questionset/v1/read/*", status=503)
    out = process(env, import_event(env["url"], "do_a"), ["http.retry.max_attempts=2"])
    assert out.kind == "failed" and out.reason == "retries-exhausted"


def test_missing_unit_is_noted(env: dict[str, Any]) -> None:
    ev = import_event(
        env["url"],
        "do_b",
        collection=[
            {"identifier": "do_col", "unitId": "do_nounit"},
            {"identifier": "do_nocol", "unitId": "u"},
            {"identifier": "do_col", "unitId": "do_u1"},
        ],
    )
    out = process(env, ev, ["auto_creator_v2.link_delay_ms=10"])
    assert out.kind == "success" and out.reason == "collection-unit-missing"
    assert out.detail["unit_missing"] == ["do_col/do_nounit", "do_nocol/u"]
    assert out.detail["collection_missing"] == ["do_nocol"]  # reported as content-auto-creator does
    assert out.detail["linked"] == ["do_col/do_u1"]
    # linked once even when imported again (replay converges)
    assert process(env, ev).kind == "success"
    tree = httpx.get(f"{env['url']}/_sandbox/hierarchies/do_col").json()
    assert [c["identifier"] for c in tree["children"][0]["children"]] == ["do_b"]
    # the content read sees the graph node, as content-service would
    read = httpx.get(f"{env['url']}/content/v4/read/do_b").json()
    assert read["result"]["content"]["objectType"] == "QuestionSet"


def test_link_waits_for_readability_then_gives_up(env: dict[str, Any]) -> None:
    fault(env["url"], path="*/content/v4/read/do_a", status=404, body={"responseCode": "RESOURCE_NOT_FOUND"})
    ev = import_event(env["url"], "do_a", collection=[{"identifier": "do_col", "unitId": "do_u1"}])
    out = process(env, ev, ["auto_creator_v2.link_wait_timeout_s=0.5"])
    assert (
        out.kind == "failed" and out.reason == "retries-exhausted" and "not readable" in out.detail["error"]
    )
    # the failed topic gets the original import event: replaying it imports and links again
    assert out.failed_record["edata"]["metadata"]["identifier"] == "do_a"
    assert out.failed_record["edata"]["collection"] == ev["edata"]["collection"]
    assert out.failed_record["failInfo"]["reason"] == "retries-exhausted"


def test_import_stage_hands_linking_on(env: dict[str, Any]) -> None:
    """The import operator stores and hands on; it does not link (that is the second operator's work)."""
    ev = import_event(env["url"], "do_a", collection=[{"identifier": "do_col", "unitId": "do_u1"}])
    importer = AutoCreatorV2.from_config(config(env["url"], env["tmp"]))

    async def go() -> Any:
        try:
            return await importer.process(ev)
        finally:
            await importer.close()

    out = asyncio.run(go())
    assert out.kind == "handed-on" and out.next_key == "do_a"
    assert out.next_request["parents"] == [{"identifier": "do_col", "unitId": "do_u1"}]
    assert out.next_request["event"] == ev and out.next_request["detail"]["children"] == 2
    assert read_node_sync(str(env["tmp"] / "graph.db"), "do_a") is not None
    tree = httpx.get(f"{env['url']}/_sandbox/hierarchies/do_col").json()
    assert tree["children"][0].get("children", []) == []
    # without collections the import is the whole event
    out = asyncio.run(import_then_link(config(env["url"], env["tmp"]), import_event(env["url"], "do_b")))
    assert out.kind == "success" and "linked" not in out.detail


# ------------------------------------------------------------------------------------- source repository


def test_source_read_api(env: dict[str, Any]) -> None:
    url = env["url"]
    r = httpx.get(f"{url}/api/questionset/v1/read/do_a").json()
    qs = r["result"]["questionset"]
    assert (
        r["responseCode"] == "OK" and qs["identifier"] == "do_a" and qs["downloadUrl"].endswith("/do_a.ecar")
    )
    assert set(qs["variants"]) == {"full", "spine"} and "instructions" not in qs
    q = httpx.get(f"{url}/question/v4/read/do_a_q0", params={"fields": "name,body"}).json()["result"][
        "question"
    ]
    assert q == {"identifier": "do_a_q0", "name": "Question do_a_q0", "body": "<p>What is 0 + 0?</p>"}
    assert httpx.get(f"{url}/api/question/v1/read/do_a").status_code == 404
    assert httpx.get(f"{url}/api/questionset/v1/read/do_c").status_code == 400
    head = httpx.head(f"{url}/source-ecar/do_a/do_a.ecar")
    assert head.status_code == 200 and int(head.headers["content-length"]) == qs["variants"]["full"]["size"]
    assert httpx.get(f"{url}/source-ecar/do_a/other.ecar").status_code == 404
    bad = httpx.post(f"{url}/_sandbox/seed", json={"source_objects": [{"identifier": "x"}]})
    assert bad.status_code == 400


def test_inspect_cli(env: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from cokreat_jobs.cli.inspect import inspect

    assert process(env, import_event(env["url"], "do_a")).kind == "success"
    sets = [
        "--set=graph.store=sqlite",
        f"--set=graph.sqlite.url=sqlite:///{env['tmp'] / 'graph.db'}",
        "--set=external.store=sqlite",
        f"--set=external.sqlite.url=sqlite:///{env['tmp'] / 'external.db'}",
    ]
    runner = CliRunner()
    res = runner.invoke(inspect, ["graph", "do_a", *sets])
    assert res.exit_code == 0 and '"IL_UNIQUE_ID": "do_a"' in res.output
    res = runner.invoke(inspect, ["external", "QUESTION", "do_a_q1", *sets])
    assert res.exit_code == 0 and '"body"' in res.output
    res = runner.invoke(inspect, ["graph", "do_none", *sets])
    assert res.exit_code == 1 and res.output == ""


# ------------------------------------------------------------------------------ bounds (HARDENING 13)


def test_too_many_children_fail_before_any_child_is_imported(env: dict[str, Any]) -> None:
    out = process(env, import_event(env["url"], "do_a"), ["auto_creator_v2.max_children=1"])
    assert out.kind == "failed" and out.reason == "permanent", out.detail
    assert "has 2 children to import, more than the limit of 1" in out.detail["error"]
    graph = str(env["tmp"] / "graph.db")
    assert read_node_sync(graph, "do_a") is None and read_node_sync(graph, "do_a_q0") is None
    assert no_temp_files(env)
    assert (
        process(env, import_event(env["url"], "do_a"), ["auto_creator_v2.max_children=2"]).kind == "success"
    )


def test_too_many_collections_fail_before_anything_is_read(env: dict[str, Any]) -> None:
    refs = [{"identifier": "do_col", "unitId": f"do_u{i}"} for i in range(4)]
    out = process(
        env, import_event(env["url"], "do_a", collection=refs), ["auto_creator_v2.max_collections=3"]
    )
    assert out.kind == "failed" and out.reason == "permanent", out.detail
    assert "edata.collection has 4 entries, more than the limit of 3" in out.detail["error"]
    assert read_node_sync(str(env["tmp"] / "graph.db"), "do_a") is None


def test_repository_allowed_sources_default_to_the_source_base_url(env: dict[str, Any]) -> None:
    """Not configured: only repositories under source.baseUrl (the sandbox's /api) are read."""
    ev = import_event(env["url"], "do_a")
    ev["edata"]["repository"] = f"{env['url']}/other/questionset/v1/read/do_a"
    out = process(env, ev)
    assert out.kind == "failed" and out.reason == "permanent"
    assert "is not an allowed source repository" in out.detail["error"]
    assert f"allowed: {env['url']}/api;" in out.detail["error"]


def test_repository_clients_are_bounded_least_recently_used_first(env: dict[str, Any]) -> None:
    """One client per repository origin, at most repository_clients_max of them; they share the downloader's
    guarded session, so none holds a session of its own to leak."""
    cfg = config(env["url"], env["tmp"], ["auto_creator_v2.repository_clients_max=2"])

    async def main() -> tuple[list[str], list[bool]]:
        p = AutoCreatorV2.from_config(cfg)
        try:
            for origin in ("http://a.test", "http://b.test", "http://a.test", "http://c.test"):
                p._repository_client(origin)  # noqa: SLF001 - the bound itself is what is tested
            clients = list(p._repo_clients.values())  # noqa: SLF001
            return list(p._repo_clients), [c.guard is p.downloader.guard for c in clients]  # noqa: SLF001
        finally:
            await p.close()

    origins, shared = asyncio.run(main())
    assert origins == ["http://a.test", "http://c.test"]  # b was the least recently used
    assert shared == [True, True]


def test_credentials_in_the_repository_url_are_not_sent_on(env: dict[str, Any]) -> None:
    """The repository's origin is taken without userinfo: an event cannot make the job send credentials."""
    ev = import_event(env["url"], "do_a")
    ev["edata"]["repository"] = ev["edata"]["repository"].replace("http://", "http://someone:pw@", 1)
    out = process(env, ev)
    assert out.kind == "success", out.detail
    log = httpx.get(f"{env['url']}/_sandbox/requests").json()["requests"]
    reads = [r for r in log if r["path"].endswith("/questionset/v1/read/do_a")]
    assert reads, [r["path"] for r in log]
    assert all("authorization" not in {k.lower() for k in r.get("headers", {})} for r in reads), reads


def test_failed_records_keep_the_jobs_name_for_replay_whatever_job_name_says(env: dict[str, Any]) -> None:
    """`job.name` renames the Flink job only: replay keeps the records whose jobName is auto-creator-v2."""
    fault(env["url"], path="/source-ecar/do_a/*", status=200, raw_body="garbage")
    out = process(env, import_event(env["url"], "do_a"), ["job.name=cokreat-auto-creator-v2"])
    assert out.kind == "failed"
    assert out.failed_record["jobName"] == "auto-creator-v2"
