"""content-auto-creator: event validation (skip reasons), the request value, the metadata split, settings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.errors import InvalidField
from cokreat_jobs.core.event import Event
from cokreat_jobs.jobs.content_auto_creator.metadata import split_metadata
from cokreat_jobs.jobs.content_auto_creator.request import AutoCreateRequest, CollectionRef
from cokreat_jobs.jobs.content_auto_creator.settings import Settings
from cokreat_jobs.jobs.content_auto_creator.validation import check_event

SETTINGS = Settings()


def make_event(**edata: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1.abc",
        "actor": {"id": "Auto Creator", "type": "System"},
        "context": {"channel": "ch_1", "pdata": {"id": "org.sunbird.platform"}},
        "object": {"id": "do_src_1", "ver": "1"},
        "edata": {
            "action": "auto-create",
            "iteration": 1,
            "objectType": "Content",
            "repository": "https://source.test/api/content/v1/read/do_src_1",
            "metadata": {
                "name": "A content",
                "code": "c1",
                "mimeType": "application/pdf",
                "primaryCategory": "Learning Resource",
                "artifactUrl": "https://files.test/a.pdf",
                "lastPublishedBy": "user_1",
            },
            "collection": [{"identifier": "do_coll", "unitId": "do_unit"}],
        },
    }
    for key, value in edata.items():
        if value is _DELETE:
            event["edata"].pop(key, None)
        else:
            event["edata"][key] = value
    return event


_DELETE: Any = object()


def check(event: dict[str, Any], settings: Settings = SETTINGS) -> str | None:
    skip = check_event(Event(event), settings)
    return None if skip is None else skip.reason


def test_a_valid_event_is_not_skipped() -> None:
    assert check(make_event()) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e["edata"].update(iteration=4), "iteration-exceeded"),
        (lambda e: e["edata"].update(action="auto-publish"), "action-not-allowed"),
        (lambda e: e["edata"].pop("action"), "action-not-allowed"),
        (lambda e: e["object"].update(id="  "), "object-id-blank"),
        (lambda e: e.pop("object"), "object-id-blank"),
        (lambda e: e["context"].update(channel=""), "channel-blank"),
        (lambda e: e["edata"].update(objectType="QuestionSet"), "object-type-not-allowed"),
        (lambda e: e["edata"].update(metadata={}), "metadata-empty"),
        (lambda e: e["edata"].pop("metadata"), "metadata-empty"),
        (
            lambda e: (e["edata"].pop("repository"), e["edata"]["metadata"].update(artifactUrl=" ")),
            "no-source",
        ),
        (lambda e: e["edata"].update(stage="approve"), "stage-not-allowed"),
        (lambda e: e["edata"]["metadata"].pop("lastPublishedBy"), "mandatory-fields-missing"),
        (lambda e: e["edata"]["metadata"].update(code=None), "mandatory-fields-missing"),
    ],
)
def test_skip_reasons(change: Any, reason: str) -> None:
    event = make_event()
    change(event)
    assert check(event) == reason


def test_iteration_up_to_max_is_accepted_and_defaults_to_1() -> None:
    assert check(make_event(iteration=3)) is None
    assert check(make_event(iteration=_DELETE)) is None
    assert check(make_event(iteration=2), Settings(max_iteration=1)) == "iteration-exceeded"


def test_repository_alone_or_artifact_alone_is_a_source() -> None:
    event = make_event()
    event["edata"]["metadata"]["artifactUrl"] = ""
    assert check(event, Settings(mandatory_fields=())) is None
    assert check(make_event(repository=_DELETE)) is None


def test_stage_is_trimmed_and_case_insensitive() -> None:
    assert check(make_event(stage=" Upload ")) is None
    assert check(make_event(stage="   ")) is None
    assert check(make_event(stage="update")) == "stage-not-allowed"
    assert check(make_event(stage="update"), Settings(allowed_stages=("update",))) is None


def test_missing_fields_are_listed() -> None:
    event = make_event()
    del event["edata"]["metadata"]["name"]
    del event["edata"]["metadata"]["code"]
    skip = check_event(Event(event), SETTINGS)
    assert skip is not None and skip.detail == {"missing": ["name", "code"]}


def test_an_empty_mandatory_list_requires_nothing() -> None:
    event = make_event()
    event["edata"]["metadata"] = {"name": "x", "artifactUrl": "https://a.test/x"}
    assert check(event, Settings(mandatory_fields=())) is None


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda e: e["edata"].update(iteration="1"), "edata.iteration"),
        (lambda e: e["edata"].update(action=["auto-create"]), "edata.action"),
        (lambda e: e["object"].update(id=7), "object.id"),
        (lambda e: e["context"].update(channel={"id": "x"}), "context.channel"),
        (lambda e: e["edata"].update(metadata="name=x"), "edata.metadata"),
        (lambda e: e["edata"].update(repository={"url": "x"}), "edata.repository"),
        (lambda e: e["edata"].update(stage=3), "edata.stage"),
        (lambda e: e["edata"]["metadata"].update(artifactUrl=5), "edata.metadata.artifactUrl"),
    ],
)
def test_wrong_types_fail_naming_the_field(change: Any, path: str) -> None:
    event = make_event()
    change(event)
    with pytest.raises(InvalidField) as info:
        check(event)
    assert info.value.path == path


# ------------------------------------------------------------------------------------------- the request


def test_request_reads_every_field() -> None:
    event = make_event(stage=" Review ", identifier=" do_new ", originData={"identifier": "do_t"})
    event["edata"]["metadata"].update(pkgVersion=2, appIcon=" https://files.test/icon.png ")
    event["edata"]["collection"].append({"identifier": "do_coll", "unitId": None})
    req = AutoCreateRequest.from_event(Event(event))
    assert req.object_id == "do_src_1"
    assert req.channel == "ch_1"
    assert req.mid == "LP.1.abc"
    assert req.repository == "https://source.test/api/content/v1/read/do_src_1"
    assert req.mime_type == "application/pdf"
    assert req.artifact_url == "https://files.test/a.pdf"
    assert req.app_icon == "https://files.test/icon.png"
    assert req.last_published_by == "user_1"
    assert req.pkg_version == 2.0
    assert req.stage == "review"
    assert req.identifier == "do_new"
    assert req.origin_identifier == "do_t"
    assert req.collections == (CollectionRef("do_coll", "do_unit"), CollectionRef("do_coll", ""))


def test_request_defaults() -> None:
    event = make_event(repository=_DELETE, collection=_DELETE)
    req = AutoCreateRequest.from_event(Event(event))
    assert req.repository is None
    assert req.collections == ()
    assert req.pkg_version == 0.0
    assert req.origin_identifier == ""
    assert req.stage == ""


def test_origin_data_as_json_string_and_empty_collection_entries() -> None:
    event = make_event(originData='{"identifier": "do_t"}', collection=[{}, None])
    req = AutoCreateRequest.from_event(Event(event))
    assert req.origin_identifier == "do_t"
    assert req.collections == ()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda e: e["edata"]["metadata"].update(pkgVersion={"v": 1}), "edata.metadata.pkgVersion"),
        (lambda e: e["edata"]["metadata"].update(pkgVersion="one"), "edata.metadata.pkgVersion"),
        (lambda e: e["edata"].update(collection={"identifier": "x"}), "edata.collection"),
        (lambda e: e["edata"].update(collection=["do_coll"]), "edata.collection[0]"),
        (lambda e: e["edata"].update(collection=[{"identifier": 5}]), "edata.collection[0].identifier"),
        (lambda e: e["edata"].update(originData=[1]), "edata.originData"),
        (lambda e: e["edata"]["metadata"].update(lastPublishedBy=["u"]), "edata.metadata.lastPublishedBy"),
        (lambda e: e["edata"]["metadata"].update(appIcon=1), "edata.metadata.appIcon"),
    ],
)
def test_request_wrong_types(change: Any, path: str) -> None:
    event = make_event()
    change(event)
    with pytest.raises(InvalidField) as info:
        AutoCreateRequest.from_event(Event(event))
    assert info.value.path == path


def test_pkg_version_as_numeric_string() -> None:
    event = make_event()
    event["edata"]["metadata"]["pkgVersion"] = "3"
    assert AutoCreateRequest.from_event(Event(event)).pkg_version == 3.0


# -------------------------------------------------------------------------------------------- the split


def test_metadata_split() -> None:
    metadata = {
        "name": "A content",
        "code": "c1",
        "mimeType": "application/pdf",
        "contentType": "Resource",
        "primaryCategory": "Learning Resource",
        "framework": "fw",
        "processId": "p1",
        "artifactUrl": "https://files.test/a.pdf",
        "appIcon": "https://files.test/i.png",
        "description": "d",
        "identifier": "do_src",
        "status": "Live",
        "pkgVersion": 2,
        "lastPublishedBy": "u",
        "originData": {"x": 1},
        "variants": {},
        "channel": "c",
    }
    split = split_metadata(metadata, SETTINGS.props_to_remove, SETTINGS.create_props)
    assert split.create == {
        "name": "A content",
        "code": "c1",
        "mimeType": "application/pdf",
        "contentType": "Resource",
        "primaryCategory": "Learning Resource",
        "framework": "fw",
        "processId": "p1",
    }
    assert split.update == {
        "artifactUrl": "https://files.test/a.pdf",
        "appIcon": "https://files.test/i.png",
        "description": "d",
    }


def test_split_keeps_the_input_untouched() -> None:
    metadata = {"name": "n", "x": 1}
    before = copy.deepcopy(metadata)
    split_metadata(metadata, ["x"], ["name"])
    assert metadata == before


# ---------------------------------------------------------------------------------------------- settings


def test_settings_from_config() -> None:
    cfg = JobConfig(
        {
            "content_auto_creator": {
                "actions": "auto-create, auto-import",
                "allowed_content_stages": ["Create", "UPLOAD"],
                "content_mandatory_fields": [],
                "artifact_upload_allowed_source": "example.org, https://files.test/x",
                "artifact_upload_max_size": "1000",
                "bulk_upload_mime_types": ["video/mp4", "video/webm"],
                "maxIteration": 5,
                "api_call_delay": 1,
                "temp_file_location": "/tmp/x",
                "state_wait_timeout_ms": 5000,
            },
            "search_fields": ["identifier"],
            "service": {"search": {"basePath": "http://s"}, "content_service": {"basePath": "http://c"}},
            "cloud_storage": {"folder": {"content": "c", "artifact": "a"}},
        }
    )
    s = Settings.from_config(cfg)
    assert s.actions == ("auto-create", "auto-import")
    assert s.allowed_stages == ("create", "upload")
    assert s.mandatory_fields == ()
    assert [r.entry for r in s.allowed_sources.rules] == ["example.org", "https://files.test/x"]
    assert s.max_artifact_bytes == 1000
    assert s.bulk_upload_mime_types == ("video/mp4", "video/webm")
    assert s.max_iteration == 5
    assert s.api_call_delay_s == 1.0
    assert s.temp_dir == "/tmp/x"
    assert s.search_fields == ("identifier",)
    assert s.search_base_url == "http://s"
    assert s.content_base_url == "http://c"
    assert (s.content_folder, s.artifact_folder) == ("c", "a")
    assert s.state_wait_timeout_s == 5.0


def test_settings_defaults_follow_the_shipped_conf() -> None:
    s = Settings.from_config(JobConfig({}))
    assert s == Settings()
    assert s.max_iteration == 3
    assert s.api_call_delay_s == 0.0
    assert "lastPublishedBy" in s.props_to_remove
    assert len(s.props_to_remove) == 60


def test_settings_defaults_match_the_packaged_conf() -> None:
    from cokreat_jobs.core.config import load_config

    s = Settings.from_config(load_config("content-auto-creator"))
    d = Settings()
    assert s.props_to_remove == d.props_to_remove
    assert s.create_props == d.create_props
    assert s.mandatory_fields == d.mandatory_fields
    assert s.allowed_stages == d.allowed_stages
    assert s.search_fields == d.search_fields
    assert (s.max_iteration, s.api_call_delay_s, s.max_artifact_bytes) == (3, 0.0, 52_428_800)
