"""content-auto-creator and hostile ids (HARDENING 6 and 12).

- Storage keys: ``content/<slug(id)>/artifact/`` folded ``DO_113``, ``do_113!`` and ``do_113%00`` into one
  folder, so one content could overwrite another's artifact or icon. Now the key holds the id as it is, and an
  id that is not a valid Sunbird identifier is refused: ids that differ never share a key.
- Dot segments: a content id ``..`` read ``GET /content/v4/`` (the HTTP client resolves dot segments).

An id from the event that is not a Sunbird identifier skips the event, as a blank one does (JOBS.md step 1:
invalid events are skipped, with the reason); an id the services answer with fails the event as permanent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_content_processor import ICON, Harness, make_event

from cokreat_jobs.core.naming import identifier_problem

HOSTILE = ["do_113!", "do_113%00", "..", ".", "do_1/../do_2", "do 113", "do_113\x00", "%2e%2e", "ä"]


@pytest.fixture()
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def with_object_id(oid: str, **edata: Any) -> dict[str, Any]:
    event = make_event(**edata)
    event["object"]["id"] = oid
    return event


@pytest.mark.parametrize("oid", HOSTILE, ids=repr)
def test_an_object_id_that_is_no_identifier_is_skipped_untouched(h: Harness, oid: str) -> None:
    outcome = h.process(with_object_id(oid, metadata={"appIcon": ICON}))
    assert outcome.is_skipped, (outcome.kind, outcome.reason, outcome.detail)
    assert outcome.reason == "object-id-invalid"
    assert outcome.detail["problem"] == identifier_problem(oid)
    assert h.api.calls == [] and h.storage.files == {} and h.downloader.calls == []


@pytest.mark.parametrize(
    ("edata", "reason"),
    [
        ({"identifier": ".."}, "identifier-invalid"),
        ({"identifier": "do_9!"}, "identifier-invalid"),
        ({"originData": {"identifier": ".."}}, "origin-identifier-invalid"),
        ({"originData": '{"identifier": "do_9%00"}'}, "origin-identifier-invalid"),
    ],
)
def test_other_ids_of_the_event_are_checked_too(h: Harness, edata: dict[str, Any], reason: str) -> None:
    outcome = h.process(make_event(**edata))
    assert outcome.is_skipped and outcome.reason == reason, (outcome.kind, outcome.reason)
    assert h.api.calls == []


def test_different_ids_write_to_different_keys(h: Harness) -> None:
    """``DO_113`` and ``do_113`` are two contents (Sunbird ids are case-sensitive): two folders."""
    for oid in ("DO_113", "do_113"):
        outcome = h.process(with_object_id(oid, metadata={"appIcon": ICON}))
        assert outcome.is_success, (outcome.kind, outcome.reason, outcome.detail)
    folders = sorted({key.rsplit("/", 1)[0] for key in h.storage.files})
    assert folders == ["content/DO_113/artifact", "content/do_113/artifact"]
    assert sorted(h.storage.files) == [
        "content/DO_113/artifact/icon.png",
        "content/DO_113/artifact/my-book.pdf",
        "content/do_113/artifact/icon.png",
        "content/do_113/artifact/my-book.pdf",
    ]


def test_a_found_content_id_that_is_no_identifier_fails_before_any_write(h: Harness) -> None:
    """The search answered a content whose identifier cannot be a key or a path: permanent failure."""
    h.api.seed(
        "do_1/../do_2",
        origin="do_src_1",
        originData={"identifier": "do_src_1", "repository": "https://source.test/do_src_1"},
    )
    outcome = h.process(make_event(metadata={"appIcon": ICON}))
    assert outcome.kind == "failed" and outcome.reason == "permanent", (outcome.kind, outcome.detail)
    assert "is not a valid Sunbird identifier" in outcome.failed_record["failInfo"]["error"]
    assert h.storage.files == {}
    assert "update" not in h.api.names()


def test_collection_entries_whose_ids_are_no_identifiers_are_invalid_entries(h: Harness) -> None:
    """``GET /content/v3/hierarchy/..`` would read another resource: such entries count as invalid ones."""
    event = make_event(
        collection=[
            {"identifier": "..", "unitId": "do_unit"},
            {"identifier": "do_coll", "unitId": "."},
            {"identifier": "do_coll", "unitId": "do_unit"},
        ]
    )
    outcome = h.process(event)
    assert outcome.is_success
    assert outcome.detail["invalid_collection_entries"] == 2
    assert [a for n, a in h.api.calls if n == "hierarchy"] == ["do_coll"]
    assert h.api.links == [("do_coll", "do_unit", "do_src_1")]
