"""The import API's rules (sunbird/imports.py) as plain functions, without HTTP: the sandbox's import API
(tests/unit/dev/sandbox/test_sandbox_import_api.py) and the bulk uploader (tests/unit/ops/test_bulk_upload.py)
test them over their own faces."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cokreat_jobs.sunbird.imports import (
    ERR_INVALID_IMPORT_REQUEST,
    ERR_OBJECT_STAGE_VALIDATION,
    ERR_READ_SOURCE,
    ERR_REQUEST_LIMIT_EXCEED,
    ERR_REQUIRED_PROPS_VALIDATION,
    ERR_SOURCE_STATUS_VALIDATION,
    ImportRefused,
    build_event,
    import_request,
    load_import_config,
    prepare_object,
    process_id_for,
    request_objects,
    source_metadata,
    source_unreachable,
    validate_prepared,
)

CFG = load_import_config()
CONTENT = CFG.content
QS = CFG.questionset

FULL = {
    "name": "A content",
    "code": "c-1",
    "mimeType": "application/pdf",
    "contentType": "Resource",
    "artifactUrl": "https://example.org/a.pdf",
    "framework": "NCF",
}


def refused(call: Any) -> ImportRefused:
    with pytest.raises(ImportRefused) as info:
        call()
    return info.value


def test_packaged_config_and_overrides() -> None:
    assert CFG.request_size_limit == 200 and CFG.env == "dev"
    assert CONTENT.output_topic == "sunbirddev.auto.creation.job.request"
    assert QS.output_topic == "sunbirddev.object.import.request"
    assert QS.valid_source_status == ("Live", "Unlisted")
    cfg = load_import_config({"import": {"content": {"valid_stages": "create, review"}}, "import.env": "qa"})
    assert cfg.content.valid_stages == ("create", "review") and cfg.env == "qa"
    assert cfg.questionset == QS
    assert CFG.for_type("questionset") is CFG.questionset


@pytest.mark.parametrize("body", [None, [], {}, {"request": []}, {"request": "x"}])
def test_a_body_without_a_request_object_is_refused(body: Any) -> None:
    assert refused(lambda: import_request(body)).err == ERR_INVALID_IMPORT_REQUEST


def test_process_id_given_or_new() -> None:
    assert process_id_for({"processId": "  p-1 "}) == "p-1"
    made = {process_id_for({}), process_id_for({"processId": " "}), process_id_for({"processId": 3})}
    assert len(made) == 3 and all(len(p) == 36 for p in made)


def test_request_objects() -> None:
    assert request_objects({"content": {"metadata": {}}}, "content", CFG) == [{"metadata": {}}]
    for request in ({}, {"content": []}, {"content": ["x"]}, {"content": [{"metadata": "x"}]}):
        assert refused(lambda r=request: request_objects(r, "content", CFG)).err == ERR_INVALID_IMPORT_REQUEST
    many = {"content": [{}] * (CFG.request_size_limit + 1)}
    e = refused(lambda: request_objects(many, "content", CFG))
    assert e.err == ERR_REQUEST_LIMIT_EXCEED and e.errmsg.endswith("200")
    e = refused(lambda: request_objects({"questionset": [{"metadata": {}}]}, "questionset", CFG))
    assert e.err == ERR_INVALID_IMPORT_REQUEST and e.messages


def test_source_metadata() -> None:
    body = orjson.dumps({"result": {"questionset": {"status": "Live", "name": "Q"}}})
    assert source_metadata("u", 200, body, "questionset", QS) == {"status": "Live", "name": "Q"}
    e = refused(lambda: source_metadata("u", 404, b'{"responseCode": "RESOURCE_NOT_FOUND"}', "content", QS))
    assert e.err == ERR_READ_SOURCE and e.errmsg.endswith("RESOURCE_NOT_FOUND")
    assert refused(lambda: source_metadata("u", 502, b"<html>", "content", QS)).errmsg.endswith("502")
    draft = orjson.dumps({"result": {"questionset": {"status": "Draft"}}})
    e = refused(lambda: source_metadata("http://src/q", 200, draft, "questionset", QS))
    assert e.err == ERR_SOURCE_STATUS_VALIDATION and e.errmsg.endswith("[Live, Unlisted]")
    assert e.messages == ["http://src/q: status 'Draft'"]
    assert source_metadata("u", 200, draft, "questionset", CONTENT) == {"status": "Draft"}  # any status
    assert source_unreachable(OSError("refused")).errmsg.endswith("SERVER_ERROR (refused)")


def test_prepare_object_overlays_removes_and_sets_the_process_id() -> None:
    source = {"name": "From source", "downloadUrl": "d", "code": "s-1"}
    obj = {"source": "http://src/do_1", "metadata": {"name": "From request"}, "stage": "review"}
    p = prepare_object(obj, source, "p-1", CONTENT)
    assert p["metadata"] == {
        "name": "From request",
        "code": "s-1",
        "source": "http://src/do_1",
        "processId": "p-1",
    }
    assert (p["source"], p["stage"], p["collection"], p["originData"]) == (
        "http://src/do_1",
        "review",
        [],
        {},
    )


def test_required_props_are_checked_before_stages() -> None:
    bad_stage = prepare_object({"metadata": FULL, "stage": "retire"}, None, "p", CONTENT)
    missing = prepare_object({"metadata": {"code": "c-2"}}, None, "p", CONTENT)
    e = refused(lambda: validate_prepared([bad_stage, missing], CONTENT))
    assert e.err == ERR_REQUIRED_PROPS_VALIDATION and "[c-2]" in e.errmsg
    e = refused(lambda: validate_prepared([bad_stage], CONTENT))
    assert e.err == ERR_OBJECT_STAGE_VALIDATION and e.messages == ["object 0 (c-1): stage 'retire'"]
    validate_prepared([prepare_object({"metadata": FULL, "stage": "publish"}, None, "p", CONTENT)], CONTENT)


def test_build_event() -> None:
    p = prepare_object(
        {"metadata": {**FULL, "channel": "ch"}, "collection": [{"identifier": "c"}]}, None, "p", CONTENT
    )
    e = build_event(p, "dev", identifier="do_9")
    assert e["eid"] == "BE_JOB_REQUEST" and e["mid"].startswith(f"LP.{e['ets']}.")
    assert e["object"] == {"id": "do_9", "ver": None} and e["context"]["channel"] == "ch"
    assert e["edata"]["identifier"] == "do_9" and "repository" not in e["edata"]
    assert e["edata"]["collection"] == [{"identifier": "c"}] and e["edata"]["action"] == "auto-create"
    with_source = prepare_object(
        {"source": "http://src/v1/read/do_7", "originData": {"a": 1}}, {}, "p", CONTENT
    )
    e = build_event(with_source, "qa")
    assert e["object"]["id"] == "do_7" and e["edata"]["repository"] == "http://src/v1/read/do_7"
    assert e["edata"]["originData"] == {"a": 1} and e["context"]["pdata"]["env"] == "qa"
