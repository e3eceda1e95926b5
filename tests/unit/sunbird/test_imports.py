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
    "channel": "ch",
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
    # a question set without source is the real API's too: no refusal here (its event names an identifier)
    assert request_objects({"questionset": [{"metadata": {}}]}, "questionset", CFG) == [{"metadata": {}}]


def test_source_metadata() -> None:
    body = orjson.dumps({"result": {"questionset": {"status": "Live", "name": "Q"}}})
    assert source_metadata("u", 200, body, "questionset", QS) == {"status": "Live", "name": "Q"}
    e = refused(lambda: source_metadata("u", 404, b'{"responseCode": "RESOURCE_NOT_FOUND"}', "content", QS))
    assert e.err == ERR_READ_SOURCE and e.errmsg.endswith("RESOURCE_NOT_FOUND")
    assert refused(lambda: source_metadata("u", 502, b"<html>", "content", QS)).errmsg.endswith("502")
    draft = orjson.dumps({"result": {"questionset": {"status": "Draft"}}})
    e = refused(lambda: source_metadata("http://src/q", 200, draft, "questionset", QS))
    assert e.err == ERR_SOURCE_STATUS_VALIDATION
    assert e.errmsg == (
        "Source Object Status Not Qualified For Import Operation. "
        "Please Provide Valid Source With Status [Live, Unlisted]"
    )
    assert e.messages == ["http://src/q: status 'Draft'"]
    assert source_metadata("u", 200, draft, "questionset", CONTENT) == {"status": "Draft"}  # any status
    assert source_unreachable(OSError("refused")).errmsg.endswith("SERVER_ERROR (refused)")


@pytest.mark.parametrize(
    "body", [b'{"result": {}}', b'{"result": {"content": {}}}', b'{"result": {"questionset": {}}}', b""]
)
def test_source_status_is_checked_only_when_the_source_returned_metadata(body: bytes) -> None:
    assert source_metadata("u", 200, body, "questionset", QS) == {}


def test_the_shipped_configs_require_channel() -> None:
    assert CONTENT.required_props == (
        "name",
        "code",
        "mimeType",
        "contentType",
        "artifactUrl",
        "framework",
        "channel",
    )
    assert QS.required_props == ("name", "code", "mimeType", "framework", "channel")
    p = prepare_object({"metadata": {k: v for k, v in FULL.items() if k != "channel"}}, None, "p", CONTENT)
    e = refused(lambda: validate_prepared([p], CONTENT))
    assert e.err == ERR_REQUIRED_PROPS_VALIDATION
    assert e.errmsg == (
        'Validation Failed! Mandatory Properties Are ["name","code","mimeType","contentType","artifactUrl",'
        '"framework","channel"] | Required Property\'s Missing For [c-1]'
    )
    assert e.messages == ["object 0 (c-1): missing channel"]


@pytest.mark.parametrize("given", [None, "", "  ", "absent"])
def test_a_blank_object_type_becomes_the_apis(given: Any) -> None:
    metadata = dict(FULL) if given == "absent" else {**FULL, "objectType": given}
    p = prepare_object({"metadata": metadata}, None, "p", CONTENT)
    assert p["metadata"]["objectType"] == "Content" and p["defaulted"] == ["objectType"]
    e = build_event(p, "dev", identifier="do_1")
    assert e["edata"]["objectType"] == "Content" and e["edata"]["metadata"]["objectType"] == "Content"
    q = prepare_object({"metadata": metadata}, None, "p", QS)
    assert build_event(q, "dev")["edata"]["objectType"] == "QuestionSet"
    assert (CONTENT.object_type, QS.object_type) == ("Content", "QuestionSet")


def test_a_given_object_type_is_kept() -> None:
    p = prepare_object({"metadata": {**FULL, "objectType": "Collection"}}, None, "p", CONTENT)
    assert p["metadata"]["objectType"] == "Collection" and p["defaulted"] == []
    src = prepare_object(
        {"source": "http://s/do_1"}, {"objectType": "QuestionSet", "name": "n"}, "p", CONTENT
    )
    assert src["metadata"]["objectType"] == "QuestionSet"


def test_the_object_type_is_defaulted_after_the_required_props_check() -> None:
    cfg = load_import_config({"import.content.required_props": ["name", "objectType"]})
    p = prepare_object({"metadata": {"name": "n", "code": "c-3"}}, None, "p", cfg.content)
    e = refused(lambda: validate_prepared([p], cfg.content))
    assert e.err == ERR_REQUIRED_PROPS_VALIDATION and e.messages == ["object 0 (c-3): missing objectType"]


def test_origin_data_comes_from_the_metadata_only() -> None:
    url = "http://src/v1/read/do_7"
    # the object-level originData is ignored, with or without a source
    for source_md in ({"name": "s"}, {}):
        obj = {"source": url, "metadata": {}, "originData": {"identifier": "x"}}
        p = prepare_object(obj, source_md, "p", CONTENT)
        assert p["originData"] == {} and build_event(p, "dev")["edata"]["originData"] == {}
    # the source's, or the request metadata's (it overlays the source's); read before remove_props
    cfg = load_import_config({"import.content.remove_props": ["originData"]})
    p = prepare_object({"source": url}, {"originData": {"identifier": "o"}}, "p", cfg.content)
    assert p["originData"] == {"identifier": "o"} and "originData" not in p["metadata"]
    p = prepare_object(
        {"source": url, "metadata": {"originData": '{"identifier": "r"}'}},
        {"originData": {"identifier": "o"}},
        "p",
        CONTENT,
    )
    assert build_event(p, "dev")["edata"]["originData"] == {"identifier": "r"}
    # without a source the event carries none
    p = prepare_object({"metadata": {**FULL, "originData": {"identifier": "o"}}}, None, "p", CONTENT)
    assert build_event(p, "dev")["edata"]["originData"] == {}


def test_source_is_recorded_only_when_the_source_returned_metadata() -> None:
    url = "http://src/v1/read/do_8"
    assert "source" not in prepare_object({"source": url, "metadata": FULL}, {}, "p", CONTENT)["metadata"]
    assert prepare_object({"source": url}, {"name": "n"}, "p", CONTENT)["metadata"]["source"] == url


def test_a_question_set_without_source_gets_a_new_identifier() -> None:
    qs = {"name": "q", "code": "q", "mimeType": "m", "framework": "f", "channel": "ch"}
    (obj,) = request_objects({"questionset": {"metadata": qs}}, "questionset", CFG)
    p = prepare_object(obj, None, "p", QS)
    validate_prepared([p], QS)
    e = build_event(p, "dev")
    assert e["object"]["id"].startswith("do_") and e["edata"]["identifier"] == e["object"]["id"]
    assert "repository" not in e["edata"] and e["edata"]["objectType"] == "QuestionSet"


def test_prepare_object_overlays_removes_and_sets_the_process_id() -> None:
    source = {"name": "From source", "downloadUrl": "d", "code": "s-1"}
    obj = {"source": "http://src/do_1", "metadata": {"name": "From request"}, "stage": "review"}
    p = prepare_object(obj, source, "p-1", CONTENT)
    assert p["metadata"] == {
        "name": "From request",
        "code": "s-1",
        "source": "http://src/do_1",
        "processId": "p-1",
        "objectType": "Content",
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
        {"source": "http://src/v1/read/do_7"}, {"originData": {"a": 1}, "name": "n"}, "p", CONTENT
    )
    e = build_event(with_source, "qa")
    assert e["object"]["id"] == "do_7" and e["edata"]["repository"] == "http://src/v1/read/do_7"
    assert e["edata"]["originData"] == {"a": 1} and e["context"]["pdata"]["env"] == "qa"
